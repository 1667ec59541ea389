import { drawText, fitText, GLYPH_HEIGHT, measureText } from './bitmap-font.js';
import { Canvas, type Rgb } from './canvas.js';
import { encodePng } from './png.js';

export interface AnomalyChartInput {
  title: string;
  /** the series: t in epoch ms, in any order; a non-finite v is a gap in the line */
  points: readonly { t: number; v: number }[];
  /** the expected range over time (epoch ms), drawn as a shaded area */
  band?: readonly { t: number; low: number; high: number }[];
  /** epoch ms; points from here on are drawn red, behind a dashed marker line */
  anomalyStart?: number;
  /** pixels; default 800, 320–4096 */
  width?: number;
  /** pixels; default 300, 160–4096 */
  height?: number;
}

const WHITE: Rgb = [255, 255, 255];
const TEXT: Rgb = [17, 24, 39];
const MUTED: Rgb = [107, 114, 128];
const GRID: Rgb = [229, 231, 235];
const VALUE: Rgb = [37, 99, 235];
const ANOMALY: Rgb = [220, 38, 38];
const BAND_ALPHA = 0.16;
const BAND_EDGE_ALPHA = 0.45;
/** Every label is drawn with font pixels this many screen pixels square, so it survives Slack's downscaling. */
const TEXT_SCALE = 2;
const TEXT_HEIGHT = GLYPH_HEIGHT * TEXT_SCALE;
const MARGIN = 16;
const LINE_WIDTH = 2;
/** px, on then off, of the anomaly-start marker */
const DASH = [6, 5] as const;
const MIN_SIZE = { width: 320, height: 160 } as const;
const MAX_SIZE = 4096;
/** With one timestamp only there is no time axis to scale; spread this many ms around it. */
const FLAT_TIME_PAD_MS = 60_000;
const DAY_MS = 86_400_000;

interface Point {
  t: number;
  v: number;
}

/**
 * Renders a series as a PNG line chart for an incident thread: the value line, the expected band, and
 * everything from `anomalyStart` on in red behind a dashed marker labelled with its time; a light grid on
 * round values and round UTC times, both labelled; the title and a legend above. Tolerates empty,
 * single-point, flat, unordered and non-finite input, and any finite magnitude.
 */
export function renderAnomalyChart(input: AnomalyChartInput): Buffer {
  const width = input.width ?? 800;
  const height = input.height ?? 300;
  checkSize('width', width, MIN_SIZE.width);
  checkSize('height', height, MIN_SIZE.height);
  const canvas = Canvas.scratch(width, height, WHITE);

  const points = sortByTime(
    input.points
      .filter((p) => Number.isFinite(p.t))
      .map((p) => ({ t: p.t, v: Number.isFinite(p.v) ? p.v : Number.NaN })),
  );
  let tStart = points[0]?.t ?? 0;
  let tEnd = points[points.length - 1]?.t ?? 1;
  if (!(tEnd > tStart)) {
    tStart -= FLAT_TIME_PAD_MS;
    tEnd += FLAT_TIME_PAD_MS;
  }
  const band = clipBand(
    sortByTime(
      (input.band ?? [])
        .filter((b) => Number.isFinite(b.t) && Number.isFinite(b.low) && Number.isFinite(b.high))
        .map((b) => ({ t: b.t, low: Math.min(b.low, b.high), high: Math.max(b.low, b.high) })),
    ),
    tStart,
    tEnd,
  );
  const anomalyStart =
    input.anomalyStart !== undefined && Number.isFinite(input.anomalyStart) ? input.anomalyStart : undefined;

  const extent = { low: Number.POSITIVE_INFINITY, high: Number.NEGATIVE_INFINITY };
  const include = (v: number) => {
    if (v < extent.low) extent.low = v;
    if (v > extent.high) extent.high = v;
  };
  for (const p of points) if (!Number.isNaN(p.v)) include(p.v);
  for (const b of band) [b.low, b.high].forEach(include);
  const hasValues = extent.low <= extent.high;
  const ticks = hasValues ? chooseTicks(extent.low, extent.high) : chooseTicks(0, 1);
  // Without any value the numbers would be made up, so only the grid is drawn.
  const tickLabels = hasValues ? formatTicks(ticks) : ticks.map(() => '');
  const yLow = ticks[0] ?? 0;
  const yHigh = ticks[ticks.length - 1] ?? 1;

  const labelWidth = Math.max(...tickLabels.map((label) => measureText(label, TEXT_SCALE)));
  const plot = {
    left: MARGIN + labelWidth + 10,
    right: width - MARGIN - 4,
    top: MARGIN + TEXT_HEIGHT + 22,
    bottom: height - MARGIN - TEXT_HEIGHT - 14,
  };
  const plotWidth = plot.right - plot.left;
  const plotHeight = plot.bottom - plot.top;

  const toX = (t: number) => plot.left + fraction(t, tStart, tEnd) * plotWidth;
  const toY = (v: number) => plot.bottom - fraction(v, yLow, yHigh) * plotHeight;

  const timeTicks = points.length === 0 ? [] : chooseTimeTicks(tStart, tEnd, plotWidth);
  for (const tick of timeTicks) {
    const x = Math.round(toX(tick.t));
    canvas.fillRect(x, plot.top, x + 1, plot.bottom, GRID);
  }
  ticks.forEach((tick, i) => {
    const y = Math.round(toY(tick));
    canvas.fillRect(plot.left, y, plot.right, y + 1, GRID);
    const label = tickLabels[i] ?? '';
    drawText(
      canvas,
      label,
      plot.left - 10 - measureText(label, TEXT_SCALE),
      y - TEXT_HEIGHT / 2,
      MUTED,
      TEXT_SCALE,
    );
  });

  if (band.length > 1) drawBand(canvas, band, plot, toX, toY, tStart, tEnd);

  const markerX =
    anomalyStart !== undefined && anomalyStart >= tStart && anomalyStart <= tEnd
      ? toX(anomalyStart)
      : undefined;
  if (markerX !== undefined) {
    const x = Math.min(plot.right - 1, Math.round(markerX) - 1);
    for (let y = plot.top; y < plot.bottom; y += DASH[0] + DASH[1]) {
      canvas.fillRect(x, y, x + 2, Math.min(plot.bottom, y + DASH[0]), ANOMALY, 0.75);
    }
  }

  if (points.every((p) => Number.isNaN(p.v))) {
    const message = 'NO DATA';
    const x = plot.left + (plotWidth - measureText(message, TEXT_SCALE)) / 2;
    const y = plot.top + (plotHeight - TEXT_HEIGHT) / 2;
    canvas.fillRect(x - 8, y - 6, x + measureText(message, TEXT_SCALE) + 8, y + TEXT_HEIGHT + 6, WHITE);
    drawText(canvas, message, x, y, MUTED, TEXT_SCALE);
  } else {
    drawSeries(canvas, decimate(points, toX), toX, toY, anomalyStart);
  }

  drawTimeLabels(
    canvas,
    plot,
    timeTicks.map((tick) => ({ x: toX(tick.t), label: tick.label })),
  );
  if (markerX !== undefined && anomalyStart !== undefined) {
    drawMarkerLabel(canvas, plot, markerX, anomalyStart, tEnd - tStart);
  }
  const hasAnomaly =
    anomalyStart !== undefined && points.some((p) => p.t >= anomalyStart && !Number.isNaN(p.v));
  drawHeader(canvas, input.title, width, band.length > 1, hasAnomaly);
  return encodePng(width, height, canvas.data);
}

/**
 * Formats a number in at most about five characters: 1.2k, 3.4M, 0.002, 1.5E-7. Suffixes are k, M, G, T
 * (powers of 1000); beyond those, and below 0.0001, scientific notation.
 */
export function formatCompactNumber(value: number): string {
  if (!Number.isFinite(value)) return String(value).toUpperCase();
  if (value === 0) return '0';
  const abs = Math.abs(value);
  if (abs < 1e-4 || abs >= 999.5e12) return formatScientific(value, 1);
  const [divisor, suffix] = unitOf(abs);
  let scaled = Number((value / divisor).toPrecision(3));
  // Rounding can carry into the next unit (999.7 → 1000 → 1k).
  if (Math.abs(scaled) >= 1000) return formatCompactNumber(Math.sign(value) * 1000 * divisor);
  if (Object.is(scaled, -0)) scaled = 0;
  return `${scaled}${suffix}`;
}

/** Sorts in place by `t`, skipping the sort when the input is already in order (the usual case). */
function sortByTime<T extends { t: number }>(items: T[]): T[] {
  for (let i = 1; i < items.length; i++) {
    if ((items[i]?.t ?? 0) < (items[i - 1]?.t ?? 0)) return items.sort((a, b) => a.t - b.t);
  }
  return items;
}

function checkSize(name: string, value: number, min: number): void {
  if (!Number.isInteger(value) || value < min || value > MAX_SIZE) {
    throw new RangeError(`chart ${name} must be an integer from ${min} to ${MAX_SIZE} px, got ${value}`);
  }
}

/** Where `v` sits between `low` (0) and `high` (1); halving first keeps it finite for extreme inputs. */
function fraction(v: number, low: number, high: number): number {
  const span = high / 2 - low / 2;
  return span > 0 ? (v / 2 - low / 2) / span : 0.5;
}

/**
 * Grid values: four or five round numbers (steps of 1, 2, 2.5 or 5 × 10^n) spanning the data with a
 * little headroom, or five evenly spaced ones where the numbers are too extreme to round.
 */
function chooseTicks(min: number, max: number): number[] {
  let [low, high] = [min, max];
  if (!(high > low)) {
    const pad = low === 0 ? 1 : Math.abs(low) * 0.1;
    [low, high] = [low - pad, high + pad];
    if (!(high > low)) [low, high] = [low - 1, high + 1];
  }
  const headroom = (high / 2 - low / 2) * 0.1;
  if (Number.isFinite(low - headroom) && Number.isFinite(high + headroom))
    [low, high] = [low - headroom, high + headroom];

  const rawStep = (high / 2 - low / 2) / 2;
  const exponent = Math.floor(Math.log10(rawStep));
  for (const mantissa of [1, 2, 2.5, 5, 10, 20, 25, 50]) {
    const step = mantissa * 10 ** exponent;
    if (!(step > 0) || !Number.isFinite(step) || step < rawStep * (1 - 1e-9)) continue;
    const first = Math.floor(low / step);
    const last = Math.ceil(high / step);
    if (last - first > 4 || !Number.isFinite(first * step) || !Number.isFinite(last * step)) continue;
    if (last - first < 1) break;
    return Array.from({ length: last - first + 1 }, (_, i) => (first + i) * step);
  }
  return [0, 0.25, 0.5, 0.75, 1].map((f) => low * (1 - f) + high * f);
}

/** Tick labels with as many decimals as the grid step needs, each in its own unit (250, 500, 750, 1k). */
function formatTicks(ticks: readonly number[]): string[] {
  const step = Math.abs((ticks[1] ?? 0) - (ticks[0] ?? 0));
  const largest = Math.max(...ticks.map(Math.abs));
  if (!(step > 0) || largest >= 999.5e12 || step < 1e-4) {
    const digits = step > 0 ? Math.floor(Math.log10(largest)) - Math.floor(Math.log10(step)) : 1;
    return ticks.map((tick) => (tick === 0 ? '0' : formatScientific(tick, Math.min(6, Math.max(1, digits)))));
  }
  return ticks.map((tick) => {
    if (Math.abs(tick) < step / 1e6) return '0';
    const [divisor, suffix] = unitOf(Math.abs(tick));
    const scaledStep = step / divisor;
    let decimals = 0;
    while (
      decimals < 6 &&
      Math.abs(Math.round(scaledStep * 10 ** decimals) - scaledStep * 10 ** decimals) > 1e-6
    ) {
      decimals++;
    }
    const text = (tick / divisor).toFixed(decimals);
    return `${decimals > 0 ? text.replace(/\.?0+$/, '') : text}${suffix}`;
  });
}

function unitOf(abs: number): [divisor: number, suffix: string] {
  if (abs >= 999.5e9) return [1e12, 'T'];
  if (abs >= 999.5e6) return [1e9, 'G'];
  if (abs >= 999.5e3) return [1e6, 'M'];
  if (abs >= 999.5) return [1e3, 'k'];
  return [1, ''];
}

function formatScientific(value: number, digits: number): string {
  return value
    .toExponential(digits)
    .replace(/\.?0+e/, 'e')
    .replace('e+', 'E')
    .replace('e', 'E');
}

type BandPoint = { t: number; low: number; high: number };

/**
 * The part of the band inside the chart's time range, cut exactly at its ends, so that neither its edges
 * nor its values outside the range (which would stretch the y axis) reach the chart.
 */
function clipBand(band: readonly BandPoint[], tStart: number, tEnd: number): BandPoint[] {
  const at = (a: BandPoint, b: BandPoint, t: number): BandPoint => {
    const f = (t - a.t) / (b.t - a.t);
    return { t, low: a.low + (b.low - a.low) * f, high: a.high + (b.high - a.high) * f };
  };
  const clipped: BandPoint[] = [];
  band.forEach((b, i) => {
    const previous = band[i - 1];
    if (previous !== undefined && previous.t < tStart && b.t > tStart) clipped.push(at(previous, b, tStart));
    if (b.t >= tStart && b.t <= tEnd) clipped.push(b);
    if (previous !== undefined && previous.t < tEnd && b.t > tEnd) clipped.push(at(previous, b, tEnd));
  });
  return clipped;
}

interface PlotArea {
  left: number;
  right: number;
  top: number;
  bottom: number;
}

/** Shades, column by column, between the band's low and high edges, then outlines both edges. */
function drawBand(
  canvas: Canvas,
  band: readonly BandPoint[],
  plot: PlotArea,
  toX: (t: number) => number,
  toY: (v: number) => number,
  tStart: number,
  tEnd: number,
): void {
  let segment = 0;
  for (let x = plot.left; x < plot.right; x++) {
    const t = tStart + ((x + 0.5 - plot.left) / (plot.right - plot.left)) * (tEnd - tStart);
    while (segment < band.length - 2 && (band[segment + 1]?.t ?? 0) < t) segment++;
    const a = band[segment];
    const b = band[segment + 1];
    if (a === undefined || b === undefined || t < a.t || t > b.t) continue;
    const f = b.t > a.t ? (t - a.t) / (b.t - a.t) : 0;
    const top = toY(a.high + (b.high - a.high) * f);
    const bottom = toY(a.low + (b.low - a.low) * f);
    // Partial coverage on the first and last pixel keeps the edges smooth.
    for (let y = Math.floor(top); y < Math.ceil(bottom); y++) {
      const coverage = Math.min(y + 1, bottom) - Math.max(y, top);
      canvas.blend(x, y, VALUE, BAND_ALPHA * Math.max(0, coverage));
    }
  }
  canvas.strokePath(
    band.map((b) => [toX(b.t), toY(b.high)] as const),
    1,
    VALUE,
    BAND_EDGE_ALPHA,
  );
  canvas.strokePath(
    band.map((b) => [toX(b.t), toY(b.low)] as const),
    1,
    VALUE,
    BAND_EDGE_ALPHA,
  );
}

/**
 * More points than pixel columns only slows drawing: per column keep the first, lowest, highest and last
 * point (in time order) so spikes survive; a column with no finite value keeps one gap.
 */
function decimate(points: readonly Point[], toX: (t: number) => number): Point[] {
  if (points.length <= 4096) return [...points];
  const kept: Point[] = [];
  let column = Number.NaN;
  let first = -1;
  let low = -1;
  let high = -1;
  let last = -1;
  let gapAt = -1;
  const flush = () => {
    const indices = last < 0 ? [gapAt] : [...new Set([first, low, high, last])].sort((x, y) => x - y);
    for (const i of indices) {
      const p = points[i];
      if (p !== undefined) kept.push(p);
    }
  };
  points.forEach((p, i) => {
    const x = Math.floor(toX(p.t));
    if (x !== column) {
      flush();
      [column, first, low, high, last, gapAt] = [x, -1, -1, -1, -1, i];
    }
    if (Number.isNaN(p.v)) return;
    if (first < 0) [first, low, high] = [i, i, i];
    if (p.v < (points[low]?.v ?? p.v)) low = i;
    if (p.v > (points[high]?.v ?? p.v)) high = i;
    last = i;
  });
  flush();
  return kept;
}

/** The value line, red from `anomalyStart` on; a gap (NaN) breaks it, and a point with no neighbour is a dot. */
function drawSeries(
  canvas: Canvas,
  points: readonly Point[],
  toX: (t: number) => number,
  toY: (v: number) => number,
  anomalyStart: number | undefined,
): void {
  let path: [number, number][] = [];
  let colour = VALUE;
  const flush = () => {
    if (path.length === 1) {
      const [x, y] = path[0] ?? [0, 0];
      canvas.fillCircle(x, y, 2.5, colour);
    } else if (path.length > 1) {
      canvas.strokePath(path, LINE_WIDTH, colour);
    }
    path = [];
  };
  let previous: Point | undefined;
  for (const p of points) {
    if (Number.isNaN(p.v)) {
      flush();
      previous = undefined;
      continue;
    }
    const pointColour = anomalyStart !== undefined && p.t >= anomalyStart ? ANOMALY : VALUE;
    if (pointColour !== colour) {
      // The segment crossing the anomaly start changes colour where it crosses.
      if (previous !== undefined && anomalyStart !== undefined) {
        const f = (anomalyStart - previous.t) / (p.t - previous.t);
        const crossing: [number, number] = [
          toX(anomalyStart),
          toY(previous.v + (p.v - previous.v) * Math.max(0, Math.min(1, f))),
        ];
        path.push(crossing);
        flush();
        path.push(crossing);
      } else {
        flush();
      }
      colour = pointColour;
    }
    path.push([toX(p.t), toY(p.v)]);
    previous = p;
  }
  flush();
}

/**
 * Round times for the x axis (UTC multiples of a step from TIME_STEPS_MS), as many as fit side by side
 * with their labels; none when the timestamps are not dates.
 */
function chooseTimeTicks(tStart: number, tEnd: number, plotWidth: number): { t: number; label: string }[] {
  if (Number.isNaN(new Date(tStart).getTime()) || Number.isNaN(new Date(tEnd).getTime())) return [];
  for (const step of TIME_STEPS_MS) {
    const first = Math.ceil(tStart / step);
    const last = Math.floor(tEnd / step);
    const sampleWidth = measureText(formatTimeTick(first * step, step, tEnd - tStart), TEXT_SCALE);
    if ((last - first + 1) * (sampleWidth + 28) > plotWidth) continue;
    return Array.from({ length: last - first + 1 }, (_, i) => (first + i) * step).map((t) => ({
      t,
      label: formatTimeTick(t, step, tEnd - tStart),
    }));
  }
  return [];
}

/** ms: 1 s up to 30 days */
const TIME_STEPS_MS = [
  ...[1, 2, 5, 10, 15, 30].map((s) => s * 1000),
  ...[1, 2, 5, 10, 15, 30].map((m) => m * 60_000),
  ...[1, 2, 3, 6, 12].map((h) => h * 3_600_000),
  ...[1, 2, 7, 14, 30].map((d) => d * DAY_MS),
];

/** HH:MM (UTC), with seconds for sub-minute steps; MM-DD for whole days, and at midnight on multi-day charts. */
function formatTimeTick(t: number, step: number, span: number): string {
  const iso = new Date(t).toISOString();
  if (step >= DAY_MS || (span >= DAY_MS && t % DAY_MS === 0)) return iso.slice(5, 10);
  return iso.slice(11, step < 60_000 ? 19 : 16);
}

/** The time labels under their grid lines, with `UTC` at the right end; labels that would collide are dropped. */
function drawTimeLabels(
  canvas: Canvas,
  plot: PlotArea,
  ticks: readonly { x: number; label: string }[],
): void {
  if (ticks.length === 0) return;
  const y = plot.bottom + 14;
  const zone = 'UTC';
  const zoneLeft = canvas.width - MARGIN - measureText(zone, TEXT_SCALE);
  drawText(canvas, zone, zoneLeft, y, MUTED, TEXT_SCALE);
  let previousRight = Number.NEGATIVE_INFINITY;
  for (const tick of ticks) {
    const w = measureText(tick.label, TEXT_SCALE);
    const left = Math.max(MARGIN, tick.x - w / 2);
    if (left < previousRight + 12 || left + w > zoneLeft - 12) continue;
    drawText(canvas, tick.label, left, y, MUTED, TEXT_SCALE);
    previousRight = left + w;
  }
}

/**
 * The anomaly start time in red beside the top of its marker (right of it, or left where there is no
 * room), on a white backing so the grid does not cut through it.
 */
function drawMarkerLabel(
  canvas: Canvas,
  plot: PlotArea,
  markerX: number,
  anomalyStart: number,
  span: number,
): void {
  const date = new Date(anomalyStart);
  if (Number.isNaN(date.getTime())) return;
  const iso = date.toISOString();
  const clock = iso.slice(11, span < 600_000 ? 19 : 16);
  const text = span >= DAY_MS ? `${iso.slice(5, 10)} ${clock}` : clock;
  const w = measureText(text, TEXT_SCALE);
  const left = markerX + 8 + w <= plot.right ? markerX + 8 : markerX - 8 - w;
  const top = plot.top + 6;
  canvas.fillRect(left - 3, top - 3, left + w + 3, top + TEXT_HEIGHT + 3, WHITE, 0.85);
  drawText(canvas, text, left, top, ANOMALY, TEXT_SCALE);
}

/** The title on the left; a legend for the band and the anomaly, when drawn, on the right. */
function drawHeader(
  canvas: Canvas,
  title: string,
  width: number,
  hasBand: boolean,
  hasAnomaly: boolean,
): void {
  const swatch = 22;
  let right = width - MARGIN;
  const legend: { text: string; draw: (x: number, y: number) => void }[] = [];
  if (hasAnomaly) {
    legend.push({ text: 'ANOMALY', draw: (x, y) => canvas.fillRect(x, y - 1, x + swatch, y + 1, ANOMALY) });
  }
  if (hasBand) {
    legend.push({
      text: 'EXPECTED',
      draw: (x, y) => canvas.fillRect(x, y - 6, x + swatch, y + 6, VALUE, BAND_ALPHA * 1.5),
    });
  }
  const midline = MARGIN + TEXT_HEIGHT / 2;
  for (const item of legend) {
    const textLeft = right - measureText(item.text, TEXT_SCALE);
    drawText(canvas, item.text, textLeft, MARGIN, MUTED, TEXT_SCALE);
    item.draw(textLeft - 6 - swatch, midline);
    right = textLeft - 6 - swatch - 20;
  }
  drawText(canvas, fitText(title, right - MARGIN, TEXT_SCALE), MARGIN, MARGIN, TEXT, TEXT_SCALE);
}
