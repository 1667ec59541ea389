import type { App } from '@slack/bolt';
import { AppError } from '../../../errors.js';
import { incidentRef } from '../../../incidents/incident.js';
import { buildIncidentCard, buildIncidentList, buildTimelineMessage } from '../../blocks/incident-card.js';
import { escapeMrkdwn, fitMessage } from '../../blocks/limits.js';
import { buildStatsMessage } from '../../blocks/stats.js';
import { buildSuggestionsMessage } from '../../blocks/suggestions.js';
import { renderTrendChart } from '../../charts/trend-chart.js';
import { INCIDENT_USAGE, parseIncidentCommand } from '../../commands/incident-command.js';
import { cardViewOf, describeEvent } from '../../incident-view.js';
import { describeOnCall } from '../../oncall-view.js';
import { groupsOf } from '../../usergroups.js';
import type { ListenerDeps } from '../deps.js';

/** `/incident …`: acked within Slack's 3 seconds; anything slow happens after the ack and answers ephemerally. */
export function register(app: App, deps: ListenerDeps): void {
  app.command('/incident', async ({ command, ack, client }) => {
    const parsed = parseIncidentCommand(command.text ?? '');
    const ephemeral = async (msg: { text: string; blocks?: unknown[] }) => {
      await client.chat.postEphemeral({
        channel: command.channel_id,
        user: command.user_id,
        ...msg,
      } as never);
    };
    switch (parsed.kind) {
      case 'help':
        await ack({ response_type: 'ephemeral', text: INCIDENT_USAGE });
        return;
      case 'invalid':
        await ack({
          response_type: 'ephemeral',
          text: `${escapeMrkdwn(parsed.problem)}\n\n${INCIDENT_USAGE}`,
        });
        return;
      case 'trigger': {
        await ack({ response_type: 'ephemeral', text: `Opening an incident for *${parsed.service}*…` });
        try {
          const incident = await deps.incidents.triggerManually({
            service: parsed.service,
            summary: parsed.summary,
            severity: parsed.severity,
            actor: command.user_id,
          });
          deps.log.info({ incident: incident.id, user: command.user_id }, 'incident triggered from Slack');
          await ephemeral({
            text: `Opened ${incidentRef(incident.id)} for ${parsed.service}; its card follows in the service's channel.`,
          });
        } catch (err) {
          deps.log.error({ err }, '/incident trigger failed');
          await ephemeral({
            text: 'Could not open the incident (the database is not answering). Nothing was recorded; try again.',
          });
        }
        return;
      }
      case 'run': {
        await ack({ response_type: 'ephemeral', text: `Starting runbook \`${parsed.runbookId}\`…` });
        try {
          const run = await deps.runbooks.requestRun({
            runbookId: parsed.runbookId,
            target: parsed.target,
            actor: command.user_id,
          });
          const ref = incidentRef(run.incident.id);
          deps.log.info(
            { incident: run.incident.id, runbook: parsed.runbookId, user: command.user_id },
            'runbook run by hand',
          );
          await ephemeral({
            text: run.opened
              ? `Opened ${ref} for ${run.incident.service} and started ${run.runbookName}; results follow in its thread.`
              : `Running ${run.runbookName} on ${ref}; results follow in its thread.`,
          });
        } catch (err) {
          const known = err instanceof AppError;
          if (!known) deps.log.error({ err }, '/incident run failed');
          await ephemeral({
            text: known
              ? escapeMrkdwn(err.message)
              : 'Could not start the runbook (the database or queue is not answering); try again.',
          });
        }
        return;
      }
      case 'maintenance': {
        try {
          const { endsAt } = await deps.maintenance({
            service: parsed.service,
            durationMs: parsed.durationMs,
            actor: command.user_id,
            reason: parsed.reason,
          });
          await ack({
            response_type: 'in_channel',
            text: endsAt
              ? `:construction: ${escapeMrkdwn(parsed.service)} is in maintenance until ${endsAt.toISOString().slice(0, 16).replace('T', ' ')} UTC: its anomalies open no incident (alerts still do).`
              : `:white_check_mark: Maintenance of ${escapeMrkdwn(parsed.service)} ended: its anomalies open incidents again.`,
          });
        } catch (err) {
          deps.log.error({ err }, '/incident maintenance failed');
          await ack({
            response_type: 'ephemeral',
            text: 'Could not record the maintenance window (the database is not answering); try again.',
          });
        }
        return;
      }
      case 'oncall':
        await ack({ response_type: 'ephemeral', text: describeOnCall(deps.oncall, parsed.team, new Date()) });
        return;
      case 'postmortem': {
        await ack({
          response_type: 'ephemeral',
          text: `Writing the postmortem draft of ${incidentRef(parsed.id)}…`,
        });
        try {
          const draft = await deps.learning.draft(parsed.id, { publish: true });
          await ephemeral({
            text: draft
              ? `Postmortem draft of ${incidentRef(parsed.id)} (revision ${draft.revision}) is in the incident's thread; \`ai-sre postmortem ${parsed.id}\` exports it.`
              : `There is no incident ${incidentRef(parsed.id)}.`,
          });
        } catch (err) {
          deps.log.error({ err, incident: parsed.id }, '/incident postmortem failed');
          await ephemeral({
            text: 'Could not write the draft (the database or Slack is not answering). Try again.',
          });
        }
        return;
      }
      case 'stats': {
        await ack({
          response_type: 'ephemeral',
          text: `Computing the figures of the last ${parsed.days} days…`,
        });
        try {
          const to = new Date();
          const report = await deps.learning.stats({
            from: new Date(to.getTime() - parsed.days * 86_400_000),
            to,
            service: parsed.service,
          });
          const message = buildStatsMessage(report);
          try {
            await client.chat.postMessage({
              channel: command.channel_id,
              text: message.text,
              blocks: message.blocks,
              unfurl_links: false,
            });
            await client.filesUploadV2({
              channel_id: command.channel_id,
              file: renderTrendChart({
                title: `Incidents and MTTR per day${parsed.service ? ` (${parsed.service})` : ''}`,
                days: report.trend.map((d) => ({
                  day: d.day,
                  incidents: d.incidents,
                  mttrMinutes: d.mttr === null ? null : d.mttr / 60,
                })),
              }),
              filename: `ai-sre-stats-${parsed.days}d.png`,
              title: `ai-sre trend, last ${parsed.days} days`,
            });
          } catch (err) {
            // a channel the bot is not in: the table still reaches the person who asked
            deps.log.warn({ err: (err as Error).message }, '/incident stats could not post in the channel');
            await ephemeral({ text: message.text, blocks: message.blocks });
          }
        } catch (err) {
          deps.log.error({ err }, '/incident stats failed');
          await ephemeral({
            text: 'Could not compute the figures (the database is not answering). Try again.',
          });
        }
        return;
      }
      case 'suggestions': {
        await ack({ response_type: 'ephemeral', text: `Looking through the last ${parsed.days} days…` });
        try {
          const to = new Date();
          const items = await deps.learning.suggestions({
            from: new Date(to.getTime() - parsed.days * 86_400_000),
            to,
          });
          const message = buildSuggestionsMessage(items, `the last ${parsed.days} days`);
          await ephemeral({ text: message.text, blocks: message.blocks });
        } catch (err) {
          deps.log.error({ err }, '/incident suggestions failed');
          await ephemeral({
            text: 'Could not look through the history (the database is not answering). Try again.',
          });
        }
        return;
      }
      case 'page': {
        await ack({ response_type: 'ephemeral', text: `Paging for ${incidentRef(parsed.id)}…` });
        try {
          const outcome = await deps.escalations.page({
            incidentId: parsed.id,
            userId: command.user_id,
            team: parsed.team,
            note: parsed.note,
          });
          deps.log.info({ incident: parsed.id, user: command.user_id, ok: outcome.ok }, '/incident page');
          await ephemeral({ text: outcome.message });
        } catch (err) {
          deps.log.error({ err, incident: parsed.id }, '/incident page failed');
          await ephemeral({
            text: 'Could not page (the database is not answering); nothing changed. Try again.',
          });
        }
        return;
      }
      case 'automation': {
        try {
          if (parsed.enabled === null) {
            await ack({
              response_type: 'ephemeral',
              text: await deps.remediation.automationStatus(parsed.service),
            });
            return;
          }
          const groups = await groupsOf(client, command.user_id, deps.remediation.automationAdmins());
          const res = await deps.remediation.setAutomation({
            enabled: parsed.enabled,
            service: parsed.service,
            userId: command.user_id,
            groups,
            reason: parsed.reason || null,
          });
          await ack({
            response_type: res.ok ? 'in_channel' : 'ephemeral',
            text: res.ok
              ? `${parsed.enabled ? ':arrow_forward:' : ':octagonal_sign:'} <@${command.user_id}>: ${res.message}`
              : res.message,
          });
        } catch (err) {
          deps.log.error({ err }, '/incident automation failed');
          await ack({
            response_type: 'ephemeral',
            text: 'Could not change automation (the database is not answering); nothing changed. Try again.',
          });
        }
        return;
      }
      case 'list': {
        const incidents = await deps.incidents.listOpen({ limit: 100 });
        const msg = buildIncidentList(incidents.map(cardViewOf), 'Open incidents');
        await ack({ response_type: 'ephemeral', text: msg.text, blocks: msg.blocks });
        return;
      }
      case 'show': {
        const incident = await deps.incidents.get(parsed.id);
        if (!incident) {
          await ack({ response_type: 'ephemeral', text: `${incidentRef(parsed.id)} does not exist.` });
          return;
        }
        const card = buildIncidentCard(cardViewOf(incident));
        const events = await deps.incidents.timeline(incident.id, { limit: 10 });
        const recent = events.flatMap(
          (e) =>
            buildTimelineMessage({ type: e.type, actor: e.actor, at: e.at, text: describeEvent(e) }).blocks,
        );
        const msg = fitMessage({ text: card.text, blocks: [...card.blocks, { type: 'divider' }, ...recent] });
        await ack({ response_type: 'ephemeral', text: msg.text, blocks: msg.blocks });
        return;
      }
    }
  });
}
