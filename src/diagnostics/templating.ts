import { AppError } from '../errors.js';

/**
 * Values a runbook may splice into a step's config: `{{labels.pod}}`, `{{annotations.summary}}`,
 * `{{incident.service}}`, `{{incident.id}}`, `{{service.health_url}}` (from the targets file's `services`).
 */
export interface TemplateVars {
  labels: Record<string, string>;
  annotations: Record<string, string>;
  incident: Record<string, string>;
  service: Record<string, string>;
}

export const TEMPLATE_ROOTS = ['labels', 'annotations', 'incident', 'service'] as const;

/** A placeholder names a value the incident does not have, or a value is unsafe where it would land. */
export class TemplateError extends AppError {
  constructor(message: string) {
    super('template_error', message);
    this.name = 'TemplateError';
  }
}

/** `{{ name }}` with the name captured; global (use with matchAll / replace, which do not keep state on it) */
export const PLACEHOLDER = /\{\{\s*([^{}]*?)\s*\}\}/g;
const NAME = /^(labels|annotations|incident|service)\.([A-Za-z_][A-Za-z0-9_.-]*)$/;

/**
 * Why a regular expression written with placeholders would not compile once filled (each placeholder stands for a
 * plain, escaped value); null when it compiles. For load-time checks of `bodyMatch`, log patterns and the like.
 */
export function regExpTemplateProblem(source: string): string | null {
  try {
    new RegExp(source.replace(PLACEHOLDER, 'x'));
    return null;
  } catch (err) {
    return (err as Error).message;
  }
}

/** Placeholders of a string, for load-time checks: `{ name: 'labels.pod', valid: true }`. */
export function placeholdersOf(text: string): { name: string; valid: boolean }[] {
  return [...text.matchAll(PLACEHOLDER)].map((m) => ({ name: m[1] ?? '', valid: NAME.test(m[1] ?? '') }));
}

/** The value of one placeholder name, or a TemplateError naming what is missing. */
export function lookupVar(vars: TemplateVars, name: string): string {
  const match = NAME.exec(name);
  if (!match) {
    throw new TemplateError(
      `placeholder {{${name}}} is not one of labels.*, annotations.*, incident.*, service.*`,
    );
  }
  const root = match[1] as keyof TemplateVars;
  const key = match[2] as string;
  // own keys only: `{{labels.constructor}}` on an incident without that label is missing, not Object's constructor
  const value = Object.hasOwn(vars[root], key) ? vars[root][key] : undefined;
  if (value === undefined)
    throw new TemplateError(`{{${name}}}: the incident has no ${root.replace(/s$/, '')} "${key}"`);
  return value;
}

/**
 * Replaces every placeholder of `text` with `escape(value)`; the escaper decides what is safe where the value
 * lands and throws TemplateError when nothing is.
 */
export function renderTemplate(
  text: string,
  vars: TemplateVars,
  escapeValue: (value: string, name: string) => string,
): string {
  return text.replace(PLACEHOLDER, (_, name: string) =>
    escapeValue(lookupVar(vars, name.trim()), name.trim()),
  );
}

/**
 * Inside a double-quoted PromQL / LogQL string literal (`job="{{labels.job}}"`): backslash, double quote and control
 * characters are escaped the way their Go-style lexers read them. A quote that could close a single-quoted or
 * back-quoted literal is refused rather than guessed at, so a value can never end the string it was put in.
 */
export function escapeQueryString(value: string, name = 'value'): string {
  if (/['`]/.test(value))
    throw new TemplateError(`{{${name}}} contains a quote (' or \`) and cannot go into a query`);
  return value.replace(/[\\"\n\r\t]/g, (c) =>
    c === '\n' ? '\\n' : c === '\r' ? '\\r' : c === '\t' ? '\\t' : `\\${c}`,
  );
}

/** Inside a regular expression: the value matches itself literally. */
export function escapeRegExp(value: string): string {
  return value.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}

/** Inside a URL (path segment or query value). */
export function escapeUrlComponent(value: string): string {
  return encodeURIComponent(value);
}

/**
 * One argv element of a command run without a shell: no quoting is needed (nothing parses it), but a value that
 * starts with `-` would be read as an option, and NUL cannot be passed, so both are refused.
 */
export function checkArgument(value: string, name: string): string {
  if (value.startsWith('-'))
    throw new TemplateError(`{{${name}}} starts with "-" and would be read as an option`);
  if (value.includes('\0')) throw new TemplateError(`{{${name}}} contains a NUL byte`);
  return value;
}

/** Renders every string in a JSON-like value with one escaper (for configs whose strings all land in one context). */
export function renderDeep<T>(
  value: T,
  vars: TemplateVars,
  escapeValue: (value: string, name: string) => string,
): T {
  if (typeof value === 'string') return renderTemplate(value, vars, escapeValue) as T;
  if (Array.isArray(value)) return value.map((v) => renderDeep(v, vars, escapeValue)) as T;
  if (value && typeof value === 'object') {
    return Object.fromEntries(
      Object.entries(value as Record<string, unknown>).map(([k, v]) => [k, renderDeep(v, vars, escapeValue)]),
    ) as T;
  }
  return value;
}
