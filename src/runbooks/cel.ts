import { type ASTNode, TypeError as CelTypeError, Environment, EvaluationError } from '@marcbachmann/cel-js';
import { compileSafeRegex, MAX_MATCH_SUBJECT } from './regex-safety.js';

/** Where an expression is used decides what it can see. */
export type CelScope =
  | { kind: 'interpret'; valueType: 'double' | 'string' | 'bool' | 'dyn' }
  | { kind: 'decision'; diagnosticIds: string[] };

const FINDING_SCHEMA = { status: 'string', value: 'dyn', result: 'map', summary: 'string' } as const;

const LIMITS = {
  maxAstNodes: 2_000,
  maxDepth: 50,
  maxListElements: 200,
  maxMapEntries: 200,
  maxCallArguments: 16,
};

function baseEnvironment(): Environment {
  return new Environment({ unlistedVariablesAreDyn: false, limits: LIMITS })
    .registerVariable('labels', 'map<string, string>')
    .registerVariable('annotations', 'map<string, string>')
    .registerVariable('incident', 'map<string, string>')
    .registerFunction(SAFE_MATCHES_SIGNATURE, safeMatchesMacro);
}

/** The parts of cel-js's macro interface `matches` uses (see its README, "Custom macros"). */
type CelNode = ASTNode;
interface CelType {
  kind: string;
  toString(): string;
}
interface MacroChecker {
  check(node: CelNode, ctx: unknown): CelType;
  getType(name: string): CelType;
}
interface MacroEvaluator {
  run(node: CelNode, ctx: unknown): unknown;
}
interface MatchesMacro {
  async: false;
  ast: CelNode;
  receiver: CelNode;
  pattern: CelNode;
  typeCheck(checker: MacroChecker, macro: MatchesMacro, ctx: unknown): CelType;
  evaluate(evaluator: MacroEvaluator, macro: MatchesMacro, ctx: unknown): boolean;
}

/**
 * cel-js's own `string.matches(string)` runs any pattern on any string in-process, and it cannot be re-registered (the
 * overload would overlap). A macro is looked up by name and arity when the expression is parsed, before any type is
 * known, so a macro on an otherwise unused receiver type takes over every `x.matches(p)`: a literal pattern is
 * analysed when the runbook is checked (an unsafe one is a type error at load), and at evaluation every pattern
 * (literal or built at run time) goes through `compileSafeRegex` and the string through `MAX_MATCH_SUBJECT`.
 */
const SAFE_MATCHES_SIGNATURE = 'bytes.matches(ast): bool';

function safeMatchesMacro({
  ast,
  receiver,
  args,
}: {
  ast: CelNode;
  receiver: CelNode;
  args: CelNode[];
}): MatchesMacro {
  return {
    async: false,
    ast,
    receiver,
    pattern: args[0] as CelNode,
    typeCheck(checker, macro, ctx) {
      const receiverType = checker.check(macro.receiver, ctx);
      const patternType = checker.check(macro.pattern, ctx);
      const isString = (t: CelType) => t.kind === 'dyn' || String(t) === 'string';
      if (!isString(receiverType) || !isString(patternType))
        throw new CelTypeError({
          code: 'no_matching_overload',
          message: `found no matching overload for '${receiverType}.matches(${patternType})'`,
          node: macro.ast,
        });
      if (macro.pattern.op === 'value' && typeof macro.pattern.args === 'string') {
        const compiled = compileSafeRegex(macro.pattern.args);
        if (!(compiled instanceof RegExp))
          throw new CelTypeError({
            code: 'unsafe_regular_expression',
            message: compiled.refused,
            node: macro.pattern,
          });
      }
      return checker.getType('bool');
    },
    evaluate(evaluator, macro, ctx) {
      const subject = evaluator.run(macro.receiver, ctx);
      const pattern = evaluator.run(macro.pattern, ctx);
      const fail = (code: string, message: string) => new EvaluationError({ code, message, node: macro.ast });
      if (typeof subject !== 'string' || typeof pattern !== 'string')
        throw fail(
          'no_matching_overload',
          `found no matching overload for '${typeName(subject)}.matches(${typeName(pattern)})'`,
        );
      if (subject.length > MAX_MATCH_SUBJECT)
        throw fail(
          'string_too_long',
          `matches: the string is ${subject.length} characters long; the limit is ${MAX_MATCH_SUBJECT}`,
        );
      const compiled = compileSafeRegex(pattern);
      if (!(compiled instanceof RegExp)) throw fail('unsafe_regular_expression', compiled.refused);
      return compiled.test(subject);
    },
  };
}

function typeName(value: unknown): string {
  if (typeof value === 'bigint') return 'int';
  if (typeof value === 'number') return 'double';
  if (typeof value === 'boolean') return 'bool';
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'list';
  return typeof value === 'string' ? 'string' : 'map';
}

const interpretEnvs = new Map<string, Environment>();
const decisionEnvs = new Map<string, Environment>();

/**
 * The CEL environment of a scope. Interpret rules see `value` (typed by the collector), `result`, `labels`,
 * `annotations`, `incident`; decision conditions see `diagnostics.<id>.{status,value,result,summary}` for exactly the
 * runbook's diagnostic ids, so a typo in an id is a type error when the runbook loads, not a silent false at 3 AM.
 */
export function environmentFor(scope: CelScope): Environment {
  if (scope.kind === 'interpret') {
    let env = interpretEnvs.get(scope.valueType);
    if (!env) {
      env = baseEnvironment().registerVariable('value', scope.valueType).registerVariable('result', 'map');
      interpretEnvs.set(scope.valueType, env);
    }
    return env;
  }
  const key = [...scope.diagnosticIds].sort().join(',');
  let env = decisionEnvs.get(key);
  if (!env) {
    const schema = Object.fromEntries(scope.diagnosticIds.map((id) => [id, FINDING_SCHEMA]));
    env = baseEnvironment().registerVariable({ name: 'diagnostics', schema });
    decisionEnvs.set(key, env);
    if (decisionEnvs.size > 500) decisionEnvs.delete(decisionEnvs.keys().next().value as string);
  }
  return env;
}

/** Type-checks an expression; null when it is fine, else the reason (first line of cel-js's message). */
export function checkExpression(
  expression: string,
  scope: CelScope,
  expect: 'bool' | 'any' = 'bool',
): string | null {
  let result: ReturnType<Environment['check']>;
  try {
    result = environmentFor(scope).check(expression);
  } catch (err) {
    return firstLine((err as Error).message);
  }
  if (!result.valid) return firstLine(result.error?.message ?? 'invalid expression');
  if (expect === 'bool' && result.type !== 'bool' && result.type !== 'dyn') {
    return `expected a condition (bool), but it returns ${result.type}`;
  }
  return null;
}

function firstLine(message: string): string {
  return message.split('\n')[0]?.trim() ?? message;
}

/** the `map<string, string>` variables every scope declares */
const STRING_MAPS = ['labels', 'annotations', 'incident'] as const;

/**
 * Evaluates a checked expression; CEL ints (BigInt) come back as numbers. Throws on runtime errors (null values…).
 * The string maps go in as Maps: cel-js types a plain object by its `constructor` property, so an alert label named
 * "constructor" would otherwise make every rule of the incident fail.
 */
export function evaluateExpression(
  expression: string,
  scope: CelScope,
  context: Record<string, unknown>,
): unknown {
  const input = { ...context };
  for (const name of STRING_MAPS) {
    const map = context[name];
    if (map !== null && typeof map === 'object' && !(map instanceof Map))
      input[name] = new Map(Object.entries(map));
  }
  const value = environmentFor(scope).evaluate(expression, input);
  return toPlain(value);
}

/** CEL values to plain JSON: BigInt → number, Map → object. */
export function toPlain(value: unknown): unknown {
  if (typeof value === 'bigint') return Number(value);
  if (value instanceof Map) return Object.fromEntries([...value].map(([k, v]) => [String(k), toPlain(v)]));
  if (Array.isArray(value)) return value.map(toPlain);
  return value;
}

export function celErrorMessage(err: unknown): string {
  return firstLine(err instanceof Error ? err.message : String(err));
}
