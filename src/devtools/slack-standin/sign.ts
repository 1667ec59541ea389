import { createHmac, randomUUID } from 'node:crypto';

export interface SignedRequestOptions {
  /** X-Slack-Request-Timestamp; epoch seconds; default now */
  timestamp?: number;
  /** sign with the wrong secret, as a forged request would be */
  badSignature?: boolean;
  /** X-Slack-Retry-Num, sent by Slack when it re-delivers an event it thinks failed */
  retryNum?: number;
  /** X-Slack-Retry-Reason, e.g. `http_timeout`; only sent together with `retryNum` */
  retryReason?: string;
  /** give up waiting for the receiver after this long; milliseconds; default 10_000 */
  timeoutMs?: number;
}

export interface SignedPostResult {
  status: number;
  body: string;
}

export interface SlashCommandFields {
  command: string;
  text: string;
  user_id?: string;
  channel_id?: string;
  /** default `channel-<id in lower case>` */
  channel_name?: string;
  user_name?: string;
  response_url?: string;
  trigger_id?: string;
}

const TEAM_ID = 'T0001';
const TEAM_DOMAIN = 'ai-sre-test';
const APP_ID = 'A0001';
const DEFAULT_USER_ID = 'U0001';
const DEFAULT_USER_NAME = 'alice';
const DEFAULT_CHANNEL_ID = 'C0001';
/** the legacy verification token Slack still puts in payloads; Bolt ignores it */
const VERIFICATION_TOKEN = 'verification_token';
/** discard port on loopback: a response_url the app must never reach the internet through */
const UNREACHABLE_RESPONSE_URL = 'http://127.0.0.1:9/never';
/** a receiver that does not answer fails the test instead of hanging it; milliseconds */
const REQUEST_TIMEOUT_MS = 10_000;
const LOOPBACK_HOSTS = new Set(['127.0.0.1', 'localhost', '[::1]']);

/**
 * Headers Slack signs a request with: `X-Slack-Signature` is `v0=` + hex HMAC-SHA256 of
 * `v0:<timestamp>:<rawBody>` keyed by the signing secret. The caller adds the content type.
 */
export function signSlackRequest(
  secret: string,
  rawBody: string,
  timestamp: number = nowSeconds(),
): Record<string, string> {
  const digest = createHmac('sha256', secret).update(`v0:${timestamp}:${rawBody}`).digest('hex');
  return { 'X-Slack-Signature': `v0=${digest}`, 'X-Slack-Request-Timestamp': String(timestamp) };
}

/** POSTs a slash command to `${baseUrl}/slack/events`, form-encoded with the fields Slack sends. */
export async function sendSlashCommand(
  baseUrl: string,
  secret: string,
  fields: SlashCommandFields,
  opts: SignedRequestOptions = {},
): Promise<SignedPostResult> {
  const userId = fields.user_id ?? DEFAULT_USER_ID;
  const channelId = fields.channel_id ?? DEFAULT_CHANNEL_ID;
  const form = new URLSearchParams({
    token: VERIFICATION_TOKEN,
    team_id: TEAM_ID,
    team_domain: TEAM_DOMAIN,
    channel_id: channelId,
    channel_name: fields.channel_name ?? `channel-${channelId.toLowerCase()}`,
    user_id: userId,
    user_name:
      fields.user_name ?? (userId === DEFAULT_USER_ID ? DEFAULT_USER_NAME : `user-${userId.toLowerCase()}`),
    command: fields.command,
    text: fields.text,
    api_app_id: APP_ID,
    is_enterprise_install: 'false',
    response_url: fields.response_url ?? UNREACHABLE_RESPONSE_URL,
    trigger_id: fields.trigger_id ?? newTriggerId(),
  });
  return postSigned(baseUrl, secret, form.toString(), 'application/x-www-form-urlencoded', opts);
}

/**
 * POSTs `event` to `${baseUrl}/slack/events` inside an `event_callback` envelope like Slack's.
 * Pass `opts.eventId` (with `retryNum`) to re-deliver an event the way Slack retries it.
 */
export async function sendEvent(
  baseUrl: string,
  secret: string,
  event: Record<string, unknown>,
  opts: SignedRequestOptions & { eventId?: string } = {},
): Promise<SignedPostResult & { eventId: string }> {
  const eventTime = nowSeconds();
  const eventId = opts.eventId ?? `Ev${randomUUID().replaceAll('-', '').slice(0, 12).toUpperCase()}`;
  const envelope = {
    token: VERIFICATION_TOKEN,
    team_id: TEAM_ID,
    api_app_id: APP_ID,
    event: { event_ts: `${eventTime}.000100`, ...event },
    type: 'event_callback',
    event_id: eventId,
    event_time: eventTime,
    authorizations: [
      { enterprise_id: null, team_id: TEAM_ID, user_id: 'U0BOT', is_bot: true, is_enterprise_install: false },
    ],
    is_ext_shared_channel: false,
  };
  const result = await postSigned(baseUrl, secret, JSON.stringify(envelope), 'application/json', opts);
  return { ...result, eventId };
}

/**
 * POSTs an interactivity payload to `${baseUrl}/slack/events`, form-encoded as `payload=<json>`.
 * `payload` is laid over a `block_actions` skeleton (team, user, app, trigger, response_url), so a test
 * only supplies what matters, e.g. `actions`, `container`, `channel`, `message`; override `type` for other kinds.
 */
export async function sendBlockAction(
  baseUrl: string,
  secret: string,
  payload: Record<string, unknown>,
  opts: SignedRequestOptions = {},
): Promise<SignedPostResult> {
  const full = {
    type: 'block_actions',
    user: { id: DEFAULT_USER_ID, username: DEFAULT_USER_NAME, name: DEFAULT_USER_NAME, team_id: TEAM_ID },
    api_app_id: APP_ID,
    token: VERIFICATION_TOKEN,
    trigger_id: newTriggerId(),
    team: { id: TEAM_ID, domain: TEAM_DOMAIN },
    is_enterprise_install: false,
    response_url: UNREACHABLE_RESPONSE_URL,
    ...payload,
  };
  const form = new URLSearchParams({ payload: JSON.stringify(full) });
  return postSigned(baseUrl, secret, form.toString(), 'application/x-www-form-urlencoded', opts);
}

async function postSigned(
  baseUrl: string,
  secret: string,
  rawBody: string,
  contentType: string,
  opts: SignedRequestOptions,
): Promise<SignedPostResult> {
  const url = new URL('slack/events', baseUrl.endsWith('/') ? baseUrl : `${baseUrl}/`);
  if (!LOOPBACK_HOSTS.has(url.hostname)) {
    throw new Error(`refusing to send a signed Slack request off this machine: ${url.href}`);
  }
  const signingSecret = opts.badSignature === true ? `${secret}-forged` : secret;
  const headers: Record<string, string> = {
    ...signSlackRequest(signingSecret, rawBody, opts.timestamp),
    'Content-Type': contentType,
    'User-Agent': 'Slackbot 1.0 (+https://api.slack.com/robots)',
  };
  if (opts.retryNum !== undefined) {
    headers['X-Slack-Retry-Num'] = String(opts.retryNum);
    headers['X-Slack-Retry-Reason'] = opts.retryReason ?? 'http_timeout';
  }
  const response = await fetch(url, {
    method: 'POST',
    headers,
    body: rawBody,
    signal: AbortSignal.timeout(opts.timeoutMs ?? REQUEST_TIMEOUT_MS),
  });
  return { status: response.status, body: await response.text() };
}

function nowSeconds(): number {
  return Math.floor(Date.now() / 1000);
}

function newTriggerId(): string {
  return `${Date.now()}.${TEAM_ID}.${randomUUID().replaceAll('-', '')}`;
}
