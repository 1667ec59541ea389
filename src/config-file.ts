import { readFile } from 'node:fs/promises';
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
