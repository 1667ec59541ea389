import type { Canvas, Rgb } from './canvas.js';

/** Pixels; every glyph is a 5×7 cell, drawn one pixel apart. */
export const GLYPH_WIDTH = 5;
export const GLYPH_HEIGHT = 7;
const ADVANCE = GLYPH_WIDTH + 1;

/**
 * The glyph for each character of GLYPH_CHARS, in order: seven base-32 digits, one a row from top to bottom,
 * whose five bits are the row's pixels from left to right (16 = leftmost). Lowercase letters are drawn as
 * uppercase; any other character is drawn as `?`.
 */
const GLYPH_CHARS = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ.-:% /()_,=+<>?';
const GLYPH_ROWS =
  'ehjlphe 4c4444e eh1248v v2421he 26aiv22 vgu11he 68guhhe v124888 ehhehhe ehhf12c ' +
  'ehhvhhh uhhuhhu ehggghe sihhhis vgguggv vgguggg ehgnhhf hhhvhhh e44444e 72222ic hikokih ggggggv hrllhhh ' +
  'hhpljhh ehhhhhe uhhuggg ehhhlid uhhukih fgge11u v444444 hhhhhhe hhhhha4 hhhllla hha4ahh hhha444 v1248gv ' +
  '00000cc 000v000 0cc0cc0 op248j3 0000000 01248g0 2488842 8422248 000000v 0000c48 00v0v00 044v440 248g842 ' +
  '8421248 eh12404';

const GLYPHS = new Map<string, number[]>();
{
  const rows = GLYPH_ROWS.split(' ');
  [...GLYPH_CHARS].forEach((ch, i) => {
    GLYPHS.set(
      ch,
      [...(rows[i] ?? '')].map((digit) => Number.parseInt(digit, 32)),
    );
  });
}
const FALLBACK = GLYPHS.get('?') ?? [];

/** Width in pixels of `text` drawn at `scale` (each font pixel becomes scale × scale pixels). */
export function measureText(text: string, scale = 1): number {
  const chars = [...text].length;
  return chars === 0 ? 0 : (chars * ADVANCE - 1) * scale;
}

/** Draws `text` with its top-left corner at (x, y); the text is GLYPH_HEIGHT × scale pixels tall. */
export function drawText(canvas: Canvas, text: string, x: number, y: number, color: Rgb, scale = 1): void {
  let left = Math.round(x);
  const top = Math.round(y);
  for (const ch of text) {
    const rows = GLYPHS.get(ch.toUpperCase()) ?? FALLBACK;
    rows.forEach((bits, row) => {
      for (let col = 0; col < GLYPH_WIDTH; col++) {
        if (bits & (1 << (GLYPH_WIDTH - 1 - col))) {
          canvas.fillRect(
            left + col * scale,
            top + row * scale,
            left + (col + 1) * scale,
            top + (row + 1) * scale,
            color,
          );
        }
      }
    });
    left += ADVANCE * scale;
  }
}

/** Cuts `text` so that it fits in `maxWidth` pixels at `scale`, ending it with `...` when cut. */
export function fitText(text: string, maxWidth: number, scale = 1): string {
  if (measureText(text, scale) <= maxWidth) return text;
  const chars = [...text];
  while (chars.length > 0 && measureText(`${chars.join('')}...`, scale) > maxWidth) chars.pop();
  return chars.length === 0 ? '' : `${chars.join('')}...`;
}
