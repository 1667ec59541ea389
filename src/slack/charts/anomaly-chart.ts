import { renderAnomalyChart } from './line-chart.js';

/**
 * The chart of an anomaly alert from its evidence annotations (`recent_points`, `expected_low`/`expected_high`,
 * `deviating_since`, `series`); null when the evidence is missing or unreadable.
 */
export function anomalyChartOf(
  alertName: string,
  annotations: Record<string, string>,
): { png: Buffer; title: string; comment: string } | null {
  let points: { t: number; v: number }[];
  try {
    const raw = JSON.parse(annotations.recent_points ?? '[]') as unknown;
    if (!Array.isArray(raw)) return null;
    points = raw
      .filter(
        (p): p is [number, number] =>
          Array.isArray(p) && typeof p[0] === 'number' && typeof p[1] === 'number',
      )
      .map(([t, v]) => ({ t, v }));
  } catch {
    return null;
  }
  if (points.length < 2) return null;
  const low = Number(annotations.expected_low);
  const high = Number(annotations.expected_high);
  const since = Date.parse(annotations.deviating_since ?? '');
  const first = points[0] as { t: number };
  const last = points.at(-1) as { t: number };
  const band =
    Number.isFinite(low) && Number.isFinite(high)
      ? [
          { t: first.t, low, high },
          { t: last.t, low, high },
        ]
      : undefined;
  const series = annotations.series ?? alertName;
  const title = series.length > 60 ? `${series.slice(0, 59)}…` : series;
  return {
    png: renderAnomalyChart({
      title,
      points,
      ...(band ? { band } : {}),
      ...(Number.isFinite(since) ? { anomalyStart: since } : {}),
    }),
    title: `${alertName}: the series around the anomaly`,
    comment: `${alertName}: value ${annotations.value ?? '?'}${band ? `, expected ${annotations.expected_low} to ${annotations.expected_high}` : ''}${Number.isFinite(since) ? `, deviating since ${new Date(since).toISOString().slice(11, 16)} UTC` : ''}`,
  };
}
