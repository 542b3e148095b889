// What an audience's cursor becomes after a run: the one rule the planner (after an
// interrupted run it will finish first), the executor (the commit point) and the dry run
// (the baseline a later run of the same plan diffs against) share. Pure.
//
// A run that does not move the cursor (export-now), or that did not succeed, leaves it as
// it was. A successful scheduled run moves it to its slot and snapshot; an incremental
// one also to the baseline it wrote (keyed by its run id), with its size when known.
import { stateKeys } from '../state/state-keys.js';
import type { Cursor, RunMode } from '../state/records.js';

export interface CursorRun {
  audienceId: string;
  runId: string;
  mode: RunMode;
  logicalTime: Date;
  snapshotId: string;
  advancesCursor: boolean;
}

export type CursorOutcome = { status: 'success'; baselineSize?: number } | { status: 'failed' | 'skipped' };

export function nextCursor(previous: Cursor | undefined, run: CursorRun, outcome: CursorOutcome): Cursor | undefined {
  if (!run.advancesCursor || outcome.status !== 'success') return previous;
  const baseline = run.mode === 'incremental' ? stateKeys.baseline(run.audienceId, run.runId) : undefined;
  return {
    audienceId: run.audienceId,
    lastSlot: run.logicalTime.toISOString(),
    runId: run.runId,
    snapshotId: run.snapshotId,
    mode: run.mode,
    ...(baseline
      ? { baseline, ...(outcome.baselineSize === undefined ? {} : { baselineSize: outcome.baselineSize }) }
      : {}),
  };
}
