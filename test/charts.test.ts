import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { inflateSync } from 'node:zlib';
import { renderSparkline, sparkline } from '../src/detection/sparkline.js';
import { anomalyChartOf } from '../src/slack/charts/anomaly-chart.js';
import { createChartRenderer } from '../src/slack/charts/chart-renderer.js';
import { formatCompactNumber, renderAnomalyChart } from '../src/slack/charts/line-chart.js';
import { encodePng } from '../src/slack/charts/png.js';

/** CRC-32 (ISO 3309, as PNG uses), table-driven, independent of the encoder's node:zlib crc32. */
const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});
function crc32(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of bytes) c = (CRC_TABLE[(c ^ b) & 0xff] ?? 0) ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

interface DecodedPng {
  width: number;
  height: number;
  rgba: Uint8Array;
  chunkTypes: string[];
}

/** Decodes the PNGs encodePng writes (8-bit RGBA, filter 0, no interlace), checking every chunk's CRC. */
function decodePng(png: Buffer): DecodedPng {
  assert.deepEqual(
    [...png.subarray(0, 8)],
    [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a],
    'PNG signature',
  );
  const chunkTypes: string[] = [];
  const idat: Buffer[] = [];
  let header: Buffer | undefined;
  let offset = 8;
  while (offset < png.length) {
    const length = png.readUInt32BE(offset);
    const type = png.toString('latin1', offset + 4, offset + 8);
    const data = png.subarray(offset + 8, offset + 8 + length);
    assert.equal(
      png.readUInt32BE(offset + 8 + length),
      crc32(png.subarray(offset + 4, offset + 8 + length)),
      `${type} CRC`,
    );
    chunkTypes.push(type);
    if (type === 'IHDR') header = data;
    if (type === 'IDAT') idat.push(data);
    offset += 12 + length;
  }
  assert.equal(offset, png.length, 'no trailing bytes');
  assert.ok(header, 'IHDR present');
  const width = header.readUInt32BE(0);
  const height = header.readUInt32BE(4);
  assert.deepEqual(
    [...header.subarray(8)],
    [8, 6, 0, 0, 0],
    'bit depth 8, RGBA, deflate, filter method 0, no interlace',
  );
  const scanlines = inflateSync(Buffer.concat(idat));
  const stride = width * 4;
  assert.equal(scanlines.length, (stride + 1) * height, 'one filter byte and one row of pixels per line');
  const rgba = new Uint8Array(stride * height);
  for (let y = 0; y < height; y++) {
    assert.equal(scanlines[y * (stride + 1)], 0, `row ${y} uses filter 0`);
    rgba.set(scanlines.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1)), y * stride);
  }
  return { width, height, rgba, chunkTypes };
}

type Pixel = { x: number; y: number };
function pixelsWhere(image: DecodedPng, match: (r: number, g: number, b: number) => boolean): Pixel[] {
  const found: Pixel[] = [];
  for (let y = 0; y < image.height; y++) {
    for (let x = 0; x < image.width; x++) {
      const i = (y * image.width + x) * 4;
      if (match(image.rgba[i] ?? 0, image.rgba[i + 1] ?? 0, image.rgba[i + 2] ?? 0)) found.push({ x, y });
    }
  }
  return found;
}
/** The value line's blue (37, 99, 235), at nearly full coverage. */
const isLine = (r: number, g: number, b: number) => r < 90 && g < 140 && b > 200;
/** The anomaly red (220, 38, 38), at nearly full coverage. */
const isRed = (r: number, g: number, b: number) => r > 190 && g < 90 && b < 90;
/** White under the band's translucent blue: (220, 230, 252) give or take a grid line or an edge. */
const isBandTint = (r: number, _g: number, b: number) => r >= 200 && r <= 235 && b >= 245 && b - r >= 15;

const T0 = Date.UTC(2025, 2, 14, 9, 0);
const MINUTE = 60_000;
function buildSeries(n: number, value: (i: number) => number): { t: number; v: number }[] {
  return Array.from({ length: n }, (_, i) => ({ t: T0 + i * MINUTE, v: value(i) }));
}
const mean = (xs: readonly number[]) => xs.reduce((s, x) => s + x, 0) / xs.length;

describe('sparkline', () => {
  test('scales between the minimum and the maximum over eight levels', () => {
    assert.equal(sparkline([0, 1, 2, 3, 4, 5, 6, 7]), '▁▂▃▄▅▆▇█');
    assert.equal(sparkline([-50, 150]), '▁█');
    assert.equal(sparkline([1000, 1001, 1000]), '▁█▁');
    assert.equal(sparkline([-1e308, 1e308, 0]), '▁█▅', 'values near ±MAX_VALUE do not overflow');
  });

  test('a flat series sits mid-height and an empty one is empty', () => {
    assert.equal(sparkline([5, 5, 5, 5]), '▄▄▄▄');
    assert.equal(sparkline([0]), '▄');
    assert.deepEqual(renderSparkline([]), { text: '', highlightAt: null });
  });

  test('non-finite values are spaces, so gaps stay visible in place', () => {
    assert.equal(sparkline([1, Number.NaN, 3, Number.POSITIVE_INFINITY, 2]), '▁ █ ▅');
    assert.equal(sparkline([Number.NaN, Number.NaN]), '  ');
    assert.equal(sparkline([Number.NaN, 4, Number.NEGATIVE_INFINITY]), ' ▄ ');
  });

  test('a longer series is averaged into at most `width` buckets, the last holding the newest point', () => {
    const ramp = Array.from({ length: 48 }, (_, i) => i);
    const text = sparkline(ramp);
    assert.equal(text.length, 24, 'default width is 24');
    assert.equal(text[0], '▁');
    assert.equal(text[23], '█');
    const levels = [...text].map((ch) => '▁▂▃▄▅▆▇█'.indexOf(ch));
    assert.ok(
      levels.every((level, i) => i === 0 || level >= (levels[i - 1] ?? 0)),
      `monotonic ramp: ${text}`,
    );

    // Pairs of 0 and 10 average to 5 in every bucket: averaging, not sampling.
    assert.equal(sparkline(Array.from({ length: 48 }, (_, i) => (i % 2) * 10)), '▄'.repeat(24));

    const newestSpike = [...Array.from({ length: 99 }, () => 0), 1000];
    assert.equal(sparkline(newestSpike, { width: 10 }), `${'▁'.repeat(9)}█`);
    assert.equal(
      sparkline(
        Array.from({ length: 100 }, (_, i) => i),
        { width: 5 },
      ),
      '▁▃▅▆█',
    );
  });

  test('a bucket averages only its finite values and is a space when it has none', () => {
    assert.equal(sparkline([0, Number.NaN, Number.NaN, Number.NaN, 10, 10], { width: 3 }), '▁ █');
  });

  test('highlightFrom leaves the text unchanged and reports where the anomalous part starts', () => {
    const values = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10];
    assert.deepEqual(renderSparkline(values, { highlightFrom: 7 }), {
      text: sparkline(values),
      highlightAt: 7,
    });
    assert.equal(renderSparkline(values).highlightAt, null);
    assert.equal(
      renderSparkline(values, { highlightFrom: 10 }).highlightAt,
      null,
      'past the end: nothing anomalous',
    );
    assert.equal(renderSparkline(values, { highlightFrom: -3 }).highlightAt, 0);

    // 48 points in 24 buckets of two: point 5 is in bucket 2 (points 4 and 5), which then counts as anomalous.
    const long = Array.from({ length: 48 }, (_, i) => i);
    assert.equal(renderSparkline(long, { highlightFrom: 5 }).highlightAt, 2);
    assert.equal(renderSparkline(long, { highlightFrom: 47 }).highlightAt, 23);
  });

  test('rejects a width that is not a positive integer', () => {
    assert.throws(() => sparkline([1, 2], { width: 0 }), RangeError);
    assert.throws(() => sparkline([1, 2], { width: 2.5 }), RangeError);
  });
});

describe('encodePng', () => {
  test('round-trips every pixel, alpha included, through chunks with valid CRCs', () => {
    const width = 7;
    const height = 5;
    const rgba = new Uint8Array(width * height * 4).map((_, i) => (i * 37 + (i >> 2) * 11) % 256);
    const image = decodePng(encodePng(width, height, rgba));
    assert.deepEqual(image.chunkTypes, ['IHDR', 'IDAT', 'IEND']);
    assert.equal(image.width, width);
    assert.equal(image.height, height);
    assert.deepEqual(image.rgba, rgba);
  });

  test('a 1×1 image ends with the standard IEND chunk', () => {
    const png = encodePng(1, 1, new Uint8Array([255, 0, 0, 128]));
    assert.deepEqual([...decodePng(png).rgba], [255, 0, 0, 128]);
    assert.deepEqual([...png.subarray(-12)], [0, 0, 0, 0, 0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82]);
  });

  test('rejects dimensions that are not positive integers and pixel buffers of the wrong size', () => {
    assert.throws(() => encodePng(0, 1, new Uint8Array(0)), /width must be an integer/);
    assert.throws(() => encodePng(2, 1.5, new Uint8Array(12)), /height must be an integer/);
    assert.throws(() => encodePng(2, 2, new Uint8Array(15)), /must be 16 bytes for 2×2 RGBA, got 15/);
  });
});

describe('formatCompactNumber', () => {
  test('keeps labels short with k/M/G/T suffixes and scientific notation at the extremes', () => {
    const cases: [number, string][] = [
      [0, '0'],
      [42, '42'],
      [12.345, '12.3'],
      [1234, '1.23k'],
      [1200, '1.2k'],
      [-1500, '-1.5k'],
      [999.7, '1k'],
      [3_400_000, '3.4M'],
      [7.25e9, '7.25G'],
      [2e12, '2T'],
      [0.002, '0.002'],
      [0.00012345, '0.000123'],
      [1.5e-7, '1.5E-7'],
      [2e18, '2E18'],
    ];
    for (const [value, expected] of cases) assert.equal(formatCompactNumber(value), expected, String(value));
  });
});

describe('renderAnomalyChart', () => {
  const rising = buildSeries(120, (i) => 100 + i);

  test('draws an 800×300 PNG whose line follows the values', () => {
    const image = decodePng(renderAnomalyChart({ title: 'p99 latency (ms)', points: rising }));
    assert.equal(image.width, 800);
    assert.equal(image.height, 300);
    const line = pixelsWhere(image, isLine);
    assert.ok(line.length > 500, `line pixels: ${line.length}`);
    const leftY = mean(line.filter((p) => p.x < 250).map((p) => p.y));
    const rightY = mean(line.filter((p) => p.x > 650).map((p) => p.y));
    assert.ok(leftY - rightY > 60, `a rising series climbs (lower y) left to right: ${leftY} → ${rightY}`);
    assert.equal(pixelsWhere(image, isRed).length, 0, 'nothing red without anomalyStart');
  });

  test('charts drawn one after another in the reused buffers are each what they would be alone', () => {
    const anomalous = {
      title: 'errors',
      points: buildSeries(90, (i) => (i > 70 ? 900 : 10 + (i % 7))),
      band: [
        { t: T0, low: 5, high: 20 },
        { t: T0 + 90 * MINUTE, low: 5, high: 20 },
      ],
      anomalyStart: T0 + 70 * MINUTE,
    };
    const first = renderAnomalyChart({ title: 'p99 latency (ms)', points: rising });
    const other = renderAnomalyChart(anomalous);
    const small = renderAnomalyChart({ title: 'small', points: rising, width: 400, height: 200 });
    // the same inputs again, after a different chart and a smaller one left their pixels and strokes behind
    assert.deepEqual(renderAnomalyChart({ title: 'p99 latency (ms)', points: rising }), first);
    assert.deepEqual(renderAnomalyChart(anomalous), other);
    assert.notDeepEqual(first, other);
    assert.deepEqual(decodePng(small).width, 400);
    assert.equal(
      pixelsWhere(decodePng(first), isRed).length,
      0,
      'nothing red from the anomalous chart before it',
    );
  });

  test('honours width and height', () => {
    const image = decodePng(renderAnomalyChart({ title: 'small', points: rising, width: 400, height: 200 }));
    assert.deepEqual([image.width, image.height], [400, 200]);
  });

  test('draws the points from anomalyStart on in red, right of the marker', () => {
    const anomalyStart = T0 + 80 * MINUTE;
    const image = decodePng(renderAnomalyChart({ title: 'errors', points: rising, anomalyStart }));
    const red = pixelsWhere(image, isRed);
    assert.ok(red.length > 300, `red pixels: ${red.length}`);
    // The series spans 119 minutes; the anomaly starts 80 minutes in, about two thirds across the plot.
    assert.ok(Math.min(...red.map((p) => p.x)) > 500, 'nothing red before the anomaly start');
    const blue = pixelsWhere(image, isLine);
    assert.ok(
      Math.max(...blue.map((p) => p.x)) < Math.min(...red.map((p) => p.x)) + 3,
      'blue before, red after',
    );

    const after = decodePng(
      renderAnomalyChart({ title: 'errors', points: rising, anomalyStart: T0 + 1000 * MINUTE }),
    );
    assert.equal(
      pixelsWhere(after, isRed).length,
      0,
      'an anomaly starting after the last point draws nothing red',
    );
  });

  test('shades the expected band', () => {
    const band = rising.map((p) => ({ t: p.t, low: p.v - 40, high: p.v + 20 }));
    const withBand = pixelsWhere(
      decodePng(renderAnomalyChart({ title: 'x', points: rising, band })),
      isBandTint,
    );
    const without = pixelsWhere(decodePng(renderAnomalyChart({ title: 'x', points: rising })), isBandTint);
    assert.ok(withBand.length > 10_000, `tinted pixels with a band: ${withBand.length}`);
    assert.ok(without.length < withBand.length / 10, `tinted pixels without: ${without.length}`);
    // The band lies below the line more than above it (low = v − 40, high = v + 20).
    const image = decodePng(renderAnomalyChart({ title: 'x', points: rising, band }));
    const lineY = mean(
      pixelsWhere(image, isLine)
        .filter((p) => p.x > 390 && p.x < 410)
        .map((p) => p.y),
    );
    const column = withBand.filter((p) => p.x === 400);
    assert.ok(column.filter((p) => p.y > lineY).length > column.filter((p) => p.y < lineY).length);
  });

  test('clips the band to the time range of the points', () => {
    const far = 600 * MINUTE;
    const band = [
      { t: T0 - far, low: -1e6, high: 1e6 },
      ...rising.map((p) => ({ t: p.t, low: p.v - 10, high: p.v + 10 })),
      { t: T0 + 119 * MINUTE + far, low: -1e6, high: 1e6 },
    ];
    const image = decodePng(renderAnomalyChart({ title: 'x', points: rising, band }));
    const line = pixelsWhere(image, isLine);
    assert.ok(
      Math.max(...line.map((p) => p.y)) - Math.min(...line.map((p) => p.y)) > 100,
      'y axis not stretched',
    );
    const tinted = pixelsWhere(image, isBandTint);
    assert.ok(tinted.length > 2000, `tinted pixels: ${tinted.length}`);
    const lineLeft = Math.min(...line.map((p) => p.x));
    const lineRight = Math.max(...line.map((p) => p.x));
    assert.ok(
      tinted.every((p) => p.x >= lineLeft - 2 && p.x <= lineRight + 2),
      'no band beyond the first and last point',
    );
  });

  test('sorts points given out of order', () => {
    const shuffled = [...rising].sort((a, b) => ((a.t * 7919) % 101) - ((b.t * 7919) % 101));
    assert.notDeepEqual(shuffled, rising);
    assert.deepEqual(
      renderAnomalyChart({ title: 'x', points: shuffled }),
      renderAnomalyChart({ title: 'x', points: rising }),
    );
  });

  test('a single point is a dot and all-equal timestamps a vertical stroke', () => {
    const single = pixelsWhere(
      decodePng(renderAnomalyChart({ title: 'one', points: [{ t: T0, v: 42 }] })),
      isLine,
    );
    assert.ok(single.length >= 9, `dot pixels: ${single.length}`);
    assert.ok(Math.max(...single.map((p) => p.x)) - Math.min(...single.map((p) => p.x)) <= 6);

    const sameTime = [1, 5, 3].map((v) => ({ t: T0, v }));
    const stroke = pixelsWhere(decodePng(renderAnomalyChart({ title: 'same', points: sameTime })), isLine);
    assert.ok(stroke.length > 50, `stroke pixels: ${stroke.length}`);
    assert.ok(Math.max(...stroke.map((p) => p.x)) - Math.min(...stroke.map((p) => p.x)) <= 4, 'one column');
  });

  test('a flat series is a horizontal line', () => {
    const line = pixelsWhere(
      decodePng(renderAnomalyChart({ title: 'flat', points: buildSeries(60, () => 5) })),
      isLine,
    );
    assert.ok(Math.max(...line.map((p) => p.x)) - Math.min(...line.map((p) => p.x)) > 600, 'spans the plot');
    assert.ok(Math.max(...line.map((p) => p.y)) - Math.min(...line.map((p) => p.y)) <= 3, 'one row');
  });

  test('non-finite values break the line instead of drawing it', () => {
    const points = buildSeries(60, (i) => (i >= 20 && i < 40 ? Number.NaN : i % 2));
    points[50] = { t: T0 + 50 * MINUTE, v: Number.POSITIVE_INFINITY };
    const line = pixelsWhere(decodePng(renderAnomalyChart({ title: 'gaps', points })), isLine);
    const columns = new Set(line.map((p) => p.x));
    // Points 20–39 of 0–59 sit between a third and two thirds of the way across the plot.
    const gap = [...Array(100).keys()].map((k) => 330 + k).filter((x) => columns.has(x));
    assert.deepEqual(gap, [], 'no line where the values are missing');
    assert.ok(line.some((p) => p.x < 250) && line.some((p) => p.x > 600), 'line on both sides of the gap');
  });

  test('says NO DATA, and draws no line, for no points, only NaN, or non-finite times', () => {
    for (const points of [[], buildSeries(10, () => Number.NaN), [{ t: Number.NaN, v: 3 }]]) {
      const image = decodePng(renderAnomalyChart({ title: 'nothing', points, anomalyStart: T0 }));
      assert.deepEqual([image.width, image.height], [800, 300]);
      assert.equal(pixelsWhere(image, isLine).length, 0);
      const message = pixelsWhere(image, (r, g, b) => r === 107 && g === 114 && b === 128).filter(
        (p) => p.x > 300 && p.x < 500 && p.y > 120 && p.y < 180,
      );
      assert.ok(message.length > 50, `grey message pixels mid-plot: ${message.length}`);
    }
  });

  test('handles extreme magnitudes', () => {
    for (const scale of [1e-300, 1e-9, 1e12, 1e300]) {
      const line = pixelsWhere(
        decodePng(
          renderAnomalyChart({ title: 'scale', points: buildSeries(50, (i) => (1 + (i % 5)) * scale) }),
        ),
        isLine,
      );
      assert.ok(
        Math.max(...line.map((p) => p.y)) - Math.min(...line.map((p) => p.y)) > 100,
        `varies at ${scale}`,
      );
    }
    const image = decodePng(
      renderAnomalyChart({
        title: 'max',
        points: [-Number.MAX_VALUE, Number.MAX_VALUE, 0].map((v, i) => ({ t: T0 + i, v })),
      }),
    );
    assert.ok(pixelsWhere(image, isLine).length > 200);
  });

  test('rejects sizes outside 320×160 to 4096×4096', () => {
    assert.throws(
      () => renderAnomalyChart({ title: 'x', points: rising, width: 100 }),
      /width must be an integer from 320/,
    );
    assert.throws(
      () => renderAnomalyChart({ title: 'x', points: rising, height: 5000 }),
      /height must be an integer/,
    );
  });

  test('renders 800×300 with a day of minutely points, a band and an anomaly in well under 50 ms', () => {
    const points = buildSeries(
      1440,
      (i) => 100 + 20 * Math.sin(i / 60) + ((i * 7919) % 13) + (i > 1300 ? 200 : 0),
    );
    const band = points.map((p) => ({ t: p.t, low: 90, high: 140 }));
    const input = { title: 'checkout p99 latency (ms)', points, band, anomalyStart: T0 + 1300 * MINUTE };
    renderAnomalyChart(input);
    const timings = Array.from({ length: 5 }, () => {
      const started = performance.now();
      renderAnomalyChart(input);
      return performance.now() - started;
    });
    assert.ok(Math.min(...timings) < 50, `fastest of 5 renders: ${Math.min(...timings).toFixed(1)} ms`);
  });
});

describe('anomaly charts on a worker thread', () => {
  const t0 = Date.UTC(2026, 10, 27, 3, 0);
  const annotations = {
    recent_points: JSON.stringify(
      Array.from({ length: 40 }, (_, i) => [t0 + i * 60_000, i < 30 ? 1 + (i % 3) * 0.1 : 9]),
    ),
    expected_low: '0.8',
    expected_high: '1.4',
    deviating_since: new Date(t0 + 30 * 60_000).toISOString(),
    series: 'http_p99_latency_seconds{service="payment-service"}',
  };

  test('draws the same PNG as the calling thread, and null when there is nothing to draw', async () => {
    const renderer = createChartRenderer();
    try {
      const here = anomalyChartOf('Latency', annotations);
      const there = await renderer.render('Latency', annotations);
      assert.ok(here && there);
      assert.equal(there.title, here.title);
      assert.equal(there.comment, here.comment);
      assert.ok(Buffer.isBuffer(there.png));
      assert.deepEqual(there.png, here.png);
      assert.equal(await renderer.render('Latency', { recent_points: '[]' }), null);
      // several at once come back to their own callers
      const many = await Promise.all(
        [3, 5, 7].map((n) =>
          renderer.render(`A${n}`, { ...annotations, series: `series_${n}` }).then((c) => c?.title),
        ),
      );
      assert.deepEqual(
        many.map((title) => title?.split(':')[0]),
        ['A3', 'A5', 'A7'],
      );
    } finally {
      await renderer.close();
    }
  });

  test('the thread stops after idleMs without charts and starts again with the next one', async () => {
    const renderer = createChartRenderer(undefined, { idleMs: 300 });
    try {
      assert.deepEqual(renderer.thread(), { running: false, starts: 0 }, 'no thread before the first chart');
      const first = await renderer.render('Latency', annotations);
      assert.deepEqual(first?.png, anomalyChartOf('Latency', annotations)?.png);
      assert.deepEqual(renderer.thread(), { running: true, starts: 1 });
      // charts closer together than idleMs keep the same thread
      await new Promise((r) => setTimeout(r, 100));
      await renderer.render('Latency', annotations);
      await new Promise((r) => setTimeout(r, 100));
      await renderer.render('Latency', annotations);
      assert.deepEqual(renderer.thread(), { running: true, starts: 1 });
      const deadline = Date.now() + 10_000;
      while (renderer.thread().running && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 50));
      }
      assert.deepEqual(renderer.thread(), { running: false, starts: 1 }, 'stopped after idleMs');
      // the next wave gets a new thread, and the same picture from it
      const again = await renderer.render('Latency', annotations);
      assert.deepEqual(again?.png, first?.png);
      assert.deepEqual(renderer.thread(), { running: true, starts: 2 });
    } finally {
      await renderer.close();
    }
  });

  test('after close it still draws, on the calling thread', async () => {
    const renderer = createChartRenderer();
    await renderer.render('Latency', annotations);
    await renderer.close();
    const chart = await renderer.render('Latency', annotations);
    assert.deepEqual(chart?.png, anomalyChartOf('Latency', annotations)?.png);
  });
});
