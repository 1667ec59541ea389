import {
  closeSync,
  createReadStream,
  createWriteStream,
  mkdirSync,
  openSync,
  readdirSync,
  renameSync,
  rmSync,
  statSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';

/** The error a write past the cap throws: what a full disk answers. */
export function enospc(): NodeJS.ErrnoException {
  return Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC', errno: -28 });
}

export function isEnospc(err: unknown): boolean {
  return err instanceof Error && (err as NodeJS.ErrnoException).code === 'ENOSPC';
}

/** What `rotate()` did. */
export interface RotateResult {
  /** bytes in the directory before and after; the gzipped files count */
  bytesBefore: number;
  bytesAfter: number;
  /** names of the files compressed (now `<name>.gz`) */
  compressed: string[];
}

/**
 * A service's log volume: a real directory whose size is capped, standing in for a small disk mounted at
 * /var/log/<service>. Writes go to `<service>.log`; one that would take the directory past the cap fails with
 * ENOSPC, as on a full filesystem. `rotate()` closes the current file and gzips every closed one.
 */
export class LogVolume {
  private fd: number;
  private used: number;
  /** set when a write failed for want of space; cleared once space is freed */
  private noSpace = false;
  private rotations = 0;
  private rotating: Promise<RotateResult> | null = null;
  private closed = false;

  /**
   * Empties `dir` (the sandbox owns it: a volume left full by an earlier run would start unhealthy) and opens the
   * current file. `capBytes` is the volume's size.
   */
  constructor(
    readonly dir: string,
    readonly fileName: string,
    readonly capBytes: number,
  ) {
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    this.fd = openSync(this.currentPath(), 'a');
    this.used = this.measure();
  }

  private currentPath(): string {
    return join(this.dir, this.fileName);
  }

  /** bytes of every file in the directory, read from the disk */
  measure(): number {
    let total = 0;
    for (const name of readdirSync(this.dir)) {
      try {
        total += statSync(join(this.dir, name)).size;
      } catch {
        // a file gzip just removed
      }
    }
    this.used = total;
    return total;
  }

  usedBytes(): number {
    return this.used;
  }

  availBytes(): number {
    return Math.max(0, this.capBytes - this.used);
  }

  /** true from the first write refused for want of space until space is freed */
  isFull(): boolean {
    return this.noSpace;
  }

  /** Appends `text` whole or not at all; throws ENOSPC when it does not fit under the cap. */
  append(text: string): void {
    if (this.closed) return;
    const bytes = Buffer.byteLength(text);
    if (this.used + bytes > this.capBytes) {
      this.noSpace = true;
      throw enospc();
    }
    writeSync(this.fd, text);
    this.used += bytes;
  }

  /** Closes the current file, starts a new one and gzips every closed file (real zlib, off the event loop). */
  rotate(): Promise<RotateResult> {
    // one rotation at a time: a second request while one runs gets the same answer
    this.rotating ??= this.rotateNow().finally(() => {
      this.rotating = null;
    });
    return this.rotating;
  }

  private async rotateNow(): Promise<RotateResult> {
    if (this.closed) throw new Error(`log volume ${this.dir} is closed`);
    const bytesBefore = this.measure();
    closeSync(this.fd);
    this.rotations += 1;
    const stamp = new Date().toISOString().replace(/[:.]/g, '-');
    renameSync(this.currentPath(), join(this.dir, `${this.fileName}.${stamp}-${this.rotations}`));
    this.fd = openSync(this.currentPath(), 'a');
    const closed = readdirSync(this.dir).filter((n) => n !== this.fileName && !n.endsWith('.gz'));
    for (const name of closed) {
      const source = join(this.dir, name);
      await pipeline(createReadStream(source), createGzip(), createWriteStream(`${source}.gz`));
      unlinkSync(source);
    }
    const bytesAfter = this.measure();
    if (bytesAfter < this.capBytes) this.noSpace = false;
    return { bytesBefore, bytesAfter, compressed: closed };
  }

  /** Waits for a running rotation, then closes the current file. */
  async close(): Promise<void> {
    await this.rotating?.catch(() => undefined);
    if (this.closed) return;
    this.closed = true;
    closeSync(this.fd);
  }
}
