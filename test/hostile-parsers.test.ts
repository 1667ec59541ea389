import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { stringify as toYaml } from 'yaml';
import { Severity, serviceFromLabels, severityFromLabels } from '../src/alerts/normalized-alert.js';
import { loadDetectionQueries } from '../src/detection/prometheus-poller.js';
import { COLLECTORS } from '../src/diagnostics/registry.js';
import { renderArgv, runArgv } from '../src/diagnostics/run-argv.js';
import { parseTargets, Targets, TargetsError } from '../src/diagnostics/targets.js';
import { TemplateError, type TemplateVars } from '../src/diagnostics/templating.js';
import { OncallError, parseOncall } from '../src/escalation/oncall.schema.js';
import { PagersConfigError, parsePagersConfig } from '../src/escalation/pagers/pagers.schema.js';
import { checkExpression, evaluateExpression } from '../src/runbooks/cel.js';
import { parseRunbook } from '../src/runbooks/loader.js';
import { PolicyError, parsePolicy } from '../src/safety/policy.js';
import { parseIncidentCommand, parseMention } from '../src/slack/commands/incident-command.js';
import { createChannelRouter, loadRouting, RoutingFile } from '../src/slack/routing.js';
import {
  assertNotPolluted,
  HOSTILE_STRINGS,
  hostileJson,
  hostileKey,
  hostileString,
  type Json,
  objectOf,
  PROTO_KEYS,
  pathsOf,
  setAt,
} from './helpers/hostile-arbitraries.js';

describe('hostile input to the parsers (no app)', () => {
  test('parseIncidentCommand and parseMention never throw; every invalid answer says what is wrong', () => {
    const text = fc.oneof(
      fc.string(),
      fc.string({ unit: 'binary' }),
      fc.string({ unit: 'grapheme' }),
      fc
        .array(
          fc.oneof(
            fc.constantFrom(...HOSTILE_STRINGS),
            fc.constantFrom('trigger', 'show', 'run', 'maintenance', 'oncall', 'page', 'postmortem', 'stats'),
            fc.constantFrom(
              'suggestions',
              'automation',
              'sev=',
              'team=',
              'INC-',
              '#',
              '999999999999999999999',
            ),
            fc.string({ maxLength: 8 }),
          ),
          { maxLength: 8 },
        )
        .chain((words) => fc.constantFrom(' ', '\n', '\t', '  ').map((sep) => words.join(sep))),
    );
    fc.assert(
      fc.property(text, (input) => {
        for (const parsed of [parseIncidentCommand(input), parseMention(input)]) {
          if (parsed.kind === 'invalid') assert.ok(parsed.problem.trim().length > 0, JSON.stringify(input));
          if ('id' in parsed) assert.ok(Number.isSafeInteger(parsed.id) && parsed.id > 0);
        }
      }),
      { numRuns: 3_000 },
    );
  });

  const targets = Targets.parse({ shell: { allow: ['df'] } });
  const VALID_RUNBOOK = `id: pool
name: Pool exhausted
triggers:
  - alert: PoolExhausted
diagnostics:
  - id: disk
    type: shell_command
    config:
      argv: [df, -P, /var]
    interpret:
      critical: value >= 90.0
decision:
  - id: full
    description: Disk full
    likelihood: 1
    when: diagnostics.disk.status == 'critical'
remediations: []
`;
  const VALID_ONCALL = readFileSync(new URL('../config/oncall.yml', import.meta.url), 'utf8');

  /** YAML documents: arbitrary text, arbitrary values as YAML, and line-level mutations of a valid document. */
  const yamlDocument = (valid: string) =>
    fc.oneof(
      fc.string({ maxLength: 200 }),
      hostileJson.map((v) => toYaml(v)),
      fc
        .record({
          line: fc.nat(),
          kind: fc.constantFrom('delete', 'duplicate', 'indent', 'inject'),
          injected: fc.constantFrom(
            '__proto__: {polluted: 1}',
            'constructor: {prototype: {polluted: 1}}',
            '  __proto__:\n    polluted: 1',
            '*nowhere',
            'a: &a [*a]',
            'x: &x [1,1,1,1,1,1,1,1,1,1]\ny: &y [*x,*x,*x,*x,*x,*x,*x,*x,*x,*x]\nz: [*y,*y,*y,*y,*y,*y,*y,*y,*y,*y]',
            '!!binary aGVsbG8=',
            '? [a, b]\n: 1',
            'id: <!channel>',
            '---',
            '\t- tab',
            "when: labels.x.matches('(')",
          ),
        })
        .map(({ line, kind, injected }) => {
          const lines = valid.split('\n');
          const i = line % lines.length;
          if (kind === 'delete') lines.splice(i, 1);
          if (kind === 'duplicate') lines.splice(i, 0, lines[i] ?? '');
          if (kind === 'indent') lines[i] = `   ${lines[i]}`;
          if (kind === 'inject') lines.splice(i, 0, injected);
          return lines.join('\n');
        }),
    );

  test('runbook YAML: valid, or every problem names the file, never a throw; no prototype pollution', () => {
    fc.assert(
      fc.property(yamlDocument(VALID_RUNBOOK), (text) => {
        const result = parseRunbook(text, 'runbooks/fuzz.yml', { collectors: COLLECTORS, targets });
        if (result.runbook === null) assert.ok(result.problems.length > 0);
        for (const p of result.problems) {
          assert.equal(p.file, 'runbooks/fuzz.yml');
          assert.ok(p.message.length > 0 && p.line >= 1);
        }
        assertNotPolluted();
      }),
      { numRuns: 400 },
    );
  });

  test('on-call YAML: valid, or an OncallError that starts with the file name', () => {
    fc.assert(
      fc.property(yamlDocument(VALID_ONCALL), (text) => {
        try {
          parseOncall(text, 'config/fuzz-oncall.yml');
        } catch (err) {
          assert.ok(err instanceof OncallError, `not an OncallError: ${(err as Error).stack}`);
          assert.match(err.message, /^config\/fuzz-oncall\.yml: /);
        }
        assertNotPolluted();
      }),
      { numRuns: 400 },
    );
  });

  /** billion laughs: five levels of ten aliases each, 100,000 leaves once expanded */
  const ALIAS_BOMB = [
    'a: &a [x,x,x,x,x,x,x,x,x,x]',
    'b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]',
    'c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]',
    'd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c,*c]',
    'e: [*d,*d,*d,*d,*d,*d,*d,*d,*d,*d]',
  ].join('\n');
  const DANGLING_ALIAS = 'tiers: *nowhere\n';
  const yamlAliasErrors = [
    { text: ALIAS_BOMB, message: /Excessive alias count/ },
    { text: DANGLING_ALIAS, message: /Unresolved alias/ },
  ];

  test('safety policy YAML: an alias bomb or a dangling alias is a PolicyError naming the file', () => {
    for (const { text, message } of yamlAliasErrors) {
      assert.throws(
        () => parsePolicy(text, 'config/safety.yml'),
        (err: unknown) => {
          assert.ok(err instanceof PolicyError, `not a PolicyError: ${(err as Error).stack}`);
          assert.equal(err.code, 'policy_invalid');
          assert.match(err.message, /^config\/safety\.yml: /);
          assert.match(err.message, message);
          return true;
        },
      );
    }
  });

  test('targets YAML: an alias bomb or a dangling alias is a TargetsError naming the file', () => {
    for (const { text, message } of yamlAliasErrors) {
      assert.throws(
        () => parseTargets(text, 'config/targets.yml', {}),
        (err: unknown) => {
          assert.ok(err instanceof TargetsError, `not a TargetsError: ${(err as Error).stack}`);
          assert.equal(err.code, 'targets_invalid');
          assert.match(err.message, /^config\/targets\.yml: /);
          assert.match(err.message, message);
          return true;
        },
      );
    }
    // an alias inside its own anchor converts to a cyclic value, which once overflowed the stack
    assert.throws(
      () => parseTargets('databases: &d { main: *d }\n', 'config/targets.yml', {}),
      (err: unknown) =>
        err instanceof TargetsError &&
        err.message === 'config/targets.yml: databases.main: a YAML alias that contains itself',
    );
  });

  test('detection queries YAML: an alias bomb or a dangling alias is a queries_invalid error naming the file', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ai-sre-queries-'));
    try {
      const file = join(dir, 'queries.yml');
      for (const { text, message } of yamlAliasErrors) {
        await writeFile(file, text);
        await assert.rejects(loadDetectionQueries(file), (err: unknown) => {
          assert.ok(err instanceof Error && 'code' in err, `not an AppError: ${(err as Error).stack}`);
          assert.equal(err.code, 'queries_invalid');
          assert.ok(err.message.startsWith(`${file}: `), err.message);
          assert.match(err.message, message);
          return true;
        });
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('safety policy and targets YAML: valid, or their own error starting with the file name, never a throw', () => {
    const policy = readFileSync(new URL('../config/safety.yml', import.meta.url), 'utf8');
    const targetsText = readFileSync(new URL('../config/targets.yml', import.meta.url), 'utf8');
    fc.assert(
      fc.property(yamlDocument(policy), yamlDocument(targetsText), (policyText, targetsDoc) => {
        try {
          parsePolicy(policyText, 'config/fuzz-safety.yml');
        } catch (err) {
          assert.ok(err instanceof PolicyError, `not a PolicyError: ${(err as Error).stack}`);
          assert.match(err.message, /^config\/fuzz-safety\.yml: /);
        }
        try {
          parseTargets(targetsDoc, 'config/fuzz-targets.yml', {});
        } catch (err) {
          assert.ok(err instanceof TargetsError, `not a TargetsError: ${(err as Error).stack}`);
          assert.match(err.message, /^config\/fuzz-targets\.yml: /);
        }
        assertNotPolluted();
      }),
      { numRuns: 400 },
    );
  });

  test('pagers config: valid, or a PagersConfigError naming the source and the field path', () => {
    const valid = {
      order: ['webhook', 'pagerduty'],
      webhook: { url: 'https://pager.example/hook', secret: 'a-secret-of-16-chars' },
      pagerduty: { routingKeys: { default: 'key' } },
    } as unknown as Json;
    const config = fc.oneof(
      hostileJson,
      fc
        .tuple(fc.constantFrom(...pathsOf(valid)), hostileJson)
        .map(([path, value]) => setAt(valid, path, value)),
    );
    fc.assert(
      fc.property(config, (input) => {
        try {
          parsePagersConfig(input, 'pagers.yml');
        } catch (err) {
          assert.ok(err instanceof PagersConfigError, `not a PagersConfigError: ${(err as Error).stack}`);
          assert.ok(err.message.startsWith('pagers.yml: '), err.message);
          assert.ok(err.message.split(': ').length >= 3, `no field path: ${err.message}`);
        }
        assertNotPolluted();
      }),
      { numRuns: 400 },
    );
  });

  test('routing file: valid, or an error naming the file; every service name routes to a channel string', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ai-sre-routing-'));
    try {
      const file = join(dir, 'routing.yml');
      const routing = `defaultChannel: "#incidents"\nservices:\n  payment-service: "#payments"\n`;
      await fc.assert(
        fc.asyncProperty(
          yamlDocument(routing),
          fc.array(hostileKey, { maxLength: 4 }),
          async (text, services) => {
            await writeFile(file, text);
            let loaded: RoutingFile;
            try {
              loaded = await loadRouting(file);
            } catch (err) {
              assert.ok(err instanceof Error);
              assert.ok(err.message.startsWith(`ROUTING_FILE ${file}: `), err.message);
              return;
            }
            const router = createChannelRouter(loaded);
            for (const service of [...services, ...PROTO_KEYS]) {
              const channel = router.channelFor(service);
              assert.equal(typeof channel, 'string', `${service} routes to ${String(channel)}`);
              assert.equal(
                channel,
                Object.hasOwn(loaded.services, service) ? loaded.services[service] : loaded.defaultChannel,
              );
            }
            assertNotPolluted();
          },
        ),
        { numRuns: 200 },
      );
      const parsed = RoutingFile.parse(
        objectOf([
          ['defaultChannel', '#d'],
          ['services', objectOf([['__proto__', '#x']])],
        ]),
      );
      assert.equal(createChannelRouter(parsed).channelFor('toString'), '#d');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('severity and service from labels: always a known severity and a string, whatever the labels', () => {
    const labels = fc
      .array(
        fc.tuple(
          fc.constantFrom('severity', 'priority', 'level', 'service', 'app', 'job'),
          fc.oneof(hostileString, fc.constantFrom(...PROTO_KEYS)),
        ),
        { maxLength: 4 },
      )
      .map((e) => objectOf(e) as Record<string, string>);
    fc.assert(
      fc.property(labels, (l) => {
        assert.ok(Severity.options.includes(severityFromLabels(l)), JSON.stringify(l));
        const service = serviceFromLabels(l);
        assert.equal(typeof service, 'string');
        assert.ok(service.length > 0 && service.length <= 200);
      }),
      { numRuns: 1_000 },
    );
  });

  const celScope = { kind: 'interpret', valueType: 'dyn' } as const;
  const labelMap = fc
    .array(
      fc.tuple(
        fc.oneof(fc.constantFrom('x', 'env', ...PROTO_KEYS), fc.string({ maxLength: 6 })),
        hostileString,
      ),
      {
        maxLength: 5,
      },
    )
    .map((e) => objectOf(e) as Record<string, string>);

  test('CEL: any expression is checked without throwing; evaluation errors are reported, in bounded time, with no code run', () => {
    const token = fc.constantFrom(
      'labels',
      'annotations',
      'incident',
      'value',
      '.',
      'x',
      'env',
      '[',
      ']',
      '(',
      ')',
      "'a'",
      '"b"',
      '==',
      '!=',
      '&&',
      '||',
      '!',
      '1',
      '2.5',
      'true',
      'null',
      'size(',
      'has(',
      ',',
      ' ',
      '+',
      '.matches(',
      '.startsWith(',
      'constructor',
      '__proto__',
      'prototype',
      'in',
      '?',
      ':',
      '{',
      '}',
      '.map(',
      '.all(',
      '.exists(',
      'e',
      '\\',
      'globalThis',
      'process',
      'require',
      '`',
      '$',
      ';',
      'int(',
      'string(',
      'dyn(',
      'b"',
      "r'",
      '/',
      '%',
      '1/0',
    );
    const expression = fc.oneof(
      fc.string({ maxLength: 60 }),
      fc.array(token, { maxLength: 30 }).map((t) => t.join('')),
    );
    fc.assert(
      fc.property(expression, labelMap, (expr, labels) => {
        const started = performance.now();
        const problem = checkExpression(expr, celScope, 'any');
        assert.ok(problem === null || (typeof problem === 'string' && problem.length > 0));
        if (problem === null) {
          try {
            evaluateExpression(expr, celScope, {
              labels,
              annotations: labels,
              incident: {},
              value: 1,
              result: {},
            });
          } catch (err) {
            assert.ok(err instanceof Error && err.message.length > 0, `not a reported error: ${String(err)}`);
          }
        }
        assert.ok(performance.now() - started < 1_000, `${expr} took ${performance.now() - started} ms`);
        assert.equal((globalThis as Record<string, unknown>).pwned, undefined);
      }),
      { numRuns: 3_000 },
    );
  });

  test('CEL: label values are data, never code; prototype names are missing keys, not Object members', () => {
    const rules = [
      "labels.x == 'a'",
      "labels.env.startsWith('prod')",
      "'constructor' in labels && labels.constructor == 'x'",
      "has(labels.__proto__) && labels.__proto__ != ''",
      "labels.x.matches('^prod-[a-z]+$')",
      'size(labels.x) > 3',
      "labels.x + labels.env == 'ab'",
    ];
    for (const rule of rules) assert.equal(checkExpression(rule, celScope), null, rule);
    fc.assert(
      fc.property(fc.constantFrom(...rules), labelMap, (rule, labels) => {
        const started = performance.now();
        let value: unknown;
        try {
          value = evaluateExpression(rule, celScope, {
            labels,
            annotations: {},
            incident: {},
            value: 1,
            result: {},
          });
        } catch (err) {
          assert.ok(
            err instanceof Error && /no such key|found no matching overload/i.test(err.message),
            String(err),
          );
          return;
        }
        assert.equal(typeof value, 'boolean', `${rule} gave ${String(value)}`);
        assert.ok(performance.now() - started < 200);
      }),
      { numRuns: 1_000 },
    );
  });

  const vars = (labels: Record<string, string>): TemplateVars => ({
    labels,
    annotations: {},
    incident: { id: '7', service: 'api' },
    service: {},
  });

  test('argv templating: a label value is exactly one argument, whatever it holds, or a TemplateError', () => {
    const key = fc.oneof(
      fc.constantFrom('pod', 'x', ...PROTO_KEYS),
      fc.stringMatching(/^[A-Za-z_][A-Za-z0-9_]{0,8}$/),
    );
    fc.assert(
      fc.property(
        key,
        labelMap,
        fc.constantFrom('{{labels.K}}', '--name={{labels.K}}', 'pre{{ labels.K }}post'),
        (k, labels, arg) => {
          const argv = ['kubectl', 'get', arg.replace('K', k), '-o', 'json'];
          let rendered: string[];
          try {
            rendered = renderArgv(argv, vars(labels));
          } catch (err) {
            assert.ok(err instanceof TemplateError, `not a TemplateError: ${(err as Error).stack}`);
            return;
          }
          assert.equal(rendered.length, argv.length);
          const value = labels[k] as string;
          assert.ok(Object.hasOwn(labels, k), `{{labels.${k}}} rendered without the label`);
          assert.equal(
            rendered[2],
            (argv[2] as string).replace(/\{\{\s*labels\.[^}]*\}\}/, () => value),
          );
          assert.deepEqual(
            [rendered[0], rendered[1], rendered[3], rendered[4]],
            ['kubectl', 'get', '-o', 'json'],
          );
        },
      ),
      { numRuns: 2_000 },
    );
  });

  test('argv templating: shell metacharacters reach the process as literal bytes, and nothing is interpreted', async () => {
    const marker = join(tmpdir(), `ai-sre-pwned-${process.pid}`);
    const value = fc
      .oneof(
        fc.constantFrom(
          `$(touch ${marker})`,
          `\`touch ${marker}\``,
          `; touch ${marker}`,
          `| touch ${marker}`,
          `&& touch ${marker}`,
          `a\ntouch ${marker}`,
          '*',
          '~',
          '$HOME',
          "'\"'",
        ),
        fc.string({ maxLength: 30 }),
      )
      .filter((v) => !v.startsWith('-') && !v.includes('\0'));
    await fc.assert(
      fc.asyncProperty(fc.array(value, { minLength: 1, maxLength: 4 }), async (values) => {
        const labels = objectOf(values.map((v, i) => [`v${i}`, v])) as Record<string, string>;
        const argv = renderArgv(
          ['printf', '%s\\0', ...values.map((_, i) => `{{labels.v${i}}}`)],
          vars(labels),
        );
        assert.equal(argv.length, values.length + 2);
        const run = await runArgv({
          file: '/usr/bin/printf',
          argv0: 'printf',
          args: argv.slice(1),
          path: '/usr/bin:/bin',
          maxOutputBytes: 65_536,
          signal: AbortSignal.timeout(5_000),
          timeoutMs: 5_000,
          label: 'fuzz',
        });
        assert.equal(run.exitCode, 0, run.stderr);
        assert.deepEqual(run.stdout.split('\0').slice(0, -1), values);
        assert.equal(existsSync(marker), false, 'a label value ran a command');
      }),
      { numRuns: 40 },
    );
  });
});
