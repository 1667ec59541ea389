import { scratchArray } from './scratch.js';

const scratchPixels = scratchArray((n) => new Uint8Array(n), 1);
const scratchCoverage = scratchArray((n) => new Float32Array(n), 4);

/** An sRGB colour, each channel 0–255. */
export type Rgb = readonly [r: number, g: number, b: number];

/**
 * A tiny software raster: an opaque RGBA pixel buffer (row-major, 4 bytes a pixel, top-left origin) with
 * just the primitives a line chart needs. Coordinates are pixels; a pixel's centre is at (x + 0.5, y + 0.5).
 */
export class Canvas {
  readonly data: Uint8Array;

  /**
   * A canvas whose pixels and stroke coverage are this thread's scratch buffers (scratchArray), reused by the next
   * scratch canvas: for a chart drawn and encoded in one synchronous call.
   */
  static scratch(width: number, height: number, background: Rgb): Canvas {
    const canvas = new Canvas(width, height, background, scratchPixels(width * height * 4));
    canvas.sharesScratch = true;
    return canvas;
  }

  /** whether strokes use the thread's scratch coverage buffer (scratch canvases) */
  private sharesScratch = false;

  constructor(
    readonly width: number,
    readonly height: number,
    background: Rgb,
    pixels?: Uint8Array,
  ) {
    this.data = pixels ?? new Uint8Array(width * height * 4);
    // one pixel, then copies of what is filled so far (a memcpy each, doubling): a chart is about 1 MB of pixels and
    // a byte-by-byte loop was a visible share of the ingest thread
    this.data.set([background[0], background[1], background[2], 255]);
    for (let filled = 4; filled < this.data.length; filled *= 2) this.data.copyWithin(filled, 0, filled);
  }

  /** Paints `color` over pixel (x, y) with opacity `alpha` in [0, 1]; pixels off the canvas are ignored. */
  blend(x: number, y: number, color: Rgb, alpha: number): void {
    if (x < 0 || y < 0 || x >= this.width || y >= this.height || !(alpha > 0)) return;
    const a = Math.min(alpha, 1);
    const i = (y * this.width + x) * 4;
    const d = this.data;
    d[i] = Math.round((d[i] ?? 0) + (color[0] - (d[i] ?? 0)) * a);
    d[i + 1] = Math.round((d[i + 1] ?? 0) + (color[1] - (d[i + 1] ?? 0)) * a);
    d[i + 2] = Math.round((d[i + 2] ?? 0) + (color[2] - (d[i + 2] ?? 0)) * a);
  }

  /** Fills the pixels x0 ≤ x < x1, y0 ≤ y < y1 (clipped to the canvas). */
  fillRect(x0: number, y0: number, x1: number, y1: number, color: Rgb, alpha = 1): void {
    const xa = Math.max(0, Math.floor(x0));
    const xb = Math.min(this.width, Math.ceil(x1));
    const ya = Math.max(0, Math.floor(y0));
    const yb = Math.min(this.height, Math.ceil(y1));
    for (let y = ya; y < yb; y++) for (let x = xa; x < xb; x++) this.blend(x, y, color, alpha);
  }

  /**
   * Strokes the polyline through `path` with round joins and caps, `lineWidth` px wide, anti-aliased by each
   * pixel's distance to the line (one pixel of soft edge), at opacity `alpha`. Each pixel is painted once
   * with its largest coverage, so joints are not darker than the rest of a translucent line.
   */
  strokePath(
    path: readonly (readonly [x: number, y: number])[],
    lineWidth: number,
    color: Rgb,
    alpha = 1,
  ): void {
    const half = lineWidth / 2;
    const reach = half + 1;
    const coverage = this.coverage();
    const touched = { left: this.width, right: -1, top: this.height, bottom: -1 };
    path.forEach(([x1, y1], i) => {
      const [x0, y0] = path[i - 1] ?? [x1, y1];
      // A lone point is a zero-length segment (a disc); otherwise each point ends the segment from the one before.
      if (i === 0 && path.length > 1) return;
      if (![x0, y0, x1, y1].every(Number.isFinite)) return;
      const xa = Math.max(0, Math.floor(Math.min(x0, x1) - reach));
      const xb = Math.min(this.width - 1, Math.ceil(Math.max(x0, x1) + reach));
      const ya = Math.max(0, Math.floor(Math.min(y0, y1) - reach));
      const yb = Math.min(this.height - 1, Math.ceil(Math.max(y0, y1) + reach));
      touched.left = Math.min(touched.left, xa);
      touched.right = Math.max(touched.right, xb);
      touched.top = Math.min(touched.top, ya);
      touched.bottom = Math.max(touched.bottom, yb);
      const dx = x1 - x0;
      const dy = y1 - y0;
      const lengthSquared = dx * dx + dy * dy;
      for (let y = ya; y <= yb; y++) {
        const py = y + 0.5;
        for (let x = xa; x <= xb; x++) {
          const px = x + 0.5;
          // Projection of the pixel centre onto the segment, clamped to its ends (which rounds caps and joins).
          const t =
            lengthSquared === 0
              ? 0
              : Math.max(0, Math.min(1, ((px - x0) * dx + (py - y0) * dy) / lengthSquared));
          const ex = px - (x0 + t * dx);
          const ey = py - (y0 + t * dy);
          const c = Math.min(1, half + 0.5 - Math.sqrt(ex * ex + ey * ey));
          const at = y * this.width + x;
          if (c > (coverage[at] ?? 0)) coverage[at] = c;
        }
      }
    });
    for (let y = touched.top; y <= touched.bottom; y++) {
      for (let x = touched.left; x <= touched.right; x++) {
        const at = y * this.width + x;
        const c = coverage[at] ?? 0;
        if (c > 0) {
          this.blend(x, y, color, c * alpha);
          coverage[at] = 0;
        }
      }
    }
  }

  /** Fills a disc of `radius` px centred on (cx, cy), with a soft one-pixel edge. */
  fillCircle(cx: number, cy: number, radius: number, color: Rgb): void {
    this.strokePath([[cx, cy]], radius * 2, color);
  }

  /** Per-pixel scratch for strokePath, all zero between calls. */
  private coverageMap: Float32Array | undefined;
  private coverage(): Float32Array {
    this.coverageMap ??= this.sharesScratch
      ? // zero already, unless a stroke was cut short by an exception
        scratchCoverage(this.width * this.height).fill(0)
      : new Float32Array(this.width * this.height);
    return this.coverageMap;
  }
}
