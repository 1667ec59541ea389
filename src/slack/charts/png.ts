import { crc32, deflateSync } from 'node:zlib';
import { scratchArray } from './scratch.js';

const SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
/** PNG caps both dimensions at 2^31 − 1 pixels. */
const MAX_DIMENSION = 0x7fffffff;

/** the scanlines of the image being encoded (deflated before encodePng returns) */
const scanlineBytes = scratchArray((n) => Buffer.alloc(n), 1);

/**
 * Encodes an image as a PNG: 8-bit RGBA, not interlaced, every row with filter 0 (none), one IDAT chunk.
 * `rgba` is row-major from the top-left, 4 bytes a pixel, so exactly width × height × 4 bytes long.
 */
export function encodePng(width: number, height: number, rgba: Uint8Array): Buffer {
  for (const [name, value] of [
    ['width', width],
    ['height', height],
  ] as const) {
    if (!Number.isInteger(value) || value < 1 || value > MAX_DIMENSION) {
      throw new RangeError(`PNG ${name} must be an integer from 1 to ${MAX_DIMENSION}, got ${value}`);
    }
  }
  const stride = width * 4;
  if (rgba.length !== stride * height) {
    throw new RangeError(
      `PNG pixels must be ${stride * height} bytes for ${width}×${height} RGBA, got ${rgba.length}`,
    );
  }

  // Each scanline is its filter-type byte (0) followed by the row's bytes; in the thread's scratch buffer (deflated
  // before this returns), so a chart leaves no megabyte of garbage behind.
  const scanlines = scanlineBytes((stride + 1) * height);
  for (let y = 0; y < height; y++) {
    scanlines[y * (stride + 1)] = 0;
    scanlines.set(rgba.subarray(y * stride, (y + 1) * stride), y * (stride + 1) + 1);
  }

  const header = Buffer.alloc(13);
  header.writeUInt32BE(width, 0);
  header.writeUInt32BE(height, 4);
  header[8] = 8; // bit depth
  header[9] = 6; // colour type: truecolour with alpha
  // Bytes 10–12 stay 0: deflate compression, adaptive filtering, no interlace.

  return Buffer.concat([
    SIGNATURE,
    encodeChunk('IHDR', header),
    // charts are mostly flat colour: the fastest level compresses them nearly as well, at a fraction of the CPU
    encodeChunk('IDAT', deflateSync(scanlines, { level: 1 })),
    encodeChunk('IEND', Buffer.alloc(0)),
  ]);
}

/** length (4 bytes) · type (4) · data · CRC-32 of type and data (4). */
function encodeChunk(type: string, data: Buffer): Buffer {
  const chunk = Buffer.alloc(12 + data.length);
  chunk.writeUInt32BE(data.length, 0);
  chunk.write(type, 4, 'latin1');
  data.copy(chunk, 8);
  chunk.writeUInt32BE(crc32(chunk.subarray(4, 8 + data.length)), 8 + data.length);
  return chunk;
}
