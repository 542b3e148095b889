// Executes one planned run. The commit order (README "State and safety") lives here:
//
//   pending record → data parts (staged, then published) → manifest → new baseline
//   → pending record with the run's outcome → cursor → history record → pending removed
//
//   → old baselines pruned (after the commit point only)
//
// The cursor write is the commit point. A run killed anywhere before it leaves a pending
// record; the next invocation finishes that run with the same id, snapshot and logical
// time, so the files repeat byte for byte and no membership change is lost or doubled.
// A run killed after it gets its history record (from the pending record's outcome) and
// its cleanup from the next invocation; a store failure there is a CommittedRunError.
// A run that fails on its input (BadInputError: the same snapshot would fail again) is
// abandoned instead: its pending record and any data parts it published without a
// manifest are removed, so the next invocation plans afresh.
import path from 'node:path';
import type { Dataflow } from '../config/schema.js';
import type { Engine } from '../engine/session.js';
import type { Shape } from '../engine/shape.js';
import type { LoadedSnapshot } from '../engine/load-snapshot.js';
import { dropRun, selectRun, writeNextBaseline, type SelectedRun } from '../engine/audience-run.js';
import { BadInputError, CommittedRunError, messageOf } from '../errors.js';
import { partFileName } from '../naming/names.js';
import type { PlannedRun } from '../plan/plan-runs.js';
import { nextCursor } from '../plan/next-cursor.js';
import { joinKey, type StorageBackend } from '../storage/backend.js';
import type { Lease } from '../state/lock.js';
import { DEFAULT_KEEP_BASELINES } from '../state/state-store.js';
import type { StateStore } from '../state/state-store.js';
import type { PendingRun, RunCounts, RunRecord } from '../state/records.js';
import { crashPoint } from './crash-points.js';
import { fileSystemErrorOf } from '../storage/local.js';
import { resolveRunNames } from './run-names.js';
import { writeParts, type WrittenPart } from '../writers/write-parts.js';
import { formatOf } from '../writers/formats.js';
import { ENCRYPTED_CONTENT_TYPE, encryptWrittenPart, type PartEncryption } from '../writers/encrypt-part.js';

export interface RunContext {
  dataflow: Dataflow;
  shape: Shape;
  engine: Engine;
  destination: StorageBackend;
  stateStorage: StorageBackend;
  state: StateStore;
  /** The dataflow lock: checked right before every write that commits. */
  lease: Lease;
  scratchDir: string;
  snapshots: Map<string, LoadedSnapshot>;
  progress: (message: string) => void;
  /** Set when the dataflow encrypts its files (format.encryption): the checked recipient key. */
  encryption?: PartEncryption;
  /** A problem the user must see even with --quiet (stderr). */
  warn?: (message: string) => void;
}

export async function executeRun(ctx: RunContext, run: PlannedRun): Promise<RunRecord> {
  const attempt = { published: run.partsPublished === true };
  try {
    return await runSteps(ctx, run, attempt);
  } catch (error) {
    if (error instanceof BadInputError) await abandonRun(ctx, run, attempt.published);
    throw fileSystemErrorOf(error, ctx.destination.describe(resolveRunNames(ctx.dataflow, run).folder));
  }
}

async function runSteps(ctx: RunContext, run: PlannedRun, attempt: { published: boolean }): Promise<RunRecord> {
  const started = performance.now();
  const { dataflow, shape, engine, destination, state } = ctx;
  const loaded = ctx.snapshots.get(run.snapshot.snapshotId);
  if (!loaded) throw new Error(`internal: snapshot ${run.snapshot.snapshotId} was not loaded`);
  const names = resolveRunNames(dataflow, run);
  const { folder, baseName } = names;

  const pending: PendingRun = {
    runId: run.runId,
    audienceId: run.audienceId,
    mode: run.mode,
    trigger: run.trigger,
    logicalTime: run.logicalTime.toISOString(),
    snapshotId: run.snapshot.snapshotId,
    folders: [folder],
    ...(attempt.published ? { published: true } : {}),
  };
  ctx.lease.assertHeld();
  await state.writePending(pending);
  crashPoint('after-pending');
  await destination.removeStaged(folder, [baseName, names.manifestName]);

  const baseline =
    run.selection.kind === 'diff'
      ? { file: await ctx.stateStorage.fetch(run.selection.baselineKey, ctx.scratchDir) }
      : undefined;
  ctx.progress(`${run.audienceId}: selecting ${run.mode} rows from snapshot ${run.snapshot.snapshotId}`);
  const selected = await selectRun(engine, shape, loaded, run.audienceId, baseline, {
    nextBaseline: run.mode === 'incremental',
  });
  try {
    return await writeRun(ctx, run, selected, pending, attempt, started);
  } finally {
    // Also after a failure: a run tried again in this invocation needs the memory back.
    await dropRun(selected);
  }
}

async function writeRun(
  ctx: RunContext,
  run: PlannedRun,
  selected: SelectedRun,
  pending: PendingRun,
  attempt: { published: boolean },
  started: number,
): Promise<RunRecord> {
  const names = resolveRunNames(ctx.dataflow, run);
  const parts = await publishParts(ctx, run, selected, pending, attempt);
  crashPoint('after-data');
  ctx.progress(`${run.audienceId}: wrote ${selected.counts.rowsWritten} rows in ${parts.length} file(s)`);
  const manifest = ctx.dataflow.format.manifest ? await writeManifest(ctx, run, selected.counts, parts) : undefined;
  crashPoint('after-manifest');
  const record: RunRecord = {
    runId: run.runId,
    audienceId: run.audienceId,
    mode: run.mode,
    trigger: run.trigger,
    logicalTime: run.logicalTime.toISOString(),
    snapshotId: run.snapshot.snapshotId,
    status: 'success',
    counts: selected.counts,
    files: parts.map((p) => ({
      path: ctx.destination.describe(names.partKey(p.partNumber)),
      rows: p.rows,
      bytes: p.bytes,
      sha256: p.sha256,
    })),
    ...(manifest ? { manifest } : {}),
    durationMs: 0,
  };
  await commitRun(ctx, run, selected, pending, record, started);
  return record;
}

/**
 * Writes the run's data parts and publishes them under their final names (the pending
 * record says so before the first one), then removes parts a longer earlier attempt left.
 */
async function publishParts(
  ctx: RunContext,
  run: PlannedRun,
  selected: SelectedRun,
  pending: PendingRun,
  attempt: { published: boolean },
): Promise<WrittenPart[]> {
  const { dataflow, destination, encryption } = ctx;
  const { folder, baseName, ext, partKey } = resolveRunNames(dataflow, run);
  const contentType = formatOf(dataflow.format).contentType[dataflow.format.compression];
  // Encrypted: the plain parts are written into the run's scratch folder (never to the
  // destination), and each is encrypted into the destination's staging right before it is published.
  const plainPath = async (n: number) => path.join(ctx.scratchDir, `plain-${run.runId}-${n}`);
  const written = await writeParts(
    selected.rows,
    dataflow.format,
    encryption ? plainPath : (n) => destination.stage(partKey(n)),
    ctx.scratchDir,
  );
  if (written.length > 0 && !attempt.published) {
    attempt.published = pending.published = true;
    ctx.lease.assertHeld();
    await ctx.state.writePending(pending);
  }
  const parts: WrittenPart[] = [];
  for (const part of written) {
    const key = partKey(part.partNumber);
    const staged = encryption
      ? await encryptWrittenPart(encryption, part, await destination.stage(key), destination.describe(key))
      : part;
    await destination.publish(staged.path, key, encryption ? ENCRYPTED_CONTENT_TYPE : contentType);
    parts.push(staged);
    crashPoint('after-part');
  }
  await removeExtraParts(destination, folder, baseName, ext, parts.length);
  return parts;
}

/** Writes the run's manifest next to its parts; returns where it is. */
async function writeManifest(
  ctx: RunContext,
  run: PlannedRun,
  counts: RunCounts,
  parts: WrittenPart[],
): Promise<string> {
  const { folder, baseName, ext, manifestKey } = resolveRunNames(ctx.dataflow, run);
  const body = {
    flowRunId: run.runId,
    scheduledTime: run.logicalTime.toISOString(),
    audienceId: run.audienceId,
    exportMode: run.mode,
    snapshotId: run.snapshot.snapshotId,
    exportResults: parts.map((p) => ({
      sinkPath: folder,
      name: partFileName(baseName, ext, p.partNumber),
      size: p.bytes,
      rows: p.rows,
      sha256: p.sha256,
    })),
    // The manifest keeps the counts README "Files, names and the manifest" lists (its bytes are pinned); exitsWritten is in --json and history.
    counts: withoutExitsWritten(counts),
  };
  await ctx.destination.writeText(manifestKey, `${JSON.stringify(body, null, 2)}\n`);
  return ctx.destination.describe(manifestKey);
}

/**
 * The commit: the next baseline, the pending record with the outcome, the cursor (the
 * commit point), the history record, the pending record removed; then old baselines pruned.
 */
async function commitRun(
  ctx: RunContext,
  run: PlannedRun,
  selected: SelectedRun,
  pending: PendingRun,
  record: RunRecord,
  started: number,
): Promise<void> {
  const { state } = ctx;
  if (run.advancesCursor) {
    const cursorRun = { ...run, snapshotId: run.snapshot.snapshotId };
    const baseline = nextCursor(undefined, cursorRun, { status: 'success' })?.baseline;
    let baselineSize: number | undefined;
    if (baseline) {
      const path = await ctx.stateStorage.stage(baseline);
      baselineSize = await writeNextBaseline(selected, path);
      await ctx.stateStorage.publish(path, baseline);
      crashPoint('after-baseline');
    }
    record.durationMs = Math.round(performance.now() - started);
    ctx.lease.assertHeld();
    await state.writePending({ ...pending, outcome: record });
    ctx.lease.assertHeld();
    await state.writeCursor(
      nextCursor(undefined, cursorRun, { status: 'success', ...(baselineSize === undefined ? {} : { baselineSize }) })!,
    );
  }
  crashPoint('after-cursor');
  if (!run.advancesCursor) record.durationMs = Math.round(performance.now() - started);
  try {
    await state.appendHistory(record);
    await state.deletePending(run.runId);
  } catch (error) {
    // An export-now run has no cursor: until its pending record is gone it is not done,
    // and the next invocation runs it again (same id, same files).
    throw run.advancesCursor ? new CommittedRunError(record, error) : error;
  }
  crashPoint('after-commit');
  if (run.advancesCursor && run.mode === 'incremental')
    await pruneBaselines(ctx.state, ctx.dataflow, run.audienceId, ctx.warn);
}

/**
 * A run that failed on its input is not retried (its snapshot would fail the same way):
 * its staged files go, so do the parts an attempt published under final names unless its
 * manifest says the run is whole, and then its pending record.
 */
async function abandonRun(ctx: RunContext, run: PlannedRun, published: boolean): Promise<void> {
  const names = resolveRunNames(ctx.dataflow, run);
  await ctx.destination.removeStaged(names.folder, [names.baseName, names.manifestName]);
  if (published) {
    const keys = new Set(await ctx.destination.list(names.folder));
    if (!keys.has(names.manifestKey))
      for (let n = 1; keys.has(names.partKey(n)); n++) await ctx.destination.delete(names.partKey(n));
  }
  await ctx.state.deletePending(run.runId);
}

/**
 * After the commit point only, and never for export-now: the audience's baselines older
 * than the newest `state.keepBaselines` go (never the one the cursor names). A crash here
 * leaves extra baselines that the next commit removes; a failure only warns.
 */
export async function pruneBaselines(
  state: StateStore,
  dataflow: Dataflow,
  audienceId: string,
  warn?: (message: string) => void,
): Promise<void> {
  try {
    const cursor = await state.readCursor(audienceId);
    await state.pruneBaselines(
      audienceId,
      dataflow.state?.keepBaselines ?? DEFAULT_KEEP_BASELINES,
      cursor?.baseline,
      () => crashPoint('in-prune'),
    );
  } catch (error) {
    warn?.(
      `${audienceId}: the run is committed, but the audience's older baselines could not be removed (${messageOf(error)}); ` +
        'they take space until a later run removes them. Check that audex may delete objects in the state location',
    );
  }
  crashPoint('after-prune');
}

/** A retried run with fewer parts than its first attempt must not leave the extra parts behind. */
async function removeExtraParts(
  destination: StorageBackend,
  folder: string,
  baseName: string,
  ext: string,
  count: number,
): Promise<void> {
  const keys = new Set(await destination.list(folder));
  for (let n = count + 1; keys.has(joinKey(folder, partFileName(baseName, ext, n))); n++) {
    await destination.delete(joinKey(folder, partFileName(baseName, ext, n)));
  }
}

function withoutExitsWritten(counts: RunCounts): Omit<RunCounts, 'exitsWritten'> {
  const { exitsWritten: _written, ...rest } = counts;
  return rest;
}
