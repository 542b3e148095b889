// One invocation of `audex run` or `audex export-now`: lock the dataflow, plan, load each
// needed snapshot once (bad input beyond the limit stops everything before any write),
// execute the runs (two audiences at a time), record history, release the lock.
import { rm } from 'node:fs/promises';
import path from 'node:path';
import type { LoadedConfig } from '../config/load.js';
import { loadEncryptionKey } from '../config/load-encryption-key.js';
import { buildShape } from '../engine/shape.js';
import { openEngine } from '../engine/session.js';
import { BadInputError, exitCodeOf, messageOf, EXIT } from '../errors.js';
import { deriveRunId, type PlannedRun } from '../plan/plan-runs.js';
import { acquireLock, NO_LOCK, sweepLockLeftovers, type Lease } from '../state/lock.js';
import { StateStore } from '../state/state-store.js';
import { zeroCounts, type PendingRun, type RunRecord } from '../state/records.js';
import { crashPoint } from './crash-points.js';
import { CommittedRunError, executeRun, pruneBaselines, type RunContext } from './execute-run.js';
import { loadSnapshots, openLocations, prepare } from './prepare.js';
import { createScratchDir } from '../storage/staging.js';

export interface InvokeOptions {
  config: LoadedConfig;
  command: 'run' | 'export-now';
  now: Date;
  audienceIds?: string[];
  pinnedSnapshot?: string;
  maxBadRecords: number;
  memoryLimit?: string;
  /** Take the dataflow lock (default). --no-lock is for stores without conditional writes. */
  lock?: boolean;
  progress: (message: string) => void;
  /** A problem the user must see even with --quiet (stderr). */
  warn: (message: string) => void;
}

export interface InvocationResult {
  dataflowId: string;
  at: string;
  runs: RunRecord[];
  exitCode: number;
}

export async function invoke(options: InvokeOptions): Promise<InvocationResult> {
  const { dataflow } = options.config;
  // The recipient key is checked before anything is read or written (SPEC §13).
  const encryption = await loadEncryptionKey(options.config, options.now);
  if (encryption) options.progress(`encrypting every data file for OpenPGP key ${encryption.fingerprint} (${encryption.source})`);
  // The run owns one scratch folder (downloads, staged uploads, DuckDB spill) and removes it.
  const scratchDir = await createScratchDir('run');
  let lease: Lease = NO_LOCK;
  try {
    const locations = openLocations(options.config, path.join(scratchDir, 'staging'));
    const state = new StateStore(locations.state);
    if (options.lock !== false) {
      lease = await acquireLock(locations.state, dataflow.id, new Date());
      await Promise.all([state.sweepLeftovers(dataflow.audiences.map((a) => a.id)), sweepLockLeftovers(locations.state)]).catch((error: unknown) =>
        options.warn(`could not remove what killed runs left in the state location (${messageOf(error)}); the runs go on, the next one tries again`),
      );
    }
    const { plan } = await prepare(options.config, options, locations);
    // A run that died before pruning its audience's old baselines: that is done too (see execute-run.ts).
    await finishCommitted(state, plan.committedPending, options.progress, async (pending) => {
      if (pending.mode === 'incremental' && pending.trigger !== 'exportNow') await pruneBaselines(state, dataflow, pending.audienceId, options.warn);
    });
    const records: RunRecord[] = plan.problems.map((p) => ({
      runId: deriveRunId(dataflow.id, p.audienceId, p.mode, p.trigger, p.logicalTime ?? options.now), audienceId: p.audienceId, mode: p.mode, trigger: p.trigger, logicalTime: (p.logicalTime ?? options.now).toISOString(),
      snapshotId: p.snapshotId, status: 'failed', counts: zeroCounts(), files: [], error: p.error,
    }));
    let exitCode: number = plan.problems.some((p) => p.exitCode === EXIT.usage) ? EXIT.usage : plan.problems.length ? EXIT.runFailed : EXIT.ok;
    if (plan.runs.length > 0) {
      const shape = buildShape(dataflow);
      const engine = await openEngine({ tempDirectory: path.join(scratchDir, 'spill'), memoryLimit: options.memoryLimit });
      try {
        const refused = new Map<PlannedRun, string>();
        const loaded = await loadSnapshots(engine, shape, locations.source, plan.runs, options, scratchDir, (run, message) => refused.set(run, message));
        crashPoint('after-read');
        const ctx: RunContext = {
          dataflow, shape, engine, destination: locations.destination, stateStorage: locations.state, state, lease, scratchDir, snapshots: loaded,
          progress: options.progress, warn: options.warn, ...(encryption ? { encryption } : {}),
        };
        // Audiences are independent: two at a time, each on its own DuckDB connection, so
        // one's file writing (JS, gzip) overlaps another's selection (DuckDB). The runs of
        // one audience stay in order (a finished interrupted run feeds the next diff).
        // A run that ran out of memory next to another audience's is run again alone, once
        // the others are done. After a failed run, the later runs of its audience wait for
        // the next invocation (each diffs against the baseline the one before leaves).
        const outcomes = new Map<PlannedRun, Outcome>();
        const runGroup = async (group: PlannedRun[], own: RunContext, alone: boolean): Promise<PlannedRun[]> => {
          for (const [i, run] of group.entries()) {
            const reason = refused.get(run);
            const outcome = reason === undefined ? await executeOne(own, run, options.warn) : failedOutcome(run, reason, EXIT.badInput);
            outcomes.set(run, outcome);
            // An export-now run moves no cursor: its failure holds back no later run.
            if (outcome.code === EXIT.ok || !run.advancesCursor) continue;
            if (outcome.outOfMemory && !alone) return group.slice(i);
            for (const later of group.slice(i + 1)) outcomes.set(later, notRun(later, run, outcome.code === EXIT.badInput));
            break;
          }
          return [];
        };
        const again: PlannedRun[][] = [];
        await forEachConcurrently(groupByAudience(plan.runs), AUDIENCES_AT_ONCE, async (group) => {
          const rest = await runGroup(group, { ...ctx, engine: await engine.connect() }, false);
          if (rest.length) again.push(rest);
        });
        for (const rest of again) {
          options.progress(`${rest[0]!.audienceId}: ran out of memory next to another audience; running it again alone`);
          await runGroup(rest, ctx, true);
        }
        for (const run of plan.runs) {
          const { record, code } = outcomes.get(run)!;
          exitCode = Math.max(exitCode, code);
          records.push(...skippedRecords(run), record);
        }
      } finally {
        engine.close();
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
        exitCode = Math.max(exitCode, exitCodeOf(error));
      }
    }
    await maintainHistory(state, options);
    return { dataflowId: dataflow.id, at: options.now.toISOString(), runs: records, exitCode };
  } finally {
    await lease.release();
    await rm(scratchDir, { recursive: true, force: true });
  }
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
    progress(`${pending.audienceId}: run ${pending.runId} was committed by an earlier invocation; its history record and cleanup are done now`);
    await afterEach(pending);
  }
}

/**
 * After the invocation's runs, under the lock: records of the layout before month folders
 * are moved into them, and with `state.keepHistoryDays` records older than that (by
 * logical time, counted from this invocation's now) are removed. A failure only warns:
 * every run is committed or recorded already.
 */
async function maintainHistory(state: StateStore, options: InvokeOptions): Promise<void> {
  const keepDays = options.config.dataflow.state?.keepHistoryDays;
  try {
    const moved = await state.migrateLegacyHistory();
    if (moved > 0) options.progress(`moved ${moved} history record(s) into month folders`);
    if (keepDays !== undefined) {
      const removed = await state.pruneHistory(new Date(options.now.getTime() - keepDays * 86_400_000), () => crashPoint('in-prune'));
      if (removed > 0) options.progress(`removed ${removed} history record(s) older than ${keepDays} day(s)`);
    }
  } catch (error) {
    options.warn(`the runs are recorded, but the history could not be tidied (${messageOf(error)}); the next run tries again`);
  }
}

interface Outcome {
  record: RunRecord;
  code: number;
  outOfMemory?: boolean;
}

/** The outcome of a failed run (or of one that did not start: bad entries beyond the limit). */
function failedOutcome(run: PlannedRun, error: string, code: number): Outcome {
  return {
    record: {
      runId: run.runId, audienceId: run.audienceId, mode: run.mode, trigger: run.trigger, logicalTime: run.logicalTime.toISOString(),
      snapshotId: run.snapshot.snapshotId, status: 'failed', counts: zeroCounts(), files: [], error,
    },
    code,
  };
}

/** A later run of an audience whose earlier run in this invocation failed. */
function notRun(run: PlannedRun, failed: PlannedRun, abandoned: boolean): Outcome {
  const next = abandoned ? 'the next `audex run` plans afresh' : 'the next `audex run` runs both in order';
  return failedOutcome(run, `not run: run ${failed.runId} of this audience failed before it; ${next}`, EXIT.runFailed);
}

async function executeOne(ctx: RunContext, run: PlannedRun, warn: (message: string) => void): Promise<Outcome> {
  const started = performance.now();
  try {
    return { record: await executeRun(ctx, run), code: EXIT.ok };
  } catch (error) {
    if (error instanceof CommittedRunError) return committedOutcome(error, run.audienceId, warn);
    const outOfMemory = /Out of Memory Error/.test(messageOf(error));
    const failed = failedOutcome(run, uncommittedError(error, error instanceof BadInputError ? ABANDONED : RESUMED), exitCodeOf(error));
    return { ...failed, record: { ...failed.record, durationMs: Math.round(performance.now() - started) }, outOfMemory };
  }
}

/** A run that failed after its commit point: its record, with a note that nothing is exported again. */
export function committedOutcome(error: CommittedRunError, id: string, warn: (message: string) => void): { record: RunRecord; code: number } {
  const note =
    `the run was committed (its files are delivered and its cursor advanced), but then ${messageOf(error.cause)}. ` +
    'The next `audex run` writes its history record and removes its pending record; it does not export again.';
  warn(`${id}: ${note}`);
  return { record: { ...error.record, note }, code: exitCodeOf(error.cause) };
}

/** The error of a run that failed before its commit point. */
/** A failed run's error for its record: the cause, a memory hint, and what happens next. */
export function uncommittedError(error: unknown, next: string = RESUMED): string {
  const hint = /Out of Memory Error/.test(messageOf(error)) ? '\nThe engine ran out of memory: raise --memory-limit (default 1GB).' : '';
  return `${messageOf(error)}${hint}\n${next}`;
}

/** Missed slots coalesced into `run`, recorded so the history shows every slot. */
function skippedRecords(run: PlannedRun): RunRecord[] {
  return run.skippedSlots.map((slot) => ({
    runId: deriveRunId(run.dataflowId, run.audienceId, run.mode, run.trigger, slot),
    audienceId: run.audienceId, mode: run.mode, trigger: run.trigger, logicalTime: slot.toISOString(), snapshotId: null,
    status: 'skipped', counts: zeroCounts(), files: [], note: `coalesced into run ${run.runId} at ${run.logicalTime.toISOString()}`,
  }));
}
