import { PromQLError } from './errors.js';

/** The label that carries a series' metric name, as in Prometheus. */
export const METRIC_NAME = '__name__';

/** A label set; `__name__` holds the metric name where there is one. Never mutated once built. */
export type Labels = Readonly<Record<string, string>>;

export type MatchType = '=' | '!=' | '=~' | '!~';

const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/** Whether `name` is a label name Prometheus accepts (the legacy charset; UTF-8 names are not supported here). */
export function isValidLabelName(name: string): boolean {
  return LABEL_NAME.test(name);
}

/**
 * A Go RE2 pattern as JavaScript runs it, anchored at both ends like Prometheus (`^(?s:re)$`). Throws PromQLError
 * for patterns JavaScript cannot run or RE2 would refuse (lookaround), so a query that would fail on a real
 * Prometheus fails here too.
 */
export function compileAnchoredRegex(source: string): RegExp {
  let body = source;
  let flags = 's';
  // RE2 allows flag groups anywhere; JavaScript (Node 20) only as flags, so the common leading `(?i)` is mapped.
  const leading = /^\(\?([imsU]+)\)/.exec(body);
  if (leading?.[1]) {
    if (leading[1].includes('U'))
      throw new PromQLError('bad_data', `unsupported regex flag U in "${source}"`);
    if (leading[1].includes('i')) flags += 'i';
    if (leading[1].includes('m')) flags += 'm';
    body = body.slice(leading[0].length);
  }
  if (/\(\?<?[=!]/.test(body)) {
    throw new PromQLError(
      'bad_data',
      `invalid regular expression "${source}": lookaround is not supported (Prometheus uses RE2)`,
    );
  }
  body = body.replaceAll('(?P<', '(?<').replaceAll('\\z', '$').replaceAll('\\A', '^');
  try {
    return new RegExp(`^(?:${body})$`, flags);
  } catch (err) {
    throw new PromQLError('bad_data', `invalid regular expression "${source}": ${(err as Error).message}`);
  }
}

/** One label matcher of a selector (`job="api"`, `path=~"/v1/.*"`); a missing label matches as "". */
export class LabelMatcher {
  readonly #regex: RegExp | null;

  constructor(
    readonly name: string,
    readonly type: MatchType,
    readonly value: string,
  ) {
    this.#regex = type === '=~' || type === '!~' ? compileAnchoredRegex(value) : null;
  }

  matches(labelValue: string): boolean {
    switch (this.type) {
      case '=':
        return labelValue === this.value;
      case '!=':
        return labelValue !== this.value;
      case '=~':
        return (this.#regex as RegExp).test(labelValue);
      case '!~':
        return !(this.#regex as RegExp).test(labelValue);
    }
  }

  /** Whether every series matches, e.g. `x=~".*"`; a selector needs at least one matcher that is not like that. */
  matchesEmpty(): boolean {
    return this.matches('');
  }

  toString(): string {
    return `${this.name}${this.type}${JSON.stringify(this.value)}`;
  }
}

/** The label set in canonical order (by name); the order Prometheus prints and compares them in. */
export function sortedEntries(labels: Labels): [string, string][] {
  return Object.entries(labels).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}

/**
 * A string identifying the label set; equal sets give equal keys, and ordering keys as strings orders the sets as
 * Prometheus' labels.Compare does (for values without control characters).
 */
export function labelsKey(labels: Labels): string {
  let key = '';
  for (const [name, value] of sortedEntries(labels)) key += `${name}\u0000${value}\u0001`;
  return key;
}

/** Prometheus' `labels.Compare`: label by label in name order, name first, then value; shorter sets first on a tie. */
export function compareLabels(a: Labels, b: Labels): number {
  const x = sortedEntries(a);
  const y = sortedEntries(b);
  const n = Math.min(x.length, y.length);
  for (let i = 0; i < n; i++) {
    const [an, av] = x[i] as [string, string];
    const [bn, bv] = y[i] as [string, string];
    if (an !== bn) return an < bn ? -1 : 1;
    if (av !== bv) return av < bv ? -1 : 1;
  }
  return x.length - y.length;
}

export function dropMetricName(labels: Labels): Labels {
  if (!(METRIC_NAME in labels)) return labels;
  const { [METRIC_NAME]: _dropped, ...rest } = labels;
  return rest;
}

/** Only the named labels (those present). */
export function keepLabels(labels: Labels, names: readonly string[]): Labels {
  const out: Record<string, string> = {};
  for (const name of names) {
    const value = labels[name];
    if (value !== undefined && value !== '') out[name] = value;
  }
  return out;
}

/** All labels but the named ones and `__name__`. */
export function withoutLabels(labels: Labels, names: readonly string[]): Labels {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(labels)) {
    if (name !== METRIC_NAME && !names.includes(name)) out[name] = value;
  }
  return out;
}

/** `{a="1", b="2"}` with the metric name in front, as Prometheus prints a series in error messages. */
export function formatLabels(labels: Labels): string {
  const name = labels[METRIC_NAME] ?? '';
  const rest = sortedEntries(labels)
    .filter(([k]) => k !== METRIC_NAME)
    .map(([k, v]) => `${k}=${JSON.stringify(v)}`)
    .join(', ');
  return `${name}{${rest}}`;
}
