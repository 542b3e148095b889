// The shapes of what audex keeps in its state location (README "State and safety") and of a run's summary
// (README "Running it"). History records and the --json summary share RunRecord.
// Named for all of them rather than one: RunRecord, Cursor and PendingRun are equal peers
// (the history record, the commit point and the pending record), one file so their fields
// stay consistent with each other.

export type RunMode = 'full' | 'incremental';
/** `operator`: a record of an operator's command (`audex reset`), not a run. */
export type RunTrigger = 'schedule' | 'afterEvaluation' | 'exportNow' | 'operator';
/** `reset`: not a run but an operator's `audex reset` of the audience (see `reset`). */
export type RunStatus = 'success' | 'failed' | 'skipped' | 'reset';

export interface RunCounts {
  profilesReceived: number;
  rowsWritten: number;
  excludedMandatory: number;
  excludedDuplicate: number;
  exitsOmitted: number;
  /** Profiles written as exit rows (0 when the status is not mapped: see exitsOmitted). Absent in records older than this field. */
  exitsWritten?: number;
  badRecords: number;
}

export interface RunFile {
  path: string;
  rows: number;
  bytes: number;
  sha256: string;
}

export interface RunRecord {
  runId: string;
  audienceId: string;
  mode: RunMode;
  trigger: RunTrigger;
  logicalTime: string;
  snapshotId: string | null;
  status: RunStatus;
  counts: RunCounts;
  files: RunFile[];
  manifest?: string;
  durationMs?: number;
  error?: string;
  /** Why a run was skipped (coalesced into a later slot). */
  note?: string;
  /** A `reset` record: who reset the audience, and the cursor it set aside. */
  reset?: ResetInfo;
}

export interface ResetInfo {
  user: string;
  host: string;
  /** The run whose baseline the next run diffs against (`--to`); absent: a full backfill. */
  to?: string;
  previousCursor: Cursor | null;
}

/** The commit point of an audience: written last by a successful scheduled run. */
export interface Cursor {
  audienceId: string;
  lastSlot: string;
  runId: string;
  snapshotId: string;
  mode: RunMode;
  /** State key of the membership baseline (incremental audiences only). */
  baseline?: string;
  baselineSize?: number;
}

/** Written before a run touches anything, removed after its commit; lets the next invocation finish it. */
export interface PendingRun {
  runId: string;
  audienceId: string;
  mode: RunMode;
  trigger: RunTrigger;
  logicalTime: string;
  snapshotId: string;
  /** Destination folders the run writes into (for removing its staged files). */
  folders: string[];
  /**
   * The run's history record, stored just before its commit point (the cursor): a run
   * that dies after committing but before its history record is written still gets that
   * record, from here, at the next invocation.
   */
  outcome?: RunRecord;
  /**
   * Set before the first data part is published under its final name: a run abandoned
   * later (it failed on its input) removes those parts, unless its manifest was written.
   */
  published?: boolean;
}

export function zeroCounts(): RunCounts {
  return {
    profilesReceived: 0,
    rowsWritten: 0,
    excludedMandatory: 0,
    excludedDuplicate: 0,
    exitsOmitted: 0,
    exitsWritten: 0,
    badRecords: 0,
  };
}
