/**
 * The part of Prometheus' alert templating (Go text/template plus Prometheus' functions) that rule files commonly
 * use: `{{ $labels.x }}`, `{{ $value }}`, `{{ .Labels.x }}`, `{{ printf "%.1f" $value }}`, `{{ $value | humanize }}`,
 * `{{ index $labels "x" }}`, `{{- trim -}}` markers and comments. Control structures (if/range/with/define) are
 * refused when the rule file loads, naming the action, rather than rendered differently from Prometheus.
 */
import { formatGoFloat } from './format.js';
import type { Labels } from './labels.js';

/** What a template sees: the alert's labels (without `__name__`) and the sample's value. */
export interface TemplateData {
  labels: Labels;
  value: number;
  externalUrl?: string;
}

/** A template that does not parse, or uses what the sandbox does not render. */
export class TemplateError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TemplateError';
  }
}

/** Go values as templates carry them: the kind decides how printf prints them. */
type TValue =
  | { kind: 'float'; v: number }
  | { kind: 'int'; v: number }
  | { kind: 'string'; v: string }
  | { kind: 'map'; v: Labels };

type Operand =
  | { type: 'literal'; value: TValue }
  | { type: 'field'; root: '$labels' | '$value' | '$externalLabels' | '$externalURL' | '.'; path: string[] };

interface Command {
  func: string | null;
  args: Operand[];
}

type Node = { type: 'text'; text: string } | { type: 'action'; pipeline: Command[] };

const FUNCTIONS = new Set([
  'printf',
  'print',
  'humanize',
  'humanizePercentage',
  'humanizeDuration',
  'toUpper',
  'toLower',
  'title',
  'index',
  'len',
]);
const CONTROL_WORDS = new Set([
  'if',
  'else',
  'end',
  'range',
  'with',
  'define',
  'template',
  'block',
  'break',
  'continue',
]);

/** A parsed alert template; parse once when the rule file loads, render on every evaluation. */
export class AlertTemplate {
  readonly #nodes: Node[];

  private constructor(nodes: Node[]) {
    this.#nodes = nodes;
  }

  /** Throws TemplateError naming the problem. */
  static parse(text: string): AlertTemplate {
    return new AlertTemplate(parseTemplate(text));
  }

  /** Throws TemplateError for a runtime problem (e.g. humanize of a word); Prometheus shows such errors in the text. */
  render(data: TemplateData): string {
    let out = '';
    for (const node of this.#nodes) {
      if (node.type === 'text') out += node.text;
      else out += printValue(runPipeline(node.pipeline, data));
    }
    return out;
  }
}

function parseTemplate(text: string): Node[] {
  const nodes: Node[] = [];
  let i = 0;
  let trimNextText = false;
  while (i < text.length) {
    const open = text.indexOf('{{', i);
    let chunk = open < 0 ? text.slice(i) : text.slice(i, open);
    if (trimNextText) chunk = chunk.replace(/^\s+/, '');
    trimNextText = false;
    if (open < 0) {
      if (chunk) nodes.push({ type: 'text', text: chunk });
      break;
    }
    const close = text.indexOf('}}', open + 2);
    if (close < 0) throw new TemplateError(`unclosed action at offset ${open}`);
    let inner = text.slice(open + 2, close);
    if (/^-\s/.test(inner)) {
      chunk = chunk.replace(/\s+$/, '');
      inner = inner.slice(1);
    }
    if (/\s-$/.test(inner)) {
      trimNextText = true;
      inner = inner.slice(0, -1);
    }
    if (chunk) nodes.push({ type: 'text', text: chunk });
    const action = inner.trim();
    i = close + 2;
    if (action.startsWith('/*')) {
      if (!action.endsWith('*/')) throw new TemplateError(`unclosed comment at offset ${open}`);
      continue;
    }
    nodes.push({ type: 'action', pipeline: parsePipeline(action) });
  }
  return nodes;
}

/** Splits an action into words, keeping quoted strings whole. */
function splitWords(action: string): string[] {
  const words: string[] = [];
  let i = 0;
  while (i < action.length) {
    const c = action[i] as string;
    if (/\s/.test(c)) {
      i++;
      continue;
    }
    if (c === '"' || c === '`') {
      let j = i + 1;
      while (j < action.length && action[j] !== c) j += action[j] === '\\' && c === '"' ? 2 : 1;
      if (j >= action.length) throw new TemplateError(`unterminated string in {{ ${action} }}`);
      words.push(action.slice(i, j + 1));
      i = j + 1;
      continue;
    }
    if (c === '|' || c === '(' || c === ')') {
      words.push(c);
      i++;
      continue;
    }
    let j = i;
    while (j < action.length && !/[\s|()"`]/.test(action[j] as string)) j++;
    words.push(action.slice(i, j));
    i = j;
  }
  return words;
}

function parsePipeline(action: string): Command[] {
  if (action === '') throw new TemplateError('missing value for command in {{ }}');
  const words = splitWords(action);
  const first = words[0] ?? '';
  if (CONTROL_WORDS.has(first)) {
    throw new TemplateError(`{{ ${first} }} is not supported by the sandbox's alert templates`);
  }
  if (words.includes(':=') || words.includes('=')) {
    throw new TemplateError(
      `variable assignment in {{ ${action} }} is not supported by the sandbox's alert templates`,
    );
  }
  if (words.includes('(') || words.includes(')')) {
    throw new TemplateError(
      `parentheses in {{ ${action} }} are not supported by the sandbox's alert templates`,
    );
  }
  const commands: Command[] = [];
  let current: string[] = [];
  const flush = () => {
    if (current.length === 0) throw new TemplateError(`missing command in pipeline {{ ${action} }}`);
    commands.push(parseCommand(current, action));
    current = [];
  };
  for (const w of words) {
    if (w === '|') flush();
    else current.push(w);
  }
  flush();
  commands.slice(1).forEach((c) => {
    if (c.func === null) throw new TemplateError(`non-function in pipeline {{ ${action} }}`);
  });
  return commands;
}

function parseCommand(words: string[], action: string): Command {
  const [head, ...rest] = words as [string, ...string[]];
  if (/^[a-zA-Z_]\w*$/.test(head)) {
    if (!FUNCTIONS.has(head)) {
      throw new TemplateError(`function "${head}" is not supported by the sandbox's alert templates`);
    }
    return { func: head, args: rest.map((w) => parseOperand(w, action)) };
  }
  if (rest.length > 0) throw new TemplateError(`can't give argument to non-function in {{ ${action} }}`);
  return { func: null, args: [parseOperand(head, action)] };
}

function parseOperand(word: string, action: string): Operand {
  if (word.startsWith('"')) {
    try {
      return { type: 'literal', value: { kind: 'string', v: JSON.parse(word) as string } };
    } catch {
      throw new TemplateError(`bad string ${word} in {{ ${action} }}`);
    }
  }
  if (word.startsWith('`')) return { type: 'literal', value: { kind: 'string', v: word.slice(1, -1) } };
  if (/^[+-]?\d+$/.test(word)) return { type: 'literal', value: { kind: 'int', v: Number(word) } };
  if (/^[+-]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][+-]?\d+)?$/.test(word)) {
    return { type: 'literal', value: { kind: 'float', v: Number(word) } };
  }
  const dollar = /^\$(labels|value|externalLabels|externalURL)((?:\.\w+)*)$/.exec(word);
  if (dollar) {
    const root = `$${dollar[1]}` as '$labels' | '$value' | '$externalLabels' | '$externalURL';
    return { type: 'field', root, path: (dollar[2] ?? '').split('.').filter(Boolean) };
  }
  const dot = /^\.((?:\w+)(?:\.\w+)*)?$/.exec(word);
  if (dot) {
    const path = (dot[1] ?? '').split('.').filter(Boolean);
    const [field, ...restPath] = path;
    if (field === undefined) return { type: 'field', root: '.', path: [] };
    if (field === 'Labels') return { type: 'field', root: '$labels', path: restPath };
    if (field === 'Value' && restPath.length === 0) return { type: 'field', root: '$value', path: [] };
    if (field === 'ExternalLabels') return { type: 'field', root: '$externalLabels', path: restPath };
    if (field === 'ExternalURL' && restPath.length === 0)
      return { type: 'field', root: '$externalURL', path: [] };
    throw new TemplateError(`can't evaluate field ${field} in {{ ${action} }}`);
  }
  throw new TemplateError(`undefined variable or unexpected "${word}" in {{ ${action} }}`);
}

function resolve(op: Operand, data: TemplateData): TValue {
  if (op.type === 'literal') return op.value;
  let value: TValue;
  switch (op.root) {
    case '$labels':
      value = { kind: 'map', v: data.labels };
      break;
    case '$externalLabels':
      value = { kind: 'map', v: {} };
      break;
    case '$value':
      value = { kind: 'float', v: data.value };
      break;
    case '$externalURL':
      value = { kind: 'string', v: data.externalUrl ?? '' };
      break;
    case '.':
      value = { kind: 'map', v: data.labels };
      break;
  }
  for (const key of op.path) {
    if (value.kind !== 'map') throw new TemplateError(`can't evaluate field ${key} of a ${value.kind}`);
    // Prometheus runs templates with missingkey=zero: a missing label is "".
    value = { kind: 'string', v: value.v[key] ?? '' };
  }
  return value;
}

function runPipeline(pipeline: Command[], data: TemplateData): TValue {
  let previous: TValue | undefined;
  for (const command of pipeline) {
    const args = command.args.map((a) => resolve(a, data));
    if (previous !== undefined) args.push(previous);
    if (command.func === null) {
      previous = args[0] as TValue;
      continue;
    }
    previous = callFunction(command.func, args);
  }
  return previous as TValue;
}

function toFloat(value: TValue | undefined, func: string): number {
  if (value === undefined) throw new TemplateError(`wrong number of args for ${func}`);
  if (value.kind === 'float' || value.kind === 'int') return value.v;
  if (value.kind === 'string') {
    const n = Number(value.v);
    if (value.v.trim() !== '' && !Number.isNaN(n)) return n;
    throw new TemplateError(
      `${func}: strconv.ParseFloat: parsing ${JSON.stringify(value.v)}: invalid syntax`,
    );
  }
  throw new TemplateError(`${func}: can't convert a map to a number`);
}

function str(v: string): TValue {
  return { kind: 'string', v };
}

function callFunction(name: string, args: TValue[]): TValue {
  switch (name) {
    case 'printf': {
      const [format, ...rest] = args;
      if (format?.kind !== 'string') throw new TemplateError('printf needs a format string first');
      return str(sprintf(format.v, rest));
    }
    case 'print':
      // Go's fmt.Sprint: a space between operands when neither is a string.
      return str(
        args
          .map((a, i) => {
            const prev = args[i - 1];
            const space = i > 0 && a.kind !== 'string' && prev?.kind !== 'string' ? ' ' : '';
            return space + printValue(a);
          })
          .join(''),
      );
    case 'humanize':
      return str(humanize(toFloat(args[0], name)));
    case 'humanizePercentage':
      return str(`${formatGoFloat(toFloat(args[0], name) * 100, 'g', 4)}%`);
    case 'humanizeDuration':
      return str(humanizeDuration(toFloat(args[0], name)));
    case 'toUpper':
      return str(printValue(args[0] ?? str('')).toUpperCase());
    case 'toLower':
      return str(printValue(args[0] ?? str('')).toLowerCase());
    case 'title':
      return str(
        printValue(args[0] ?? str('')).replace(
          /(^|[^\p{L}\p{N}_'])(\p{L})/gu,
          (_m, a, b) => a + b.toUpperCase(),
        ),
      );
    case 'index': {
      const [map, key] = args;
      if (map?.kind !== 'map' || key?.kind !== 'string')
        throw new TemplateError('index needs a map and a key');
      return str(map.v[key.v] ?? '');
    }
    case 'len': {
      const [v] = args;
      if (v?.kind === 'map') return { kind: 'int', v: Object.keys(v.v).length };
      if (v?.kind === 'string') return { kind: 'int', v: Buffer.byteLength(v.v) };
      throw new TemplateError('len of a number');
    }
    default:
      throw new TemplateError(`function "${name}" is not supported`);
  }
}

/** How `{{ x }}` prints a value (Go's %v). */
function printValue(value: TValue): string {
  switch (value.kind) {
    case 'string':
      return value.v;
    case 'int':
      return String(value.v);
    case 'float':
      return formatGoFloat(value.v, 'v');
    case 'map':
      return `map[${Object.keys(value.v)
        .sort()
        .map((k) => `${k}:${value.v[k]}`)
        .join(' ')}]`;
  }
}

function goTypeName(value: TValue): string {
  return value.kind === 'float'
    ? 'float64'
    : value.kind === 'int'
      ? 'int'
      : value.kind === 'string'
        ? 'string'
        : 'map[string]string';
}

/** Go's fmt.Sprintf for the verbs templates use: %v %s %q %d %f %e %g (with flags, width and precision) and %%. */
function sprintf(format: string, args: readonly TValue[]): string {
  let out = '';
  let argIndex = 0;
  const spec = /%([-+ 0#]*)(\d*)(?:\.(\d*))?([a-zA-Z%])/y;
  let i = 0;
  while (i < format.length) {
    const c = format[i] as string;
    if (c !== '%') {
      out += c;
      i++;
      continue;
    }
    spec.lastIndex = i;
    const m = spec.exec(format);
    if (!m) {
      out += '%!(NOVERB)';
      break;
    }
    i = spec.lastIndex;
    const [, flags = '', widthText = '', precisionText, verb = 'v'] = m;
    if (verb === '%') {
      out += '%';
      continue;
    }
    const arg = args[argIndex++];
    if (arg === undefined) {
      out += `%!${verb}(MISSING)`;
      continue;
    }
    const precision = precisionText === undefined ? undefined : Number(precisionText || '0');
    let text = formatVerb(verb, arg, precision);
    if (flags.includes('+') && (arg.kind === 'float' || arg.kind === 'int') && !text.startsWith('-')) {
      text = text.startsWith('+') ? text : `+${text}`;
    } else if (flags.includes(' ') && (arg.kind === 'float' || arg.kind === 'int') && !/^[-+]/.test(text)) {
      text = ` ${text}`;
    }
    const width = widthText ? Number(widthText) : 0;
    if (text.length < width) {
      if (flags.includes('-')) text = text.padEnd(width, ' ');
      else if (flags.includes('0') && (arg.kind === 'float' || arg.kind === 'int')) {
        const sign = /^[-+ ]/.test(text) ? (text[0] as string) : '';
        text = sign + text.slice(sign.length).padStart(width - sign.length, '0');
      } else text = text.padStart(width, ' ');
    }
    out += text;
  }
  if (argIndex < args.length) {
    out += `%!(EXTRA ${args
      .slice(argIndex)
      .map((a) => `${goTypeName(a)}=${printValue(a)}`)
      .join(', ')})`;
  }
  return out;
}

function formatVerb(verb: string, arg: TValue, precision: number | undefined): string {
  const bad = () => `%!${verb}(${goTypeName(arg)}=${printValue(arg)})`;
  switch (verb) {
    case 'v':
      return printValue(arg);
    case 's':
      return arg.kind === 'string' ? (precision === undefined ? arg.v : arg.v.slice(0, precision)) : bad();
    case 'q':
      return arg.kind === 'string' ? JSON.stringify(arg.v) : bad();
    case 'd':
      return arg.kind === 'int' ? String(arg.v) : bad();
    case 'f':
    case 'F':
    case 'e':
    case 'E':
    case 'g':
    case 'G': {
      if (arg.kind !== 'float') return bad();
      const lower = verb.toLowerCase() as 'f' | 'e' | 'g';
      const text = formatGoFloat(arg.v, lower, precision);
      return verb === lower ? text : text.toUpperCase();
    }
    default:
      return bad();
  }
}

const BIG_PREFIXES = ['k', 'M', 'G', 'T', 'P', 'E', 'Z', 'Y'];
const SMALL_PREFIXES = ['m', 'u', 'n', 'p', 'f', 'a', 'z', 'y'];

/** Prometheus' humanize: 4 significant digits and an SI prefix ("1.235k", "12.5m"). */
function humanize(value: number): string {
  let v = value;
  if (v === 0 || !Number.isFinite(v)) return formatGoFloat(v, 'g', 4);
  let prefix = '';
  if (Math.abs(v) >= 1) {
    for (const p of BIG_PREFIXES) {
      if (Math.abs(v) < 1000) break;
      prefix = p;
      v /= 1000;
    }
  } else {
    for (const p of SMALL_PREFIXES) {
      if (Math.abs(v) >= 1) break;
      prefix = p;
      v *= 1000;
    }
  }
  return `${formatGoFloat(v, 'g', 4)}${prefix}`;
}

/** Prometheus' humanizeDuration of seconds: "1d 2h 3m 4s", "1.5s", "250ms". */
function humanizeDuration(value: number): string {
  let v = value;
  if (!Number.isFinite(v)) return formatGoFloat(v, 'g', 4);
  if (v === 0) return `${formatGoFloat(v, 'g', 4)}s`;
  if (Math.abs(v) >= 1) {
    const sign = v < 0 ? '-' : '';
    v = Math.abs(v);
    const total = Math.trunc(v);
    const seconds = total % 60;
    const minutes = Math.trunc(total / 60) % 60;
    const hours = Math.trunc(total / 3600) % 24;
    const days = Math.trunc(total / 86_400);
    if (days !== 0) return `${sign}${days}d ${hours}h ${minutes}m ${seconds}s`;
    if (hours !== 0) return `${sign}${hours}h ${minutes}m ${seconds}s`;
    if (minutes !== 0) return `${sign}${minutes}m ${seconds}s`;
    return `${sign}${formatGoFloat(v, 'g', 4)}s`;
  }
  let prefix = '';
  for (const p of SMALL_PREFIXES) {
    if (Math.abs(v) >= 1) break;
    prefix = p;
    v *= 1000;
  }
  return `${formatGoFloat(v, 'g', 4)}${prefix}s`;
}
