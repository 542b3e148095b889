// Executes one dataset export run, in the commit order of audience runs (README "State and safety" and "Export datasets"):
//
//   pending record (with the batch ids) → data parts (staged, then published) → manifest
//   → pending record with the run's outcome → cursor (exported batch ids) → history
//   → pending removed
//
// The cursor write is the commit point: it adds the run's batches to the set of exported
// ids in one atomic write, so a batch is in no export folder or in exactly one. A run
// killed before it is finished by the next invocation with the same batches, folder and
// names, so its files repeat byte for byte.
import path from 'node:path';
import type { DatasetDataflow } from '../config/dataset-schema.js';
import type { ReadBatches } from '../engine/copy-batches.js';
import { writeDatasetParts } from '../writers/write-dataset-parts.js';
import type { Engine } from '../engine/session.js';
import { CommittedRunError } from '../errors.js';
import { crashPoint } from '../run/crash-points.js';
import { joinKey, type StorageBackend } from '../storage/backend.js';
import type { Lease } from '../state/lock.js';
import type { StateStore } from '../state/state-store.js';
import { zeroCounts, type RunFile } from '../state/records.js';
import type { WrittenPart } from '../writers/write-parts.js';
import { encryptWrittenPart, type PartEncryption } from '../writers/encrypt-part.js';
import { exportTimeOf, resolveDatasetRunNames, type DatasetRunNames } from './dataset-names.js';
import {
  DATASET_MODE,
  DATASET_TRIGGER,
  type DatasetCursor,
  type DatasetPending,
  type DatasetPlannedRun,
  type DatasetRunRecord,
} from './plan-datasets.js';

export interface DatasetRunContext {
  dataflow: DatasetDataflow;
  engine: Engine;
  destination: StorageBackend;
  state: StateStore;
  /** The dataflow lock: checked right before every write that commits. */
  lease: Lease;
  scratchDir: string;
  progress: (message: string) => void;
  /** Set when the dataflow encrypts its files (format.encryption): the checked recipient key. */
  encryption?: PartEncryption;
}

export async function executeDatasetRun(
  ctx: DatasetRunContext,
  run: DatasetPlannedRun,
  input: ReadBatches,
): Promise<DatasetRunRecord> {
  const started = performance.now();
  const { dataflow, destination, state } = ctx;
  const names = resolveDatasetRunNames(dataflow, run.datasetId, run.runId, run.logicalTime);
  const batchIds = run.batches.map((b) => b.batchId);
  const pending: DatasetPending = {
    runId: run.runId,
    audienceId: run.datasetId,
    datasetId: run.datasetId,
    mode: DATASET_MODE,
    trigger: DATASET_TRIGGER,
    logicalTime: run.logicalTime.toISOString(),
    snapshotId: '',
    folders: [names.folder],
    batchIds,
  };
  ctx.lease.assertHeld();
  await state.writePending(pending);
  crashPoint('after-pending');
  await destination.removeStaged(names.folder, ['part-', names.manifestName]);

  ctx.progress(`${run.datasetId}: exporting ${batchIds.length} batch(es) to ${names.folder}`);
  // Encrypted: the plain parts are written into the run's scratch folder (never to the
  // destination), and each is encrypted into the destination's staging as it is published.
  const partPath = ctx.encryption
    ? async (n: number) => path.join(ctx.scratchDir, `plain-${run.runId}-${n}`)
    : (n: number) => destination.stage(names.partKey(n - 1));
  const written = await writeDatasetParts(ctx.engine, input, dataflow.format, partPath, ctx.scratchDir);
  const parts = await publishParts(destination, written, names, ctx.encryption);
  await removeExtraParts(destination, names, parts.length);
  crashPoint('after-data');
  const rows = parts.reduce((n, p) => n + p.rows, 0);
  const counts = { ...zeroCounts(), profilesReceived: rows, rowsWritten: rows, badRecords: input.bad.length };
  const files: RunFile[] = parts.map((p) => ({
    path: destination.describe(names.partKey(p.partNumber - 1)),
    rows: p.rows,
    bytes: p.bytes,
    sha256: p.sha256,
  }));
  ctx.progress(`${run.datasetId}: wrote ${rows} records in ${parts.length} file(s)`);

  let manifest: string | undefined;
  if (dataflow.format.manifest) {
    const body = {
      flowRunId: run.runId,
      scheduledTime: run.logicalTime.toISOString(),
      datasetId: run.datasetId,
      exportMode: DATASET_MODE,
      exportTime: exportTimeOf(run.logicalTime),
      batches: batchIds,
      exportResults: parts.map((p) => ({
        sinkPath: `/${names.folder}`,
        name: names.partName(p.partNumber - 1),
        size: p.bytes,
        rows: p.rows,
        sha256: p.sha256,
      })),
      counts,
    };
    await destination.writeText(names.manifestKey, `${JSON.stringify(body, null, 2)}\n`);
    manifest = destination.describe(names.manifestKey);
  }
  crashPoint('after-manifest');

  const record: DatasetRunRecord = {
    runId: run.runId,
    audienceId: run.datasetId,
    datasetId: run.datasetId,
    mode: DATASET_MODE,
    trigger: DATASET_TRIGGER,
    logicalTime: run.logicalTime.toISOString(),
    snapshotId: null,
    batchIds,
    status: 'success',
    counts,
    files,
    ...(manifest ? { manifest } : {}),
    durationMs: Math.round(performance.now() - started),
  };
  ctx.lease.assertHeld();
  await state.writePending({ ...pending, outcome: record });
  ctx.lease.assertHeld();
  const cursor: DatasetCursor = {
    audienceId: run.datasetId,
    datasetId: run.datasetId,
    lastSlot: run.logicalTime.toISOString(),
    runId: run.runId,
    snapshotId: '',
    mode: DATASET_MODE,
    exportedBatches: [...new Set([...run.exportedBefore, ...batchIds])].sort(),
  };
  await state.writeCursor(cursor);
  crashPoint('after-cursor');
  try {
    await state.appendHistory(record);
    await state.deletePending(run.runId);
  } catch (error) {
    throw new CommittedRunError(record, error);
  }
  return record;
}

/**
 * Makes the run's parts visible under their final names, one after the other, and returns
 * them as published. Every data file of a dataset export goes through here; with
 * encryption each plain part is encrypted into the destination's staging first (README "Encrypted files").
 */
export async function publishParts(
  destination: StorageBackend,
  parts: WrittenPart[],
  names: DatasetRunNames,
  encryption?: PartEncryption,
): Promise<WrittenPart[]> {
  const published: WrittenPart[] = [];
  for (const part of parts) {
    const key = names.partKey(part.partNumber - 1);
    const staged = encryption
      ? await encryptWrittenPart(encryption, part, await destination.stage(key), destination.describe(key))
      : part;
    await destination.publish(staged.path, key);
    published.push(staged);
    crashPoint('after-part');
  }
  return published;
}

/** A retried run with fewer parts than its first attempt (the config changed) must not leave the extra parts behind. */
async function removeExtraParts(destination: StorageBackend, names: DatasetRunNames, count: number): Promise<void> {
  const keys = new Set(await destination.list(names.folder));
  for (let index = count; keys.has(joinKey(names.folder, names.partName(index))); index++)
    await destination.delete(names.partKey(index));
}
