import type { LabelMatcher } from './labels.js';

/** What an expression evaluates to. */
export type ValueType = 'scalar' | 'vector' | 'matrix' | 'string';

/** The words Prometheus' errors use for each type. */
export const TYPE_NAMES: Record<ValueType, string> = {
  scalar: 'scalar',
  vector: 'instant vector',
  matrix: 'range vector',
  string: 'string',
};

export type ArithmeticOp = '+' | '-' | '*' | '/' | '%' | '^' | 'atan2';
export type ComparisonOp = '==' | '!=' | '>' | '<' | '>=' | '<=';
export type SetOp = 'and' | 'or' | 'unless';
export type BinaryOp = ArithmeticOp | ComparisonOp | SetOp;

/** The aggregation operators the sandbox evaluates. */
export const AGGREGATE_OPS = [
  'sum',
  'min',
  'max',
  'avg',
  'count',
  'group',
  'stddev',
  'stdvar',
  'topk',
  'bottomk',
  'count_values',
  'quantile',
] as const;
export type AggregateOp = (typeof AGGREGATE_OPS)[number];
/** Aggregations Prometheus has that the sandbox does not. */
export const UNSUPPORTED_AGGREGATE_OPS = ['limitk', 'limit_ratio'];

/** `42`, `1.5e3`, `0x1f`, `Inf`, `NaN`: a scalar. */
export interface NumberLiteral {
  type: 'number';
  value: number;
  pos: number;
}

/** `"text"`: only useful as a function argument (label_replace, count_values) or as a whole query. */
export interface StringLiteral {
  type: 'string';
  value: string;
  pos: number;
}

/** `name{label="value"}`: each matching series' latest sample (within the lookback) at the evaluation time. */
export interface VectorSelector {
  type: 'vectorSelector';
  /** the metric name as written before the braces, if any (it is also among `matchers`) */
  name: string | undefined;
  matchers: LabelMatcher[];
  /** milliseconds; negative looks ahead */
  offsetMs: number;
  pos: number;
}

/** `selector[5m]`: each matching series' samples in the range before the evaluation time. */
export interface MatrixSelector {
  type: 'matrixSelector';
  selector: VectorSelector;
  /** milliseconds */
  rangeMs: number;
  pos: number;
}

/** `( expr )`, kept so timestamp() and absent() can see through it as Prometheus does. */
export interface ParenExpr {
  type: 'paren';
  expr: Expr;
  pos: number;
}

/** `-expr` on a vector (on a number literal the parser folds the sign in). */
export interface UnaryExpr {
  type: 'unary';
  op: '-' | '+';
  expr: Expr;
  pos: number;
}

/** How two vectors' samples are paired (`on`/`ignoring`, `group_left`/`group_right`). */
export interface VectorMatching {
  card: 'one-to-one' | 'many-to-one' | 'one-to-many' | 'many-to-many';
  /** true: match on `labels` only; false: on all labels but `labels` (and `__name__`) */
  on: boolean;
  labels: string[];
  /** labels of group_left/group_right copied from the "one" side */
  include: string[];
}

/** `lhs op [bool] [on|ignoring (...)] [group_left|group_right (...)] rhs` */
export interface BinaryExpr {
  type: 'binary';
  op: BinaryOp;
  lhs: Expr;
  rhs: Expr;
  /** comparison with `bool`: 0/1 instead of filtering */
  returnBool: boolean;
  /** set when both sides are instant vectors */
  matching: VectorMatching | null;
  pos: number;
}

/** A PromQL function's signature, as the parser checks calls against it. */
export interface FunctionSignature {
  name: string;
  argTypes: ValueType[];
  /** how many trailing arguments may be left out */
  optionalArgs: number;
  returnType: ValueType;
}

/** `func(args...)`, arguments already checked against the signature. */
export interface Call {
  type: 'call';
  func: FunctionSignature;
  args: Expr[];
  pos: number;
}

/** `op [by|without (...)] ([param,] expr)`, the grouping written before or after. */
export interface AggregateExpr {
  type: 'aggregate';
  op: AggregateOp;
  expr: Expr;
  /** topk/bottomk/quantile: a scalar; count_values: a string */
  param: Expr | null;
  grouping: string[];
  without: boolean;
  pos: number;
}

export type Expr =
  | NumberLiteral
  | StringLiteral
  | VectorSelector
  | MatrixSelector
  | ParenExpr
  | UnaryExpr
  | BinaryExpr
  | Call
  | AggregateExpr;

/** The type an expression evaluates to, as the parser checks operands and arguments. */
export function typeOf(expr: Expr): ValueType {
  switch (expr.type) {
    case 'number':
      return 'scalar';
    case 'string':
      return 'string';
    case 'vectorSelector':
    case 'aggregate':
      return 'vector';
    case 'matrixSelector':
      return 'matrix';
    case 'paren':
    case 'unary':
      return typeOf(expr.expr);
    case 'binary':
      return typeOf(expr.lhs) === 'scalar' && typeOf(expr.rhs) === 'scalar' ? 'scalar' : 'vector';
    case 'call':
      return expr.func.returnType;
  }
}

/** The expression inside any number of parentheses. */
export function unwrapParens(expr: Expr): Expr {
  let e = expr;
  while (e.type === 'paren') e = e.expr;
  return e;
}

const M: ValueType = 'matrix';
const V: ValueType = 'vector';
const S: ValueType = 'scalar';
const STR: ValueType = 'string';

function sig(
  name: string,
  argTypes: ValueType[],
  returnType: ValueType,
  optionalArgs = 0,
): FunctionSignature {
  return { name, argTypes, optionalArgs, returnType };
}

/** The functions the sandbox evaluates. */
export const FUNCTIONS: ReadonlyMap<string, FunctionSignature> = new Map(
  [
    sig('rate', [M], V),
    sig('irate', [M], V),
    sig('increase', [M], V),
    sig('delta', [M], V),
    sig('idelta', [M], V),
    sig('deriv', [M], V),
    sig('changes', [M], V),
    sig('resets', [M], V),
    sig('avg_over_time', [M], V),
    sig('min_over_time', [M], V),
    sig('max_over_time', [M], V),
    sig('sum_over_time', [M], V),
    sig('count_over_time', [M], V),
    sig('last_over_time', [M], V),
    sig('histogram_quantile', [S, V], V),
    sig('clamp', [V, S, S], V),
    sig('clamp_min', [V, S], V),
    sig('clamp_max', [V, S], V),
    sig('abs', [V], V),
    sig('ceil', [V], V),
    sig('floor', [V], V),
    sig('round', [V, S], V, 1),
    sig('sqrt', [V], V),
    sig('exp', [V], V),
    sig('ln', [V], V),
    sig('log2', [V], V),
    sig('log10', [V], V),
    sig('sgn', [V], V),
    sig('sort', [V], V),
    sig('sort_desc', [V], V),
    sig('vector', [S], V),
    sig('scalar', [V], S),
    sig('time', [], S),
    sig('timestamp', [V], V),
    sig('absent', [V], V),
    sig('label_replace', [V, STR, STR, STR, STR], V),
  ].map((f) => [f.name, f]),
);

/** Functions Prometheus has that the sandbox refuses by name (anything else is an unknown function). */
export const UNSUPPORTED_FUNCTIONS = new Set([
  'absent_over_time',
  'acos',
  'acosh',
  'asin',
  'asinh',
  'atan',
  'atanh',
  'cos',
  'cosh',
  'days_in_month',
  'day_of_month',
  'day_of_week',
  'day_of_year',
  'deg',
  'double_exponential_smoothing',
  'first_over_time',
  'histogram_avg',
  'histogram_count',
  'histogram_fraction',
  'histogram_quantiles',
  'histogram_stddev',
  'histogram_stdvar',
  'histogram_sum',
  'holt_winters',
  'hour',
  'info',
  'label_join',
  'mad_over_time',
  'minute',
  'month',
  'pi',
  'predict_linear',
  'present_over_time',
  'quantile_over_time',
  'rad',
  'sin',
  'sinh',
  'sort_by_label',
  'sort_by_label_desc',
  'stddev_over_time',
  'stdvar_over_time',
  'tan',
  'tanh',
  'ts_of_first_over_time',
  'ts_of_last_over_time',
  'ts_of_max_over_time',
  'ts_of_min_over_time',
  'year',
]);
