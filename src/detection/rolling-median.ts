/**
 * Median of the last `size` values: a ring buffer plus a sorted copy kept by insertion (O(size) per point with
 * small constant; size is 16 in the detector, a few memmoves of doubles).
 */
export class RollingMedian {
  private readonly ring: Float64Array;
  private readonly sorted: Float64Array;
  private filled = 0;
  private next = 0;

  constructor(readonly size: number) {
    this.ring = new Float64Array(size);
    this.sorted = new Float64Array(size);
  }

  get length(): number {
    return this.filled;
  }

  /** the median of the window; NaN while empty */
  median(): number {
    const n = this.filled;
    if (n === 0) return Number.NaN;
    const mid = n >> 1;
    return n & 1
      ? (this.sorted[mid] as number)
      : ((this.sorted[mid - 1] as number) + (this.sorted[mid] as number)) / 2;
  }

  push(value: number): void {
    const sorted = this.sorted;
    if (this.filled === this.size) {
      const old = this.ring[this.next] as number;
      let j = 0;
      while (sorted[j] !== old) j++;
      sorted.copyWithin(j, j + 1, this.filled);
      this.filled--;
    }
    let j = this.filled;
    while (j > 0 && (sorted[j - 1] as number) > value) {
      sorted[j] = sorted[j - 1] as number;
      j--;
    }
    sorted[j] = value;
    this.filled++;
    this.ring[this.next] = value;
    this.next = (this.next + 1) % this.size;
  }

  /** the window, oldest first */
  values(): number[] {
    const out: number[] = [];
    const start = this.filled === this.size ? this.next : 0;
    for (let i = 0; i < this.filled; i++) out.push(this.ring[(start + i) % this.size] as number);
    return out;
  }

  static of(size: number, values: readonly number[]): RollingMedian {
    const window = new RollingMedian(size);
    for (const v of values.slice(-size)) window.push(v);
    return window;
  }
}
