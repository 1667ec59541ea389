import { type OncallConfig, teamOf } from '../escalation/oncall.schema.js';
import { onCallAt } from '../escalation/schedule.js';
import { formatSlackDate } from './blocks/incident-card.js';
import { escapeMrkdwn } from './blocks/limits.js';

/**
 * The answer to `/incident oncall [team]`: per team and rotation, who is on call now (and until when, and whom they
 * cover for) and who takes over next. Text only; Slack renders the mentions and dates in each reader's zone.
 */
export function describeOnCall(config: OncallConfig | null, team: string | null, at: Date): string {
  if (!config) return 'No on-call schedule is configured (set ONCALL_FILE to a file like config/oncall.yml).';
  const teams = Object.keys(config.teams);
  if (team !== null && !teamOf(config, team)) {
    return `No team \`${escapeMrkdwn(team)}\`; teams: ${teams.map((t) => `\`${escapeMrkdwn(t)}\``).join(', ') || 'none'}.`;
  }
  const lines: string[] = [];
  for (const name of team === null ? teams : [team]) {
    const shifts = onCallAt(config, name, at);
    lines.push(`*${escapeMrkdwn(name)}*`);
    if (shifts.length === 0) {
      lines.push('  nobody: no rotation has started');
      continue;
    }
    for (const s of shifts) {
      const cover = s.current.override ? ` (covering for ${escapeMrkdwn(s.current.override.replaces)})` : '';
      lines.push(
        `  ${escapeMrkdwn(s.rotation)}: <@${s.current.slack}>${cover} until ${formatSlackDate(s.current.until)}; next <@${s.next.slack}> from ${formatSlackDate(s.next.from)}`,
      );
    }
  }
  return lines.join('\n');
}
