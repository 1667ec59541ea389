import { mkdir, readdir, stat } from 'node:fs/promises';
import { basename, dirname, join, relative, resolve, sep } from 'node:path';
import { readSeriesCsv, SeriesCsvError, writeScoredCsv } from './csv-series.js';
import type { StreamingDetector } from './detector.js';

export interface DetectIo {
  out(text: string): void;
  err(text: string): void;
}

export interface DetectOptions {
  /** a `timestamp,value` CSV file, or a directory searched recursively for `*.csv` */
  input: string;
  /** a file for a file input (or an existing directory to write it into); a directory for a directory input */
  output: string;
  /** makes a fresh detector for each series */
  createDetector: () => StreamingDetector;
}

/**
 * `ai-sre detect --input <csv|dir> --output <csv|dir>`: scores each series with a fresh detector and writes
 * `timestamp,value,anomaly_score`, keeping rows, order and relative paths. One summary line per file on stdout;
 * exit 1 at the first unreadable file or bad row (`file:line: problem` on stderr), 2 on bad usage.
 */
export async function detectCommand(options: DetectOptions, io: DetectIo): Promise<number> {
  try {
    const jobs = await planJobs(options.input, options.output);
    if (typeof jobs === 'string') {
      io.err(`ai-sre detect: ${jobs}\n`);
      return 2;
    }
    for (const job of jobs) {
      const rows = await readSeriesCsv(job.from);
      const detector = options.createDetector();
      const scores = new Float64Array(rows.length);
      let top = -1;
      const started = performance.now();
      rows.forEach((row, i) => {
        const score = detector.update(row.timestampMs, row.value);
        scores[i] = score;
        if (top < 0 || score > (scores[top] ?? 0)) top = i;
      });
      const elapsedMs = performance.now() - started;
      await mkdir(dirname(job.to), { recursive: true });
      await writeScoredCsv(job.to, rows, scores);
      const peak = rows[top];
      io.out(
        `${job.label}: ${rows.length} points` +
          (peak ? `, highest score ${(scores[top] ?? 0).toFixed(4)} at ${peak.timestampText}` : '') +
          `, ${elapsedMs.toFixed(1)} ms → ${relative(process.cwd(), job.to) || job.to}\n`,
      );
    }
    return 0;
  } catch (err) {
    if (err instanceof SeriesCsvError || isFsError(err)) {
      io.err(`ai-sre detect: ${(err as Error).message}\n`);
      return 1;
    }
    throw err;
  }
}

interface Job {
  /** the input file as the user would name it (the --input argument, joined with the path under it) */
  from: string;
  to: string;
  /** what the summary line calls the file: its path relative to the input directory, or as given */
  label: string;
}

/** The files to score and where each goes, or a usage problem. */
async function planJobs(inputArg: string, outputArg: string): Promise<Job[] | string> {
  const input = resolve(inputArg);
  const output = resolve(outputArg);
  const inputStat = await stat(input).catch(() => undefined);
  if (!inputStat) return `--input ${inputArg}: no such file or directory`;
  const outputStat = await stat(output).catch(() => undefined);
  if (inputStat.isFile()) {
    const to = outputStat?.isDirectory() ? join(output, basename(input)) : output;
    if (to === input) return `--output would overwrite the input ${inputArg}`;
    return [{ from: inputArg, to, label: inputArg }];
  }
  if (outputStat && !outputStat.isDirectory())
    return `--output ${outputArg} is a file but --input is a directory`;
  if (output === input) return '--output must differ from the --input directory';
  const entries = await readdir(input, { recursive: true, withFileTypes: true });
  return entries
    .filter((e) => e.isFile() && e.name.toLowerCase().endsWith('.csv'))
    .map((e) => join(e.parentPath, e.name))
    .filter((path) => !path.startsWith(output + sep)) // an output inside the input is not read back as input
    .sort()
    .map((path) => {
      const label = relative(input, path);
      return { from: join(inputArg, label), to: join(output, label), label };
    });
}

function isFsError(err: unknown): boolean {
  return err instanceof Error && typeof (err as NodeJS.ErrnoException).code === 'string';
}
