import { pino } from 'pino';

export type Logger = pino.Logger;

/** One pino logger for the process; secrets in well-known places are redacted before they are written. */
export function createLogger(level: string, bindings: Record<string, unknown> = {}): Logger {
  return pino({
    level,
    base: { app: 'ai-sre', ...bindings },
    redact: {
      paths: [
        'token',
        '*.token',
        'headers.authorization',
        '*.headers.authorization',
        'config.SLACK_BOT_TOKEN',
        'config.SLACK_SIGNING_SECRET',
        'config.SLACK_APP_TOKEN',
        'config.WEBHOOK_TOKEN',
      ],
      censor: '[redacted]',
    },
  });
}
