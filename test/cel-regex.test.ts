import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { COLLECTORS } from '../src/diagnostics/registry.js';
import { Targets } from '../src/diagnostics/targets.js';
import { checkExpression, evaluateExpression } from '../src/runbooks/cel.js';
import { decide } from '../src/runbooks/decide.js';
import { formatProblem, parseRunbook } from '../src/runbooks/loader.js';
import { MAX_MATCH_SUBJECT, regexHazard } from '../src/runbooks/regex-safety.js';
import { Runbook } from '../src/runbooks/runbook.schema.js';

const targets = Targets.parse({ shell: { allow: ['df'] } });
const scope = { kind: 'interpret', valueType: 'dyn' } as const;

function evaluate(expression: string, labels: Record<string, string>): unknown {
  return evaluateExpression(expression, scope, {
    labels,
    annotations: {},
    incident: {},
    value: 1,
    result: {},
  });
}

/** a runbook whose first hypothesis is `when` (single-quoted in YAML: CEL strings in it take double quotes) */
const runbookWith = (when: string) => `id: paths
name: Odd paths
triggers:
  - alert: OddPath
diagnostics:
  - id: disk
    type: shell_command
    config:
      argv: [df, -P, /var]
decision:
  - id: odd
    description: Odd path
    likelihood: 1
    when: '${when}'
    escalate: { team: sre }
remediations: []
`;

/** patterns SREs write in alert conditions: none may be refused */
const ORDINARY: Array<[pattern: string, matching: string, other: string]> = [
  ['^api-.*$', 'api-gateway', 'web-api'],
  ['(5..|429)', '503', '404'],
  ['^[a-z0-9-]+$', 'payment-service-2', 'Payment_Service'],
  ['timeout|refused', 'connection refused', 'reset by peer'],
  ['\\d{3}', 'HTTP 500', 'HTTP 5xx'],
  ['^(\\d{1,3}\\.){3}\\d{1,3}$', '10.0.12.7', '10.0.12'],
  ['^([a-z0-9-]+\\.)+[a-z]{2,}$', 'db-1.eu.example.com', 'localhost'],
  ['^(/[a-z0-9_-]+)+/?$', '/api/v1/orders/', '/api//orders'],
  ['^(GET|POST)+ ', 'GET /health', 'PUT /x'],
  ['.*error.*timeout.*', 'upstream error: read timeout', 'timeout before error'],
  ['^(java|node|python[0-9.]*|php-fpm[0-9.]*)$', 'python3.11', 'perl'],
  ['^[^,]+(,[^,]+)*$', 'a,b,c', 'a,,b'],
  ['(?:-[a-z]+)*$', 'x-a-b', 'x-a-b'],
];

describe('CEL matches: no catastrophic backtracking in the worker', () => {
  test('a runbook whose condition matches a catastrophic regex is refused at load, naming the pattern and why', () => {
    const { runbook, problems } = parseRunbook(
      runbookWith('labels.path.matches("^(a+)+$")'),
      'runbooks/paths.yml',
      { collectors: COLLECTORS, targets },
    );
    assert.equal(runbook, null);
    const problem = problems.find((p) => p.path === 'decision[0].when');
    assert.ok(problem, `a problem at decision[0].when; got:\n${problems.map(formatProblem).join('\n')}`);
    assert.equal(problem.line, 14);
    assert.equal(
      problem.message,
      "matches: refusing the regular expression '^(a+)+$': `(a+)+` repeats a group that itself repeats `a+` " +
        '(nested quantifiers), which can backtrack exponentially on a near-miss',
    );
    // the other shapes, and an invalid pattern, are refused at load too
    for (const [expression, why] of [
      ['labels.path.matches("(x|xy)*z")', /repeats alternatives that can start with the same character/],
      ['labels.path.matches("^(\\\\w+\\\\s?)+$")', /repeats `\\w\+` and `\\s\?` \(nested quantifiers\)/],
      ['labels.path.matches("(a)\\\\1")', /uses a backreference \(`\\1`\)/],
      ['labels.path.matches("(")', /not a valid regular expression/],
    ] as const) {
      const result = parseRunbook(runbookWith(expression), 'runbooks/paths.yml', {
        collectors: COLLECTORS,
        targets,
      });
      assert.equal(result.runbook, null, expression);
      assert.match(result.problems.map((p) => p.message).join('\n'), why);
    }
  });

  test('the analyzer: ordinary patterns pass; nested quantifiers, overlapping alternations, backreferences do not', () => {
    for (const [pattern] of ORDINARY) assert.equal(regexHazard(pattern), null, pattern);
    const refused: Array<[string, RegExp]> = [
      ['^(a+)+$', /nested quantifiers/],
      ['(a*)*', /nested quantifiers/],
      ['^(\\d+)*$', /nested quantifiers/],
      ['(.*,)+', /nested quantifiers/],
      ['(a*ba*)+', /nested quantifiers/],
      ['([a-z]+-?)+', /nested quantifiers/],
      ['(a|ba+)+', /nested quantifiers/],
      ['(.*a){12}', /nested quantifiers/],
      ['(a|a)*', /start with the same character/],
      ['(a|ab)*', /start with the same character/],
      ['(\\w|\\d)+', /start with the same character/],
      ['((a|aa)(a|aa))*', /alternation \(`\(a\|aa\)`\)/],
      ['(a)\\1', /backreference/],
      ['(?<x>a)\\k<x>', /backreference \(`\\k<x>`\)/],
      ['a'.repeat(2_000), /2000 characters long; the limit is 1024/],
    ];
    for (const [pattern, why] of refused) assert.match(regexHazard(pattern) ?? 'allowed', why, pattern);
  });

  test('ordinary patterns still match: true and false cases, at load and when evaluated', () => {
    for (const [pattern, matching, other] of ORDINARY) {
      const expression = `labels.x.matches('${pattern.replaceAll('\\', '\\\\')}')`;
      assert.equal(checkExpression(expression, scope), null, expression);
      assert.equal(evaluate(expression, { x: matching }), new RegExp(pattern).test(matching), pattern);
      assert.equal(evaluate(expression, { x: matching }), true, `${pattern} on ${matching}`);
      if (other !== matching)
        assert.equal(evaluate(expression, { x: other }), false, `${pattern} on ${other}`);
    }
    // receivers typed dyn (values read from results) still match, and wrong types are still type errors
    assert.equal(
      evaluateExpression("result.comm.matches('^(java|node)$')", scope, {
        labels: {},
        annotations: {},
        incident: {},
        value: 1,
        result: { comm: 'node' },
      }),
      true,
    );
    assert.match(
      checkExpression('labels.x.matches(1)', scope) ?? '',
      /no matching overload for 'string\.matches\(int\)'/,
    );
  });

  test('a dynamic unsafe pattern built at run time fails its condition with an error instead of hanging', {
    timeout: 120_000,
  }, () => {
    const hostile = { path: `${'a'.repeat(40)}!`, unit: 'a' };
    const expression = "labels.path.matches('^(' + labels.unit + '+)+$')";
    assert.equal(
      checkExpression(expression, scope),
      null,
      'a pattern built at run time cannot be judged at load',
    );
    assert.throws(
      () => evaluate(expression, hostile),
      /matches: refusing the regular expression '\^\(a\+\)\+\$': `\(a\+\)\+` repeats a group/,
    );
    // through the decision: the hypothesis is not confirmed and carries the reason
    const runbook = Runbook.parse({
      id: 'paths',
      name: 'Odd paths',
      diagnostics: [{ id: 'disk', type: 'shell_command' }],
      decision: [
        { id: 'odd', description: 'Odd path', likelihood: 1, when: expression, escalate: { team: 'sre' } },
      ],
      remediations: [],
    });
    const decision = decide(runbook, {}, { labels: hostile, annotations: {}, incident: {}, service: {} });
    assert.equal(decision.outcome, 'escalate');
    assert.equal(decision.tried[0]?.confirmed, null);
    assert.match(decision.tried[0]?.error ?? '', /refusing the regular expression '\^\(a\+\)\+\$'/);
  });

  test('a safe regex over a 100 KB hostile label: an error naming the limit; a label at the limit is answered', () => {
    const expression = "labels.x.matches('.*error.*timeout.*')";
    assert.throws(
      () => evaluate(expression, { x: 'error'.repeat(20_480) }),
      new RegExp(`matches: the string is 102400 characters long; the limit is ${MAX_MATCH_SUBJECT}`),
    );
    const atLimit = 'error'.repeat(MAX_MATCH_SUBJECT / 4).slice(0, MAX_MATCH_SUBJECT);
    assert.equal(atLimit.length, MAX_MATCH_SUBJECT);
    assert.equal(evaluate(expression, { x: atLimit }), false);
    assert.equal(evaluate(expression, { x: `${atLimit.slice(0, -7)}timeout` }), true);
    assert.equal(
      evaluate("labels.x.matches('^[a-z0-9-]+$')", { x: `${'a'.repeat(MAX_MATCH_SUBJECT - 1)}!` }),
      false,
    );
  });
});
