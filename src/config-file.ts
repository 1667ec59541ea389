import { readFile } from 'node:fs/promises';
import { parseDocument } from 'yaml';
import type { z } from 'zod';

/** A deployment's YAML file (targets, safety policy, on-call): its text, or null when it does not exist. */
export async function readOptionalFile(file: string): Promise<string | null> {
  try {
    return await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
}

/** zod issues as one `file: field.path: message` line each. */
export function formatIssues(file: string, issues: readonly z.core.$ZodIssue[]): string {
  return issues.map((i) => `${file}: ${i.path.join('.') || '(root)'}: ${i.message}`).join('\n');
}

/**
 * A YAML file's content as plain values. Syntax errors, and what only resolving the document finds (an alias to a
 * missing anchor, an alias bomb past yaml's maxAliasCount), become the error `fail` makes of `file: message` lines.
 */
export function yamlContent(text: string, file: string, fail: (message: string) => Error): unknown {
  const doc = parseDocument(text);
  if (doc.errors.length > 0) throw fail(doc.errors.map((e) => `${file}: ${e.message}`).join('\n'));
  try {
    return doc.toJS();
  } catch (err) {
    throw fail(`${file}: ${(err as Error).message}`);
  }
}
