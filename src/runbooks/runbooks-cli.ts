import { readFile } from 'node:fs/promises';
import { z } from 'zod';
import { ALERT_SOURCES } from '../alerts/webhook-routes.js';
import type { AnyCollector } from '../diagnostics/collector.js';
import { redactSecrets } from '../diagnostics/redact.js';
import { COLLECTORS } from '../diagnostics/registry.js';
import { loadTargets } from '../diagnostics/targets.js';
import type { TemplateVars } from '../diagnostics/templating.js';
import { EXECUTORS } from '../remediation/registry.js';
import { DEFAULT_POLICY, loadPolicy, resolveStepPolicy } from '../safety/policy.js';
import { decide } from './decide.js';
import { errorFinding, type Finding, interpretOutput } from './interpret.js';
import { formatProblem, type LoadedRunbook, loadRunbooks } from './loader.js';
import type { MatchableAlert } from './matcher.js';
import { buildTemplateVars } from './vars.js';

export interface CliIo {
  out(text: string): void;
  err(text: string): void;
}

/** `ai-sre runbooks validate [paths…]`: every problem with file, line and field path; 1 when there is any. */
export async function validateRunbooks(paths: string[], targetsFile: string, io: CliIo): Promise<number> {
  const targets = await loadTargets(targetsFile);
  const { runbooks, problems } = await loadRunbooks(paths, {
    collectors: COLLECTORS,
    targets,
    executors: EXECUTORS,
  });
  for (const p of problems) io.err(`${formatProblem(p)}\n`);
  const files = new Set(problems.map((p) => p.file)).size;
  if (problems.length > 0) {
    io.err(
      `${problems.length} problem${problems.length === 1 ? '' : 's'} in ${files} file${files === 1 ? '' : 's'}\n`,
    );
    return 1;
  }
  io.out(
    `${runbooks.length} runbook${runbooks.length === 1 ? '' : 's'} valid: ${runbooks.map((r) => r.runbook.id).join(', ')}\n`,
  );
  return 0;
}

/** A recorded or made-up result per diagnostic id: a finding (with status), a collector output, or an error. */
const RecordedResults = z.record(
  z.string(),
  z.union([
    z.strictObject({ error: z.string() }),
    z.object({
      status: z.enum(['healthy', 'warning', 'critical', 'error']).optional(),
      value: z.union([z.number(), z.string(), z.boolean(), z.null()]).default(null),
      result: z.record(z.string(), z.unknown()).default({}),
      summary: z.string().optional(),
    }),
  ]),
);

/** The first alert of any payload a sender would post (generic, Alertmanager, Grafana). */
function alertFrom(body: unknown): {
  alert: MatchableAlert;
  service: string;
  severity: string;
  title: string;
} {
  for (const source of ALERT_SOURCES) {
    const parsed = source.parse(body);
    if (!parsed.success) continue;
    const first = source.normalize(parsed.data as never)[0];
    if (!first) continue;
    return {
      alert: { name: first.name, status: first.status, labels: first.labels, annotations: first.annotations },
      service: first.service,
      severity: first.severity,
      title: first.summary || first.name,
    };
  }
  throw new Error('--alert: not a generic, Alertmanager or Grafana alert payload');
}

/**
 * `ai-sre runbooks dry-run <id> --alert alert.json [--diagnostics results.json]`: renders the diagnostics the runbook
 * would run for that alert and, given results, the decision and plan. Reads files only; touches nothing.
 */
export async function dryRunRunbook(
  opts: {
    id: string;
    alertFile: string;
    diagnosticsFile?: string;
    runbooksDir: string;
    targetsFile: string;
    /** the safety policy: each planned step is shown with the tier and mode it would get; default none */
    safetyFile?: string;
  },
  io: CliIo,
): Promise<number> {
  const targets = await loadTargets(opts.targetsFile);
  const policy = opts.safetyFile ? await loadPolicy(opts.safetyFile) : DEFAULT_POLICY;
  const { runbooks, problems } = await loadRunbooks([opts.runbooksDir], {
    collectors: COLLECTORS,
    targets,
    executors: EXECUTORS,
  });
  const loaded = runbooks.find((r) => r.runbook.id === opts.id);
  if (!loaded) {
    const invalid = problems.filter((p) => p.file.includes(opts.id));
    for (const p of invalid) io.err(`${formatProblem(p)}\n`);
    io.err(`no valid runbook "${opts.id}" (have: ${runbooks.map((r) => r.runbook.id).join(', ')})\n`);
    return 1;
  }
  const { alert, service, severity, title } = alertFrom(JSON.parse(await readFile(opts.alertFile, 'utf8')));
  const vars = buildTemplateVars({ id: 0, service, severity, title, labels: { service } }, [alert], targets);
  const { runbook } = loaded;
  io.out(`Runbook ${runbook.id}${runbook.version ? ` v${runbook.version}` : ''} — ${runbook.name}\n`);
  io.out(`  sha256 ${loaded.hash}\n  file ${loaded.file}\n`);
  io.out(`Alert ${alert.name} (${severity}) for ${service}\n\nDiagnostics (run in parallel):\n`);
  for (const step of runbook.diagnostics) {
    const collector = COLLECTORS.get(step.type) as AnyCollector;
    io.out(
      `  ${step.id}  ${step.type}  timeout ${step.timeout}${step.description ? `  — ${step.description}` : ''}\n`,
    );
    try {
      const rendered = collector.render(collector.config.parse(step.config), vars);
      io.out(`    ${JSON.stringify(rendered)}\n`);
    } catch (err) {
      io.out(`    ! would fail: ${(err as Error).message}\n`);
    }
  }
  if (!opts.diagnosticsFile) {
    io.out('\nDecision tree (first confirmed wins; none → escalate):\n');
    const ordered = runbook.decision
      .map((h, i) => ({ h, i }))
      .sort((a, b) => a.h.likelihood - b.h.likelihood || a.i - b.i);
    for (const { h } of ordered) {
      io.out(`  [${h.likelihood}] ${h.id}: ${h.description}\n      when ${h.when}\n`);
      io.out(`      → ${h.escalate ? `escalate (${h.escalate.reason})` : h.remediate.join(', then ')}\n`);
    }
    io.out(`  otherwise → escalate${runbook.escalation.team ? ` to ${runbook.escalation.team}` : ''}\n`);
    io.out(
      '\nPass --diagnostics results.json ({"<id>": {"value": …, "result": {…}}}) to see the decision.\n',
    );
    return 0;
  }
  const recorded = RecordedResults.parse(JSON.parse(await readFile(opts.diagnosticsFile, 'utf8')));
  const findings = findingsFrom(loaded, recorded, vars);
  io.out('\nFindings:\n');
  for (const step of runbook.diagnostics) {
    const f = findings[step.id];
    io.out(
      `  ${step.id}: ${f ? `${f.status} — ${f.summary}${f.error && f.error !== f.summary ? ` (${f.error})` : ''}` : 'no result (counts as error)'}\n`,
    );
  }
  const decision = decide(runbook, findings, vars);
  io.out('\nHypotheses tried:\n');
  for (const t of decision.tried) {
    io.out(
      `  [${t.likelihood}] ${t.id}: ${t.confirmed === null ? `could not evaluate (${t.error})` : t.confirmed ? 'confirmed' : 'not confirmed'}\n`,
    );
  }
  io.out(`\nDecision: ${decision.text}\n`);
  if (decision.plan.length > 0) {
    io.out('Plan (gated by the safety policy):\n');
    decision.plan.forEach((s, i) => {
      const gate = resolveStepPolicy(policy, {
        action: s.action,
        requiresApproval: s.requiresApproval,
        service,
        runbookId: runbook.id,
      });
      const what =
        gate.mode === 'shadow'
          ? 'dry run only'
          : gate.tier === 'safe'
            ? 'runs on its own'
            : gate.tier === 'guarded'
              ? `waits for approval (${gate.approvers.join(', ') || 'nobody may approve: escalates'})`
              : 'refused';
      io.out(`  ${i + 1}. ${s.description} [${s.action}] ${gate.tier} · ${gate.mode} → ${what}\n`);
      const executor = EXECUTORS.get(s.action);
      if (!executor) return;
      try {
        const rendered = executor.render(executor.config.parse(s.config), vars);
        const d = executor.describe(rendered, targets, { id: 0, service, severity, title });
        io.out(`     target ${d.target}\n     ${redactSecrets(JSON.stringify(rendered))}\n`);
      } catch (err) {
        io.out(`     ! would be refused: ${(err as Error).message}\n`);
      }
    });
  }
  return 0;
}

function findingsFrom(
  loaded: LoadedRunbook,
  recorded: z.infer<typeof RecordedResults>,
  vars: TemplateVars,
): Record<string, Finding> {
  const out: Record<string, Finding> = {};
  for (const step of loaded.runbook.diagnostics) {
    const r = recorded[step.id];
    if (!r) continue;
    if ('error' in r) {
      out[step.id] = errorFinding(r.error);
      continue;
    }
    const collector = COLLECTORS.get(step.type) as AnyCollector;
    const output = { value: r.value, result: r.result, summary: r.summary ?? String(r.value) };
    out[step.id] = r.status
      ? { ...output, status: r.status, error: null }
      : interpretOutput(step, collector.valueType, output, vars);
  }
  return out;
}
