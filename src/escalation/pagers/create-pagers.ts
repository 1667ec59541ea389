import type { Pager } from './pager.js';
import { createPagerdutyPager } from './pagerduty.js';
import type { PagersConfig } from './pagers.schema.js';
import type { RetryClock } from './retry.js';
import { createSlackDmPager, type SlackDmClient } from './slack-dm.js';
import { createWebhookPager } from './webhook.js';

export interface CreatePagersDeps extends RetryClock {
  /** required when `order` lists slack */
  slack?: SlackDmClient;
  fetch?: typeof fetch;
}

/** The configured pagers in `config.order`, ready for `pageWithFallback`. */
export function createPagers(config: PagersConfig, deps: CreatePagersDeps = {}): Pager[] {
  return config.order.map((name) => {
    if (name === 'pagerduty' && config.pagerduty) return createPagerdutyPager(config.pagerduty, deps);
    if (name === 'webhook' && config.webhook) return createWebhookPager(config.webhook, deps);
    if (name === 'slack' && config.slack) {
      if (!deps.slack) throw new Error('the slack pager needs a Slack client');
      return createSlackDmPager(config.slack, { ...deps, client: deps.slack });
    }
    // PagersConfig rejects an order naming an unconfigured pager, so this is a caller skipping the parse
    throw new Error(`pager ${name} is listed in order but not configured`);
  });
}
