import { setFlagsFromString } from 'node:v8';

/**
 * Regular expressions for CEL `matches`, which runs in the worker's event loop: a pattern that can backtrack
 * exponentially over a hostile label would block the worker for minutes. `regexHazard` refuses those patterns (when a
 * runbook loads and again for patterns built at run time); `compileSafeRegex` compiles what is left, on V8's
 * linear-time engine when it can run the pattern, and `MAX_MATCH_SUBJECT` bounds the polynomial cost of the rest.
 *
 * The analyzer is deliberately conservative, and a pattern it refuses can always be rewritten. Rules, checked on every
 * group repeated more than once (`*`, `+`, `{n,m}` with m > 1):
 * - a backreference (`\1`, `\k<name>`) anywhere is refused;
 * - every alternation inside the repeated group needs branches that start with different characters (`(GET|POST)+`
 *   passes, `(a|ab)*` and `(\w|\d)+` do not);
 * - each branch of the repeated group may hold at most one variable repeat (`+`, `*`, `?`, `{n,m}` with n < m), and
 *   that repeat must be fenced: either a required character it cannot match follows it in the branch
 *   (`([a-z0-9-]+\.)+`, `(\d{1,3}\.){3}`), or every iteration starts with a character it cannot match
 *   (`(/[a-z_]+)+`). `(a+)+`, `(a*)*`, `(\w+\s?)+` and `(.*,)+` are refused.
 */

/** characters; a longer string given to `matches` is an evaluation error (default 4,096) */
export const MAX_MATCH_SUBJECT = 4_096;
/** characters; a longer pattern is refused without being analysed (default 1,024) */
export const MAX_PATTERN = 1_024;
/** compiled patterns (and refusals) kept for patterns that repeat across evaluations */
const CACHE_SIZE = 500;

/** UTF-16 code-unit ranges, inclusive, sorted and merged */
type CharSet = ReadonlyArray<readonly [number, number]>;

type Node =
  | { kind: 'chars'; set: CharSet }
  | { kind: 'assert' }
  | { kind: 'backref'; text: string }
  | { kind: 'group'; body: Alternation; zeroWidth: boolean };
type Term = { node: Node; min: number; max: number; text: string };
type Sequence = Term[];
type Alternation = Sequence[];

const DIGIT: CharSet = [[0x30, 0x39]];
const WORD: CharSet = [
  [0x30, 0x39],
  [0x41, 0x5a],
  [0x5f, 0x5f],
  [0x61, 0x7a],
];
const SPACE: CharSet = normalize(
  [0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x20, 0xa0, 0x1680, 0x2028, 0x2029, 0x202f, 0x205f, 0x3000, 0xfeff]
    .map((c) => [c, c] as [number, number])
    .concat([[0x2000, 0x200a]]),
);

function normalize(ranges: Array<[number, number]>): CharSet {
  const sorted = [...ranges].sort((a, b) => a[0] - b[0]);
  const out: Array<[number, number]> = [];
  for (const [lo, hi] of sorted) {
    const last = out[out.length - 1];
    if (last && lo <= last[1] + 1) last[1] = Math.max(last[1], hi);
    else out.push([lo, hi]);
  }
  return out;
}

function union(...sets: CharSet[]): CharSet {
  return normalize(sets.flatMap((s) => s.map(([lo, hi]) => [lo, hi] as [number, number])));
}

function complement(set: CharSet): CharSet {
  const out: Array<[number, number]> = [];
  let next = 0;
  for (const [lo, hi] of set) {
    if (lo > next) out.push([next, lo - 1]);
    next = hi + 1;
  }
  if (next <= 0xffff) out.push([next, 0xffff]);
  return out;
}

function intersects(a: CharSet, b: CharSet): boolean {
  for (const [alo, ahi] of a) for (const [blo, bhi] of b) if (alo <= bhi && blo <= ahi) return true;
  return false;
}

const single = (c: number): CharSet => [[c, c]];

class RegexParser {
  private pos = 0;
  constructor(private readonly src: string) {}

  /** only called on a pattern `new RegExp` accepted, so an unbalanced `)` cannot stop it early */
  parse(): Alternation {
    return this.alternation();
  }

  private peek(offset = 0): string | undefined {
    return this.src[this.pos + offset];
  }

  private alternation(): Alternation {
    const alternatives: Alternation = [this.sequence()];
    while (this.peek() === '|') {
      this.pos++;
      alternatives.push(this.sequence());
    }
    return alternatives;
  }

  private sequence(): Sequence {
    const terms: Sequence = [];
    while (this.pos < this.src.length && this.peek() !== '|' && this.peek() !== ')') {
      const start = this.pos;
      const node = this.atom();
      const [min, max] = this.quantifier() ?? [1, 1];
      terms.push({ node, min, max, text: this.src.slice(start, this.pos) });
    }
    return terms;
  }

  /** `*`, `+`, `?`, `{n}`, `{n,}`, `{n,m}`, each optionally lazy; a `{` that is not a quantifier is a literal */
  private quantifier(): [number, number] | null {
    const c = this.peek();
    let q: [number, number] | null = null;
    if (c === '*') q = [0, Number.POSITIVE_INFINITY];
    else if (c === '+') q = [1, Number.POSITIVE_INFINITY];
    else if (c === '?') q = [0, 1];
    if (q) this.pos++;
    else if (c === '{') {
      const m = /^\{(\d+)(,(\d*))?\}/.exec(this.src.slice(this.pos));
      if (!m) return null;
      const min = Number(m[1]);
      const max = m[2] === undefined ? min : m[3] ? Number(m[3]) : Number.POSITIVE_INFINITY;
      q = [min, max];
      this.pos += m[0].length;
    } else return null;
    if (this.peek() === '?') this.pos++;
    return q;
  }

  private atom(): Node {
    const c = this.src[this.pos++] as string;
    if (c === '^' || c === '$') return { kind: 'assert' };
    if (c === '.')
      return { kind: 'chars', set: complement(union(single(0x0a), single(0x0d), [[0x2028, 0x2029]])) };
    if (c === '[') return { kind: 'chars', set: this.charClass() };
    if (c === '\\') return this.escape(false);
    if (c === '(') {
      let zeroWidth = false;
      if (this.peek() === '?') {
        const rest = this.src.slice(this.pos + 1);
        if (rest.startsWith(':')) this.pos += 2;
        else if (rest.startsWith('=') || rest.startsWith('!')) {
          this.pos += 2;
          zeroWidth = true;
        } else if (rest.startsWith('<=') || rest.startsWith('<!')) {
          this.pos += 3;
          zeroWidth = true;
        } else if (rest.startsWith('<')) this.pos = this.src.indexOf('>', this.pos) + 1;
      }
      const body = this.alternation();
      if (this.peek() === ')') this.pos++;
      return { kind: 'group', body, zeroWidth };
    }
    return { kind: 'chars', set: single(c.charCodeAt(0)) };
  }

  /** after a backslash; inside a class `\b` is a backspace and backreferences do not exist */
  private escape(inClass: boolean): Node {
    const c = this.src[this.pos++] ?? '\\';
    const set = (s: CharSet): Node => ({ kind: 'chars', set: s });
    switch (c) {
      case 'd':
        return set(DIGIT);
      case 'D':
        return set(complement(DIGIT));
      case 'w':
        return set(WORD);
      case 'W':
        return set(complement(WORD));
      case 's':
        return set(SPACE);
      case 'S':
        return set(complement(SPACE));
      case 'b':
        return inClass ? set(single(8)) : { kind: 'assert' };
      case 'B':
        return { kind: 'assert' };
      case 'n':
        return set(single(0x0a));
      case 'r':
        return set(single(0x0d));
      case 't':
        return set(single(0x09));
      case 'v':
        return set(single(0x0b));
      case 'f':
        return set(single(0x0c));
      case 'x':
      case 'u': {
        const digits = c === 'x' ? 2 : 4;
        const hex = this.src.slice(this.pos, this.pos + digits);
        if (hex.length === digits && /^[0-9a-fA-F]+$/.test(hex)) {
          this.pos += digits;
          return set(single(Number.parseInt(hex, 16)));
        }
        return set(single(c.charCodeAt(0)));
      }
      case 'c': {
        const letter = this.peek();
        if (letter && /[A-Za-z]/.test(letter)) {
          this.pos++;
          return set(single(letter.charCodeAt(0) % 32));
        }
        return set(single(0x5c));
      }
      case 'k':
        if (!inClass && this.peek() === '<') {
          const end = this.src.indexOf('>', this.pos);
          const text = `\\k${this.src.slice(this.pos, end + 1)}`;
          this.pos = end + 1;
          return { kind: 'backref', text };
        }
        return set(single(0x6b));
      default:
        if (!inClass && /[1-9]/.test(c)) {
          const digits = /^\d*/.exec(this.src.slice(this.pos))?.[0] ?? '';
          this.pos += digits.length;
          return { kind: 'backref', text: `\\${c}${digits}` };
        }
        if (/[0-7]/.test(c)) {
          const digits = /^[0-7]{0,2}/.exec(this.src.slice(this.pos))?.[0] ?? '';
          this.pos += digits.length;
          return set(single(Number.parseInt(c + digits, 8)));
        }
        return set(single(c.charCodeAt(0)));
    }
  }

  private charClass(): CharSet {
    const negated = this.peek() === '^';
    if (negated) this.pos++;
    const parts: CharSet[] = [];
    // in JavaScript `[]` is an empty class: a `]` right after `[` closes it
    while (this.pos < this.src.length && this.peek() !== ']') {
      const lo = this.classAtom();
      if (this.peek() === '-' && this.peek(1) !== ']' && this.peek(1) !== undefined && lo.length === 1) {
        const save = this.pos;
        this.pos++;
        const hi = this.classAtom();
        const a = lo[0]?.[0];
        const b = hi[0]?.[1];
        if (hi.length === 1 && a !== undefined && b !== undefined && lo[0]?.[0] === lo[0]?.[1] && a <= b) {
          parts.push([[a, b]]);
          continue;
        }
        this.pos = save;
      }
      parts.push(lo);
    }
    this.pos++; // ']'
    const set = union(...parts);
    return negated ? complement(set) : set;
  }

  private classAtom(): CharSet {
    const c = this.src[this.pos++] as string;
    if (c !== '\\') return single(c.charCodeAt(0));
    const node = this.escape(true);
    return node.kind === 'chars' ? node.set : [];
  }
}

/** every character any part of the term can consume */
function charsOf(terms: Sequence): CharSet {
  const sets: CharSet[] = [];
  for (const t of terms) {
    if (t.node.kind === 'chars') sets.push(t.node.set);
    else if (t.node.kind === 'group' && !t.node.zeroWidth) sets.push(charsOf(t.node.body.flat()));
  }
  return union(...sets);
}

function nullableSeq(seq: Sequence): boolean {
  return seq.every((t) => t.min === 0 || nullableNode(t.node));
}

function nullableNode(node: Node): boolean {
  if (node.kind === 'chars') return false;
  if (node.kind === 'group' && !node.zeroWidth) return node.body.some(nullableSeq);
  return true;
}

/** the characters a match of the sequence can start with */
function firstOf(seq: Sequence): CharSet {
  const sets: CharSet[] = [];
  for (const t of seq) {
    if (t.node.kind === 'chars') sets.push(t.node.set);
    else if (t.node.kind === 'group' && !t.node.zeroWidth) sets.push(union(...t.node.body.map(firstOf)));
    if (t.min > 0 && !nullableNode(t.node)) break;
  }
  return union(...sets);
}

const isVariable = (t: Term) => t.min !== t.max;

/** variable repeats anywhere inside the sequence, outermost first */
function variableTerms(seq: Sequence): Term[] {
  const out: Term[] = [];
  for (const t of seq) {
    if (isVariable(t)) out.push(t);
    if (t.node.kind === 'group') for (const s of t.node.body) out.push(...variableTerms(s));
  }
  return out;
}

/** alternations anywhere inside the sequence (the groups with two branches or more) */
function alternationsIn(seq: Sequence): Term[] {
  const out: Term[] = [];
  for (const t of seq) {
    if (t.node.kind !== 'group') continue;
    if (t.node.body.length > 1) out.push(t);
    for (const s of t.node.body) out.push(...alternationsIn(s));
  }
  return out;
}

/** Why the body of a group repeated more than once can backtrack catastrophically, or null. */
function repeatedGroupHazard(repeated: Term, body: Alternation): string | null {
  const alternations = [{ text: repeated.text, branches: body }].concat(
    body.flatMap(alternationsIn).map((t) => ({
      text: t.text,
      branches: t.node.kind === 'group' ? t.node.body : [],
    })),
  );
  for (const { text, branches } of alternations) {
    if (branches.length < 2) continue;
    const firsts = branches.map(firstOf);
    const which =
      text === repeated.text ? 'alternatives that' : `an alternation (\`${text}\`) whose alternatives`;
    for (let i = 0; i < firsts.length; i++)
      for (let j = i + 1; j < firsts.length; j++)
        if (intersects(firsts[i] as CharSet, firsts[j] as CharSet))
          return `\`${repeated.text}\` repeats ${which} can start with the same character`;
  }
  const iterationStarts = union(...body.map(firstOf));
  const startsNonEmpty = !body.some(nullableSeq);
  for (const branch of body) {
    const variables = variableTerms(branch);
    if (variables.length === 0) continue;
    const [inner, second] = variables as [Term, Term | undefined];
    const nested = `\`${repeated.text}\` repeats a group that itself repeats \`${inner.text}\``;
    if (second) return `${nested} and \`${second.text}\` (nested quantifiers)`;
    const innerChars = charsOf([inner]);
    const at = branch.findIndex((t) => t === inner || variableTerms([t]).includes(inner));
    const fencedAfter = branch
      .slice(at + 1)
      .some((t) => t.min >= 1 && t.node.kind === 'chars' && !intersects(t.node.set, innerChars));
    const fencedByNext = startsNonEmpty && !intersects(iterationStarts, innerChars);
    if (!fencedAfter && !fencedByNext) return `${nested} (nested quantifiers)`;
  }
  return null;
}

function hazardIn(alt: Alternation): string | null {
  for (const seq of alt) {
    for (const t of seq) {
      if (t.node.kind === 'backref') return `it uses a backreference (\`${t.node.text}\`)`;
      if (t.node.kind !== 'group') continue;
      if (t.max > 1) {
        const hazard = repeatedGroupHazard(t, t.node.body);
        if (hazard) return hazard;
      }
      const inner = hazardIn(t.node.body);
      if (inner) return inner;
    }
  }
  return null;
}

/**
 * Why the pattern must not run in-process, or null when it may: invalid syntax, over `MAX_PATTERN` characters, a
 * backreference, or a repeated group that can backtrack exponentially (rules at the top of this file).
 */
export function regexHazard(pattern: string): string | null {
  if (pattern.length > MAX_PATTERN)
    return `it is ${pattern.length} characters long; the limit is ${MAX_PATTERN}`;
  try {
    new RegExp(pattern);
  } catch (err) {
    return `it is not a valid regular expression (${(err as Error).message})`;
  }
  const hazard = hazardIn(new RegexParser(pattern).parse());
  return hazard ? `${hazard}, which can backtrack exponentially on a near-miss` : null;
}

/** the message that names the pattern and why it is refused */
export function unsafeRegexMessage(pattern: string, reason: string): string {
  const shown = pattern.length > 120 ? `${pattern.slice(0, 120)}…` : pattern;
  return `matches: refusing the regular expression '${shown}': ${reason}`;
}

/**
 * V8's experimental linear-time engine (the `l` flag) runs most patterns in time linear in the subject, which also
 * bounds the polynomial cases the analyzer lets through (`.*error.*timeout.*`). The V8 flag only makes the `l` flag
 * available; it changes no other regular expression. Patterns the engine cannot run (lookarounds, large counted
 * repeats) fall back to the backtracking engine, guarded by the analyzer and `MAX_MATCH_SUBJECT`.
 */
const LINEAR_FLAG = 'l';
function linearEngineAvailable(): boolean {
  try {
    setFlagsFromString('--enable-experimental-regexp-engine');
    new RegExp('', LINEAR_FLAG);
    return true;
  } catch {
    return false;
  }
}
const LINEAR = linearEngineAvailable();

const cache = new Map<string, RegExp | { refused: string }>();

/** The pattern compiled (linear-time engine when possible), or the reason it is refused; both cached. */
export function compileSafeRegex(pattern: string): RegExp | { refused: string } {
  const hit = cache.get(pattern);
  if (hit) {
    cache.delete(pattern);
    cache.set(pattern, hit);
    return hit;
  }
  const reason = regexHazard(pattern);
  // a refused pattern over the length limit (a label used as a pattern) is not kept: the cache holds short keys only
  if (pattern.length > MAX_PATTERN) return { refused: unsafeRegexMessage(pattern, reason ?? 'too long') };
  let compiled: RegExp | { refused: string };
  if (reason) compiled = { refused: unsafeRegexMessage(pattern, reason) };
  else {
    try {
      compiled = new RegExp(pattern, LINEAR ? LINEAR_FLAG : '');
    } catch {
      compiled = new RegExp(pattern);
    }
  }
  cache.set(pattern, compiled);
  if (cache.size > CACHE_SIZE) cache.delete(cache.keys().next().value as string);
  return compiled;
}
