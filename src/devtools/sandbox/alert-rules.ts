import { readFile } from 'node:fs/promises';
import { parseDocument } from 'yaml';
import { z } from 'zod';
import { formatIssues } from '../../config-file.js';
import { AppError } from '../../errors.js';
import type { Logger } from '../../logger.js';
import { AlertTemplate, type TemplateData } from './promql/alert-template.js';
import type { Expr } from './promql/ast.js';
import { PromQLError } from './promql/errors.js';
import { evaluateInstant, type InstantSample } from './promql/evaluator.js';
import { dropMetricName, isValidLabelName, type Labels } from './promql/labels.js';
import { parseDurationMs } from './promql/lexer.js';
import { parseQuery } from './promql/parser.js';
import type { SeriesStore } from './tsdb.js';

/** How long a resolved alert is remembered (and so still reported as resolved); Prometheus' 15 minutes. */
const RESOLVED_RETENTION_MS = 15 * 60_000;
/** Firing groups are sent again this often; milliseconds (Alertmanager's default repeat_interval, 4 h). */
const DEFAULT_REPEAT_INTERVAL_MS = 4 * 3_600_000;
/** One webhook POST gives up after this; milliseconds. */
const DEFAULT_WEBHOOK_TIMEOUT_MS = 10_000;
/** Alertmanager's `group_by` for the sandbox's single route. */
const GROUP_BY = ['alertname', 'service'] as const;
/** What Alertmanager writes as `endsAt` of an alert that is still firing (Go's zero time). */
const ZERO_TIME = '0001-01-01T00:00:00Z';

// ---------------------------------------------------------------------------------------------------------------
// Rule files

const PromDuration = z.string().refine((v) => parseDurationMs(v) !== null, {
  error: 'expected a Prometheus duration like "30s", "5m" or "1h30m"',
});
/** YAML may write label values as numbers or booleans (`priority: 1`); Prometheus reads them as text. */
const LabelMap = z.record(
  z.string(),
  z.union([z.string(), z.number(), z.boolean()]).transform((v) => String(v)),
);

const RuleNode = z
  .strictObject({
    alert: z.string().min(1).optional(),
    record: z.string().min(1).optional(),
    expr: z.union([z.string().min(1), z.number()]).transform((v) => String(v)),
    for: PromDuration.optional(),
    keep_firing_for: PromDuration.optional(),
    labels: LabelMap.optional(),
    annotations: LabelMap.optional(),
  })
  .superRefine((rule, ctx) => {
    if (rule.record !== undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['record'],
        message: 'recording rules are not supported by the sandbox; use alerting rules',
      });
    } else if (rule.alert === undefined) {
      ctx.addIssue({ code: 'custom', path: ['alert'], message: "one of 'record' or 'alert' must be set" });
    }
    for (const [field, map] of [
      ['labels', rule.labels],
      ['annotations', rule.annotations],
    ] as const) {
      for (const name of Object.keys(map ?? {})) {
        if (!isValidLabelName(name)) {
          ctx.addIssue({ code: 'custom', path: [field, name], message: `invalid ${field} name: ${name}` });
        }
      }
    }
  });

const RuleGroupNode = z.strictObject({
  name: z.string().min(1),
  /** how often the group is evaluated; default: on every evaluate() call */
  interval: PromDuration.optional(),
  limit: z.number().int().nonnegative().optional(),
  rules: z.array(RuleNode).default([]),
});

/** A Prometheus rule file, as `rule_files:` entries are written. */
export const RuleFileSchema = z
  .strictObject({ groups: z.array(RuleGroupNode).default([]) })
  .superRefine((file, ctx) => {
    const seen = new Set<string>();
    file.groups.forEach((g, i) => {
      if (seen.has(g.name)) {
        ctx.addIssue({
          code: 'custom',
          path: ['groups', i, 'name'],
          message: `groupname "${g.name}" is repeated in the same file`,
        });
      }
      seen.add(g.name);
    });
  });
export type RuleFileSchema = z.infer<typeof RuleFileSchema>;

/** An alerting rule, its expression parsed and its templates compiled. */
export interface AlertRule {
  name: string;
  /** the PromQL as written */
  query: string;
  expr: Expr;
  /** milliseconds an alert stays pending before it fires */
  forMs: number;
  /** milliseconds an alert keeps firing after its expression stops returning it */
  keepFiringForMs: number;
  labels: Record<string, AlertTemplate>;
  annotations: Record<string, AlertTemplate>;
}

export interface RuleGroup {
  name: string;
  /** milliseconds between evaluations; null: on every evaluate() call */
  intervalMs: number | null;
  /** at most this many alerts per rule (0: no limit), as Prometheus' `limit` */
  limit: number;
  rules: AlertRule[];
  /** the file it came from, for messages */
  file: string;
}

/**
 * Parses and checks a Prometheus rule file: YAML shape, durations, every `expr` against the sandbox's PromQL subset,
 * every template. Throws AppError `invalid_rule_file` listing each problem as `file: path: message`.
 */
export function parseRuleFile(text: string, file: string): RuleGroup[] {
  const doc = parseDocument(text);
  if (doc.errors.length > 0) {
    throw new AppError('invalid_rule_file', `${file}: ${doc.errors.map((e) => e.message).join('; ')}`);
  }
  const raw: unknown = doc.toJS() ?? {};
  const parsed = RuleFileSchema.safeParse(raw);
  if (!parsed.success) {
    // `groups.0.rules.2.for` says little on its own: name the rule too.
    const issues = parsed.error.issues.map((issue) => {
      const [g, gi, r, ri] = issue.path;
      if (g !== 'groups' || r !== 'rules' || typeof gi !== 'number' || typeof ri !== 'number') return issue;
      const node = (raw as { groups?: { rules?: { alert?: unknown; record?: unknown }[] }[] }).groups?.[gi]
        ?.rules?.[ri];
      const name = node?.alert ?? node?.record;
      if (typeof name !== 'string') return issue;
      return { ...issue, message: `${issue.message} (in ${node?.alert ? 'alert' : 'record'} "${name}")` };
    });
    throw new AppError('invalid_rule_file', formatIssues(file, issues));
  }

  const problems: string[] = [];
  const groups = parsed.data.groups.map((g, gi): RuleGroup => {
    const rules: AlertRule[] = [];
    g.rules.forEach((r, ri) => {
      const name = r.alert ?? '';
      const where = `${file}: groups.${gi}.rules.${ri} (alert "${name}")`;
      let expr: Expr | null = null;
      try {
        expr = parseQuery(r.expr);
      } catch (err) {
        problems.push(`${where}: expr: ${(err as Error).message}`);
      }
      const compile = (field: 'labels' | 'annotations'): Record<string, AlertTemplate> => {
        const out: Record<string, AlertTemplate> = {};
        for (const [key, value] of Object.entries(r[field] ?? {})) {
          try {
            out[key] = AlertTemplate.parse(value);
          } catch (err) {
            problems.push(`${where}: ${field}.${key}: ${(err as Error).message}`);
          }
        }
        return out;
      };
      const labels = compile('labels');
      const annotations = compile('annotations');
      if (expr) {
        rules.push({
          name,
          query: r.expr,
          expr,
          forMs: r.for === undefined ? 0 : (parseDurationMs(r.for) as number),
          keepFiringForMs:
            r.keep_firing_for === undefined ? 0 : (parseDurationMs(r.keep_firing_for) as number),
          labels,
          annotations,
        });
      }
    });
    return {
      name: g.name,
      intervalMs: g.interval === undefined ? null : (parseDurationMs(g.interval) as number),
      limit: g.limit ?? 0,
      rules,
      file,
    };
  });
  if (problems.length > 0) throw new AppError('invalid_rule_file', problems.join('\n'));
  return groups;
}

/** Reads and parses a rule file (see parseRuleFile). */
export async function loadRuleFile(path: string): Promise<RuleGroup[]> {
  return parseRuleFile(await readFile(path, 'utf8'), path);
}

// ---------------------------------------------------------------------------------------------------------------
// Evaluation

export type AlertState = 'pending' | 'firing';

/** An alert that is pending or firing, as /api/v1/alerts lists it. */
export interface ActiveAlert {
  /** the rule's `alert` */
  rule: string;
  labels: Labels;
  annotations: Record<string, string>;
  state: AlertState;
  /** when the expression first returned it; unix milliseconds */
  activeAtMs: number;
  /** when it started firing; unix milliseconds */
  firedAtMs: number | null;
  /** the sample value of the latest evaluation */
  value: number;
  fingerprint: string;
}

interface TrackedAlert {
  labels: Labels;
  annotations: Record<string, string>;
  state: AlertState | 'inactive';
  value: number;
  activeAtMs: number;
  firedAtMs: number | null;
  resolvedAtMs: number | null;
  keepFiringSinceMs: number | null;
  fingerprint: string;
}

interface RuleRuntime {
  rule: AlertRule;
  group: RuleGroup;
  /** fingerprint → alert */
  active: Map<string, TrackedAlert>;
}

/** What one evaluate() call did. */
export interface EvaluationReport {
  atMs: number;
  /** groups whose rules ran (a group with an interval skips calls that come too soon) */
  groups: string[];
  /** rules whose expression failed; their alerts keep their state */
  errors: { group: string; rule: string; error: string }[];
  /** webhook POSTs made, failed ones included (they are retried on the next evaluation) */
  notifications: NotificationResult[];
}

export interface NotificationResult {
  groupKey: string;
  status: 'firing' | 'resolved';
  alerts: number;
  ok: boolean;
  error?: string;
}

export interface AlertRuleEvaluatorOptions {
  rules: RuleGroup[];
  store: SeriesStore;
  /** where the Alertmanager-format webhook goes; no notifications without it */
  webhook?: {
    url: string;
    /** sent as `Authorization: Bearer <token>` */
    token?: string;
  };
  /** `receiver` of the webhook payload; default "sandbox" */
  receiver?: string;
  /**
   * The sandbox's own URL (it plays Prometheus and Alertmanager both): the base of each alert's `generatorURL` and
   * the payload's `externalURL`; default "".
   */
  externalUrl?: string;
  /** a group that keeps firing is sent again this often; milliseconds, default 4 h */
  repeatIntervalMs?: number;
  /** one POST gives up after this; milliseconds, default 10 s */
  webhookTimeoutMs?: number;
  logger?: Pick<Logger, 'warn' | 'debug'>;
}

/**
 * Evaluates alerting rules against a SeriesStore the way Prometheus does (pending → firing after `for`, resolved
 * when the expression stops returning the alert, `keep_firing_for`) and notifies an Alertmanager-webhook receiver as
 * Alertmanager would with `group_by: [alertname, service]`, `group_wait: 0` and `repeat_interval` as configured.
 *
 * The caller drives time: call `evaluate(nowMs)` after each scrape (the demo does), or `start(intervalMs)` for a
 * built-in loop on the wall clock. evaluate() never throws; a webhook that fails is retried on the next call.
 */
export class AlertRuleEvaluator {
  readonly #store: SeriesStore;
  readonly #runtimes: RuleRuntime[];
  readonly #groupLastEvalMs = new Map<string, number>();
  readonly #notifier: AlertmanagerNotifier | null;
  readonly #externalUrl: string;
  readonly #logger: AlertRuleEvaluatorOptions['logger'];
  #timer: NodeJS.Timeout | null = null;
  #running: Promise<EvaluationReport> | null = null;
  #queued: { atMs: number; promise: Promise<EvaluationReport> } | null = null;

  constructor(opts: AlertRuleEvaluatorOptions) {
    this.#store = opts.store;
    this.#externalUrl = (opts.externalUrl ?? '').replace(/\/+$/, '');
    this.#logger = opts.logger;
    this.#runtimes = opts.rules.flatMap((group) =>
      group.rules.map((rule) => ({ rule, group, active: new Map() })),
    );
    this.#notifier = opts.webhook
      ? new AlertmanagerNotifier({
          url: opts.webhook.url,
          token: opts.webhook.token,
          receiver: opts.receiver ?? 'sandbox',
          externalUrl: this.#externalUrl,
          repeatIntervalMs: opts.repeatIntervalMs ?? DEFAULT_REPEAT_INTERVAL_MS,
          timeoutMs: opts.webhookTimeoutMs ?? DEFAULT_WEBHOOK_TIMEOUT_MS,
        })
      : null;
  }

  /**
   * Runs every due group's rules at `atMs` (unix milliseconds) and sends what changed. Never rejects. A call made
   * while an evaluation runs (a slow webhook) waits for it; further calls meanwhile are folded into that one, which
   * then evaluates at the latest time asked for.
   */
  evaluate(atMs: number): Promise<EvaluationReport> {
    if (this.#queued) {
      this.#queued.atMs = Math.max(this.#queued.atMs, atMs);
      return this.#queued.promise;
    }
    if (!this.#running) return this.#launch(atMs);
    const promise = this.#running.then(() => {
      const latest = this.#queued?.atMs ?? atMs;
      this.#queued = null;
      return this.#launch(latest);
    });
    this.#queued = { atMs, promise };
    return promise;
  }

  #launch(atMs: number): Promise<EvaluationReport> {
    const run: Promise<EvaluationReport> = this.#evaluate(atMs).finally(() => {
      if (this.#running === run) this.#running = null;
    });
    this.#running = run;
    return run;
  }

  async #evaluate(atMs: number): Promise<EvaluationReport> {
    const report: EvaluationReport = { atMs, groups: [], errors: [], notifications: [] };
    try {
      for (const group of new Set(this.#runtimes.map((r) => r.group))) {
        const last = this.#groupLastEvalMs.get(group.name);
        // 10% slack so a loop with the group's own period is not pushed to every other tick by timer jitter.
        if (group.intervalMs !== null && last !== undefined && atMs - last < group.intervalMs * 0.9) continue;
        this.#groupLastEvalMs.set(group.name, atMs);
        report.groups.push(group.name);
        for (const runtime of this.#runtimes) {
          if (runtime.group !== group) continue;
          const error = this.#evaluateRule(runtime, atMs);
          if (error) report.errors.push({ group: group.name, rule: runtime.rule.name, error });
        }
      }
      if (this.#notifier) {
        const firing = this.#runtimes.flatMap((r) =>
          [...r.active.values()]
            .filter((a) => a.state === 'firing')
            .map((a) => ({
              fingerprint: a.fingerprint,
              labels: a.labels,
              annotations: a.annotations,
              startsAtMs: a.firedAtMs ?? a.activeAtMs,
              generatorUrl: `${this.#externalUrl}/graph?g0.expr=${queryEscape(r.rule.query)}&g0.tab=1`,
            })),
        );
        report.notifications = await this.#notifier.sync(firing, atMs);
        for (const n of report.notifications) {
          if (!n.ok)
            this.#logger?.warn({ groupKey: n.groupKey, err: n.error }, 'sandbox alerts: webhook failed');
        }
      }
    } catch (err) {
      // A bug here must not kill the caller's loop; report it like a rule error.
      report.errors.push({ group: '', rule: '', error: err instanceof Error ? err.message : String(err) });
    }
    return report;
  }

  /** Prometheus' AlertingRule.Eval; returns an error message, or null. */
  #evaluateRule(runtime: RuleRuntime, atMs: number): string | null {
    const { rule } = runtime;
    let samples: InstantSample[];
    try {
      const value = evaluateInstant(rule.expr, this.#store, atMs);
      if (value.type === 'vector') samples = value.samples;
      else if (value.type === 'scalar') samples = [{ labels: {}, value: value.value }];
      else throw new PromQLError('execution', 'rule result is not a vector or scalar');
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      this.#logger?.debug({ rule: rule.name, err: message }, 'sandbox alerts: rule failed');
      return message;
    }

    const current = new Map<string, TrackedAlert>();
    for (const sample of samples) {
      const sampleLabels = dropMetricName(sample.labels);
      const data: TemplateData = {
        labels: sampleLabels,
        value: sample.value,
        externalUrl: this.#externalUrl,
      };
      const labels: Record<string, string> = { ...sampleLabels };
      for (const [name, template] of Object.entries(rule.labels)) {
        const value = expand(template, data);
        if (value === '') delete labels[name];
        else labels[name] = value;
      }
      labels.alertname = rule.name;
      const annotations: Record<string, string> = {};
      for (const [name, template] of Object.entries(rule.annotations))
        annotations[name] = expand(template, data);
      const fingerprint = alertFingerprint(labels);
      if (current.has(fingerprint)) {
        return 'vector contains metrics with the same labelset after applying alert labels';
      }
      current.set(fingerprint, {
        labels,
        annotations,
        state: 'pending',
        value: sample.value,
        activeAtMs: atMs,
        firedAtMs: null,
        resolvedAtMs: null,
        keepFiringSinceMs: null,
        fingerprint,
      });
    }
    if (runtime.group.limit > 0 && current.size > runtime.group.limit) {
      // Prometheus drops the rule's alerts when it exceeds the group's limit.
      runtime.active.clear();
      return `exceeded limit of ${runtime.group.limit} with ${current.size} alerts`;
    }

    for (const [fingerprint, alert] of current) {
      const existing = runtime.active.get(fingerprint);
      if (existing && existing.state !== 'inactive') {
        existing.value = alert.value;
        existing.annotations = alert.annotations;
        continue;
      }
      runtime.active.set(fingerprint, alert);
    }
    for (const [fingerprint, alert] of runtime.active) {
      if (!current.has(fingerprint)) {
        let keepFiring = false;
        if (alert.state === 'firing' && rule.keepFiringForMs > 0) {
          alert.keepFiringSinceMs ??= atMs;
          keepFiring = atMs - alert.keepFiringSinceMs < rule.keepFiringForMs;
        }
        if (
          alert.state === 'pending' ||
          (alert.resolvedAtMs !== null && atMs - alert.resolvedAtMs > RESOLVED_RETENTION_MS)
        ) {
          runtime.active.delete(fingerprint);
        }
        if (alert.state !== 'inactive' && !keepFiring) {
          alert.state = 'inactive';
          alert.resolvedAtMs = atMs;
        }
        if (!keepFiring) continue;
      } else {
        alert.keepFiringSinceMs = null;
      }
      if (alert.state === 'pending' && atMs - alert.activeAtMs >= rule.forMs) {
        alert.state = 'firing';
        alert.firedAtMs = atMs;
      }
    }
    return null;
  }

  /** Alerts now pending or firing, by rule then labels. */
  alerts(): ActiveAlert[] {
    return this.#runtimes.flatMap((r) =>
      [...r.active.values()]
        .filter((a): a is TrackedAlert & { state: AlertState } => a.state !== 'inactive')
        .map((a) => ({
          rule: r.rule.name,
          labels: a.labels,
          annotations: a.annotations,
          state: a.state,
          activeAtMs: a.activeAtMs,
          firedAtMs: a.firedAtMs,
          value: a.value,
          fingerprint: a.fingerprint,
        })),
    );
  }

  /** Evaluates every `intervalMs` on the wall clock until stop(); the timer does not keep the process alive. */
  start(intervalMs: number): void {
    if (this.#timer) return;
    this.#timer = setInterval(() => void this.evaluate(Date.now()), intervalMs);
    this.#timer.unref();
  }

  /** Stops the loop of start() and waits for an evaluation in flight. */
  async stop(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
    await this.#queued?.promise;
    await this.#running;
  }
}

/** Go's url.QueryEscape, as Prometheus builds `generatorURL`: spaces as `+`, and `!'()*` escaped too. */
function queryEscape(text: string): string {
  return encodeURIComponent(text)
    .replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`)
    .replaceAll('%20', '+');
}

/** A template's text; an error shows in the text, as Prometheus does, rather than dropping the alert. */
function expand(template: AlertTemplate, data: TemplateData): string {
  try {
    return template.render(data);
  } catch (err) {
    return `<error expanding template: ${(err as Error).message}>`;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Alertmanager webhook

const FNV_OFFSET = 14695981039346656037n;
const FNV_PRIME = 1099511628211n;
const MASK_64 = (1n << 64n) - 1n;

/**
 * Alertmanager's fingerprint of a label set (prometheus/common `LabelSet.Fingerprint`): FNV-1a 64 over the sorted
 * names and values, each followed by a 0xff byte, as 16 hex digits.
 */
export function alertFingerprint(labels: Labels): string {
  let hash = FNV_OFFSET;
  const add = (bytes: Uint8Array) => {
    for (const b of bytes) hash = ((hash ^ BigInt(b)) * FNV_PRIME) & MASK_64;
  };
  const encoder = new TextEncoder();
  const separator = new Uint8Array([0xff]);
  for (const name of Object.keys(labels).sort()) {
    add(encoder.encode(name));
    add(separator);
    add(encoder.encode(labels[name] ?? ''));
    add(separator);
  }
  return hash.toString(16).padStart(16, '0');
}

/** Go's RFC3339Nano in UTC, as Alertmanager writes times: no fraction when it is zero. */
export function formatRfc3339(ms: number): string {
  return new Date(ms).toISOString().replace(/\.?0+Z$/, 'Z');
}

/** One alert of the webhook payload. */
export interface WebhookAlert {
  status: 'firing' | 'resolved';
  labels: Record<string, string>;
  annotations: Record<string, string>;
  startsAt: string;
  endsAt: string;
  generatorURL: string;
  fingerprint: string;
}

/** Alertmanager's webhook payload, version 4. */
export interface WebhookPayload {
  receiver: string;
  status: 'firing' | 'resolved';
  alerts: WebhookAlert[];
  groupLabels: Record<string, string>;
  commonLabels: Record<string, string>;
  commonAnnotations: Record<string, string>;
  externalURL: string;
  version: '4';
  groupKey: string;
  truncatedAlerts: number;
}

interface FiringAlert {
  fingerprint: string;
  labels: Labels;
  annotations: Record<string, string>;
  startsAtMs: number;
  generatorUrl: string;
}

interface GroupedAlert extends FiringAlert {
  status: 'firing' | 'resolved';
  endsAtMs: number | null;
}

interface NotificationGroup {
  key: string;
  labels: Record<string, string>;
  alerts: Map<string, GroupedAlert>;
  /** bumped by every change that needs a notification */
  version: number;
  /** the version the receiver has acknowledged */
  sentVersion: number;
  lastSentMs: number | null;
}

/** Alertmanager's aggregation groups and webhook sending, reduced to what one receiver needs. */
class AlertmanagerNotifier {
  readonly #groups = new Map<string, NotificationGroup>();

  constructor(
    private readonly opts: {
      url: string;
      token: string | undefined;
      receiver: string;
      externalUrl: string;
      repeatIntervalMs: number;
      timeoutMs: number;
    },
  ) {}

  /** Takes the alerts firing now, marks the ones that stopped as resolved, and sends each group that is due. */
  async sync(firing: readonly FiringAlert[], atMs: number): Promise<NotificationResult[]> {
    const firingNow = new Set(firing.map((a) => a.fingerprint));
    for (const group of this.#groups.values()) {
      for (const alert of group.alerts.values()) {
        if (alert.status === 'firing' && !firingNow.has(alert.fingerprint)) {
          alert.status = 'resolved';
          alert.endsAtMs = atMs;
          group.version++;
        }
      }
    }
    for (const alert of firing) {
      const group = this.#groupOf(alert.labels);
      const known = group.alerts.get(alert.fingerprint);
      if (!known || known.status === 'resolved') {
        group.alerts.set(alert.fingerprint, { ...alert, status: 'firing', endsAtMs: null });
        group.version++;
      } else {
        known.annotations = alert.annotations;
      }
    }
    const due = [...this.#groups.values()].filter(
      (g) =>
        g.version !== g.sentVersion ||
        ([...g.alerts.values()].some((a) => a.status === 'firing') &&
          g.lastSentMs !== null &&
          atMs - g.lastSentMs >= this.opts.repeatIntervalMs),
    );
    return Promise.all(due.map((g) => this.#send(g, atMs)));
  }

  #groupOf(labels: Labels): NotificationGroup {
    const groupLabels: Record<string, string> = {};
    for (const name of GROUP_BY) {
      const value = labels[name];
      if (value !== undefined && value !== '') groupLabels[name] = value;
    }
    const key = `{}:{${Object.keys(groupLabels)
      .sort()
      .map((k) => `${k}=${JSON.stringify(groupLabels[k])}`)
      .join(', ')}}`;
    let group = this.#groups.get(key);
    if (!group) {
      group = { key, labels: groupLabels, alerts: new Map(), version: 0, sentVersion: 0, lastSentMs: null };
      this.#groups.set(key, group);
    }
    return group;
  }

  async #send(group: NotificationGroup, atMs: number): Promise<NotificationResult> {
    const version = group.version;
    const alerts = [...group.alerts.values()].sort((a, b) =>
      a.status === b.status ? 0 : a.status === 'firing' ? -1 : 1,
    );
    const payload = buildPayload(group, alerts, this.opts);
    const result: NotificationResult = {
      groupKey: group.key,
      status: payload.status,
      alerts: alerts.length,
      ok: false,
    };
    try {
      const headers: Record<string, string> = {
        'content-type': 'application/json',
        'user-agent': 'Alertmanager/sandbox',
      };
      if (this.opts.token) headers.authorization = `Bearer ${this.opts.token}`;
      const res = await fetch(this.opts.url, {
        method: 'POST',
        headers,
        body: JSON.stringify(payload),
        signal: AbortSignal.timeout(this.opts.timeoutMs),
      });
      await res.arrayBuffer().catch(() => undefined);
      if (!res.ok) {
        result.error = `HTTP ${res.status}`;
        return result;
      }
    } catch (err) {
      result.error =
        err instanceof Error ? (err.cause instanceof Error ? err.cause.message : err.message) : String(err);
      return result;
    }
    result.ok = true;
    group.lastSentMs = atMs;
    if (group.version === version) group.sentVersion = version;
    // Resolved alerts are forgotten once delivered (unless they fired again meanwhile).
    for (const sent of alerts) {
      if (sent.status === 'resolved' && group.alerts.get(sent.fingerprint)?.status === 'resolved') {
        group.alerts.delete(sent.fingerprint);
      }
    }
    if (group.alerts.size === 0 && group.version === group.sentVersion) this.#groups.delete(group.key);
    return result;
  }
}

function buildPayload(
  group: NotificationGroup,
  alerts: GroupedAlert[],
  opts: { receiver: string; externalUrl: string },
): WebhookPayload {
  const common = (pick: (a: GroupedAlert) => Record<string, string>): Record<string, string> => {
    const [first, ...rest] = alerts;
    if (!first) return {};
    const out: Record<string, string> = {};
    for (const [k, v] of Object.entries(pick(first))) {
      if (rest.every((a) => pick(a)[k] === v)) out[k] = v;
    }
    return out;
  };
  return {
    receiver: opts.receiver,
    status: alerts.some((a) => a.status === 'firing') ? 'firing' : 'resolved',
    alerts: alerts.map((a) => ({
      status: a.status,
      labels: { ...a.labels },
      annotations: a.annotations,
      startsAt: formatRfc3339(a.startsAtMs),
      endsAt: a.endsAtMs === null ? ZERO_TIME : formatRfc3339(a.endsAtMs),
      generatorURL: a.generatorUrl,
      fingerprint: a.fingerprint,
    })),
    groupLabels: group.labels,
    commonLabels: common((a) => ({ ...a.labels })),
    commonAnnotations: common((a) => a.annotations),
    externalURL: opts.externalUrl,
    version: '4',
    groupKey: group.key,
    truncatedAlerts: 0,
  };
}
