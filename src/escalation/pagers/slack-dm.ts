import type { KnownBlock } from '@slack/types';
import {
  escapeMrkdwn,
  fitMessage,
  SLACK_LIMITS,
  truncateMrkdwn,
  truncateText,
} from '../../slack/blocks/limits.js';
import type { Page, PageRef, Pager, PagerOutcome } from './pager.js';
import { redactPage, skippedOutcome } from './pager.js';
import type { SlackPagerConfig } from './pagers.schema.js';
import { type RetryClock, runWithRetry, type TryResult } from './retry.js';

/**
 * Slack pager: a DM to the on-call person's Slack user. It posts only the DM; the mention for the incident thread
 * is returned as `threadMention` for the caller to post, because the escalation flow owns the thread (it knows the
 * card's channel/ts and writes `page.sent` to the timeline in the same step). Acknowledge and resolve post a short
 * follow-up DM. Rate limits are retried after Retry-After; every other Slack error fails at once (so the chain
 * moves on to the next pager).
 */

/** The two Slack calls the pager needs; an adapter over WebClient in the app, a fake in tests. */
export interface SlackDmClient {
  /** `conversations.open` with `users: user`; returns the DM channel id */
  conversationsOpen(user: string): Promise<string>;
  /** `chat.postMessage`; returns the message ts */
  postMessage(message: { channel: string; text: string; blocks?: KnownBlock[] }): Promise<{ ts: string }>;
}

/** What @slack/web-api throws, as far as the pager reads it. */
interface SlackApiError {
  code?: string;
  /** seconds, on slack_webapi_rate_limited_error */
  retryAfter?: number;
  data?: { error?: string };
  message?: string;
}

function judgeError(err: unknown): TryResult {
  const e = (err ?? {}) as SlackApiError;
  if (e.code === 'slack_webapi_rate_limited_error' || e.data?.error === 'ratelimited') {
    const retryAfterMs = typeof e.retryAfter === 'number' ? Math.max(0, e.retryAfter * 1000) : undefined;
    return { kind: 'retry', status: null, error: 'Slack: ratelimited', retryAfterMs };
  }
  const reason = e.data?.error ?? (err instanceof Error ? err.message : String(err));
  return { kind: 'fail', status: null, error: `Slack: ${reason}` };
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

const SEVERITY_EMOJI: Record<Page['severity'], string> = {
  critical: ':red_circle:',
  high: ':large_orange_circle:',
  warning: ':large_yellow_circle:',
  info: ':large_blue_circle:',
};

/**
 * The DM for a (redacted) page: headline, summary, the packet's scalar fields and links. The full context packet
 * view (timeline, causes, buttons) is the escalation flow's renderer; this is what wakes someone up.
 */
export function buildPageDm(page: Page): { text: string; blocks: KnownBlock[] } {
  const headline = `${SEVERITY_EMOJI[page.severity]} You are paged for INC-${page.incidentId} (${page.severity}) on ${page.source}`;
  const summary = escapeMrkdwn(page.summary);
  const fields = Object.entries(page.details)
    .filter(([, v]) => typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean')
    .slice(0, SLACK_LIMITS.sectionFields)
    .map(([k, v]) => ({
      type: 'mrkdwn' as const,
      text: truncateMrkdwn(`*${escapeMrkdwn(k)}*\n${escapeMrkdwn(String(v))}`, 300),
    }));
  const links = page.links
    .filter((l) => /^https?:\/\//.test(l.href) && !/[<>|]/.test(l.href))
    .slice(0, SLACK_LIMITS.contextElements)
    .map((l) => ({
      type: 'mrkdwn' as const,
      text: `<${l.href}|${escapeMrkdwn(truncateText(l.text ?? l.href, 80))}>`,
    }));
  const blocks: KnownBlock[] = [
    { type: 'section', text: { type: 'mrkdwn', text: `*${escapeMrkdwn(headline)}*\n${summary}` } },
  ];
  if (fields.length > 0) blocks.push({ type: 'section', fields });
  if (links.length > 0) blocks.push({ type: 'context', elements: links });
  return fitMessage({ text: `${headline}: ${summary}`, blocks });
}

/** The line for the incident thread, naming who was paged (a mention, so they get the thread too). */
export function buildThreadMention(page: Pick<Page, 'target'>): string {
  return `:pager: Paged <@${page.target.slackUser}> by direct message.`;
}

export interface SlackDmPagerDeps extends RetryClock {
  client: SlackDmClient;
}

/** The Slack DM pager; `name` is 'slack'. A target without `slackUser` is skipped. */
export function createSlackDmPager(config: SlackPagerConfig, deps: SlackDmPagerDeps): Pager {
  const now = deps.now ?? (() => new Date());

  const dm = (user: string, message: { text: string; blocks?: KnownBlock[] }) =>
    runWithRetry(
      config,
      async () => {
        try {
          const channel = await withTimeout(deps.client.conversationsOpen(user), config.timeoutMs);
          const { ts } = await withTimeout(
            deps.client.postMessage({ channel, ...message }),
            config.timeoutMs,
          );
          return { kind: 'ok', status: null, externalRef: `${channel}/${ts}` } satisfies TryResult;
        } catch (err) {
          return judgeError(err);
        }
      },
      deps,
    );

  const update = async (ref: PageRef, verb: string): Promise<PagerOutcome> => {
    const user = ref.target.slackUser;
    if (!user) return skippedOutcome('no Slack user to message', now());
    return dm(user, { text: `INC-${ref.incidentId} was ${verb}.` });
  };

  return {
    name: 'slack',
    async trigger(original) {
      const user = original.target.slackUser;
      if (!user) return skippedOutcome('no Slack user to page', now());
      const page = redactPage(original);
      const message = page.slackMessage
        ? { text: page.slackMessage.text, blocks: page.slackMessage.blocks as KnownBlock[] }
        : buildPageDm(page);
      const outcome = await dm(user, message);
      return outcome.ok ? { ...outcome, threadMention: buildThreadMention(page) } : outcome;
    },
    acknowledge: (ref) => update(ref, 'acknowledged'),
    resolve: (ref) => update(ref, 'resolved'),
  };
}
