import type { AttemptRecord, PagerOutcome } from './pager.js';

/** How a pager retries one call. */
export interface RetryPolicy {
  /** total tries, the first included; at least 1 */
  maxAttempts: number;
  /** ms; the first retry waits up to this, doubling each time (full jitter) */
  backoffBaseMs: number;
  /** ms; ceiling for one wait, a server's Retry-After included */
  backoffMaxMs: number;
}

/** What one try of a call came to. `retry` is a failure worth another try (429, 5xx, network, timeout). */
export type TryResult =
  | { kind: 'ok'; status: number | null; externalRef?: string }
  | { kind: 'retry'; status: number | null; error: string; retryAfterMs?: number }
  | { kind: 'fail'; status: number | null; error: string };

/** Injected so tests can run without real waiting or randomness. */
export interface RetryClock {
  sleep?: (ms: number) => Promise<void>;
  /** uniform in [0, 1) */
  random?: () => number;
  now?: () => Date;
}

const sleepMs = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * ms to wait before try `attempt + 1` after try `attempt` (1-based) failed: "full jitter" (a uniform pick in
 * [0, min(max, base·2^(attempt-1))]), so many bots paging at once after an outage do not retry in lockstep.
 */
export function backoffDelayMs(
  attempt: number,
  policy: RetryPolicy,
  random: () => number = Math.random,
): number {
  const ceiling = Math.min(policy.backoffMaxMs, policy.backoffBaseMs * 2 ** (attempt - 1));
  return Math.floor(random() * ceiling);
}

/**
 * A `Retry-After` header (seconds, or an HTTP date) as ms from `now`; undefined when absent or unreadable.
 */
export function parseRetryAfterMs(
  header: string | null | undefined,
  now: Date = new Date(),
): number | undefined {
  if (header === null || header === undefined || header.trim() === '') return undefined;
  const trimmed = header.trim();
  if (/^\d+(\.\d+)?$/.test(trimmed)) return Math.round(Number(trimmed) * 1000);
  const at = Date.parse(trimmed);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, at - now.getTime());
}

/**
 * Runs `tryOnce` until it succeeds, fails for good, or `policy.maxAttempts` tries are spent, and returns every try.
 * A server's Retry-After is honoured but cut to `backoffMaxMs`: a page held back for minutes is worse than handing
 * it to the next pager in the chain.
 */
export async function runWithRetry(
  policy: RetryPolicy,
  tryOnce: (attempt: number) => Promise<TryResult>,
  clock: RetryClock = {},
): Promise<PagerOutcome> {
  const sleep = clock.sleep ?? sleepMs;
  const random = clock.random ?? Math.random;
  const now = clock.now ?? (() => new Date());
  const attempts: AttemptRecord[] = [];
  const maxAttempts = Math.max(1, policy.maxAttempts);
  for (let attempt = 1; ; attempt++) {
    const startedAt = now();
    let result: TryResult;
    try {
      result = await tryOnce(attempt);
    } catch (err) {
      // a bug or an unexpected client error: not worth hammering the receiver over
      result = { kind: 'fail', status: null, error: errorMessage(err) };
    }
    const finishedAt = now();
    if (result.kind === 'ok') {
      attempts.push({ attempt, outcome: 'succeeded', httpStatus: result.status, startedAt, finishedAt });
      return { ok: true, status: result.status, attempts, externalRef: result.externalRef };
    }
    const last = result.kind === 'fail' || attempt >= maxAttempts;
    attempts.push({
      attempt,
      outcome: result.kind === 'fail' ? 'failed' : 'failed_retryable',
      httpStatus: result.status,
      error: result.error,
      startedAt,
      finishedAt,
    });
    if (last) {
      const error =
        result.kind === 'retry' && maxAttempts > 1
          ? `${result.error} (gave up after ${attempt} attempts)`
          : result.error;
      return { ok: false, status: result.status, attempts, error };
    }
    const wait =
      result.kind === 'retry' && result.retryAfterMs !== undefined
        ? Math.min(result.retryAfterMs, policy.backoffMaxMs)
        : backoffDelayMs(attempt, policy, random);
    await sleep(wait);
  }
}

/** A thrown value as one line, naming timeouts and the network cause that fetch hides in `cause`. */
export function errorMessage(err: unknown): string {
  if (err instanceof Error) {
    if (err.name === 'TimeoutError') return 'timed out';
    const cause = (err as { cause?: unknown }).cause;
    if (cause instanceof Error && cause.message) return `${err.message}: ${cause.message}`;
    return err.message;
  }
  return String(err);
}

/** Whether an HTTP status is worth retrying: rate limited or a server error. */
export function isRetryableStatus(status: number): boolean {
  return status === 429 || status >= 500;
}

/** One POST with a per-request timeout; network errors and timeouts become `retry`, statuses are left to `judge`. */
export async function postJsonOnce(
  fetchFn: typeof fetch,
  url: string,
  body: string,
  headers: Record<string, string>,
  timeoutMs: number,
  judge: (res: Response, text: string) => TryResult,
): Promise<TryResult> {
  let res: Response;
  let text: string;
  try {
    res = await fetchFn(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body,
      signal: AbortSignal.timeout(timeoutMs),
    });
    // the body read counts against the same timeout (the signal covers it)
    text = await res.text();
  } catch (err) {
    return { kind: 'retry', status: null, error: errorMessage(err) };
  }
  return judge(res, text);
}
