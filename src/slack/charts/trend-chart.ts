import { drawText, fitText, GLYPH_HEIGHT, measureText } from './bitmap-font.js';
import { Canvas, type Rgb } from './canvas.js';
import { formatCompactNumber } from './line-chart.js';
import { encodePng } from './png.js';

export interface TrendChartInput {
  title: string;
  /** oldest first; one bar per day */
  days: readonly { day: string /* YYYY-MM-DD */; incidents: number; mttrMinutes: number | null }[];
}

/** The chart's colours, exported so tests can find the bars and the line among the pixels. */
export const TREND_COLOURS = {
  background: [255, 255, 255],
  text: [17, 24, 39],
  muted: [107, 114, 128],
  grid: [229, 231, 235],
  bars: [147, 197, 253],
  line: [234, 88, 12],
} as const satisfies Record<string, Rgb>;

/** pixels */
export const TREND_CHART_SIZE = { width: 800, height: 300 } as const;

/** Every label is drawn with font pixels this many screen pixels square, as in line-chart.ts. */
const TEXT_SCALE = 2;
const TEXT_HEIGHT = GLYPH_HEIGHT * TEXT_SCALE;
const MARGIN = 16;
const LINE_WIDTH = 2;
/** share of a day's slot the bar fills */
const BAR_FILL = 0.7;
/** px; the widest a bar gets, so a one-day chart is not one slab */
const MAX_BAR_WIDTH = 48;

/**
 * Renders the SLI trend as a PNG: a bar of incidents opened per day against the left axis, and a line of the
 * day's MTTR in minutes against the right axis, labelled in the line's colour (a day with no resolution breaks the line; a lone day is a dot).
 * Both axes start at zero on round steps; dates (MM-DD, UTC) label the bars as far as they fit. Tolerates no
 * days, one day, and non-finite or negative values (drawn as nothing / zero).
 */
export function renderTrendChart(input: TrendChartInput): Buffer {
  const { width, height } = TREND_CHART_SIZE;
  const canvas = Canvas.scratch(width, height, TREND_COLOURS.background);
  const days = input.days.map((d) => ({
    day: d.day,
    incidents: Number.isFinite(d.incidents) ? Math.max(0, d.incidents) : 0,
    mttr: d.mttrMinutes !== null && Number.isFinite(d.mttrMinutes) ? Math.max(0, d.mttrMinutes) : Number.NaN,
  }));

  const countTicks = chooseTicks(Math.max(0, ...days.map((d) => d.incidents)), true);
  const mttrValues = days.map((d) => d.mttr).filter((v) => !Number.isNaN(v));
  const mttrTicks = chooseTicks(Math.max(0, ...mttrValues), false);
  const countLabels = countTicks.map(formatCompactNumber);
  const mttrLabels = mttrValues.length > 0 ? mttrTicks.map(formatCompactNumber) : mttrTicks.map(() => '');

  const leftLabelWidth = Math.max(...countLabels.map((l) => measureText(l, TEXT_SCALE)));
  const rightLabelWidth = Math.max(0, ...mttrLabels.map((l) => measureText(l, TEXT_SCALE)));
  const plot = {
    left: MARGIN + leftLabelWidth + 10,
    right: width - MARGIN - rightLabelWidth - 10,
    top: MARGIN + TEXT_HEIGHT + 22,
    bottom: height - MARGIN - TEXT_HEIGHT - 14,
  };
  const plotWidth = plot.right - plot.left;
  const plotHeight = plot.bottom - plot.top;
  const countTop = countTicks[countTicks.length - 1] ?? 1;
  const mttrTop = mttrTicks[mttrTicks.length - 1] ?? 1;
  const countY = (v: number) => plot.bottom - (v / countTop) * plotHeight;
  const mttrY = (v: number) => plot.bottom - (v / mttrTop) * plotHeight;

  // Both axes have the same number of ticks, so one set of grid lines serves both.
  countTicks.forEach((tick, i) => {
    const y = Math.round(countY(tick));
    canvas.fillRect(plot.left, y, plot.right, y + 1, TREND_COLOURS.grid);
    const left = countLabels[i] ?? '';
    drawText(
      canvas,
      left,
      plot.left - 10 - measureText(left, TEXT_SCALE),
      y - TEXT_HEIGHT / 2,
      TREND_COLOURS.muted,
      TEXT_SCALE,
    );
    drawText(
      canvas,
      mttrLabels[i] ?? '',
      plot.right + 10,
      y - TEXT_HEIGHT / 2,
      TREND_COLOURS.line,
      TEXT_SCALE,
    );
  });

  const slot = days.length > 0 ? plotWidth / days.length : plotWidth;
  const centre = (i: number) => plot.left + slot * (i + 0.5);
  const barWidth = Math.max(1, Math.min(MAX_BAR_WIDTH, slot * BAR_FILL));
  days.forEach((d, i) => {
    if (d.incidents <= 0) return;
    const x = centre(i);
    canvas.fillRect(x - barWidth / 2, countY(d.incidents), x + barWidth / 2, plot.bottom, TREND_COLOURS.bars);
  });

  drawMttrLine(
    canvas,
    days.map((d, i) => (Number.isNaN(d.mttr) ? null : ([centre(i), mttrY(d.mttr)] as const))),
  );

  if (days.length === 0 || (days.every((d) => d.incidents === 0) && mttrValues.length === 0)) {
    const message = 'NO INCIDENTS';
    const x = plot.left + (plotWidth - measureText(message, TEXT_SCALE)) / 2;
    drawText(canvas, message, x, plot.top + (plotHeight - TEXT_HEIGHT) / 2, TREND_COLOURS.muted, TEXT_SCALE);
  }
  drawDayLabels(
    canvas,
    plot.bottom + 14,
    days.map((d, i) => ({ x: centre(i), label: d.day.slice(5) })),
  );
  drawHeader(canvas, input.title, width);
  return encodePng(width, height, canvas.data);
}

/**
 * Zero and four round steps (1, 2, 2.5, 3 or 5 × 10^n; whole numbers only for counts) reaching `max`.
 * Always five values, so the two axes share grid lines.
 */
function chooseTicks(max: number, whole: boolean): number[] {
  const top = max > 0 && Number.isFinite(max) ? max : 1;
  const rawStep = top / 4;
  const exponent = Math.floor(Math.log10(rawStep));
  for (const mantissa of [1, 2, 2.5, 3, 5, 10]) {
    const step = mantissa * 10 ** exponent;
    if (step < rawStep * (1 - 1e-9) || (whole && !Number.isInteger(step))) continue;
    return [0, 1, 2, 3, 4].map((i) => i * step);
  }
  // Only whole-number counts below 4 reach here (a step under 1): one per tick.
  return [0, 1, 2, 3, 4];
}

/** Joins consecutive days that have an MTTR; a day alone between gaps is a dot. */
function drawMttrLine(canvas: Canvas, points: readonly (readonly [number, number] | null)[]): void {
  let run: (readonly [number, number])[] = [];
  const flush = () => {
    const only = run[0];
    if (run.length === 1 && only) canvas.fillCircle(only[0], only[1], 3.5, TREND_COLOURS.line);
    else if (run.length > 1) {
      canvas.strokePath(run, LINE_WIDTH, TREND_COLOURS.line);
      for (const [x, y] of run) canvas.fillCircle(x, y, 2.5, TREND_COLOURS.line);
    }
    run = [];
  };
  for (const point of points) {
    if (point === null) flush();
    else run.push(point);
  }
  flush();
}

/** MM-DD under the bars, every n-th day so labels never touch; `UTC` is implied by the day names. */
function drawDayLabels(canvas: Canvas, y: number, labels: readonly { x: number; label: string }[]): void {
  const first = labels[0];
  const second = labels[1];
  if (!first) return;
  const labelWidth = Math.max(...labels.map((l) => measureText(l.label, TEXT_SCALE)));
  const slot = second ? second.x - first.x : Number.POSITIVE_INFINITY;
  const every = Math.max(1, Math.ceil((labelWidth + 16) / slot));
  labels.forEach((l, i) => {
    if (i % every !== 0) return;
    const w = measureText(l.label, TEXT_SCALE);
    const left = Math.max(4, Math.min(canvas.width - 4 - w, l.x - w / 2));
    drawText(canvas, l.label, left, y, TREND_COLOURS.muted, TEXT_SCALE);
  });
}

/** The title on the left, the legend (bars: incidents, line: MTTR in minutes) on the right. */
function drawHeader(canvas: Canvas, title: string, width: number): void {
  const swatch = 22;
  const midline = MARGIN + TEXT_HEIGHT / 2;
  let right = width - MARGIN;
  const legend = [
    {
      text: 'MTTR (MIN)',
      draw: (x: number) => canvas.fillRect(x, midline - 1, x + swatch, midline + 1, TREND_COLOURS.line),
    },
    {
      text: 'INCIDENTS',
      draw: (x: number) => canvas.fillRect(x, midline - 6, x + swatch, midline + 6, TREND_COLOURS.bars),
    },
  ];
  for (const item of legend) {
    const textLeft = right - measureText(item.text, TEXT_SCALE);
    drawText(canvas, item.text, textLeft, MARGIN, TREND_COLOURS.muted, TEXT_SCALE);
    item.draw(textLeft - 6 - swatch);
    right = textLeft - 6 - swatch - 20;
  }
  drawText(
    canvas,
    fitText(title, right - MARGIN, TEXT_SCALE),
    MARGIN,
    MARGIN,
    TREND_COLOURS.text,
    TEXT_SCALE,
  );
}
