// `audex reset` (README "State and safety"): an operator sets an incremental audience's baseline aside, so
// its next run is a full backfill, or points it at a kept earlier baseline (`--to`).
//
// The cursor keeps its slot (the schedule goes on from where it was: the next due slot
// runs, and no slot already exported is run again under the same run id, which would
// overwrite its files and history record); only the baseline it names changes. Order:
// the `reset` history record (holding the cursor set aside), then the cursor. Killed in
// between, the record is there and the cursor unchanged: reset again. The caller holds
// the dataflow lock, so no run reads the cursor meanwhile.
import { createHash } from 'node:crypto';
import { ConfigError, RunFailedError } from '../errors.js';
import { stateKeys } from './state-keys.js';
import { zeroCounts, type Cursor, type RunRecord } from './records.js';
import { runStamp, type StateStore } from './state-store.js';

export interface ResetRequest {
  dataflowId: string;
  audienceId: string;
  mode: 'full' | 'incremental';
  /** `--to RUN_ID`: diff the next run against the baseline this run left. */
  to?: string;
  now: Date;
  /** Who asked, from the environment (user and host names only). */
  user: string;
  host: string;
  /** Throws when the dataflow lock is no longer held (called before each write). */
  assertLockHeld: () => void;
  /** Profiles in a kept baseline (the engine reads it). */
  countBaseline: (key: string) => Promise<number>;
}

/** Resets the audience; null when there is nothing to reset (never exported yet). */
export async function resetAudience(state: StateStore, request: ResetRequest): Promise<RunRecord | null> {
  const { audienceId, to } = request;
  if (request.mode !== 'incremental') {
    throw new ConfigError(
      `audience ${audienceId} exports full files (mode: full): every run is already a full export, so there is no baseline to reset`,
    );
  }
  const interrupted = (await state.listPending()).filter((p) => p.audienceId === audienceId);
  if (interrupted.length > 0) {
    throw new RunFailedError(
      `audience ${audienceId} has an interrupted run (${interrupted.map((p) => p.runId).join(', ')}; ${state.storage.describe(stateKeys.pending(interrupted[0]!.runId))}); ` +
        'nothing was reset. Run `audex run` first to finish it, then reset',
    );
  }
  const cursor = await state.readCursor(audienceId);
  if (!cursor) {
    if (to)
      throw new ConfigError(
        `--to ${to}: audience ${audienceId} has no cursor in ${state.storage.root}, so no run of it is committed; its next run is a full backfill already`,
      );
    return null;
  }
  let next: Cursor = withoutBaseline(cursor);
  if (to) {
    const key = stateKeys.baseline(audienceId, to);
    const kept = await state.listBaselines(audienceId);
    if (!kept.includes(key)) {
      const runs = kept.map((k) => k.slice(k.lastIndexOf('/') + 1).replace(/\.parquet$/, ''));
      throw new ConfigError(
        `--to ${to}: no baseline of that run is kept for audience ${audienceId} (kept: ${runs.join(', ') || 'none'}); ` +
          'older baselines are removed after each run beyond state.keepBaselines. Pick a kept run (see `audex runs --audience`), or reset without --to for a full backfill',
      );
    }
    next = { ...next, baseline: key, baselineSize: await request.countBaseline(key) };
  }
  const hash = createHash('sha256')
    .update([request.dataflowId, audienceId, 'reset', request.now.toISOString()].join('\n'))
    .digest('hex');
  const record: RunRecord = {
    runId: `${runStamp(request.now)}-${hash.slice(0, 8)}`,
    audienceId,
    mode: 'incremental',
    trigger: 'operator',
    logicalTime: request.now.toISOString(),
    snapshotId: cursor.snapshotId,
    status: 'reset',
    counts: zeroCounts(),
    files: [],
    note: to
      ? `reset by ${request.user} on ${request.host}: the next run diffs against the baseline of run ${to}`
      : `reset by ${request.user} on ${request.host}: the next run is a full backfill`,
    reset: { user: request.user, host: request.host, ...(to ? { to } : {}), previousCursor: cursor },
  };
  request.assertLockHeld();
  await state.appendHistory(record);
  request.assertLockHeld();
  await state.writeCursor(next);
  return record;
}

function withoutBaseline(cursor: Cursor): Cursor {
  const { baseline: _baseline, baselineSize: _size, ...rest } = cursor;
  return rest;
}
