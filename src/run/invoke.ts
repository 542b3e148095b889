// One invocation of `audex run` or `audex export-now`: lock the dataflow, plan, load each
// needed snapshot once (bad input beyond the limit stops everything before any write),
// execute the runs one audience at a time, record history, release the lock.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { LoadedConfig } from '../config/load.js';
import { buildShape, type Shape } from '../engine/shape.js';
import { openEngine, type Engine } from '../engine/session.js';
import { badRecordsFor, describeBadInput, loadSnapshot, type LoadedSnapshot, type PartFile } from '../engine/load-snapshot.js';
import { BadInputError, ConfigError, exitCodeOf, messageOf, EXIT } from '../errors.js';
import { deriveRunId, planExportNow, planScheduledRuns, type Plan, type PlannedRun } from '../plan/plan-runs.js';
import { listParts, listSnapshots, type SnapshotInfo } from '../snapshots/list-snapshots.js';
import { defaultStateLocation, openLocation } from '../storage/open-location.js';
import type { StorageBackend } from '../storage/backend.js';
import { StateStore } from '../state/state-store.js';
import { zeroCounts, type Cursor, type RunRecord } from '../state/records.js';
import { executeRun, type RunContext } from './execute-run.js';

export interface InvokeOptions {
  config: LoadedConfig;
  command: 'run' | 'export-now';
  now: Date;
  audienceIds?: string[];
  pinnedSnapshot?: string;
  maxBadRecords: number;
  memoryLimit?: string;
  progress: (message: string) => void;
}

export interface InvocationResult {
  dataflowId: string;
  at: string;
  runs: RunRecord[];
  exitCode: number;
}

export interface Locations {
  source: StorageBackend;
  destination: StorageBackend;
  state: StorageBackend;
}

export function openLocations(config: LoadedConfig): Locations {
  const { dataflow, dir } = config;
  return {
    source: openLocation(dataflow.source.snapshots, dir, 'source.snapshots'),
    destination: openLocation(dataflow.destination.path, dir, 'destination.path'),
    state: openLocation(dataflow.state?.path ?? defaultStateLocation(dataflow.destination.path, dataflow.id), dir, 'state.path'),
  };
}

export async function readCursors(state: StateStore, audienceIds: string[]): Promise<Map<string, Cursor>> {
  const cursors = new Map<string, Cursor>();
  for (const id of audienceIds) {
    const cursor = await state.readCursor(id);
    if (cursor) cursors.set(id, cursor);
  }
  return cursors;
}

export async function invoke(options: InvokeOptions): Promise<InvocationResult> {
  const { dataflow } = options.config;
  const locations = openLocations(options.config);
  const state = new StateStore(locations.state);
  const release = await state.acquireLock(dataflow.id, new Date());
  const scratchDir = await mkdtemp(path.join(tmpdir(), 'audex-'));
  try {
    const snapshots = await listSnapshots(locations.source);
    const pending = await state.listPending();
    const plan = buildPlan(options, snapshots, pending, await readCursors(state, dataflow.audiences.map((a) => a.id)));
    for (const runId of plan.committedPending) await state.deletePending(runId);
    const records: RunRecord[] = plan.problems.map((p) => ({
      runId: deriveRunId(dataflow.id, p.audienceId, p.mode, p.trigger, p.logicalTime ?? options.now), audienceId: p.audienceId, mode: p.mode, trigger: p.trigger, logicalTime: (p.logicalTime ?? options.now).toISOString(),
      snapshotId: p.snapshotId, status: 'failed', counts: zeroCounts(), files: [], error: p.error,
    }));
    let exitCode: number = plan.problems.some((p) => p.exitCode === EXIT.usage) ? EXIT.usage : plan.problems.length ? EXIT.runFailed : EXIT.ok;
    if (plan.runs.length > 0) {
      const shape = buildShape(dataflow);
      const engine = await openEngine({ tempDirectory: path.join(scratchDir, 'spill'), memoryLimit: options.memoryLimit });
      try {
        const loaded = await loadSnapshots(engine, shape, locations.source, plan.runs, options, scratchDir);
        const ctx: RunContext = {
          dataflow, shape, engine, destination: locations.destination, stateStorage: locations.state, state, scratchDir, snapshots: loaded,
          progress: options.progress,
        };
        for (const run of plan.runs) {
          const { record, code } = await executeOne(ctx, run);
          exitCode = Math.max(exitCode, code);
          records.push(...skippedRecords(run), record);
        }
      } finally {
        engine.close();
      }
    }
    for (const record of records) await state.appendHistory(record);
    return { dataflowId: dataflow.id, at: options.now.toISOString(), runs: records, exitCode };
  } finally {
    await release();
    await rm(scratchDir, { recursive: true, force: true });
  }
}

function buildPlan(options: InvokeOptions, snapshots: SnapshotInfo[], pending: Awaited<ReturnType<StateStore['listPending']>>, cursors: Map<string, Cursor>): Plan {
  const { dataflow } = options.config;
  const scheduled = planScheduledRuns({ dataflow, snapshots, cursors, pending, now: options.now, pinnedSnapshot: options.pinnedSnapshot });
  if (options.command === 'run') return scheduled;
  const adHoc = planExportNow({ dataflow, snapshots, audienceIds: options.audienceIds ?? [], now: options.now, pinnedSnapshot: options.pinnedSnapshot });
  if (adHoc.refusals.length > 0) throw new ConfigError(adHoc.refusals);
  // Export now never runs scheduled slots, but it does finish this dataflow's interrupted runs first.
  return {
    runs: [...scheduled.runs.filter((r) => r.resumed), ...adHoc.runs],
    problems: adHoc.problems,
    idle: [],
    committedPending: scheduled.committedPending,
  };
}

/** Loads each needed snapshot once; any run beyond --max-bad-records stops everything before a write. */
async function loadSnapshots(
  engine: Engine,
  shape: Shape,
  source: StorageBackend,
  runs: PlannedRun[],
  options: InvokeOptions,
  scratchDir: string,
): Promise<Map<string, LoadedSnapshot>> {
  const loaded = new Map<string, LoadedSnapshot>();
  for (const run of runs) {
    const snapshot = run.snapshot;
    if (loaded.has(snapshot.snapshotId)) continue;
    const parts: PartFile[] = [];
    for (const part of await listParts(source, snapshot)) {
      parts.push({ path: await source.fetch(part.key, scratchDir), name: source.describe(part.key), kind: part.kind });
    }
    options.progress(`reading snapshot ${snapshot.snapshotId} (${parts.length} part(s))`);
    const result = await loadSnapshot(engine, shape, parts, { table: `snap_${loaded.size}`, scratchDir });
    options.progress(`snapshot ${snapshot.snapshotId}: ${result.profiles} profiles`);
    loaded.set(snapshot.snapshotId, result);
  }
  const tooMany: string[] = [];
  for (const run of runs) {
    const bad = badRecordsFor(loaded.get(run.snapshot.snapshotId)!, run.audienceId);
    if (bad.length > options.maxBadRecords) tooMany.push(describeBadInput(run.snapshot.snapshotId, run.audienceId, bad, options.maxBadRecords));
    else if (bad.length > 0) {
      options.progress(`${run.audienceId}: skipping ${bad.length} bad record(s) of snapshot ${run.snapshot.snapshotId} (--max-bad-records ${options.maxBadRecords})`);
      for (const b of bad.slice(0, 10)) options.progress(`  ${b.file}:${b.line}: ${b.reason}`);
    }
  }
  if (tooMany.length > 0) throw new BadInputError(`${[...new Set(tooMany)].join('\n')}\nNothing was written.`);
  return loaded;
}

async function executeOne(ctx: RunContext, run: PlannedRun): Promise<{ record: RunRecord; code: number }> {
  const started = performance.now();
  try {
    const record = await executeRun(ctx, run);
    return { record: { ...record, durationMs: Math.round(performance.now() - started) }, code: EXIT.ok };
  } catch (error) {
    const record: RunRecord = {
      runId: run.runId, audienceId: run.audienceId, mode: run.mode, trigger: run.trigger, logicalTime: run.logicalTime.toISOString(),
      snapshotId: run.snapshot.snapshotId, status: 'failed', counts: zeroCounts(), files: [],
      durationMs: Math.round(performance.now() - started),
      error: `${messageOf(error)}\nThe run was not committed; the next \`audex run\` finishes it.`,
    };
    return { record, code: exitCodeOf(error) };
  }
}

/** Missed slots coalesced into `run`, recorded so the history shows every slot. */
function skippedRecords(run: PlannedRun): RunRecord[] {
  return run.skippedSlots.map((slot) => ({
    runId: deriveRunId(run.dataflowId, run.audienceId, run.mode, run.trigger, slot),
    audienceId: run.audienceId, mode: run.mode, trigger: run.trigger, logicalTime: slot.toISOString(), snapshotId: null,
    status: 'skipped', counts: zeroCounts(), files: [], note: `coalesced into run ${run.runId} at ${run.logicalTime.toISOString()}`,
  }));
}
