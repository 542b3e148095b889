// One audience's run history as points on a time axis (oldest first), the data behind its
// charts. The aggregation rule for long histories: the newest DETAIL_RUNS runs, together
// with the rest of the UTC day the oldest of them falls on, are one point per run; every
// earlier UTC day is one point, whose values are the mean of that day's successful runs
// and which is marked when any run of that day failed or was skipped. So a page stays
// small for years of runs while no day of history is dropped.
import type { RunRecord } from '../state/records.js';
import { listCounters, numericCounts, type CounterInfo } from './list-counters.js';

export const DETAIL_RUNS = 500;

const DAY_MS = 86_400_000;

export interface TimelinePoint {
  /** Epoch milliseconds: the run's logical time, or the start of the UTC day. */
  time: number;
  kind: 'run' | 'day';
  /** The run (kind 'run' only). */
  record: RunRecord | null;
  runs: number;
  failed: number;
  skipped: number;
  /** Per counter: the run's count (successful runs), or the day's mean; null when no run succeeded. */
  values: Record<string, number | null>;
  durationSeconds: number | null;
  /** The error of the failed run (for a day: how many failed, and the latest error). */
  failure: string | null;
  /** Why the run was skipped (for a day: how many). */
  skip: string | null;
}

export interface AudienceTimeline {
  audienceId: string;
  counters: CounterInfo[];
  points: TimelinePoint[];
  /** Start of the first UTC day drawn run by run, when earlier days are aggregated. */
  aggregatedBefore: number | null;
  totals: { runs: number; success: number; failed: number; skipped: number };
  /** Logical times (epoch ms) of the oldest and newest run. */
  first: number | null;
  last: number | null;
}

const STATUS_ORDER: Record<string, number> = { skipped: 0, failed: 1, success: 2 };

/** Oldest first; at one logical time a failed attempt sorts before the success that finished it. */
export function sortRuns(records: RunRecord[]): RunRecord[] {
  return [...records].sort(
    (a, b) =>
      Date.parse(a.logicalTime) - Date.parse(b.logicalTime) ||
      (STATUS_ORDER[a.status] ?? 3) - (STATUS_ORDER[b.status] ?? 3) ||
      a.runId.localeCompare(b.runId),
  );
}

/** A multi-line error as one line for a chart legend: its lines joined with "; " (after a colon, a space). */
function oneLine(text: string | undefined): string {
  const lines = (text ?? '')
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);
  return lines.reduce((out, line) => (out === '' ? line : `${out}${out.endsWith(':') ? ' ' : '; '}${line}`), '');
}

function runPoint(record: RunRecord, counters: CounterInfo[]): TimelinePoint {
  const counts = numericCounts(record);
  const ok = record.status === 'success';
  const values: Record<string, number | null> = {};
  for (const c of counters) values[c.key] = ok ? (counts.get(c.key) ?? null) : null;
  return {
    time: Date.parse(record.logicalTime),
    kind: 'run',
    record,
    runs: 1,
    failed: record.status === 'failed' ? 1 : 0,
    skipped: record.status === 'skipped' ? 1 : 0,
    values,
    durationSeconds: ok && record.durationMs !== undefined ? record.durationMs / 1000 : null,
    failure: record.status === 'failed' ? oneLine(record.error) || 'failed' : null,
    skip: record.status === 'skipped' ? oneLine(record.note) || 'skipped' : null,
  };
}

/** Two decimals: enough for a mean on a chart, and the same bytes on every rerun. */
function round2(value: number): number {
  return Math.round(value * 100) / 100;
}

function mean(values: number[]): number | null {
  return values.length === 0 ? null : round2(values.reduce((a, b) => a + b, 0) / values.length);
}

function dayPoint(day: number, records: RunRecord[], counters: CounterInfo[]): TimelinePoint {
  const ok = records.filter((r) => r.status === 'success');
  const failed = records.filter((r) => r.status === 'failed');
  const skipped = records.filter((r) => r.status === 'skipped');
  const values: Record<string, number | null> = {};
  for (const c of counters) {
    values[c.key] = mean(
      ok.flatMap((r) => {
        const v = numericCounts(r).get(c.key);
        return v === undefined ? [] : [v];
      }),
    );
  }
  const latestFailure = failed.at(-1);
  return {
    time: day,
    kind: 'day',
    record: null,
    runs: records.length,
    failed: failed.length,
    skipped: skipped.length,
    values,
    durationSeconds: mean(ok.flatMap((r) => (r.durationMs === undefined ? [] : [r.durationMs / 1000]))),
    failure: latestFailure
      ? `${failed.length} failed run(s) that day; the latest: ${oneLine(latestFailure.error) || 'failed'}`
      : null,
    skip: skipped.length ? `${skipped.length} skipped slot(s) that day` : null,
  };
}

/** The timeline of one audience's records (any order). */
export function buildTimeline(audienceId: string, records: RunRecord[], detailRuns = DETAIL_RUNS): AudienceTimeline {
  const sorted = sortRuns(records);
  const counters = listCounters(sorted);
  const totals = {
    runs: sorted.length,
    success: sorted.filter((r) => r.status === 'success').length,
    failed: sorted.filter((r) => r.status === 'failed').length,
    skipped: sorted.filter((r) => r.status === 'skipped').length,
  };
  const points: TimelinePoint[] = [];
  let aggregatedBefore: number | null = null;
  let detailStart = 0;
  if (sorted.length > detailRuns) {
    const boundary = Date.parse(sorted[sorted.length - detailRuns]!.logicalTime);
    const dayStart = Math.floor(boundary / DAY_MS) * DAY_MS;
    detailStart = sorted.findIndex((r) => Date.parse(r.logicalTime) >= dayStart);
    if (detailStart > 0) {
      aggregatedBefore = dayStart;
      let i = 0;
      while (i < detailStart) {
        const day = Math.floor(Date.parse(sorted[i]!.logicalTime) / DAY_MS) * DAY_MS;
        const group: RunRecord[] = [];
        while (i < detailStart && Math.floor(Date.parse(sorted[i]!.logicalTime) / DAY_MS) * DAY_MS === day)
          group.push(sorted[i++]!);
        points.push(dayPoint(day, group, counters));
      }
    } else detailStart = 0;
  }
  for (const record of sorted.slice(detailStart)) points.push(runPoint(record, counters));
  return {
    audienceId,
    counters,
    points,
    aggregatedBefore,
    totals,
    first: sorted.length ? Date.parse(sorted[0]!.logicalTime) : null,
    last: sorted.length ? Date.parse(sorted.at(-1)!.logicalTime) : null,
  };
}
