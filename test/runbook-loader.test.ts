import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { COLLECTORS } from '../src/diagnostics/registry.js';
import { Targets } from '../src/diagnostics/targets.js';
import { formatProblem, parseRunbook, type RunbookProblem } from '../src/runbooks/loader.js';

const targets = Targets.parse({
  databases: { main: { url: 'postgres://postgres@127.0.0.1:5432/postgres' } },
  shell: { allow: ['df', 'sh'] },
});

const VALID = `id: pool
name: Pool exhausted
triggers:
  - alert: PoolExhausted
    labels: { env: "~prod|staging" }
diagnostics:
  - id: db_connections
    type: database_query
    timeout: 5s
    config:
      target: main
      sql: SELECT 95.0 AS pct
    interpret:
      critical: value >= 90.0
      warning: value >= 70.0 && value < 90.0
  - id: disk
    type: shell_command
    config:
      argv: [df, -P, /var]
decision:
  - id: exhausted
    description: Pool exhausted
    likelihood: 1
    when: diagnostics.db_connections.status == 'critical'
    remediate: [kill_idle]
remediations:
  - id: kill_idle
    action: terminate_connections
    description: Kill idle connections
    verify:
      diagnostics: [db_connections]
      expect: diagnostics.db_connections.status == 'healthy'
`;

function problemsOf(text: string): RunbookProblem[] {
  return parseRunbook(text, 'runbooks/pool.yml', { collectors: COLLECTORS, targets }).problems;
}

/** The one problem at `path`, failing with the whole list when it is not there. */
function problemAt(problems: RunbookProblem[], path: string): RunbookProblem {
  const found = problems.find((p) => p.path === path);
  assert.ok(found, `a problem at ${path}; got:\n${problems.map(formatProblem).join('\n')}`);
  return found;
}

describe('runbook loading: every problem with file, line and field path', () => {
  test('a valid runbook loads with the sha256 of its text', () => {
    const result = parseRunbook(VALID, 'runbooks/pool.yml', { collectors: COLLECTORS, targets });
    assert.deepEqual(result.problems, []);
    assert.equal(result.runbook?.runbook.id, 'pool');
    assert.match(result.runbook?.hash ?? '', /^[0-9a-f]{64}$/);
    assert.equal(result.runbook?.runbook.diagnostics[0]?.timeout, '5s');
  });

  test('bad CEL is rejected at its line', () => {
    const problems = problemsOf(VALID.replace('value >= 90.0', 'value >= '));
    const p = problemAt(problems, 'diagnostics[0].interpret.critical');
    assert.equal(p.line, 14);
    assert.match(p.message, /Unexpected token/);
  });

  test('a type error in CEL (a string compared with a number) is rejected', () => {
    const p = problemAt(
      problemsOf(VALID.replace('value >= 90.0', `"'high' >= 90.0"`)),
      'diagnostics[0].interpret.critical',
    );
    assert.match(p.message, /no such overload/);
  });

  test('a condition naming a diagnostic that does not exist is rejected', () => {
    const p = problemAt(
      problemsOf(
        VALID.replace(
          "diagnostics.db_connections.status == 'critical'",
          "diagnostics.db_conections.status == 'critical'",
        ),
      ),
      'decision[0].when',
    );
    assert.match(p.message, /db_conections/);
    assert.equal(p.line, 24);
  });

  test('a condition that is not a bool is rejected', () => {
    const p = problemAt(
      problemsOf(
        VALID.replace(
          "diagnostics.db_connections.status == 'critical'",
          'diagnostics.db_connections.summary',
        ),
      ),
      'decision[0].when',
    );
    assert.match(p.message, /expected a condition \(bool\)/);
  });

  test('an unknown remediation id in a decision is rejected with its index', () => {
    const p = problemAt(
      problemsOf(VALID.replace('remediate: [kill_idle]', 'remediate: [kill_idle, raise_pool]')),
      'decision[0].remediate[1]',
    );
    assert.match(p.message, /no remediation has id "raise_pool"/);
  });

  test('missing required fields are named', () => {
    const problems = problemsOf(
      VALID.replace('name: Pool exhausted\n', '').replace('    description: Kill idle connections\n', ''),
    );
    problemAt(problems, 'name');
    problemAt(problems, 'remediations[0].description');
  });

  test('an unknown diagnostic type and an unknown action are rejected', () => {
    const type = problemsOf(VALID.replace('type: shell_command', 'type: ssh_command'));
    assert.match(problemAt(type, 'diagnostics[1].type').message, /unknown diagnostic type "ssh_command"/);
    const action = problemsOf(VALID.replace('action: terminate_connections', 'action: drop_database'));
    assert.match(
      problemAt(action, 'remediations[0].action').message,
      /action drop_database is forbidden: schema changes are never automated/,
    );
  });

  test('every problem at once: schema problems do not hide CEL, config or id problems elsewhere', () => {
    const problems = problemsOf(
      VALID.replace('name: Pool exhausted\n', '')
        .replace('action: terminate_connections', 'action: drop_database')
        .replace('value >= 90.0', 'value >= ')
        .replace('argv: [df, -P, /var]', 'argv: [rm, -rf, /var]'),
    );
    problemAt(problems, 'name');
    assert.match(
      problemAt(problems, 'remediations[0].action').message,
      /action drop_database is forbidden: schema changes are never automated/,
    );
    problemAt(problems, 'diagnostics[0].interpret.critical');
    problemAt(problems, 'diagnostics[1].config.argv[0]');
    // the malformed remediation still names its id, so the decision pointing at it is not reported as well
    assert.ok(!problems.some((p) => p.path === 'decision[0].remediate[0]'));
  });

  test('a shell step whose binary is not allowlisted is rejected', () => {
    const p = problemAt(
      problemsOf(VALID.replace('argv: [df, -P, /var]', 'argv: [rm, -rf, /var]')),
      'diagnostics[1].config.argv[0]',
    );
    assert.match(p.message, /rm/);
  });

  test('a shell is refused even when allowlisted', () => {
    const problems = problemsOf(
      VALID.replace('argv: [df, -P, /var]', 'argv: [sh, -c, "df {{labels.mount}}"]'),
    );
    assert.ok(
      problems.some(
        (p) => p.path.startsWith('diagnostics[1].config.argv') && /shell|interpreter/i.test(p.message),
      ),
    );
  });

  test('a label splice attempt like $(rm -rf /) in argv is rejected', () => {
    const problems = problemsOf(VALID.replace('argv: [df, -P, /var]', 'argv: [df, "$(rm -rf /)"]'));
    const p = problemAt(problems, 'diagnostics[1].config.argv[1]');
    assert.match(p.message, /\$\(|shell/);
  });

  test('a SQL placeholder inside a quoted literal is rejected (it must be a bind parameter)', () => {
    const problems = problemsOf(
      VALID.replace('sql: SELECT 95.0 AS pct', `sql: "SELECT 95.0 AS pct WHERE 'x' = '{{labels.db}}'"`),
    );
    assert.ok(
      problems.some(
        (p) => p.path.startsWith('diagnostics[0].config') && /quote|literal|parameter/i.test(p.message),
      ),
      problems.map(formatProblem).join('\n'),
    );
  });

  test('a placeholder outside labels/annotations/incident/service is rejected', () => {
    const problems = problemsOf(VALID.replace('argv: [df, -P, /var]', 'argv: [df, "{{env.HOME}}"]'));
    assert.ok(problems.some((p) => /env\.HOME/.test(p.message)));
  });

  test('duplicate ids, bad durations, bad regex matchers and YAML syntax errors are located', () => {
    const dup = problemsOf(VALID.replace('  - id: disk', '  - id: db_connections'));
    problemAt(dup, 'diagnostics[1].id');
    const dur = problemsOf(VALID.replace('timeout: 5s', 'timeout: five seconds'));
    assert.match(problemAt(dur, 'diagnostics[0].timeout').message, /duration/);
    const re = problemsOf(VALID.replace('"~prod|staging"', '"~prod(("'));
    assert.match(problemAt(re, 'triggers[0].labels.env').message, /regular expression/);
    const yaml = problemsOf(VALID.replace('    timeout: 5s', '    timeout: [5s'));
    assert.ok(yaml.length > 0, 'a YAML error');
    const line = yaml[0]?.line ?? 0;
    assert.ok(line >= 9 && line <= 11, `the YAML error is located near the bad line 9, got ${line}`);
  });

  test('formatProblem reads file:line:column path: message', () => {
    const p = problemAt(
      problemsOf(VALID.replace('value >= 90.0', 'value >= ')),
      'diagnostics[0].interpret.critical',
    );
    assert.match(formatProblem(p), /^runbooks\/pool\.yml:14:\d+ diagnostics\[0\]\.interpret\.critical: /);
  });
});
