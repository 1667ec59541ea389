import { PromQLError, positionOf } from './errors.js';

export type TokenKind = 'ident' | 'number' | 'duration' | 'string' | 'op' | 'eof';

export interface Token {
  kind: TokenKind;
  /** the source text (for strings, with the quotes) */
  text: string;
  /** character offset in the query */
  pos: number;
  /** number: its value; duration: milliseconds */
  value?: number;
  /** string: the unquoted, unescaped value */
  str?: string;
}

const UNIT_MS: Record<string, number> = {
  ms: 1,
  s: 1_000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 604_800_000,
  y: 31_536_000_000,
};

/** Units in the only order Prometheus accepts them ("1h30m", never "30m1h"). */
const DURATION = /^(?:(\d+)y)?(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?(?:(\d+)ms)?$/;

/** A Prometheus duration ("5m", "1m30s", "1w", "250ms") → milliseconds; null when it is not one. */
export function parseDurationMs(text: string): number | null {
  if (text === '' || text === '0') return text === '0' ? 0 : null;
  const m = DURATION.exec(text);
  if (!m) return null;
  const units = ['y', 'w', 'd', 'h', 'm', 's', 'ms'];
  let ms = 0;
  for (let i = 0; i < units.length; i++) {
    const n = m[i + 1];
    if (n !== undefined) ms += Number(n) * (UNIT_MS[units[i] as string] as number);
  }
  return ms;
}

const NUMBER = /^(?:0[xX][0-9a-fA-F]+|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)/;
const DURATION_TOKEN = /^(?:\d+(?:ms|[smhdwy]))+/;
const IDENT_START = /[a-zA-Z_:]/;
const IDENT_REST = /[a-zA-Z0-9_:]/;
const ALNUM = /[a-zA-Z0-9_]/;

/** Operators, longest first so `==` wins over `=`. */
const OPERATORS = [
  '==',
  '!=',
  '>=',
  '<=',
  '=~',
  '!~',
  '=',
  '>',
  '<',
  '+',
  '-',
  '*',
  '/',
  '%',
  '^',
  '(',
  ')',
  '{',
  '}',
  '[',
  ']',
  ',',
  '@',
];

const ESCAPES: Record<string, string> = {
  a: '\x07',
  b: '\b',
  f: '\f',
  n: '\n',
  r: '\r',
  t: '\t',
  v: '\v',
  '\\': '\\',
  '"': '"',
  "'": "'",
};

/** Splits a PromQL query into tokens; `#` comments and whitespace are skipped. Throws PromQLError with a position. */
export function tokenize(input: string): Token[] {
  const tokens: Token[] = [];
  const fail = (pos: number, message: string): never => {
    throw new PromQLError('bad_data', `${positionOf(input, pos)}: ${message}`);
  };
  let bracketDepth = 0;
  let i = 0;
  while (i < input.length) {
    const c = input[i] as string;
    if (c === ' ' || c === '\t' || c === '\n' || c === '\r') {
      i++;
      continue;
    }
    if (c === '#') {
      while (i < input.length && input[i] !== '\n') i++;
      continue;
    }
    const rest = input.slice(i);
    if (/^[0-9]/.test(c) || (c === '.' && /^[0-9]/.test(input[i + 1] ?? ''))) {
      const num = NUMBER.exec(rest)?.[0] ?? '';
      if (num && !ALNUM.test(input[i + num.length] ?? '')) {
        tokens.push({ kind: 'number', text: num, pos: i, value: Number(num) });
        i += num.length;
        continue;
      }
      const dur = DURATION_TOKEN.exec(rest)?.[0] ?? '';
      if (dur && !ALNUM.test(input[i + dur.length] ?? '')) {
        const ms = parseDurationMs(dur);
        if (ms === null)
          fail(i, `bad duration ${JSON.stringify(dur)}: units must go from largest to smallest`);
        tokens.push({ kind: 'duration', text: dur, pos: i, value: ms as number });
        i += dur.length;
        continue;
      }
      let end = i;
      while (end < input.length && /[a-zA-Z0-9_.]/.test(input[end] as string)) end++;
      fail(i, `bad number or duration syntax: ${JSON.stringify(input.slice(i, end))}`);
    }
    if (c === '"' || c === "'" || c === '`') {
      const { value, end } = readString(input, i, fail);
      tokens.push({ kind: 'string', text: input.slice(i, end), pos: i, str: value });
      i = end;
      continue;
    }
    if (c === ':' && bracketDepth > 0) {
      tokens.push({ kind: 'op', text: ':', pos: i });
      i++;
      continue;
    }
    if (IDENT_START.test(c)) {
      let end = i + 1;
      while (end < input.length && IDENT_REST.test(input[end] as string)) end++;
      tokens.push({ kind: 'ident', text: input.slice(i, end), pos: i });
      i = end;
      continue;
    }
    const op = OPERATORS.find((o) => rest.startsWith(o));
    if (!op) {
      if (c === '!') fail(i, "unexpected character after '!'");
      fail(i, `unexpected character ${JSON.stringify(c)}`);
    }
    if (op === '[') bracketDepth++;
    if (op === ']') bracketDepth = Math.max(0, bracketDepth - 1);
    tokens.push({ kind: 'op', text: op as string, pos: i });
    i += (op as string).length;
  }
  tokens.push({ kind: 'eof', text: '', pos: input.length });
  return tokens;
}

/** A quoted string with Go's escapes ("..." and '...'), or a raw `...` one; returns its value and end offset. */
function readString(
  input: string,
  start: number,
  fail: (pos: number, message: string) => never,
): { value: string; end: number } {
  const quote = input[start] as string;
  let value = '';
  let i = start + 1;
  while (i < input.length) {
    const c = input[i] as string;
    if (c === quote) return { value, end: i + 1 };
    if (quote !== '`' && c === '\n') break;
    if (c === '\\' && quote !== '`') {
      const e = input[i + 1] ?? '';
      if (e in ESCAPES && (e === quote || (e !== '"' && e !== "'"))) {
        value += ESCAPES[e];
        i += 2;
        continue;
      }
      const hex = e === 'x' ? 2 : e === 'u' ? 4 : e === 'U' ? 8 : 0;
      if (hex > 0) {
        const digits = input.slice(i + 2, i + 2 + hex);
        if (!new RegExp(`^[0-9a-fA-F]{${hex}}$`).test(digits)) fail(i, 'invalid escape sequence in string');
        value += String.fromCodePoint(Number.parseInt(digits, 16));
        i += 2 + hex;
        continue;
      }
      if (/^[0-7]{3}$/.test(input.slice(i + 1, i + 4))) {
        value += String.fromCharCode(Number.parseInt(input.slice(i + 1, i + 4), 8));
        i += 4;
        continue;
      }
      fail(i, `unknown escape sequence ${JSON.stringify(`\\${e}`)} in string`);
    }
    value += c;
    i++;
  }
  return fail(start, 'unterminated quoted string');
}
