import { z } from 'zod';
import { renderTemplate } from '../../diagnostics/templating.js';
import type { ActionExecutor } from '../executor.js';

export const EscalateConfig = z.strictObject({
  /** picks the route in the escalation policy (security, database, default, …) */
  reason: z.string().min(1).max(100).default('default'),
  team: z.string().min(1).max(100).optional(),
  note: z.string().max(3_000).optional(),
});
export type EscalateConfig = z.infer<typeof EscalateConfig>;

/**
 * Hands the incident to people as a plan step (after a notify, say). The remediation engine stops the plan and marks
 * the incident escalated when this step succeeds; paging is the escalation module's.
 */
export const escalateExecutor: ActionExecutor<EscalateConfig> = {
  action: 'escalate',
  config: EscalateConfig,
  render(config, vars) {
    return config.note === undefined
      ? config
      : { ...config, note: renderTemplate(config.note, vars, (v) => v) };
  },
  describe(config) {
    const who = config.team ?? 'the on-call';
    return { target: `people:${who}`, blastRadius: `${who} is asked to take over`, rollback: 'none needed' };
  },
  async execute(config, ctx) {
    const who = config.team ?? 'the on-call';
    return {
      ok: true,
      dryRun: ctx.dryRun,
      summary: `${ctx.dryRun ? 'would hand' : 'handed'} the incident to ${who} (${config.reason})${config.note ? `: ${config.note}` : ''}`,
      details: { reason: config.reason, team: config.team ?? null },
    };
  },
};
