import { createHash } from 'node:crypto';
import { z } from 'zod';

export const Severity = z.enum(['critical', 'high', 'warning', 'info']);
export type Severity = z.infer<typeof Severity>;

export const AlertStatus = z.enum(['firing', 'resolved']);
export type AlertStatus = z.infer<typeof AlertStatus>;

/** One alert, whatever sent it: what incidents/ works with. */
export interface NormalizedAlert {
  source: string;
  /** stable identity of the alert across deliveries (Alertmanager's label hash when the sender gives one) */
  fingerprint: string;
  name: string;
  service: string;
  severity: Severity;
  status: AlertStatus;
  summary: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  startsAt: Date;
  /** false when the sender gave no start time (startsAt is then the receive time, and does not tell repeats apart) */
  startsAtGiven: boolean;
  endsAt: Date | null;
  generatorUrl: string | null;
}

/** Label/annotation maps: string keys to string values, as Prometheus and Grafana send them. */
export const StringMap = z.record(z.string(), z.string());

const SEVERITY_ALIASES: Record<string, Severity> = {
  critical: 'critical',
  crit: 'critical',
  page: 'critical',
  p1: 'critical',
  sev1: 'critical',
  sev0: 'critical',
  emergency: 'critical',
  fatal: 'critical',
  high: 'high',
  error: 'high',
  major: 'high',
  p2: 'high',
  sev2: 'high',
  warning: 'warning',
  warn: 'warning',
  medium: 'warning',
  minor: 'warning',
  p3: 'warning',
  sev3: 'warning',
  info: 'info',
  informational: 'info',
  low: 'info',
  none: 'info',
  p4: 'info',
  p5: 'info',
  sev4: 'info',
};

/** Severity from the usual labels (`severity`, `priority`, `level`); unknown values count as warning. */
export function severityFromLabels(labels: Record<string, string>, fallback: Severity = 'warning'): Severity {
  for (const key of ['severity', 'priority', 'level']) {
    const value = labels[key];
    if (value === undefined) continue;
    const alias = value.trim().toLowerCase();
    // own keys only: a label value like "constructor" must not find Object.prototype's members
    if (Object.hasOwn(SEVERITY_ALIASES, alias)) return SEVERITY_ALIASES[alias] as Severity;
  }
  return fallback;
}

/** The service an alert is about, from the labels teams commonly use for it. */
export function serviceFromLabels(labels: Record<string, string>): string {
  for (const key of [
    'service',
    'app',
    'application',
    'app_kubernetes_io_name',
    'job',
    'container',
    'namespace',
  ]) {
    const value = labels[key]?.trim();
    if (value) return value.slice(0, 200);
  }
  return 'unknown';
}

/** A fingerprint for senders that give none: a hash of source and the sorted label set. */
export function fingerprintOf(source: string, labels: Record<string, string>): string {
  const hash = createHash('sha256');
  hash.update(source);
  for (const key of Object.keys(labels).sort()) hash.update(`\0${key}\0${labels[key]}`);
  return hash.digest('hex').slice(0, 16);
}

/** Years RFC 3339 can write and Postgres can store (it has no year 0, and JS dates past 9999 print as `+010000`). */
function isStorableYear(date: Date): boolean {
  const year = date.getUTCFullYear();
  return year >= 1 && year <= 9999;
}

/** Alertmanager and Grafana send `0001-01-01T00:00:00Z` for "no end time"; an unstorable year means none either. */
export function parseEndsAt(value: string | undefined | null): Date | null {
  if (!value) return null;
  const date = new Date(value);
  return Number.isNaN(date.getTime()) || date.getUTCFullYear() <= 1 || !isStorableYear(date) ? null : date;
}

/** RFC 3339 timestamp as senders write it (offsets allowed, fractional seconds of any length), years 0001–9999. */
export const Timestamp = z.string().refine(
  (v) => {
    const date = new Date(v);
    return !Number.isNaN(date.getTime()) && isStorableYear(date);
  },
  { error: 'expected an RFC 3339 timestamp (years 0001–9999)' },
);
