import type { Point, SeriesStore } from '../tsdb.js';
import {
  type AggregateExpr,
  type BinaryExpr,
  type BinaryOp,
  type Call,
  type Expr,
  TYPE_NAMES,
  typeOf,
  unwrapParens,
  type VectorMatching,
} from './ast.js';
import { PromQLError } from './errors.js';
import { formatSampleValue } from './format.js';
import {
  type Bucket,
  bucketQuantile,
  changes,
  derivative,
  expandReplacement,
  extrapolatedRate,
  extreme,
  goPow,
  instantValue,
  kahanMean,
  kahanSum,
  kahanSumInc,
  parseBucketBound,
  quantile,
  resets,
  variance,
} from './functions.js';
import {
  compareLabels,
  compileAnchoredRegex,
  dropMetricName,
  formatLabels,
  isValidLabelName,
  keepLabels,
  type Labels,
  labelsKey,
  METRIC_NAME,
  withoutLabels,
} from './labels.js';
import { parseQuery } from './parser.js';

/** One element of an instant vector. */
export interface InstantSample {
  labels: Labels;
  value: number;
  /** the raw sample's own time, kept only straight from a selector (for timestamp()); unix milliseconds */
  t?: number;
}

/** One series of a range vector or of a query_range answer. */
export interface RangeSeries {
  labels: Labels;
  points: Point[];
}

/** What an expression evaluates to at one instant. */
export type QueryValue =
  | { type: 'scalar'; value: number }
  | { type: 'string'; value: string }
  | { type: 'vector'; samples: InstantSample[] }
  | { type: 'matrix'; series: RangeSeries[] };

/** Prometheus refuses range queries of more than this many steps. */
export const MAX_RANGE_POINTS = 11_000;

/** Parses and evaluates `query` at `atMs` (unix milliseconds). Throws PromQLError. */
export function instantQuery(store: SeriesStore, query: string, atMs: number): QueryValue {
  return evaluateInstant(parseQuery(query), store, atMs);
}

/** Evaluates a parsed expression at `atMs` (unix milliseconds). Throws PromQLError (`execution`). */
export function evaluateInstant(expr: Expr, store: SeriesStore, atMs: number): QueryValue {
  return new Evaluator(store, atMs).eval(expr);
}

/**
 * query_range: the expression evaluated at start, start+step, … ≤ end (unix milliseconds), each series' points
 * collected; a scalar expression becomes one series without labels. Series come ordered by labels.
 */
export function rangeQuery(
  store: SeriesStore,
  query: string,
  startMs: number,
  endMs: number,
  stepMs: number,
): RangeSeries[] {
  const expr = parseQuery(query);
  const type = typeOf(expr);
  if (type !== 'scalar' && type !== 'vector') {
    throw new PromQLError(
      'bad_data',
      `invalid expression type "${TYPE_NAMES[type]}" for range query, must be Scalar or instant Vector`,
    );
  }
  if (!(stepMs > 0)) {
    throw new PromQLError('bad_data', 'zero or negative query resolution step widths are not accepted');
  }
  if ((endMs - startMs) / stepMs > MAX_RANGE_POINTS) {
    throw new PromQLError(
      'bad_data',
      'exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)',
    );
  }
  const series = new Map<string, RangeSeries>();
  const add = (labels: Labels, t: number, v: number) => {
    const key = labelsKey(labels);
    let s = series.get(key);
    if (!s) {
      s = { labels, points: [] };
      series.set(key, s);
    }
    s.points.push({ t, v });
  };
  for (let t = startMs; t <= endMs; t += stepMs) {
    const value = evaluateInstant(expr, store, t);
    if (value.type === 'scalar') add({}, t, value.value);
    else if (value.type === 'vector') for (const s of value.samples) add(s.labels, t, s.value);
  }
  return sortSeries([...series.values()]);
}

function sortSeries(series: RangeSeries[]): RangeSeries[] {
  return series.sort((a, b) => compareLabels(a.labels, b.labels));
}

const COMPARISONS = new Set<BinaryOp>(['==', '!=', '>', '<', '>=', '<=']);
/** Arithmetic drops the metric name (the result is no longer that metric); filtering comparisons keep it. */
const DROPS_NAME = new Set<BinaryOp>(['+', '-', '*', '/', '%', '^', 'atan2']);

function arithmetic(op: BinaryOp, l: number, r: number): number {
  switch (op) {
    case '+':
      return l + r;
    case '-':
      return l - r;
    case '*':
      return l * r;
    case '/':
      return l / r;
    case '%':
      return l % r;
    case '^':
      return goPow(l, r);
    case 'atan2':
      return Math.atan2(l, r);
    default:
      throw new Error(`not an arithmetic operator: ${op}`);
  }
}

function compare(op: BinaryOp, l: number, r: number): boolean {
  switch (op) {
    case '==':
      return l === r;
    case '!=':
      return l !== r;
    case '>':
      return l > r;
    case '<':
      return l < r;
    case '>=':
      return l >= r;
    case '<=':
      return l <= r;
    default:
      throw new Error(`not a comparison operator: ${op}`);
  }
}

/** Prometheus' vectorElemBinop: the value, and whether a filtering comparison keeps the element. */
function elementBinop(op: BinaryOp, l: number, r: number): { value: number; keep: boolean } {
  if (COMPARISONS.has(op)) return { value: l, keep: compare(op, l, r) };
  return { value: arithmetic(op, l, r), keep: true };
}

function assertUniqueLabelsets(samples: readonly InstantSample[]): void {
  const seen = new Set<string>();
  for (const s of samples) {
    const key = labelsKey(s.labels);
    if (seen.has(key))
      throw new PromQLError('execution', 'vector cannot contain metrics with the same labelset');
    seen.add(key);
  }
}

class Evaluator {
  constructor(
    readonly store: SeriesStore,
    readonly atMs: number,
  ) {}

  eval(expr: Expr): QueryValue {
    switch (expr.type) {
      case 'number':
        return { type: 'scalar', value: expr.value };
      case 'string':
        return { type: 'string', value: expr.value };
      case 'paren':
        return this.eval(expr.expr);
      case 'vectorSelector': {
        const samples = this.store
          .selectInstant(expr.matchers, this.atMs - expr.offsetMs)
          .map((s) => ({ labels: s.labels, value: s.v, t: s.t }));
        return { type: 'vector', samples };
      }
      case 'matrixSelector': {
        const end = this.atMs - expr.selector.offsetMs;
        return {
          type: 'matrix',
          series: this.store.selectRange(expr.selector.matchers, end - expr.rangeMs, end),
        };
      }
      case 'unary': {
        const inner = this.eval(expr.expr);
        if (expr.op === '+') return inner;
        if (inner.type === 'scalar') return { type: 'scalar', value: -inner.value };
        const samples = this.#vectorOf(inner).map((s) => ({
          labels: dropMetricName(s.labels),
          value: -s.value,
        }));
        assertUniqueLabelsets(samples);
        return { type: 'vector', samples };
      }
      case 'binary':
        return this.#binary(expr);
      case 'call':
        return this.#call(expr);
      case 'aggregate':
        return { type: 'vector', samples: this.#aggregate(expr) };
    }
  }

  #vectorOf(value: QueryValue): InstantSample[] {
    if (value.type !== 'vector') throw new Error(`expected an instant vector, got ${value.type}`);
    return value.samples;
  }

  #vector(expr: Expr): InstantSample[] {
    return this.#vectorOf(this.eval(expr));
  }

  #scalar(expr: Expr): number {
    const value = this.eval(expr);
    if (value.type !== 'scalar') throw new Error(`expected a scalar, got ${value.type}`);
    return value.value;
  }

  #string(expr: Expr): string {
    const value = this.eval(expr);
    if (value.type !== 'string') throw new Error(`expected a string, got ${value.type}`);
    return value.value;
  }

  #binary(e: BinaryExpr): QueryValue {
    const lhs = this.eval(e.lhs);
    const rhs = this.eval(e.rhs);
    if (lhs.type === 'scalar' && rhs.type === 'scalar') {
      if (COMPARISONS.has(e.op))
        return { type: 'scalar', value: compare(e.op, lhs.value, rhs.value) ? 1 : 0 };
      return { type: 'scalar', value: arithmetic(e.op, lhs.value, rhs.value) };
    }
    let samples: InstantSample[];
    if (lhs.type === 'vector' && rhs.type === 'vector') {
      const matching = e.matching as VectorMatching;
      if (e.op === 'and' || e.op === 'or' || e.op === 'unless') {
        samples = setOperation(e.op, lhs.samples, rhs.samples, matching);
      } else {
        samples = vectorBinop(e.op, lhs.samples, rhs.samples, matching, e.returnBool);
      }
    } else if (lhs.type === 'vector' && rhs.type === 'scalar') {
      samples = vectorScalarBinop(e.op, lhs.samples, rhs.value, false, e.returnBool);
    } else if (lhs.type === 'scalar' && rhs.type === 'vector') {
      samples = vectorScalarBinop(e.op, rhs.samples, lhs.value, true, e.returnBool);
    } else {
      throw new Error(`binary operands of type ${lhs.type} and ${rhs.type}`);
    }
    assertUniqueLabelsets(samples);
    return { type: 'vector', samples };
  }

  #call(e: Call): QueryValue {
    const name = e.func.name;
    if (e.func.argTypes[0] === 'matrix') return { type: 'vector', samples: this.#rangeFunction(e) };
    switch (name) {
      case 'time':
        return { type: 'scalar', value: this.atMs / 1000 };
      case 'vector':
        return { type: 'vector', samples: [{ labels: {}, value: this.#scalar(e.args[0] as Expr) }] };
      case 'scalar': {
        const samples = this.#vector(e.args[0] as Expr);
        return {
          type: 'scalar',
          value: samples.length === 1 ? (samples[0] as InstantSample).value : Number.NaN,
        };
      }
    }
    const samples = this.#vectorFunction(e);
    assertUniqueLabelsets(samples);
    return { type: 'vector', samples };
  }

  #rangeFunction(e: Call): InstantSample[] {
    const arg = unwrapParens(e.args[0] as Expr);
    if (arg.type !== 'matrixSelector') throw new Error(`${e.func.name}() needs a range selector`);
    const end = this.atMs - arg.selector.offsetMs;
    const start = end - arg.rangeMs;
    const keepName = e.func.name === 'last_over_time';
    const out: InstantSample[] = [];
    for (const series of this.store.selectRange(arg.selector.matchers, start, end)) {
      const value = rangeFunctionValue(e.func.name, series.points, start, end);
      if (value === null) continue;
      out.push({ labels: keepName ? series.labels : dropMetricName(series.labels), value });
    }
    assertUniqueLabelsets(out);
    return out;
  }

  #vectorFunction(e: Call): InstantSample[] {
    const name = e.func.name;
    const [first, ...rest] = e.args as [Expr, ...Expr[]];
    const mapValues = (samples: InstantSample[], f: (v: number) => number): InstantSample[] =>
      samples.map((s) => ({ labels: dropMetricName(s.labels), value: f(s.value) }));
    switch (name) {
      case 'histogram_quantile':
        return histogramQuantile(this.#scalar(first), this.#vector(rest[0] as Expr));
      case 'timestamp': {
        // Straight from a selector, the sample's own time; otherwise the evaluation time.
        const fromSelector = unwrapParens(first).type === 'vectorSelector';
        return this.#vector(first).map((s) => ({
          labels: dropMetricName(s.labels),
          value: (fromSelector && s.t !== undefined ? s.t : this.atMs) / 1000,
        }));
      }
      case 'absent':
        return this.#vector(first).length > 0 ? [] : [{ labels: absentLabels(first), value: 1 }];
      case 'label_replace':
        return this.#labelReplace(e);
      case 'sort':
      case 'sort_desc': {
        const desc = name === 'sort_desc';
        // NaN goes last either way.
        return [...this.#vector(first)].sort((a, b) => {
          if (Number.isNaN(a.value)) return Number.isNaN(b.value) ? 0 : 1;
          if (Number.isNaN(b.value)) return -1;
          return desc ? b.value - a.value : a.value - b.value;
        });
      }
      case 'clamp':
      case 'clamp_min':
      case 'clamp_max': {
        const samples = this.#vector(first);
        const min = name === 'clamp_max' ? Number.NEGATIVE_INFINITY : this.#scalar(rest[0] as Expr);
        const max =
          name === 'clamp'
            ? this.#scalar(rest[1] as Expr)
            : name === 'clamp_max'
              ? this.#scalar(rest[0] as Expr)
              : Number.POSITIVE_INFINITY;
        if (max < min) return [];
        return mapValues(samples, (v) => Math.max(min, Math.min(max, v)));
      }
      case 'round': {
        const samples = this.#vector(first);
        const toNearest = rest[0] ? this.#scalar(rest[0]) : 1;
        const inverse = 1 / toNearest;
        return mapValues(samples, (v) => Math.floor(v * inverse + 0.5) / inverse);
      }
    }
    const f = MATH_FUNCTIONS[name];
    if (!f) throw new PromQLError('bad_data', `function "${name}" is not supported by the sandbox`);
    return mapValues(this.#vector(first), f);
  }

  #labelReplace(e: Call): InstantSample[] {
    const [vectorArg, dstArg, replArg, srcArg, regexArg] = e.args as [Expr, Expr, Expr, Expr, Expr];
    const dst = this.#string(dstArg);
    const replacement = this.#string(replArg);
    const src = this.#string(srcArg);
    const regexText = this.#string(regexArg);
    let regex: RegExp;
    try {
      regex = compileAnchoredRegex(regexText);
    } catch {
      throw new PromQLError('execution', `invalid regular expression in label_replace(): ${regexText}`);
    }
    if (!isValidLabelName(dst)) {
      throw new PromQLError('execution', `invalid destination label name in label_replace(): ${dst}`);
    }
    return this.#vector(vectorArg).map((s) => {
      const match = regex.exec(s.labels[src] ?? '');
      if (!match) return s;
      const value = expandReplacement(replacement, match);
      const labels: Record<string, string> = { ...s.labels };
      if (value === '') delete labels[dst];
      else labels[dst] = value;
      return { labels, value: s.value };
    });
  }

  #aggregate(e: AggregateExpr): InstantSample[] {
    const input = this.#vector(e.expr);
    const groupLabels = (labels: Labels): Labels =>
      e.without ? withoutLabels(labels, e.grouping) : keepLabels(labels, e.grouping);

    if (e.op === 'count_values') {
      const label = this.#string(e.param as Expr);
      if (!isValidLabelName(label)) throw new PromQLError('execution', `invalid label name "${label}"`);
      const counts = new Map<string, InstantSample>();
      for (const s of input) {
        const labels = { ...groupLabels(s.labels), [label]: formatSampleValue(s.value) };
        const key = labelsKey(labels);
        const group = counts.get(key);
        if (group) group.value++;
        else counts.set(key, { labels, value: 1 });
      }
      return [...counts.values()];
    }

    const groups = new Map<string, { labels: Labels; samples: InstantSample[] }>();
    for (const s of input) {
      const labels = groupLabels(s.labels);
      const key = labelsKey(labels);
      const group = groups.get(key);
      if (group) group.samples.push(s);
      else groups.set(key, { labels, samples: [s] });
    }

    if (e.op === 'topk' || e.op === 'bottomk') {
      const param = this.#scalar(e.param as Expr);
      if (Number.isNaN(param)) throw new PromQLError('execution', 'Parameter value is NaN');
      const k = Math.trunc(param);
      if (k < 1) return [];
      const top = e.op === 'topk';
      const better = (a: InstantSample, b: InstantSample): number => {
        if (Number.isNaN(a.value)) return Number.isNaN(b.value) ? 0 : 1;
        if (Number.isNaN(b.value)) return -1;
        return top ? b.value - a.value : a.value - b.value;
      };
      return [...groups.values()].flatMap((g) => [...g.samples].sort(better).slice(0, k));
    }

    const param = e.op === 'quantile' ? this.#scalar(e.param as Expr) : Number.NaN;
    return [...groups.values()].map(({ labels, samples }) => {
      const values = samples.map((s) => s.value);
      return { labels, value: aggregateValues(e.op, values, param) };
    });
  }
}

function aggregateValues(op: AggregateExpr['op'], values: number[], param: number): number {
  switch (op) {
    case 'sum':
      return kahanSum(values);
    case 'avg':
      return kahanMean(values);
    case 'count':
      return values.length;
    case 'group':
      return 1;
    case 'min':
      return extreme(values, 'min');
    case 'max':
      return extreme(values, 'max');
    case 'stdvar':
      return variance(values);
    case 'stddev':
      return Math.sqrt(variance(values));
    case 'quantile':
      return quantile(param, values);
    default:
      throw new Error(`aggregation ${op} is handled elsewhere`);
  }
}

const MATH_FUNCTIONS: Record<string, (v: number) => number> = {
  abs: Math.abs,
  ceil: Math.ceil,
  floor: Math.floor,
  sqrt: Math.sqrt,
  exp: Math.exp,
  ln: Math.log,
  log2: Math.log2,
  log10: Math.log10,
  sgn: (v) => (v < 0 ? -1 : v > 0 ? 1 : v),
};

function rangeFunctionValue(name: string, points: Point[], startMs: number, endMs: number): number | null {
  const values = () => points.map((p) => p.v);
  switch (name) {
    case 'rate':
      return extrapolatedRate(points, startMs, endMs, true, true);
    case 'increase':
      return extrapolatedRate(points, startMs, endMs, true, false);
    case 'delta':
      return extrapolatedRate(points, startMs, endMs, false, false);
    case 'irate':
      return instantValue(points, true);
    case 'idelta':
      return instantValue(points, false);
    case 'deriv':
      return derivative(points);
    case 'changes':
      return changes(points);
    case 'resets':
      return resets(points);
    case 'avg_over_time':
      return kahanMean(values());
    case 'min_over_time':
      return extreme(values(), 'min');
    case 'max_over_time':
      return extreme(values(), 'max');
    case 'sum_over_time': {
      let sum = 0;
      let c = 0;
      for (const p of points) [sum, c] = kahanSumInc(p.v, sum, c);
      return sum === Number.POSITIVE_INFINITY || sum === Number.NEGATIVE_INFINITY ? sum : sum + c;
    }
    case 'count_over_time':
      return points.length;
    case 'last_over_time':
      return (points[points.length - 1] as Point).v;
    default:
      throw new PromQLError('bad_data', `function "${name}" is not supported by the sandbox`);
  }
}

/** Vector matching for arithmetic and comparisons (one-to-one, group_left, group_right). */
function vectorBinop(
  op: BinaryOp,
  lhsIn: InstantSample[],
  rhsIn: InstantSample[],
  matching: VectorMatching,
  returnBool: boolean,
): InstantSample[] {
  const oneToMany = matching.card === 'one-to-many';
  // From here on `rhs` is the "one" side.
  const [lhs, rhs] = oneToMany ? [rhsIn, lhsIn] : [lhsIn, rhsIn];
  const signature = signatureOf(matching);
  const rightSigs = new Map<string, InstantSample>();
  for (const rs of rhs) {
    const sig = signature(rs.labels);
    const dupl = rightSigs.get(sig);
    if (dupl) {
      const matched = matching.on
        ? keepLabels(rs.labels, matching.labels)
        : withoutLabels(rs.labels, matching.labels);
      throw new PromQLError(
        'execution',
        `found duplicate series for the match group ${formatLabels(matched)} on the ${oneToMany ? 'left' : 'right'} hand-side of the operation: [${formatLabels(rs.labels)}, ${formatLabels(dupl.labels)}];many-to-many matching not allowed: matching labels must be unique on one side`,
      );
    }
    rightSigs.set(sig, rs);
  }
  const matchedSigs = new Map<string, Set<string> | null>();
  const out: InstantSample[] = [];
  for (const ls of lhs) {
    const sig = signature(ls.labels);
    const rs = rightSigs.get(sig);
    if (!rs) continue;
    const [fl, fr] = oneToMany ? [rs.value, ls.value] : [ls.value, rs.value];
    let { value, keep } = elementBinop(op, fl, fr);
    if (returnBool) {
      value = keep ? 1 : 0;
      keep = true;
    }
    if (!keep) continue;
    let labels = resultLabels(ls.labels, rs.labels, op, matching);
    if (returnBool) labels = dropMetricName(labels);
    if (matching.card === 'one-to-one') {
      if (matchedSigs.has(sig)) {
        throw new PromQLError(
          'execution',
          'multiple matches for labels: many-to-one matching must be explicit (group_left/group_right)',
        );
      }
      matchedSigs.set(sig, null);
    } else {
      const inserted = matchedSigs.get(sig) ?? new Set<string>();
      const key = labelsKey(labels);
      if (inserted.has(key)) {
        throw new PromQLError(
          'execution',
          'multiple matches for labels: grouping labels must ensure unique label set',
        );
      }
      inserted.add(key);
      matchedSigs.set(sig, inserted);
    }
    out.push({ labels, value });
  }
  return out;
}

/** Labels of a matched pair: the "many" side's, minus the name for arithmetic, narrowed by on/ignoring, plus group_x labels. */
function resultLabels(many: Labels, one: Labels, op: BinaryOp, matching: VectorMatching): Labels {
  let labels: Record<string, string> = { ...many };
  if (DROPS_NAME.has(op)) delete labels[METRIC_NAME];
  if (matching.card === 'one-to-one') {
    if (matching.on) labels = { ...keepLabels(labels, matching.labels) };
    else for (const name of matching.labels) delete labels[name];
  }
  for (const name of matching.include) {
    const value = one[name];
    if (value !== undefined && value !== '') labels[name] = value;
    else delete labels[name];
  }
  return labels;
}

function signatureOf(matching: VectorMatching): (labels: Labels) => string {
  return matching.on
    ? (labels) => labelsKey(keepLabels(labels, matching.labels))
    : (labels) => labelsKey(withoutLabels(labels, matching.labels));
}

function setOperation(
  op: 'and' | 'or' | 'unless',
  lhs: InstantSample[],
  rhs: InstantSample[],
  matching: VectorMatching,
): InstantSample[] {
  const signature = signatureOf(matching);
  switch (op) {
    case 'and': {
      const right = new Set(rhs.map((s) => signature(s.labels)));
      return lhs.filter((s) => right.has(signature(s.labels)));
    }
    case 'unless': {
      const right = new Set(rhs.map((s) => signature(s.labels)));
      return lhs.filter((s) => !right.has(signature(s.labels)));
    }
    case 'or': {
      if (lhs.length === 0) return rhs;
      if (rhs.length === 0) return lhs;
      const left = new Set(lhs.map((s) => signature(s.labels)));
      return [...lhs, ...rhs.filter((s) => !left.has(signature(s.labels)))];
    }
  }
}

function vectorScalarBinop(
  op: BinaryOp,
  samples: InstantSample[],
  scalar: number,
  scalarOnLeft: boolean,
  returnBool: boolean,
): InstantSample[] {
  const out: InstantSample[] = [];
  for (const s of samples) {
    const [l, r] = scalarOnLeft ? [scalar, s.value] : [s.value, scalar];
    let { value, keep } = elementBinop(op, l, r);
    // A filtering comparison keeps the vector element's value whichever side it is on.
    if (COMPARISONS.has(op)) value = s.value;
    if (returnBool) {
      value = keep ? 1 : 0;
      keep = true;
    }
    if (!keep) continue;
    out.push({ labels: DROPS_NAME.has(op) || returnBool ? dropMetricName(s.labels) : s.labels, value });
  }
  return out;
}

function histogramQuantile(q: number, samples: InstantSample[]): InstantSample[] {
  const groups = new Map<string, { labels: Labels; buckets: Bucket[] }>();
  for (const s of samples) {
    const le = s.labels.le;
    const upperBound = le === undefined ? null : parseBucketBound(le);
    // Prometheus skips such series with a warning.
    if (upperBound === null || Number.isNaN(upperBound)) continue;
    const labels = withoutLabels(s.labels, ['le']);
    const key = labelsKey(labels);
    let group = groups.get(key);
    if (!group) {
      group = { labels, buckets: [] };
      groups.set(key, group);
    }
    group.buckets.push({ upperBound, count: s.value });
  }
  return [...groups.values()].map((g) => ({ labels: g.labels, value: bucketQuantile(q, g.buckets) }));
}

/** absent()'s labels: those fixed by exactly one `=` matcher of a selector argument. */
function absentLabels(arg: Expr): Labels {
  const inner = unwrapParens(arg);
  if (inner.type !== 'vectorSelector') return {};
  const labels: Record<string, string> = {};
  const seen = new Set<string>();
  for (const m of inner.matchers) {
    if (m.name === METRIC_NAME) continue;
    if (m.type === '=' && !seen.has(m.name)) {
      // An empty value means "label absent", as in Prometheus' label builder.
      if (m.value !== '') labels[m.name] = m.value;
      seen.add(m.name);
    } else {
      delete labels[m.name];
    }
  }
  return labels;
}
