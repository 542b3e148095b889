// A long, made-up run history for the report's size and speed checks: runs every 3 hours,
// some failed, some skipped, and (for the second audience) the counters of an HTTP
// destination plus one counter no version of audex knows yet.
import type { RunRecord } from '../../src/state/records.js';

export function syntheticHistory(
  runs: number,
  audiences = ['aud-a', 'aud-b'],
  start = Date.parse('2025-01-01T00:00:00Z'),
): RunRecord[] {
  const records: RunRecord[] = [];
  for (let i = 0; i < runs; i++) {
    const audienceId = audiences[i % audiences.length]!;
    const slot = Math.floor(i / audiences.length);
    const logicalTime = new Date(start + slot * 3 * 3_600_000).toISOString();
    const status = i % 53 === 7 ? 'failed' : i % 61 === 11 ? 'skipped' : 'success';
    const ok = status === 'success';
    const n = ok ? 1000 + ((i * 7919) % 500) : 0;
    const counts: Record<string, number> = {
      profilesReceived: n,
      rowsWritten: ok ? n - 20 : 0,
      excludedMandatory: ok ? 12 : 0,
      excludedDuplicate: ok ? 8 : 0,
      exitsOmitted: 0,
      badRecords: ok ? i % 3 : 0,
    };
    if (audienceId !== audiences[0])
      Object.assign(counts, {
        messages: n,
        requests: Math.ceil(n / 10),
        retries: i % 4,
        deadLetters: i % 97 === 0 ? 1 : 0,
        someFutureCounter: i % 5,
      });
    records.push({
      runId: `${audienceId}-${slot}`,
      audienceId,
      mode: 'incremental',
      trigger: 'schedule',
      logicalTime,
      snapshotId: ok ? `snap-${slot}` : null,
      status,
      counts: counts as unknown as RunRecord['counts'],
      files: ok
        ? [{ path: `/out/${audienceId}/${slot}.csv`, rows: n - 20, bytes: n * 40, sha256: 'ab'.repeat(32) }]
        : [],
      ...(status === 'skipped'
        ? { note: `coalesced into run ${audienceId}-${slot + 1}` }
        : { durationMs: 800 + (i % 400) }),
      ...(status === 'failed'
        ? {
            error: `engine: bad things at slot ${slot}\nThe run was not committed; the next \`audex run\` finishes it.`,
          }
        : {}),
    });
  }
  return records.reverse(); // newest first, as the history is read
}
