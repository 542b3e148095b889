// Named points in a run where the reliability tests kill audex, exactly as `kill -9` would
// at that moment (RELIABILITY.md). AUDEX_CRASH_AT=<point>[:<n>] sends SIGKILL to this
// process the n-th time (default 1st) it passes <point>. Unset, this is a no-op. The kill
// tests also kill at random moments without it; the named points make every gap of the
// commit order reachable, however short.

export const CRASH_POINTS = [
  'after-read', // snapshots loaded, nothing written
  'after-pending', // pending record written
  'after-part', // a data part published under its final name
  'after-data', // every data part published
  'after-manifest',
  'after-baseline',
  'after-cursor', // committed, pending record not yet removed
  // HTTP API destination (run/invoke-http.ts):
  'http-outbox-part', // the outbox half written (staged, not yet published)
  'http-sealed', // outbox and new baseline written and sealed, nothing sent
  'http-sent', // a request answered 2xx, its acknowledgement not yet recorded
  'http-acked', // an acknowledgement recorded
  'http-all-acked', // every request acknowledged, cursor not yet written
  'after-commit', // history record written, pending record removed, nothing pruned yet
  'in-prune', // after each old baseline or history record deleted
  'after-prune', // a run's old baselines deleted
] as const;

export type CrashPoint = (typeof CRASH_POINTS)[number];

const passes = new Map<string, number>();

export function crashPoint(point: CrashPoint): void {
  const spec = process.env['AUDEX_CRASH_AT'];
  if (!spec) return;
  const [name, nth = '1'] = spec.split(':');
  if (name !== point) return;
  const count = (passes.get(point) ?? 0) + 1;
  passes.set(point, count);
  if (count === Number(nth)) process.kill(process.pid, 'SIGKILL');
}
