import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  formatScoredCsv,
  parseSeriesCsv,
  parseTimestamp,
  readSeriesCsv,
  SeriesCsvError,
  type SeriesRow,
} from '../src/detection/csv-series.js';
import { detectCommand } from '../src/detection/detect-cli.js';
import type { StreamingDetector } from '../src/detection/detector.js';

const NAB_TEXT = [
  'timestamp,value',
  '2014-04-01 00:00:00,18.3',
  '2014-04-01 00:05:00,21.090',
  '2014-04-01 00:10:00,1e3',
  '',
].join('\n');

/** A detector whose score is the share of the points it has seen, so a reused instance shows in the output. */
function createCountingDetector(): StreamingDetector {
  let count = 0;
  return {
    update: () => ++count / 1000,
    get count() {
      return count;
    },
    toJSON: () => ({ version: 1, count }),
    toBytes: () => Uint8Array.of(count),
    byteLength: 1,
    writeBytes: (target, offset) => target.set([count], offset),
    expectedRange: () => null,
  };
}

function bufferIo() {
  const io = {
    stdout: '',
    stderr: '',
    out(text: string) {
      io.stdout += text;
    },
    err(text: string) {
      io.stderr += text;
    },
  };
  return io;
}

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the real CLI (`ai-sre …` through tsx) with nothing in its environment but PATH. */
function cli(args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', 'src/cli.ts', ...args],
      { env: { PATH: process.env.PATH ?? '' }, timeout: 60_000 },
      (err, stdout, stderr) => {
        const code = err ? ((err as { code?: number }).code ?? 1) : 0;
        resolve({ code: typeof code === 'number' ? code : 1, stdout, stderr });
      },
    );
  });
}

describe('timestamp,value CSV', () => {
  test('reads NAB files with LF or CRLF line endings and keeps each row’s text', () => {
    const lf = parseSeriesCsv(NAB_TEXT, 'a.csv');
    const crlf = parseSeriesCsv(NAB_TEXT.replaceAll('\n', '\r\n'), 'a.csv');
    assert.deepEqual(crlf, lf);
    assert.deepEqual(lf, [
      {
        line: 2,
        timestampText: '2014-04-01 00:00:00',
        valueText: '18.3',
        timestampMs: Date.UTC(2014, 3, 1),
        value: 18.3,
      },
      {
        line: 3,
        timestampText: '2014-04-01 00:05:00',
        valueText: '21.090',
        timestampMs: Date.UTC(2014, 3, 1, 0, 5),
        value: 21.09,
      },
      {
        line: 4,
        timestampText: '2014-04-01 00:10:00',
        valueText: '1e3',
        timestampMs: Date.UTC(2014, 3, 1, 0, 10),
        value: 1000,
      },
    ]);
  });

  test('finds the columns by name, in any order and case, ignoring other columns, a BOM and trailing empty lines', () => {
    const rows = parseSeriesCsv(
      '\uFEFFlabel,Value,TIMESTAMP\r\nx,5,1396310400\r\ny,6,1396310700000\r\n\r\n\n',
      'b.csv',
    );
    assert.deepEqual(
      rows.map((r) => [r.line, r.timestampMs, r.value, r.valueText]),
      [
        [2, Date.UTC(2014, 3, 1), 5, '5'],
        [3, Date.UTC(2014, 3, 1, 0, 5), 6, '6'],
      ],
    );
    assert.deepEqual(parseSeriesCsv('timestamp,value\n', 'empty.csv'), []);
  });

  test('parses NAB, ISO-8601 and epoch timestamps as UTC, and refuses impossible dates', () => {
    const april = Date.UTC(2014, 3, 1, 12, 30, 15);
    assert.equal(parseTimestamp('2014-04-01 12:30:15'), april);
    assert.equal(parseTimestamp('2014-04-01 12:30:15.000000'), april);
    assert.equal(parseTimestamp('2014-04-01T12:30:15Z'), april);
    assert.equal(parseTimestamp('2014-04-01T12:30:15.250Z'), april + 250);
    assert.equal(parseTimestamp('2014-04-01T14:30:15+02:00'), april);
    assert.equal(parseTimestamp('2014-04-01T07:30:15-0500'), april);
    assert.equal(parseTimestamp('2014-04-01T12:30'), Date.UTC(2014, 3, 1, 12, 30));
    assert.equal(parseTimestamp('2014-04-01'), Date.UTC(2014, 3, 1));
    assert.equal(parseTimestamp(String(april / 1000)), april);
    assert.equal(parseTimestamp(String(april)), april);
    assert.equal(parseTimestamp('1396355415.5'), april + 500);
    for (const bad of [
      '2014-02-30 00:00:00',
      '2014-13-01',
      '2014-04-01 24:00:00',
      '01/04/2014',
      'yesterday',
      '',
    ])
      assert.equal(parseTimestamp(bad), undefined, bad);
  });

  test('a bad row is an error naming the file, the 1-based line and what is wrong', () => {
    const cases: [string, number, RegExp][] = [
      [
        'timestamp,value\n2014-04-01 00:00:00,1\n2014-04-01 00:05:00,abc\n',
        3,
        /value "abc" is not a finite number/,
      ],
      ['timestamp,value\n2014-04-01 00:00:00,\n', 2, /value "" is not a finite number/],
      ['timestamp,value\n2014-04-01 00:00:00,NaN\n', 2, /value "NaN"/],
      ['timestamp,value\n2014-04-01 00:00:00,0x10\n', 2, /value "0x10"/],
      [
        'timestamp,value\r\n2014-04-01 00:00:00,1\r\n2014-04-31 00:00:00,2\r\n',
        3,
        /timestamp "2014-04-31 00:00:00" is not/,
      ],
      ['timestamp,value\n2014-04-01 00:00:00,1,7\n', 2, /expected 2 fields like the header, got 3/],
      ['timestamp,value\n2014-04-01 00:00:00,1\n\n2014-04-01 00:10:00,2\n', 3, /empty line/],
      [
        'timestamp,value\n2014-04-01 00:05:00,1\n2014-04-01 00:00:00,2\n',
        3,
        /earlier than the previous row's/,
      ],
      ['time,value\n2014-04-01 00:00:00,1\n', 1, /header has no "timestamp" column/],
      ['timestamp,value,value\n', 1, /header names "value" twice/],
      ['', 1, /empty file/],
    ];
    for (const [text, line, problem] of cases) {
      assert.throws(
        () => parseSeriesCsv(text, 'data/cpu.csv'),
        (err: unknown) => {
          assert.ok(err instanceof SeriesCsvError, String(err));
          assert.equal(err.file, 'data/cpu.csv');
          assert.equal(err.line, line, text);
          assert.match(err.message, new RegExp(`^data/cpu\\.csv:${line}: `));
          assert.match(err.message, problem);
          return true;
        },
      );
    }
  });

  test('the scored output keeps each row’s timestamp and value text exactly, in order', () => {
    const rows = parseSeriesCsv(NAB_TEXT.replaceAll('\n', '\r\n'), 'a.csv');
    assert.equal(
      formatScoredCsv(rows, [0, 0.25, 1 / 3]),
      [
        'timestamp,value,anomaly_score',
        '2014-04-01 00:00:00,18.3,0',
        '2014-04-01 00:05:00,21.090,0.25',
        '2014-04-01 00:10:00,1e3,0.3333333333333333',
        '',
      ].join('\n'),
    );
    assert.throws(() => formatScoredCsv(rows, [0]), /3 rows but 1 scores/);
  });
});

describe('detectCommand', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ai-sre-detect-'));
    await mkdir(join(dir, 'in', 'aws', 'ec2'), { recursive: true });
    await writeFile(join(dir, 'in', 'top.csv'), NAB_TEXT);
    await writeFile(join(dir, 'in', 'aws', 'rds.csv'), NAB_TEXT.replaceAll('\n', '\r\n'));
    await writeFile(join(dir, 'in', 'aws', 'ec2', 'cpu.CSV'), 'timestamp,value\n2014-04-01T00:00:00Z,1.50\n');
    await writeFile(join(dir, 'in', 'aws', 'notes.txt'), 'not a series');
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test('a directory is scored recursively into the same relative paths, each series with a fresh detector', async () => {
    const io = bufferIo();
    const code = await detectCommand(
      { input: join(dir, 'in'), output: join(dir, 'out'), createDetector: createCountingDetector },
      io,
    );
    assert.equal(code, 0, io.stderr);
    assert.deepEqual((await readdir(join(dir, 'out'), { recursive: true })).sort(), [
      'aws',
      'aws/ec2',
      'aws/ec2/cpu.CSV',
      'aws/rds.csv',
      'top.csv',
    ]);
    assert.equal(
      await readFile(join(dir, 'out', 'aws', 'rds.csv'), 'utf8'),
      'timestamp,value,anomaly_score\n2014-04-01 00:00:00,18.3,0.001\n2014-04-01 00:05:00,21.090,0.002\n2014-04-01 00:10:00,1e3,0.003\n',
    );
    assert.equal(
      await readFile(join(dir, 'out', 'aws', 'ec2', 'cpu.CSV'), 'utf8'),
      'timestamp,value,anomaly_score\n2014-04-01T00:00:00Z,1.50,0.001\n',
    );
    // a scored file reads back as the same series (the extra column is ignored)
    const strip = (rows: SeriesRow[]) =>
      rows.map(({ line, timestampText, valueText }) => [line, timestampText, valueText]);
    assert.deepEqual(
      strip(await readSeriesCsv(join(dir, 'out', 'top.csv'))),
      strip(await readSeriesCsv(join(dir, 'in', 'top.csv'))),
    );
    const summary = io.stdout.trim().split('\n');
    assert.equal(summary.length, 3);
    assert.match(
      summary[0] ?? '',
      /^aws\/ec2\/cpu\.CSV: 1 points, highest score 0\.0010 at 2014-04-01T00:00:00Z, /,
    );
    assert.match(summary[2] ?? '', /^top\.csv: 3 points, highest score 0\.0030 at 2014-04-01 00:10:00, /);
  });

  test('an output directory inside the input is not read back as input', async () => {
    const io = bufferIo();
    const code = await detectCommand(
      { input: join(dir, 'in'), output: join(dir, 'in', 'scored'), createDetector: createCountingDetector },
      io,
    );
    assert.equal(code, 0, io.stderr);
    const again = bufferIo();
    assert.equal(
      await detectCommand(
        { input: join(dir, 'in'), output: join(dir, 'in', 'scored'), createDetector: createCountingDetector },
        again,
      ),
      0,
    );
    assert.equal(again.stdout.trim().split('\n').length, 3, again.stdout);
    await rm(join(dir, 'in', 'scored'), { recursive: true });
  });

  test('a file is scored into a file, or into an existing directory under its own name', async () => {
    const io = bufferIo();
    const into = join(dir, 'single', 'scored.csv');
    assert.equal(
      await detectCommand(
        { input: join(dir, 'in', 'top.csv'), output: into, createDetector: createCountingDetector },
        io,
      ),
      0,
    );
    const expected = await readFile(join(dir, 'out', 'top.csv'), 'utf8');
    assert.equal(await readFile(into, 'utf8'), expected);
    assert.equal(
      await detectCommand(
        {
          input: join(dir, 'in', 'top.csv'),
          output: join(dir, 'single'),
          createDetector: createCountingDetector,
        },
        io,
      ),
      0,
    );
    assert.equal(await readFile(join(dir, 'single', 'top.csv'), 'utf8'), expected);
  });

  test('a bad row stops with exit 1 and names the file and line; bad paths are usage errors (2)', async () => {
    await mkdir(join(dir, 'bad'));
    await writeFile(
      join(dir, 'bad', 'broken.csv'),
      'timestamp,value\n2014-04-01 00:00:00,1\n2014-04-01 00:05:00,oops\n',
    );
    const io = bufferIo();
    const code = await detectCommand(
      { input: join(dir, 'bad'), output: join(dir, 'bad-out'), createDetector: createCountingDetector },
      io,
    );
    assert.equal(code, 1);
    assert.equal(
      io.stderr,
      `ai-sre detect: ${join(dir, 'bad', 'broken.csv')}:3: value "oops" is not a finite number\n`,
    );

    const missing = bufferIo();
    assert.equal(
      await detectCommand(
        { input: join(dir, 'nope'), output: join(dir, 'x'), createDetector: createCountingDetector },
        missing,
      ),
      2,
    );
    assert.match(missing.stderr, /--input .*nope: no such file or directory/);
    const fileOut = bufferIo();
    assert.equal(
      await detectCommand(
        {
          input: join(dir, 'in'),
          output: join(dir, 'in', 'top.csv'),
          createDetector: createCountingDetector,
        },
        fileOut,
      ),
      2,
    );
    assert.match(fileOut.stderr, /is a file but --input is a directory/);
  });
});

describe('ai-sre detect (the real CLI and detector)', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ai-sre-detect-cli-'));
    await mkdir(join(dir, 'in', 'nested'), { recursive: true });
    const lines = ['timestamp,value'];
    for (let i = 0; i < 600; i++) {
      const ts = new Date(Date.UTC(2014, 3, 1) + i * 300_000).toISOString().replace('T', ' ').slice(0, 19);
      lines.push(`${ts},${i === 500 ? '400.0' : (50 + 5 * Math.sin(i / 10)).toFixed(3)}`);
    }
    await writeFile(join(dir, 'in', 'nested', 'spike.csv'), `${lines.join('\r\n')}\r\n`);
    await writeFile(join(dir, 'bad.csv'), 'timestamp,value\n2014-04-01 00:00:00,1\nnot-a-time,2\n');
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test('scores a directory with no configuration at all, keeping rows and relative paths', async () => {
    const run = await cli(['detect', '--input', join(dir, 'in'), '--output', join(dir, 'out')]);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /^nested\/spike\.csv: 600 points, highest score [01]\.\d{4} at /);
    const input = (await readFile(join(dir, 'in', 'nested', 'spike.csv'), 'utf8')).split('\r\n').slice(1, -1);
    const output = (await readFile(join(dir, 'out', 'nested', 'spike.csv'), 'utf8')).split('\n');
    assert.equal(output[0], 'timestamp,value,anomaly_score');
    assert.equal(output.length, input.length + 2);
    input.forEach((row, i) => {
      const scored = output[i + 1] ?? '';
      assert.ok(scored.startsWith(`${row},`), `row ${i + 2}: ${scored}`);
      const score = Number(scored.slice(row.length + 1));
      assert.ok(score >= 0 && score <= 1, `row ${i + 2}: score ${score}`);
    });
  });

  test('exits 1 naming the file and line of a bad row, and 2 without --input/--output', async () => {
    const bad = await cli(['detect', '--input', join(dir, 'bad.csv'), '--output', join(dir, 'bad-out.csv')]);
    assert.equal(bad.code, 1);
    assert.match(
      bad.stderr,
      new RegExp(`${join(dir, 'bad.csv').replaceAll('/', '\\/')}:3: timestamp "not-a-time" is not`),
    );
    const usage = await cli(['detect', '--input', join(dir, 'bad.csv')]);
    assert.equal(usage.code, 2);
    assert.match(usage.stderr, /usage: ai-sre detect --input <csv\|dir> --output <csv\|dir>/);
  });
});
