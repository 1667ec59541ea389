import { z } from 'zod';
import { renderTemplate } from '../../diagnostics/templating.js';
import type { ActionExecutor } from '../executor.js';

export const NotifyConfig = z.strictObject({
  /** a channel id or #name; default: the service's incident channel, else the incident's own thread */
  channel: z.string().min(1).max(100).optional(),
  /** post in this service's incident channel (e.g. the dependency's owners) */
  service: z.string().min(1).max(200).optional(),
  /** a team handle named in the message ("fraud-team") */
  team: z.string().min(1).max(100).optional(),
  /** the text; placeholders are filled, Slack markup in values is neutralised by the poster */
  message: z.string().min(1).max(3_000),
});
export type NotifyConfig = z.infer<typeof NotifyConfig>;

/** Tells people something. Communication, not a change: no approval needed and it runs while automation is off (shadow mode dry-runs it like everything else). */
export const notifyExecutor: ActionExecutor<NotifyConfig> = {
  action: 'notify',
  config: NotifyConfig,
  render(config, vars) {
    const plain = (v: string) => v;
    return {
      ...config,
      ...(config.service === undefined ? {} : { service: renderTemplate(config.service, vars, plain) }),
      message: renderTemplate(config.message, vars, plain),
    };
  },
  describe(config, _targets, incident) {
    const where =
      config.channel ??
      (config.service ? `${config.service}'s incident channel` : `INC-${incident.id}'s thread`);
    return { target: `slack:${where}`, blastRadius: `a message in ${where}`, rollback: 'none needed' };
  },
  async execute(config, ctx) {
    const where = config.channel ?? config.service ?? 'the incident thread';
    if (ctx.dryRun) {
      return {
        ok: true,
        dryRun: true,
        summary: `would post to ${where}: ${config.message.slice(0, 120)}`,
        details: {},
      };
    }
    if (!ctx.notify) {
      return {
        ok: false,
        dryRun: false,
        summary: 'Slack is not configured: nobody was notified',
        details: {},
      };
    }
    const text = config.team ? `*${config.team}*: ${config.message}` : config.message;
    const posted = await ctx.notify({
      channel: config.channel,
      service: config.service,
      team: config.team,
      text,
      incidentId: ctx.incident.id,
    });
    return {
      ok: true,
      dryRun: false,
      summary: `notified ${where}`,
      details: { channel: posted.channel, ts: posted.ts },
    };
  },
};
