// One invocation of `audex run` or `audex export-now`: lock the dataflow, plan, load each
// needed snapshot once (bad input beyond the limit stops everything before any write),
// execute the runs (two audiences at a time), record history, release the lock.
import { rm } from 'node:fs/promises';
import path from 'node:path';
import type { LoadedConfig } from '../config/load.js';
import { loadEncryptionKey } from '../config/load-encryption-key.js';
import { buildShape, type Shape } from '../engine/shape.js';
import { hasSpilled } from '../engine/session.js';
import {
  BadInputError,
  CommittedRunError,
  ConfigError,
  RunFailedError,
  asAudexError,
  messageOf,
  type AudexError,
} from '../errors.js';
import { deriveRunId, type Plan, type PlannedRun } from '../plan/plan-runs.js';
import { lockDataflow, NO_LOCK, type Lease } from '../state/lock.js';
import { StateStore } from '../state/state-store.js';
import { zeroCounts, type PendingRun, type RunRecord } from '../state/records.js';
import { crashPoint } from './crash-points.js';
import { executeRun, pruneBaselines, type RunContext } from './execute-run.js';
import { maintainHistory } from './maintain-history.js';
import { failed, SKIPPED, SUCCEEDED, type Outcome } from './outcome.js';
import { openLocations, prepare, type Locations } from './prepare.js';
import { createSnapshotReads, type SnapshotNeeds, type SnapshotReads } from './snapshot-reads.js';
import type { PartEncryption } from '../writers/encrypt-part.js';
import { createScratchDir } from '../storage/staging.js';
import type { InvocationSettings } from './invocation-settings.js';

export interface InvokeOptions extends InvocationSettings {
  config: LoadedConfig;
  command: 'run' | 'export-now';
  audienceIds?: string[];
  pinnedSnapshot?: string;
}

export interface InvocationResult {
  dataflowId: string;
  at: string;
  runs: RunRecord[];
  /** One per record (same order), then one per failure outside any run (a history write). */
  outcomes: Outcome[];
}

export async function invoke(options: InvokeOptions): Promise<InvocationResult> {
  const [result] = await invokeEach([options]);
  if ('error' in result!) throw result.error;
  return result!;
}

/**
 * Several audience dataflows in one invocation: each is opened (its lock taken, its runs
 * planned) before any snapshot is read, so that every read goes through one seam that
 * knows them all (run/snapshot-reads.ts); then each runs in turn and releases its lock.
 * One that fails (locked, bad input, storage) does not stop the others: its entry holds
 * the error, with what it ran.
 */
export async function invokeEach(all: InvokeOptions[]): Promise<(InvocationResult | FailedInvocation)[]> {
  const opened: (OpenedDataflow | FailedInvocation)[] = [];
  for (const options of all) {
    try {
      opened.push(await openDataflow(options));
    } catch (error) {
      opened.push(failedInvocation(options, error));
    }
  }
  const reads = createSnapshotReads(opened.map((o) => ('error' in o ? null : needsOf(o))));
  const results: (InvocationResult | FailedInvocation)[] = [];
  try {
    for (const [index, o] of opened.entries()) {
      if ('error' in o) {
        results.push(o);
        continue;
      }
      try {
        results.push(await runDataflow(o, reads, index));
      } catch (error) {
        results.push(failedInvocation(o.options, error));
      } finally {
        reads.release(index);
        await closeDataflow(o);
      }
    }
  } finally {
    await reads.close();
  }
  return results;
}

/** A dataflow of the invocation that failed before or outside its runs. */
export interface FailedInvocation {
  dataflowId: string;
  at: string;
  runs: RunRecord[];
  error: AudexError;
}

function failedInvocation(options: InvokeOptions, error: unknown): FailedInvocation {
  return {
    dataflowId: options.config.dataflow.id,
    at: options.now.toISOString(),
    runs: [],
    error: asAudexError(error),
  };
}

/** A dataflow with its lock taken and its runs planned; nothing read or written yet but committed runs' cleanup. */
interface OpenedDataflow {
  options: InvokeOptions;
  encryption: PartEncryption | undefined;
  scratchDir: string;
  lease: Lease;
  locations: Locations;
  state: StateStore;
  plan: Plan;
  shape: Shape;
}

async function openDataflow(options: InvokeOptions): Promise<OpenedDataflow> {
  const { dataflow } = options.config;
  // The recipient key is checked before anything is read or written (README "Encrypted files").
  const encryption = await loadEncryptionKey(options.config, options.now);
  if (encryption)
    options.progress(`encrypting every data file for OpenPGP key ${encryption.fingerprint} (${encryption.source})`);
  // The run owns one scratch folder (downloads, staged uploads, DuckDB spill) and removes it.
  const scratchDir = await createScratchDir('run');
  let lease: Lease = NO_LOCK;
  try {
    const locations = openLocations(options.config, path.join(scratchDir, 'staging'));
    const state = new StateStore(locations.state);
    lease = await lockDataflow(locations.state, dataflow.id, options, () =>
      state.sweepLeftovers(dataflow.audiences.map((a) => a.id)),
    );
    const { plan } = await prepare(options.config, options, locations);
    // A run that died before pruning its audience's old baselines: that is done too (see execute-run.ts).
    await finishCommitted(state, plan.committedPending, options.progress, async (pending) => {
      if (pending.mode === 'incremental' && pending.trigger !== 'exportNow')
        await pruneBaselines(state, dataflow, pending.audienceId, options.warn);
    });
    return { options, encryption, scratchDir, lease, locations, state, plan, shape: buildShape(dataflow) };
  } catch (error) {
    await lease.release();
    await rm(scratchDir, { recursive: true, force: true });
    throw error;
  }
}

async function closeDataflow(o: OpenedDataflow): Promise<void> {
  await o.lease.release();
  await rm(o.scratchDir, { recursive: true, force: true });
}

function needsOf(o: OpenedDataflow): SnapshotNeeds {
  const { options } = o;
  return {
    shape: o.shape,
    source: o.locations.source,
    runs: o.plan.runs,
    scratchDir: o.scratchDir,
    maxBadRecords: options.maxBadRecords,
    progress: options.progress,
    ...(options.memoryLimit === undefined ? {} : { memoryLimit: options.memoryLimit }),
  };
}

async function runDataflow(o: OpenedDataflow, reads: SnapshotReads, index: number): Promise<InvocationResult> {
  const { options, plan, state, scratchDir, lease, locations, encryption, shape } = o;
  const { dataflow } = options.config;
  const records: RunRecord[] = plan.problems.map((p) => ({
    runId: deriveRunId(dataflow.id, p.audienceId, p.mode, p.trigger, p.logicalTime ?? options.now),
    audienceId: p.audienceId,
    mode: p.mode,
    trigger: p.trigger,
    logicalTime: (p.logicalTime ?? options.now).toISOString(),
    snapshotId: p.snapshotId,
    status: 'failed',
    counts: zeroCounts(),
    files: [],
    error: p.error,
  }));
  const outcomes: Outcome[] = plan.problems.map((p) =>
    failed(p.kind === 'config' ? new ConfigError(p.error) : new RunFailedError(p.error)),
  );
  if (plan.runs.length > 0) {
    const { engine, snapshots: loaded, refused } = await reads.read(index);
    crashPoint('after-read');
    const ctx: RunContext = {
      dataflow,
      shape,
      engine,
      destination: locations.destination,
      stateStorage: locations.state,
      state,
      lease,
      scratchDir,
      snapshots: loaded,
      progress: options.progress,
      warn: options.warn,
      ...(encryption ? { encryption } : {}),
    };
    // Audiences are independent: two at a time, each on its own DuckDB connection, so
    // one's file writing (JS, gzip) overlaps another's selection (DuckDB). The runs of
    // one audience stay in order (a finished interrupted run feeds the next diff).
    // A run that ran out of memory next to another audience's is run again alone, once
    // the others are done. After a failed run, the later runs of its audience wait for
    // the next invocation (each diffs against the baseline the one before leaves).
    const runOutcomes = new Map<PlannedRun, RunOutcome>();
    const runGroup = async (group: PlannedRun[], own: RunContext, alone: boolean): Promise<PlannedRun[]> => {
      for (const [i, run] of group.entries()) {
        const reason = refused.get(run);
        const outcome =
          reason === undefined
            ? await executeOne(own, run, options.warn)
            : failedOutcome(run, reason, new BadInputError(reason));
        runOutcomes.set(run, outcome);
        // An export-now run moves no cursor: its failure holds back no later run.
        if (!outcome.error || !run.advancesCursor) continue;
        if (outcome.outOfMemory && !alone) return group.slice(i);
        for (const later of group.slice(i + 1))
          runOutcomes.set(later, notRun(later, run, outcome.error instanceof BadInputError));
        break;
      }
      return [];
    };
    const again: PlannedRun[][] = [];
    // Diffs write few rows, so two side by side gain little from overlapping file writing;
    // with a snapshot larger than the engine's memory (it has spilled) they only contend for
    // it: one at a time then (README "Performance": 10M incremental 64 s two at a time, 56 s
    // one at a time; full runs stay two at a time, 66 s against 71 s).
    const onlyDiffs = plan.runs.every((r) => r.selection.kind === 'diff');
    const atOnce = onlyDiffs && (await hasSpilled(engine)) ? 1 : AUDIENCES_AT_ONCE;
    await forEachConcurrently(groupByAudience(plan.runs), atOnce, async (group) => {
      const rest = await runGroup(group, { ...ctx, engine: await engine.connect() }, false);
      if (rest.length) again.push(rest);
    });
    for (const rest of again) {
      options.progress(`${rest[0]!.audienceId}: ran out of memory next to another audience; running it again alone`);
      await runGroup(rest, ctx, true);
    }
    for (const run of plan.runs) {
      const { record, error } = runOutcomes.get(run)!;
      const skipped = skippedRecords(run);
      records.push(...skipped, record);
      outcomes.push(...skipped.map(() => SKIPPED), error ? failed(error) : SUCCEEDED);
    }
  }
  // Successful runs wrote their own history record right after their commit point.
  for (const record of records) {
    if (record.status === 'success') continue;
    try {
      await state.appendHistory(record);
    } catch (error) {
      // The summary must still say why the run failed (a full disk fails both).
      options.warn(`could not record run ${record.runId} in the history: ${messageOf(error)}`);
      outcomes.push(failed(asAudexError(error)));
    }
  }
  await maintainHistory(state, dataflow.state?.keepHistoryDays, options);
  return { dataflowId: dataflow.id, at: options.now.toISOString(), runs: records, outcomes };
}

const AUDIENCES_AT_ONCE = 2;

const RESUMED = 'The run was not committed; the next `audex run` finishes it.';
const ABANDONED =
  'The run failed on its input, so it is not retried against the same snapshot: it is recorded failed, and the next `audex run` plans afresh (with the newest snapshot).';

function groupByAudience(runs: PlannedRun[]): PlannedRun[][] {
  const groups = new Map<string, PlannedRun[]>();
  for (const run of runs) groups.set(run.audienceId, [...(groups.get(run.audienceId) ?? []), run]);
  return [...groups.values()];
}

async function forEachConcurrently<T>(items: T[], limit: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await work(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

/**
 * Runs committed by an earlier invocation that died (or failed to write to the store)
 * before their history record and cleanup: writes the record kept in the pending record,
 * then removes it.
 */
export async function finishCommitted(
  state: StateStore,
  committed: PendingRun[],
  progress: (message: string) => void,
  afterEach: (pending: PendingRun) => Promise<void> = async () => undefined,
): Promise<void> {
  for (const pending of committed) {
    if (pending.outcome) await state.appendHistory(pending.outcome);
    await state.deletePending(pending.runId);
    progress(
      `${pending.audienceId}: run ${pending.runId} was committed by an earlier invocation; its history record and cleanup are done now`,
    );
    await afterEach(pending);
  }
}

/** A run's record, and its error when it failed. */
interface RunOutcome {
  record: RunRecord;
  error?: AudexError;
  outOfMemory?: boolean;
}

/** The outcome of a failed run (or of one that did not start: bad entries beyond the limit). */
function failedOutcome(run: PlannedRun, error: string, cause: AudexError): RunOutcome {
  return {
    record: {
      runId: run.runId,
      audienceId: run.audienceId,
      mode: run.mode,
      trigger: run.trigger,
      logicalTime: run.logicalTime.toISOString(),
      snapshotId: run.snapshot.snapshotId,
      status: 'failed',
      counts: zeroCounts(),
      files: [],
      error,
    },
    error: cause,
  };
}

/** A later run of an audience whose earlier run in this invocation failed. */
function notRun(run: PlannedRun, before: PlannedRun, abandoned: boolean): RunOutcome {
  const next = abandoned ? 'the next `audex run` plans afresh' : 'the next `audex run` runs both in order';
  const error = `not run: run ${before.runId} of this audience failed before it; ${next}`;
  return failedOutcome(run, error, new RunFailedError(error));
}

async function executeOne(ctx: RunContext, run: PlannedRun, warn: (message: string) => void): Promise<RunOutcome> {
  const started = performance.now();
  try {
    return { record: await executeRun(ctx, run) };
  } catch (error) {
    if (error instanceof CommittedRunError) return committedOutcome(error, run.audienceId, warn);
    const outOfMemory = /Out of Memory Error/.test(messageOf(error));
    const outcome = failedOutcome(
      run,
      uncommittedError(error, error instanceof BadInputError ? ABANDONED : RESUMED),
      asAudexError(error),
    );
    return {
      ...outcome,
      record: { ...outcome.record, durationMs: Math.round(performance.now() - started) },
      outOfMemory,
    };
  }
}

/** A run that failed after its commit point: its record, with a note that nothing is exported again. */
export function committedOutcome(
  error: CommittedRunError,
  id: string,
  warn: (message: string) => void,
): { record: RunRecord; error: AudexError } {
  const note =
    `the run was committed (its files are delivered and its cursor advanced), but then ${messageOf(error.cause)}. ` +
    'The next `audex run` writes its history record and removes its pending record; it does not export again.';
  warn(`${id}: ${note}`);
  return { record: { ...error.record, note }, error };
}

/** The error of a run that failed before its commit point. */
/** A failed run's error for its record: the cause, a memory hint, and what happens next. */
export function uncommittedError(error: unknown, next: string = RESUMED): string {
  const hint = /Out of Memory Error/.test(messageOf(error))
    ? '\nThe engine ran out of memory: raise --memory-limit (default 1GB).'
    : '';
  return `${messageOf(error)}${hint}\n${next}`;
}

/** Missed slots coalesced into `run`, recorded so the history shows every slot. */
function skippedRecords(run: PlannedRun): RunRecord[] {
  return run.skippedSlots.map((slot) => ({
    runId: deriveRunId(run.dataflowId, run.audienceId, run.mode, run.trigger, slot),
    audienceId: run.audienceId,
    mode: run.mode,
    trigger: run.trigger,
    logicalTime: slot.toISOString(),
    snapshotId: null,
    status: 'skipped',
    counts: zeroCounts(),
    files: [],
    note: `coalesced into run ${run.runId} at ${run.logicalTime.toISOString()}`,
  }));
}
