// One `audex run` of a dataset dataflow: lock, list batches, plan, read and check every
// input of every run (bad records beyond --max-bad-records or conflicting Parquet schemas
// stop everything before any write), execute the runs in order, record history, release
// the lock. Shares the audience runs' pieces: lock, state store, commit-order helpers.
import type { InvocationSettings } from '../run/invocation-settings.js';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import type { LoadedDatasetConfig } from '../config/load.js';
import { loadEncryptionKey } from '../config/load-encryption-key.js';
import {
  findSchemaConflicts,
  readBatchFiles,
  type BatchFile,
  type CopyFormat,
  type ReadBatches,
} from '../engine/copy-batches.js';
import type { BadRecord } from '../engine/scan-lines.js';
import { openEngine, type Engine } from '../engine/session.js';
import { BadInputError, CommittedRunError, RunFailedError, asAudexError } from '../errors.js';
import { failed as failedOutcome, SKIPPED, SUCCEEDED, type Outcome } from '../run/outcome.js';
import { committedOutcome, finishCommitted, uncommittedError, type InvocationResult } from '../run/invoke.js';
import { openLocations, type Locations } from '../run/prepare.js';
import type { StorageBackend } from '../storage/backend.js';
import { createScratchDir } from '../storage/staging.js';
import { lockDataflow, NO_LOCK, type Lease } from '../state/lock.js';
import { StateStore } from '../state/state-store.js';
import { zeroCounts, type RunRecord } from '../state/records.js';
import { crashPoint } from '../run/crash-points.js';
import { maintainHistory } from '../run/maintain-history.js';
import { executeDatasetRun } from './execute-dataset-run.js';
import { listBatches, type BatchInfo } from './list-batches.js';
import {
  DATASET_MODE,
  DATASET_TRIGGER,
  deriveDatasetRunId,
  planDatasetRuns,
  type DatasetCursor,
  type DatasetPending,
  type DatasetPlan,
  type DatasetPlannedRun,
  type DatasetRunRecord,
} from './plan-datasets.js';

export interface DatasetInvokeOptions extends InvocationSettings {
  config: LoadedDatasetConfig;
}

export interface PreparedDatasets {
  locations: Locations;
  state: StateStore;
  batches: Map<string, BatchInfo[]>;
  cursors: Map<string, DatasetCursor>;
  pending: DatasetPending[];
  plan: DatasetPlan;
}

/** Lists the batches, reads the state and plans; nothing is written. */
export async function prepareDatasets(
  config: LoadedDatasetConfig,
  now: Date,
  locations = openLocations(config),
): Promise<PreparedDatasets> {
  const state = new StateStore(locations.state);
  const { dataflow } = config;
  const batches = new Map<string, BatchInfo[]>();
  const cursors = new Map<string, DatasetCursor>();
  for (const ds of dataflow.datasets) {
    batches.set(ds.id, await listBatches(locations.source, ds.id));
    const cursor = await state.readCursor(ds.id);
    if (cursor) {
      const exported = (cursor as Partial<DatasetCursor>).exportedBatches;
      if (!Array.isArray(exported)) {
        throw new BadInputError(
          `the cursor of ${ds.id} in ${locations.state.root} has no exportedBatches list: it belongs to an audience of another dataflow sharing this state location, or was edited. Give this dataflow a state.path of its own`,
        );
      }
      cursors.set(ds.id, { ...cursor, datasetId: ds.id, exportedBatches: exported });
    }
  }
  const pending = (await state.listPending()) as DatasetPending[];
  const plan = planDatasetRuns({ dataflow, batches, cursors, pending, now });
  return { locations, state, batches, cursors, pending, plan };
}

/**
 * Fetches and scans every input of every planned run, once: the records each run
 * copies, and the bad ones it skips. Beyond --max-bad-records, or with Parquet parts
 * whose schemas conflict, nothing is written (exit 4).
 */
export async function readRunInputs(
  engine: Engine,
  source: StorageBackend,
  runs: DatasetPlannedRun[],
  options: { maxBadRecords: number; progress: (message: string) => void },
  scratchDir: string,
  format: CopyFormat,
  /** `run` converts to Parquet while reading; `plan` only counts. */
  mode: 'convert' | 'count',
): Promise<Map<DatasetPlannedRun, ReadBatches>> {
  const inputs = new Map<DatasetPlannedRun, ReadBatches>();
  const problems: string[] = [];
  for (const [i, run] of runs.entries()) {
    const local: BatchFile[] = [];
    for (const batch of run.batches) {
      for (const part of batch.parts)
        local.push({
          path: await source.fetch(part.key, scratchDir),
          name: source.describe(part.key),
          kind: part.kind,
          batchId: batch.batchId,
        });
    }
    const out = path.join(scratchDir, `prepared-${i}${format.compression === 'gzip' ? '.gz' : ''}.parquet`);
    const input = await readBatchFiles(engine, local, format, mode, out);
    const { files, bad } = input;
    options.progress(`${run.datasetId}: read ${run.batches.length} batch(es), ${input.records} records`);
    const conflicts = findSchemaConflicts(files);
    if (conflicts.length > 0) {
      problems.push(
        `dataset ${run.datasetId}: Parquet parts with conflicting schemas:\n${conflicts.map((c) => `  ${c}`).join('\n')}\nRewrite those parts with one type per column.`,
      );
    }
    if (bad.length > options.maxBadRecords) problems.push(describeBadBatches(run, bad, options.maxBadRecords));
    else if (bad.length > 0) {
      options.progress(
        `${run.datasetId}: skipping ${bad.length} bad record(s) (--max-bad-records ${options.maxBadRecords})`,
      );
      for (const b of bad.slice(0, 10)) options.progress(`  ${b.file}:${b.line}: ${b.reason}`);
    }
    inputs.set(run, input);
  }
  if (problems.length > 0) throw new BadInputError(`${problems.join('\n')}\nNothing was written.`);
  return inputs;
}

export async function invokeDatasets(options: DatasetInvokeOptions): Promise<InvocationResult> {
  const { dataflow } = options.config;
  // The recipient key is checked before anything is read or written (README "Encrypted files").
  const encryption = await loadEncryptionKey(options.config, options.now);
  if (encryption)
    options.progress(`encrypting every data file for OpenPGP key ${encryption.fingerprint} (${encryption.source})`);
  const scratchDir = await createScratchDir('run');
  let lease: Lease = NO_LOCK;
  try {
    const locations = openLocations(options.config, path.join(scratchDir, 'staging'));
    const state = new StateStore(locations.state);
    lease = await lockDataflow(locations.state, dataflow.id, options);
    const { plan } = await prepareDatasets(options.config, options.now, locations);
    await finishCommitted(state, plan.committedPending, options.progress);
    const records: RunRecord[] = plan.problems.map((p) =>
      failedRecord(dataflow.id, p.datasetId, p.logicalTime ?? options.now, [], p.error),
    );
    const outcomes: Outcome[] = plan.problems.map((p) => failedOutcome(new RunFailedError(p.error)));
    if (plan.runs.length > 0) {
      const engine = await openEngine({
        tempDirectory: path.join(scratchDir, 'spill'),
        memoryLimit: options.memoryLimit,
      });
      try {
        const inputs = await readRunInputs(
          engine,
          locations.source,
          plan.runs,
          options,
          scratchDir,
          dataflow.format,
          'convert',
        );
        crashPoint('after-read');
        const ctx = {
          dataflow,
          engine,
          destination: locations.destination,
          state,
          lease,
          scratchDir,
          progress: options.progress,
          ...(encryption ? { encryption } : {}),
        };
        const failed = new Map<string, string>();
        for (const run of plan.runs) {
          const skipped = skippedRecords(run);
          records.push(...skipped);
          outcomes.push(...skipped.map(() => SKIPPED));
          const before = failed.get(run.datasetId);
          if (before) {
            const error = `not run: run ${before} of this dataset failed before it; the next \`audex run\` runs both in order`;
            records.push(failedRecord(dataflow.id, run.datasetId, run.logicalTime, run.batches, error, run.runId));
            outcomes.push(failedOutcome(new RunFailedError(error)));
            continue;
          }
          const started = performance.now();
          try {
            records.push(await executeDatasetRun(ctx, run, inputs.get(run)!));
            outcomes.push(SUCCEEDED);
          } catch (error) {
            if (error instanceof CommittedRunError) {
              const outcome = committedOutcome(error, run.datasetId, options.warn);
              records.push(outcome.record);
              outcomes.push(failedOutcome(outcome.error));
              continue;
            }
            failed.set(run.datasetId, run.runId);
            records.push({
              ...failedRecord(
                dataflow.id,
                run.datasetId,
                run.logicalTime,
                run.batches,
                uncommittedError(error),
                run.runId,
              ),
              durationMs: Math.round(performance.now() - started),
            });
            outcomes.push(failedOutcome(asAudexError(error)));
          }
        }
      } finally {
        engine.close();
      }
    }
    for (const record of records) if (record.status !== 'success') await state.appendHistory(record);
    await maintainHistory(state, dataflow.state?.keepHistoryDays, options);
    return { dataflowId: dataflow.id, at: options.now.toISOString(), runs: records, outcomes };
  } finally {
    await lease.release();
    await rm(scratchDir, { recursive: true, force: true });
  }
}

function describeBadBatches(run: DatasetPlannedRun, records: BadRecord[], max: number): string {
  return [
    `the new batches of dataset ${run.datasetId} (${run.batches.map((b) => b.batchId).join(', ')}) have ${records.length} bad record(s), more than --max-bad-records ${max}:`,
    ...records.slice(0, 10).map((b) => `  ${b.file}:${b.line}: ${b.reason}`),
    ...(records.length > 10 ? [`  … and ${records.length - 10} more`] : []),
    `Fix the input, or rerun with --max-bad-records ${records.length} to skip and count them.`,
  ].join('\n');
}

function failedRecord(
  dataflowId: string,
  datasetId: string,
  logicalTime: Date,
  batches: BatchInfo[],
  error: string,
  runId?: string,
): DatasetRunRecord {
  return {
    runId: runId ?? deriveDatasetRunId(dataflowId, datasetId, logicalTime),
    audienceId: datasetId,
    datasetId,
    mode: DATASET_MODE,
    trigger: DATASET_TRIGGER,
    logicalTime: logicalTime.toISOString(),
    snapshotId: null,
    batchIds: batches.map((b) => b.batchId),
    status: 'failed',
    counts: zeroCounts(),
    files: [],
    error,
  };
}

/** Missed slots coalesced into `run`, recorded so the history shows every slot. */
function skippedRecords(run: DatasetPlannedRun): DatasetRunRecord[] {
  return run.skippedSlots.map((slot) => ({
    runId: deriveDatasetRunId(run.dataflowId, run.datasetId, slot),
    audienceId: run.datasetId,
    datasetId: run.datasetId,
    mode: DATASET_MODE,
    trigger: DATASET_TRIGGER,
    logicalTime: slot.toISOString(),
    snapshotId: null,
    batchIds: [],
    status: 'skipped',
    counts: zeroCounts(),
    files: [],
    note: `coalesced into run ${run.runId} at ${run.logicalTime.toISOString()}`,
  }));
}
