import { Environment } from '@marcbachmann/cel-js';

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
    .registerVariable('incident', 'map<string, string>');
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
