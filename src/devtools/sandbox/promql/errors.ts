import { AppError } from '../../../errors.js';

/**
 * Why a query failed, in the Prometheus API's own `errorType` words: `bad_data` for a query that does not parse or
 * type-check (HTTP 400), `execution` for one that fails while it runs, e.g. a many-to-many match (HTTP 422).
 */
export type PromQLErrorType = 'bad_data' | 'execution';

/** A PromQL parse or evaluation error; `code` is `promql_bad_data` or `promql_execution`. */
export class PromQLError extends AppError {
  constructor(
    readonly errorType: PromQLErrorType,
    message: string,
  ) {
    super(`promql_${errorType}`, message);
    this.name = 'PromQLError';
  }
}

/** `line:column` (both from 1) of a character offset, as Prometheus prefixes its parse errors. */
export function positionOf(input: string, offset: number): string {
  let line = 1;
  let lineStart = 0;
  for (let i = 0; i < offset && i < input.length; i++) {
    if (input[i] === '\n') {
      line++;
      lineStart = i + 1;
    }
  }
  return `${line}:${offset - lineStart + 1}`;
}
