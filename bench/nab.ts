/**
 * `npm run bench:nab` — the anomaly detector on the Numenta Anomaly Benchmark subset in ../shared/nab/, scored with
 * NAB's own rules (src/detection/nab-score.ts): the three profiles' normalised scores, per-file TP/FP/FN at the
 * standard profile's threshold, and points/s of the detector loop. Two reference detectors run alongside for
 * comparison: NAB's null detector (scores 0 by construction) and NAB's windowed Gaussian. See bench/README.md.
 */
import { readdir, readFile } from 'node:fs/promises';
import { dirname, join, relative, sep } from 'node:path';
import { parseArgs } from 'node:util';
import { parseTimestamp, readSeriesCsv, type SeriesRow } from '../src/detection/csv-series.js';
import type { StreamingDetector } from '../src/detection/detector.js';
import {
  NAB_PROFILE_NAMES,
  type NabProfileName,
  type NabProfileScore,
  type NabSeries,
  scoreNab,
} from '../src/detection/nab-score.js';

type PointScorer = Pick<StreamingDetector, 'update'>;

interface CorpusFile {
  /** path under the data directory, with `/`, as windows.json names it */
  name: string;
  rows: SeriesRow[];
  windows: [number, number][];
}

interface DetectorRun {
  name: string;
  scores: Record<NabProfileName, NabProfileScore>;
  pointsPerSecond: number;
}

const PROFILE_LABELS: Record<NabProfileName, string> = {
  standard: 'standard',
  reward_low_FP_rate: 'low FP',
  reward_low_FN_rate: 'low FN',
};

function readOptions(): { data: string; windows: string; only: 'all' | 'reference' | 'detector' } {
  const { values } = parseArgs({
    options: {
      data: { type: 'string', default: '../shared/nab/data' },
      windows: { type: 'string' },
      only: { type: 'string', default: 'all' },
    },
  });
  const only = values.only;
  if (only !== 'all' && only !== 'reference' && only !== 'detector')
    throw new Error(`--only: expected all, reference or detector, got "${only}"`);
  return { data: values.data, windows: values.windows ?? join(dirname(values.data), 'windows.json'), only };
}

async function csvFilesUnder(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries
    .filter((e) => e.isFile() && e.name.toLowerCase().endsWith('.csv'))
    .map((e) => join(e.parentPath, e.name))
    .sort();
}

async function loadCorpus(dataDir: string, windowsFile: string): Promise<CorpusFile[]> {
  const files = await csvFilesUnder(dataDir);
  if (files.length === 0) throw new Error(`${dataDir}: no .csv files`);
  const allWindows = JSON.parse(await readFile(windowsFile, 'utf8')) as Record<string, [string, string][]>;
  return Promise.all(
    files.map(async (path) => {
      const name = relative(dataDir, path).split(sep).join('/');
      const labelled = allWindows[name];
      if (!labelled)
        throw new Error(`${windowsFile}: no windows for ${name} (is --data the right directory?)`);
      const windows = labelled.map(([start, end]): [number, number] => {
        const s = parseTimestamp(start);
        const e = parseTimestamp(end);
        if (s === undefined || e === undefined)
          throw new Error(`${windowsFile}: ${name}: bad window [${start}, ${end}]`);
        return [s, e];
      });
      return { name, rows: await readSeriesCsv(path), windows };
    }),
  );
}

/** Runs a fresh detector over each file (timing only the update loop) and scores the result. */
function runDetector(name: string, create: () => PointScorer, corpus: CorpusFile[]): DetectorRun {
  let points = 0;
  let nanoseconds = 0n;
  const series: NabSeries[] = corpus.map((file) => {
    const detector = create();
    const scores = new Float64Array(file.rows.length);
    const started = process.hrtime.bigint();
    for (let i = 0; i < file.rows.length; i++) {
      const row = file.rows[i] as SeriesRow;
      scores[i] = detector.update(row.timestampMs, row.value);
    }
    nanoseconds += process.hrtime.bigint() - started;
    points += file.rows.length;
    return {
      name: file.name,
      timestamps: file.rows.map((r) => r.timestampMs),
      scores,
      windows: file.windows,
    };
  });
  return { name, scores: scoreNab(series), pointsPerSecond: points / (Number(nanoseconds) / 1e9) };
}

/** NAB's null detector: 0.5 everywhere, so at its best threshold it never fires. */
function createNullDetector(): PointScorer {
  return { update: () => 0.5 };
}

/** rows NAB's windowed Gaussian learns from: every row until this many, then the latest this many (tuned by NAB) */
const GAUSSIAN_WINDOW = 6400;
/** rows gathered before the full window slides forward */
const GAUSSIAN_STEP = 100;

/**
 * NAB's windowedGaussian detector (nab/detectors/gaussian/windowedGaussian_detector.py): a row's score is
 * 1 − Q(|x − mean| / std) over the window of earlier rows (population std; 1e-6 when it is 0; 0 for the first row).
 * The window grows to 6400 rows, updating its mean and std each row, then moves 100 rows at a time.
 */
function createWindowedGaussian(): PointScorer {
  const window: number[] = [];
  let step: number[] = [];
  let mean = 0;
  let std = 1;
  let m2 = 0; // sum of squared deviations while the window grows (Welford)
  const recompute = () => {
    mean = window.reduce((a, b) => a + b, 0) / window.length;
    std = Math.sqrt(window.reduce((a, b) => a + (b - mean) ** 2, 0) / window.length);
    if (std === 0) std = 0.000001;
  };
  return {
    update(_timestampMs: number, value: number): number {
      // NAB mirrors a value below the mean to 2·mean − x before taking the upper tail; same rounding here
      const upper = value < mean ? 2 * mean - value : value;
      const score = window.length > 0 ? 1 - 0.5 * erfc((upper - mean) / std / Math.SQRT2) : 0;
      if (window.length < GAUSSIAN_WINDOW) {
        window.push(value);
        const delta = value - mean;
        const runningMean = window.length === 1 ? value : mean + delta / window.length;
        m2 = window.length === 1 ? 0 : m2 + delta * (value - runningMean);
        mean = runningMean;
        std = Math.sqrt(m2 / window.length);
        if (std === 0) std = 0.000001;
      } else {
        step.push(value);
        if (step.length === GAUSSIAN_STEP) {
          window.splice(0, GAUSSIAN_STEP);
          window.push(...step);
          step = [];
          recompute();
        }
      }
      return score;
    },
  };
}

/** fdlibm's s_erf.c coefficients, lowest power first (numerators P/R, denominators Q/S) */
const ERFC = {
  /** erf on [0, 0.84375] */
  pp: [
    0.12837916709551256, -0.3250421072470015, -0.02848174957559851, -0.005770270296489442,
    -0.000023763016656650163,
  ],
  qq: [
    1, 0.39791722395915535, 0.0650222499887673, 0.005081306281875766, 0.00013249473800432164,
    -0.000003960228278775368,
  ],
  /** erf on [0.84375, 1.25], around erx */
  erx: 0.8450629115104675,
  pa: [
    -0.0023621185607526594, 0.41485611868374833, -0.3722078760357013, 0.31834661990116175,
    -0.11089469428239668, 0.035478304325618236, -0.002166375594868791,
  ],
  qa: [
    1, 0.10642088040084423, 0.540397917702171, 0.07182865441419627, 0.12617121980876164, 0.01363708391202905,
    0.011984499846799107,
  ],
  /** erfc on [1.25, 1/0.35], in 1/x² */
  ra: [
    -0.009864944034847148, -0.6938585727071818, -10.558626225323291, -62.375332450326006, -162.39666946257347,
    -184.60509290671104, -81.2874355063066, -9.814329344169145,
  ],
  sa: [
    1, 19.651271667439257, 137.65775414351904, 434.56587747522923, 645.3872717332679, 429.00814002756783,
    108.63500554177944, 6.570249770319282, -0.0604244152148581,
  ],
  /** erfc on [1/0.35, 28], in 1/x² */
  rb: [
    -0.0098649429247001, -0.799283237680523, -17.757954917754752, -160.63638485582192, -637.5664433683896,
    -1025.0951316110772, -483.5191916086514,
  ],
  sb: [
    1, 30.33806074348246, 325.7925129965739, 1536.729586084437, 3199.8582195085955, 2553.0504064331644,
    474.52854120695537, -22.44095244658582,
  ],
} as const;

function polynomial(coefficients: readonly number[], x: number): number {
  let result = 0;
  for (let i = coefficients.length - 1; i >= 0; i--) result = result * x + (coefficients[i] ?? 0);
  return result;
}

/**
 * erfc(x) for x ≥ 0 after fdlibm's s_erf.c (error below 1 ulp), the algorithm behind CPython's math.erfc on glibc,
 * so that scores saturate to exactly 1 where NAB's do.
 */
function erfc(x: number): number {
  if (x < 0.84375) {
    if (x < 2 ** -56) return 1 - x;
    const z = x * x;
    const y = polynomial(ERFC.pp, z) / polynomial(ERFC.qq, z);
    if (x < 0.25) return 1 - (x + x * y);
    return 0.5 - (x * y + (x - 0.5));
  }
  if (x < 1.25) {
    const s = x - 1;
    return 1 - ERFC.erx - polynomial(ERFC.pa, s) / polynomial(ERFC.qa, s);
  }
  if (x >= 28) return 0;
  const s = 1 / (x * x);
  const ratio =
    x < 1 / 0.35
      ? polynomial(ERFC.ra, s) / polynomial(ERFC.sa, s)
      : polynomial(ERFC.rb, s) / polynomial(ERFC.sb, s);
  const z = withLowWordCleared(x);
  return (Math.exp(-z * z - 0.5625) * Math.exp((z - x) * (z + x) + ratio)) / x;
}

const wordView = new DataView(new ArrayBuffer(8));
/** x with the low 32 bits of its mantissa zeroed, so z * z is exact (fdlibm's SET_LOW_WORD(z, 0)) */
function withLowWordCleared(x: number): number {
  wordView.setFloat64(0, x);
  wordView.setUint32(4, 0);
  return wordView.getFloat64(0);
}

async function loadDetectorUnderTest(): Promise<() => PointScorer> {
  const { createDetector } = await import('../src/detection/create-detector.js');
  return createDetector;
}

function fixed(n: number, digits: number): string {
  return n.toFixed(digits);
}

function printSummary(runs: DetectorRun[]): void {
  const header = [
    'detector',
    ...NAB_PROFILE_NAMES.map((p) => PROFILE_LABELS[p]),
    'threshold',
    'TP',
    'FP',
    'FN',
    'points/s',
  ];
  const rows = runs.map((run) => {
    const std = run.scores.standard;
    return [
      run.name,
      ...NAB_PROFILE_NAMES.map((p) => fixed(run.scores[p].normalizedScore, 1)),
      String(Number(std.threshold.toPrecision(6))),
      String(std.tp),
      String(std.fp),
      String(std.fn),
      Math.round(run.pointsPerSecond).toLocaleString('en-US'),
    ];
  });
  printTable(header, rows);
  process.stdout.write(
    "  (normalised NAB scores; threshold and TP/FP/FN at the standard profile's best threshold)\n",
  );
}

function printPerFile(run: DetectorRun): void {
  const std = run.scores.standard;
  process.stdout.write(`\n${run.name}, per file at the standard profile's threshold ${std.threshold}:\n`);
  printTable(
    ['file', 'TP', 'FP', 'FN', 'raw'],
    std.files.map((f) => [f.name, String(f.tp), String(f.fp), String(f.fn), fixed(f.rawScore, 3)]),
  );
}

function printTable(header: string[], rows: string[][]): void {
  const widths = header.map((h, c) => Math.max(h.length, ...rows.map((r) => (r[c] ?? '').length)));
  const line = (cells: string[]) =>
    `  ${cells.map((cell, c) => (c === 0 ? cell.padEnd(widths[c] ?? 0) : cell.padStart(widths[c] ?? 0))).join('  ')}\n`;
  process.stdout.write(line(header));
  for (const r of rows) process.stdout.write(line(r));
}

async function main(): Promise<void> {
  const options = readOptions();
  const corpus = await loadCorpus(options.data, options.windows);
  const points = corpus.reduce((n, f) => n + f.rows.length, 0);
  const windows = corpus.reduce((n, f) => n + f.windows.length, 0);
  process.stdout.write(
    `NAB on ${options.data}: ${corpus.length} files, ${points.toLocaleString('en-US')} points, ${windows} windows\n\n`,
  );

  const runs: DetectorRun[] = [];
  if (options.only !== 'detector') {
    runs.push(runDetector('null', createNullDetector, corpus));
    runs.push(runDetector('windowedGaussian', createWindowedGaussian, corpus));
  }
  if (options.only !== 'reference')
    runs.push(runDetector('createDetector()', await loadDetectorUnderTest(), corpus));
  printSummary(runs);
  const featured = runs.at(-1);
  if (featured) printPerFile(featured);
}

main().catch((err: unknown) => {
  process.stderr.write(`bench:nab: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
});
