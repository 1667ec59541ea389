import { App, HTTPReceiver, LogLevel, SocketModeReceiver } from '@slack/bolt';
import type { Logger as SlackLogger } from '@slack/logger';
import type { Logger } from '../logger.js';
import type { ListenerDeps } from './listeners/deps.js';
import { registerListeners } from './listeners/index.js';

export interface SlackAppOptions {
  botToken: string;
  signingSecret: string;
  /** Socket Mode instead of the HTTP endpoint when set */
  appToken?: string;
  apiUrl: string;
  log: Logger;
}

/** Bolt's logger interface over pino, so Slack's own messages land in the same structured log. */
function slackLogger(log: Logger): SlackLogger {
  const child = log.child({ component: 'bolt' });
  let level = LogLevel.INFO;
  return {
    debug: (...msg) => child.debug(msg.map(String).join(' ')),
    info: (...msg) => child.info(msg.map(String).join(' ')),
    warn: (...msg) => child.warn(msg.map(String).join(' ')),
    error: (...msg) => child.error(msg.map(String).join(' ')),
    setLevel: (l) => {
      level = l;
    },
    getLevel: () => level,
    setName: () => {},
  };
}

export interface SlackApp {
  app: App;
  /** the HTTP receiver (HTTP mode) or null (Socket Mode) */
  httpReceiver: HTTPReceiver | null;
  socketReceiver: SocketModeReceiver | null;
}

/**
 * The Bolt app: slash commands, mentions and (later) buttons. Its receiver is HTTP (`POST /slack/events`, signature
 * verified by Bolt) unless an app token selects Socket Mode. The webhook routes are given to the receiver as custom
 * routes by the caller.
 */
export function createSlackApp(
  opts: SlackAppOptions,
  deps: ListenerDeps,
  customRoutes: HTTPReceiverCustomRoute[],
): SlackApp {
  const logger = slackLogger(opts.log);
  const httpReceiver = opts.appToken
    ? null
    : new HTTPReceiver({
        signingSecret: opts.signingSecret,
        endpoints: '/slack/events',
        customRoutes,
        logger,
        // Slack waits 3 seconds for the ack; handlers ack first and do the rest afterwards.
        processBeforeResponse: false,
        unhandledRequestTimeoutMillis: 2_500,
      });
  const socketReceiver = opts.appToken
    ? new SocketModeReceiver({
        appToken: opts.appToken,
        logger,
        // apps.connections.open goes to the same Web API base as everything else
        installerOptions: { clientOptions: { slackApiUrl: opts.apiUrl } },
      })
    : null;
  const app = new App({
    token: opts.botToken,
    receiver: (httpReceiver ?? socketReceiver) as HTTPReceiver,
    logger,
    clientOptions: { slackApiUrl: opts.apiUrl },
    // Start even while Slack is unreachable: incidents must open regardless; Slack is only the view.
    tokenVerificationEnabled: false,
  });
  app.error(async (err) => {
    opts.log.error({ err }, 'Slack listener failed');
  });
  registerListeners(app, deps);
  return { app, httpReceiver, socketReceiver };
}

export type HTTPReceiverCustomRoute = ConstructorParameters<typeof HTTPReceiver>[0]['customRoutes'] extends
  | (infer R)[]
  | undefined
  ? R
  : never;
