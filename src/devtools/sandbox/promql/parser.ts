import {
  AGGREGATE_OPS,
  type AggregateExpr,
  type AggregateOp,
  type BinaryExpr,
  type BinaryOp,
  type Call,
  type Expr,
  FUNCTIONS,
  type FunctionSignature,
  type MatrixSelector,
  TYPE_NAMES,
  typeOf,
  UNSUPPORTED_AGGREGATE_OPS,
  UNSUPPORTED_FUNCTIONS,
  type ValueType,
  type VectorMatching,
  type VectorSelector,
} from './ast.js';
import { PromQLError, positionOf } from './errors.js';
import { isValidLabelName, LabelMatcher, type MatchType, METRIC_NAME } from './labels.js';
import { type Token, tokenize } from './lexer.js';

/** Binding strength of each binary operator (Prometheus' order); `^` alone is right-associative. */
const PRECEDENCE: Record<BinaryOp, number> = {
  or: 1,
  and: 2,
  unless: 2,
  '==': 3,
  '!=': 3,
  '>': 3,
  '<': 3,
  '>=': 3,
  '<=': 3,
  '+': 4,
  '-': 4,
  '*': 5,
  '/': 5,
  '%': 5,
  atan2: 5,
  '^': 6,
};
/** Unary minus binds tighter than `*` and looser than `^`: `-2^2` is -4. */
const UNARY_OPERAND_PRECEDENCE = 6;

const COMPARISONS = new Set<BinaryOp>(['==', '!=', '>', '<', '>=', '<=']);
const SET_OPS = new Set<BinaryOp>(['and', 'or', 'unless']);
const MATCH_OPS = new Set(['=', '!=', '=~', '!~']);
const KEYWORDS = new Set([
  'and',
  'or',
  'unless',
  'atan2',
  'by',
  'without',
  'on',
  'ignoring',
  'group_left',
  'group_right',
  'offset',
  'bool',
]);
/** `bool`, `on`/`ignoring` and `group_left`/`group_right` as written after a binary operator. */
interface BinaryModifiers {
  returnBool: boolean;
  matching: { on: boolean; labels: string[]; card?: 'many-to-one' | 'one-to-many'; include: string[] } | null;
}

const PARAM_AGGREGATES = new Set<AggregateOp>(['topk', 'bottomk', 'quantile', 'count_values']);

/**
 * Parses a PromQL expression of the sandbox's subset and type-checks it. Throws PromQLError (`bad_data`) whose
 * message starts with `line:column:` and says what was expected, or names the unsupported feature.
 */
export function parseQuery(input: string): Expr {
  return new Parser(input).parseAll();
}

class Parser {
  readonly #input: string;
  readonly #tokens: Token[];
  #i = 0;

  constructor(input: string) {
    this.#input = input;
    this.#tokens = tokenize(input);
  }

  parseAll(): Expr {
    if (this.#peek().kind === 'eof') this.#fail(this.#peek(), 'no expression found in input');
    const expr = this.#parseExpr(1);
    const rest = this.#peek();
    if (rest.kind !== 'eof') this.#fail(rest, `unexpected ${describe(rest)}`);
    return expr;
  }

  #peek(): Token {
    return this.#tokens[this.#i] as Token;
  }

  #next(): Token {
    const tok = this.#tokens[this.#i] as Token;
    if (tok.kind !== 'eof') this.#i++;
    return tok;
  }

  #isOp(tok: Token, text: string): boolean {
    return tok.kind === 'op' && tok.text === text;
  }

  #isKeyword(tok: Token, word: string): boolean {
    return tok.kind === 'ident' && tok.text.toLowerCase() === word;
  }

  #fail(atPos: Token | number, message: string): never {
    const pos = typeof atPos === 'number' ? atPos : atPos.pos;
    throw new PromQLError('bad_data', `${positionOf(this.#input, pos)}: ${message}`);
  }

  #expectOp(text: string, context: string): Token {
    const tok = this.#next();
    if (!this.#isOp(tok, text)) this.#fail(tok, `expected '${text}' ${context}, got ${describe(tok)}`);
    return tok;
  }

  #parseExpr(minPrecedence: number): Expr {
    let lhs = this.#parseUnary();
    for (;;) {
      const opTok = this.#peek();
      const op = binaryOpOf(opTok);
      if (op === null || PRECEDENCE[op] < minPrecedence) return lhs;
      this.#next();
      const modifiers = this.#parseBinaryModifiers(op);
      const rhs = this.#parseExpr(op === '^' ? PRECEDENCE[op] : PRECEDENCE[op] + 1);
      lhs = this.#buildBinary(op, lhs, rhs, modifiers, opTok);
    }
  }

  #parseUnary(): Expr {
    const tok = this.#peek();
    if (this.#isOp(tok, '-') || this.#isOp(tok, '+')) {
      this.#next();
      const operand = this.#parseExpr(UNARY_OPERAND_PRECEDENCE);
      const t = typeOf(operand);
      if (t !== 'scalar' && t !== 'vector') {
        this.#fail(
          tok,
          `unary expression only allowed on expressions of type scalar or instant vector, got ${TYPE_NAMES[t]}`,
        );
      }
      if (operand.type === 'number') {
        return tok.text === '-' ? { ...operand, value: -operand.value, pos: tok.pos } : operand;
      }
      return { type: 'unary', op: tok.text as '-' | '+', expr: operand, pos: tok.pos };
    }
    return this.#parsePostfix();
  }

  #parsePostfix(): Expr {
    let expr = this.#parsePrimary();
    for (;;) {
      const tok = this.#peek();
      if (this.#isOp(tok, '[')) {
        expr = this.#parseRange(expr);
      } else if (this.#isKeyword(tok, 'offset')) {
        this.#parseOffset(expr);
      } else if (this.#isOp(tok, '@')) {
        this.#fail(tok, 'the @ modifier is not supported by the sandbox');
      } else {
        return expr;
      }
    }
  }

  #parseRange(expr: Expr): MatrixSelector {
    const open = this.#next();
    const dur = this.#next();
    if (this.#isOp(dur, ':') || this.#isOp(this.#peek(), ':')) {
      this.#fail(open, 'subqueries (expr[range:step]) are not supported by the sandbox');
    }
    if (dur.kind !== 'duration')
      this.#fail(dur, `expected a duration like 5m in '[...]', got ${describe(dur)}`);
    this.#expectOp(']', 'after the range duration');
    if (expr.type !== 'vectorSelector') {
      const what = expr.type === 'matrixSelector' ? 'a range vector' : 'an expression';
      this.#fail(
        open,
        `ranges only allowed for vector selectors, not ${what} (subqueries are not supported by the sandbox)`,
      );
    }
    if (expr.offsetMs !== 0) this.#fail(open, 'no offset modifiers allowed before range');
    if ((dur.value as number) <= 0) this.#fail(dur, 'range duration must be greater than 0');
    return { type: 'matrixSelector', selector: expr, rangeMs: dur.value as number, pos: expr.pos };
  }

  #parseOffset(expr: Expr): void {
    const tok = this.#next();
    let sign = 1;
    if (this.#isOp(this.#peek(), '-') || this.#isOp(this.#peek(), '+')) {
      sign = this.#next().text === '-' ? -1 : 1;
    }
    const dur = this.#next();
    if (dur.kind !== 'duration')
      this.#fail(dur, `expected a duration like 5m after offset, got ${describe(dur)}`);
    const selector =
      expr.type === 'vectorSelector' ? expr : expr.type === 'matrixSelector' ? expr.selector : null;
    if (!selector) {
      this.#fail(
        tok,
        'offset modifier must be preceded by an instant vector selector or range vector selector',
      );
    }
    if (selector.offsetMs !== 0) this.#fail(tok, 'offset may not be set multiple times');
    selector.offsetMs = sign * (dur.value as number);
  }

  #parsePrimary(): Expr {
    const tok = this.#next();
    switch (tok.kind) {
      case 'number':
        return { type: 'number', value: tok.value as number, pos: tok.pos };
      case 'string':
        return { type: 'string', value: tok.str as string, pos: tok.pos };
      case 'duration':
        return this.#fail(tok, `unexpected duration ${tok.text}; durations go in [...] or after offset`);
      case 'eof':
        return this.#fail(tok, 'unexpected end of input, expected an expression');
      case 'op':
        if (tok.text === '(') {
          const inner = this.#parseExpr(1);
          this.#expectOp(')', 'to close the parenthesis');
          return { type: 'paren', expr: inner, pos: tok.pos };
        }
        if (tok.text === '{') return this.#parseSelector(undefined, tok);
        return this.#fail(tok, `unexpected ${describe(tok)}, expected an expression`);
      case 'ident':
        return this.#parseIdentifier(tok);
    }
  }

  #parseIdentifier(tok: Token): Expr {
    const lower = tok.text.toLowerCase();
    if (lower === 'inf' || lower === 'nan') {
      return { type: 'number', value: lower === 'inf' ? Number.POSITIVE_INFINITY : Number.NaN, pos: tok.pos };
    }
    if ((AGGREGATE_OPS as readonly string[]).includes(lower))
      return this.#parseAggregate(lower as AggregateOp, tok);
    if (UNSUPPORTED_AGGREGATE_OPS.includes(lower)) {
      this.#fail(tok, `aggregation "${lower}" is not supported by the sandbox`);
    }
    if (this.#isOp(this.#peek(), '(')) {
      const func = FUNCTIONS.get(tok.text);
      if (func) return this.#parseCall(func, tok);
      if (UNSUPPORTED_FUNCTIONS.has(tok.text)) {
        this.#fail(tok, `function "${tok.text}" is not supported by the sandbox`);
      }
      this.#fail(tok, `unknown function with name "${tok.text}"`);
    }
    if (KEYWORDS.has(lower)) this.#fail(tok, `unexpected keyword "${tok.text}", expected an expression`);
    return this.#parseSelector(tok.text, tok);
  }

  #parseSelector(name: string | undefined, start: Token): VectorSelector {
    const matchers: LabelMatcher[] = [];
    if (name !== undefined) matchers.push(new LabelMatcher(METRIC_NAME, '=', name));
    // `{` was already consumed for a selector without a name.
    const braced = name === undefined || this.#isOp(this.#peek(), '{');
    if (name !== undefined && braced) this.#next();
    if (braced) {
      for (;;) {
        if (this.#isOp(this.#peek(), '}')) {
          this.#next();
          break;
        }
        const label = this.#next();
        if (label.kind !== 'ident' || label.text.includes(':')) {
          this.#fail(label, `expected a label name in the selector, got ${describe(label)}`);
        }
        const op = this.#next();
        if (op.kind !== 'op' || !MATCH_OPS.has(op.text)) {
          this.#fail(
            op,
            `expected a label matching operator (=, !=, =~, !~) after "${label.text}", got ${describe(op)}`,
          );
        }
        const value = this.#next();
        if (value.kind !== 'string') {
          this.#fail(value, `expected a quoted string after ${label.text}${op.text}, got ${describe(value)}`);
        }
        if (label.text === METRIC_NAME && name !== undefined) {
          this.#fail(label, `metric name must not be set twice: "${name}" or "${value.str}"`);
        }
        try {
          matchers.push(new LabelMatcher(label.text, op.text as MatchType, value.str as string));
        } catch (err) {
          this.#fail(value, (err as Error).message);
        }
        const sep = this.#next();
        if (this.#isOp(sep, '}')) break;
        if (!this.#isOp(sep, ','))
          this.#fail(sep, `expected ',' or '}' in the label matchers, got ${describe(sep)}`);
      }
    }
    if (!matchers.some((m) => !m.matchesEmpty())) {
      this.#fail(start, 'vector selector must contain at least one non-empty matcher');
    }
    return { type: 'vectorSelector', name, matchers, offsetMs: 0, pos: start.pos };
  }

  #parseArgs(maxArgs: number, context: string): Expr[] {
    this.#expectOp('(', `after ${context}`);
    const args: Expr[] = [];
    if (this.#isOp(this.#peek(), ')')) {
      this.#next();
      return args;
    }
    for (;;) {
      args.push(this.#parseExpr(1));
      const sep = this.#next();
      if (this.#isOp(sep, ')')) return args;
      if (this.#isOp(sep, ',') && args.length < maxArgs) continue;
      const expected = args.length < maxArgs ? "',' or ')'" : "')'";
      this.#fail(sep, `expected ${expected} to close the arguments of ${context}, got ${describe(sep)}`);
    }
  }

  #parseCall(func: FunctionSignature, tok: Token): Call {
    const args = this.#parseArgs(func.argTypes.length, `${func.name}(`);
    const max = func.argTypes.length;
    const min = max - func.optionalArgs;
    if (args.length < min || args.length > max) {
      const count = min === max ? `${max}` : args.length < min ? `at least ${min}` : `at most ${max}`;
      this.#fail(tok, `expected ${count} argument(s) in call to "${func.name}", got ${args.length}`);
    }
    args.forEach((arg, k) => {
      this.#expectType(arg, func.argTypes[k] as ValueType, `call to function "${func.name}"`);
    });
    return { type: 'call', func, args, pos: tok.pos };
  }

  #parseAggregate(op: AggregateOp, tok: Token): AggregateExpr {
    let grouping: { labels: string[]; without: boolean } | null = null;
    if (this.#isKeyword(this.#peek(), 'by') || this.#isKeyword(this.#peek(), 'without')) {
      grouping = this.#parseGrouping();
    }
    const wantsParam = PARAM_AGGREGATES.has(op);
    const args = this.#parseArgs(wantsParam ? 2 : 1, `${op}(`);
    if (this.#isKeyword(this.#peek(), 'by') || this.#isKeyword(this.#peek(), 'without')) {
      if (grouping) this.#fail(this.#peek(), `the grouping of ${op} may be set only once`);
      grouping = this.#parseGrouping();
    }
    const expected = wantsParam ? 2 : 1;
    if (args.length !== expected) {
      this.#fail(
        tok,
        `wrong number of arguments for aggregate expression provided, expected ${expected}, got ${args.length}`,
      );
    }
    const param = wantsParam ? (args[0] as Expr) : null;
    const expr = args[args.length - 1] as Expr;
    if (param) {
      this.#expectType(param, op === 'count_values' ? 'string' : 'scalar', 'aggregation parameter');
    }
    this.#expectType(expr, 'vector', 'aggregation expression');
    return {
      type: 'aggregate',
      op,
      expr,
      param,
      grouping: grouping?.labels ?? [],
      without: grouping?.without ?? false,
      pos: tok.pos,
    };
  }

  #parseGrouping(): { labels: string[]; without: boolean } {
    const kw = this.#next();
    return {
      labels: this.#parseLabelList(kw.text.toLowerCase()),
      without: kw.text.toLowerCase() === 'without',
    };
  }

  #parseLabelList(context: string): string[] {
    this.#expectOp('(', `after ${context}`);
    const labels: string[] = [];
    for (;;) {
      const tok = this.#next();
      if (this.#isOp(tok, ')')) return labels;
      if (tok.kind !== 'ident' || !isValidLabelName(tok.text)) {
        this.#fail(tok, `expected a label name in ${context}(...), got ${describe(tok)}`);
      }
      labels.push(tok.text);
      const sep = this.#next();
      if (this.#isOp(sep, ')')) return labels;
      if (!this.#isOp(sep, ','))
        this.#fail(sep, `expected ',' or ')' in ${context}(...), got ${describe(sep)}`);
    }
  }

  #parseBinaryModifiers(op: BinaryOp): BinaryModifiers {
    let returnBool = false;
    if (this.#isKeyword(this.#peek(), 'bool')) {
      const boolTok = this.#next();
      if (!COMPARISONS.has(op)) this.#fail(boolTok, 'bool modifier can only be used on comparison operators');
      returnBool = true;
    }
    const kw = this.#peek();
    if (!this.#isKeyword(kw, 'on') && !this.#isKeyword(kw, 'ignoring')) return { returnBool, matching: null };
    this.#next();
    const on = kw.text.toLowerCase() === 'on';
    const labels = this.#parseLabelList(on ? 'on' : 'ignoring');
    const group = this.#peek();
    if (!this.#isKeyword(group, 'group_left') && !this.#isKeyword(group, 'group_right')) {
      return { returnBool, matching: { on, labels, include: [] } };
    }
    this.#next();
    const groupWord = group.text.toLowerCase();
    if (SET_OPS.has(op)) this.#fail(group, `no grouping allowed for "${op}" operation`);
    const include = this.#isOp(this.#peek(), '(') ? this.#parseLabelList(groupWord) : [];
    for (const label of include) {
      if (on && labels.includes(label)) {
        this.#fail(group, `label "${label}" must not occur in ON and GROUP clause at once`);
      }
    }
    const card = groupWord === 'group_left' ? 'many-to-one' : 'one-to-many';
    return { returnBool, matching: { on, labels, card, include } };
  }

  #buildBinary(op: BinaryOp, lhs: Expr, rhs: Expr, modifiers: BinaryModifiers, opTok: Token): BinaryExpr {
    const lt = typeOf(lhs);
    const rt = typeOf(rhs);
    for (const t of [lt, rt]) {
      if (t !== 'scalar' && t !== 'vector') {
        this.#fail(
          opTok,
          `binary expression must contain only scalar and instant vector types, got ${TYPE_NAMES[t]}`,
        );
      }
    }
    const bothVectors = lt === 'vector' && rt === 'vector';
    if (SET_OPS.has(op) && !bothVectors) {
      this.#fail(opTok, `set operator "${op}" not allowed in binary scalar expression`);
    }
    if (COMPARISONS.has(op) && lt === 'scalar' && rt === 'scalar' && !modifiers.returnBool) {
      this.#fail(opTok, 'comparisons between scalars must use BOOL modifier');
    }
    let matching: VectorMatching | null = null;
    if (modifiers.matching && !bothVectors && modifiers.matching.labels.length > 0) {
      this.#fail(opTok, 'vector matching only allowed between instant vectors');
    }
    if (bothVectors) {
      const m = modifiers.matching;
      matching = {
        card: SET_OPS.has(op) ? 'many-to-many' : (m?.card ?? 'one-to-one'),
        on: m?.on ?? false,
        labels: m?.labels ?? [],
        include: m?.include ?? [],
      };
    }
    return { type: 'binary', op, lhs, rhs, returnBool: modifiers.returnBool, matching, pos: opTok.pos };
  }

  #expectType(expr: Expr, want: ValueType, context: string): void {
    const got = typeOf(expr);
    if (got !== want) {
      this.#fail(expr.pos, `expected type ${TYPE_NAMES[want]} in ${context}, got ${TYPE_NAMES[got]}`);
    }
  }
}

function binaryOpOf(tok: Token): BinaryOp | null {
  if (tok.kind === 'op') return tok.text in PRECEDENCE ? (tok.text as BinaryOp) : null;
  if (tok.kind === 'ident') {
    const word = tok.text.toLowerCase();
    if (word === 'and' || word === 'or' || word === 'unless' || word === 'atan2') return word;
  }
  return null;
}

function describe(tok: Token): string {
  switch (tok.kind) {
    case 'eof':
      return 'end of input';
    case 'ident':
      return `identifier "${tok.text}"`;
    case 'number':
      return `number ${tok.text}`;
    case 'duration':
      return `duration ${tok.text}`;
    case 'string':
      return `string ${tok.text}`;
    case 'op':
      return `"${tok.text}"`;
  }
}
