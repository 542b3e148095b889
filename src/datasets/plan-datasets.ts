// Pure planning of dataset exports (README "Export datasets"): (config, batches, state, now) → the runs.
//
// - An interrupted run (a pending record exists) is finished first with exactly the
//   batches it started with, so its folder repeats byte for byte; batches that arrived
//   since go to the next slot.
// - A dataset runs once, at its latest due slot not yet exported; missed slots are
//   coalesced into it (schedule/slots.ts, as for audiences) and reported as skipped.
// - A run exports every complete batch committed at or before now whose id is not in the
//   set of exported ids (the cursor's), so a late batch with an older committedAt is
//   still exported, once. The first run is the backfill: every batch.
import type { DatasetDataflow } from '../config/dataset-schema.js';
import { deriveRunId } from '../plan/plan-runs.js';
import { latestSlotAtOrBefore, nextSlotAfter, slotsBetween } from '../schedule/slots.js';
import { stateKeys } from '../state/state-keys.js';
import type { Cursor, PendingRun, RunRecord } from '../state/records.js';
import type { BatchInfo } from './list-batches.js';

/** The commit point of a dataset: written last by a successful run (audienceId = the dataset id). */
export interface DatasetCursor extends Cursor {
  datasetId: string;
  /** Every batch id exported so far, sorted. */
  exportedBatches: string[];
}

/** A pending dataset run: the batches it exports are fixed when it starts. */
export interface DatasetPending extends Omit<PendingRun, 'outcome'> {
  datasetId: string;
  batchIds: string[];
  outcome?: DatasetRunRecord;
}

/** A run's history record: an audience RunRecord (audienceId = the dataset id) plus the batches. */
export interface DatasetRunRecord extends RunRecord {
  datasetId: string;
  batchIds: string[];
}

export interface DatasetPlannedRun {
  runId: string;
  dataflowId: string;
  datasetId: string;
  logicalTime: Date;
  batches: BatchInfo[];
  /** The exported set before this run. */
  exportedBefore: string[];
  resumed: boolean;
  skippedSlots: Date[];
  reason: string;
}

export interface DatasetPlan {
  runs: DatasetPlannedRun[];
  problems: { datasetId: string; logicalTime: Date | null; error: string }[];
  idle: { datasetId: string; reason: string; nextSlot: Date | null }[];
  committedPending: DatasetPending[];
}

export interface DatasetPlanInput {
  dataflow: DatasetDataflow;
  batches: Map<string, BatchInfo[]>;
  cursors: Map<string, DatasetCursor>;
  pending: DatasetPending[];
  now: Date;
}

export const DATASET_MODE = 'incremental';
export const DATASET_TRIGGER = 'schedule';

export function deriveDatasetRunId(dataflowId: string, datasetId: string, logicalTime: Date): string {
  return deriveRunId(dataflowId, datasetId, DATASET_MODE, DATASET_TRIGGER, logicalTime);
}

export function planDatasetRuns(input: DatasetPlanInput): DatasetPlan {
  const { dataflow, now } = input;
  const plan: DatasetPlan = { runs: [], problems: [], idle: [], committedPending: [] };
  for (const ds of dataflow.datasets) {
    const all = input.batches.get(ds.id) ?? [];
    const byId = new Map(all.map((b) => [b.batchId, b]));
    let cursor = input.cursors.get(ds.id);
    let exported = new Set(cursor?.exportedBatches ?? []);
    let blocked = false;
    for (const pending of input.pending.filter((p) => p.datasetId === ds.id)) {
      if (cursor && Date.parse(cursor.lastSlot) >= Date.parse(pending.logicalTime)) {
        plan.committedPending.push(pending);
        continue;
      }
      const missing = pending.batchIds.filter((id) => !byId.has(id));
      if (missing.length > 0) {
        plan.problems.push({
          datasetId: ds.id,
          logicalTime: new Date(pending.logicalTime),
          error: `interrupted run ${pending.runId} exported batch(es) ${missing.join(', ')}, which are gone; it cannot be finished exactly. Restore them, or delete ${stateKeys.pending(pending.runId)} in the state location to drop that run`,
        });
        blocked = true;
        break;
      }
      plan.runs.push({
        runId: pending.runId,
        dataflowId: dataflow.id,
        datasetId: ds.id,
        logicalTime: new Date(pending.logicalTime),
        batches: pending.batchIds.map((id) => byId.get(id)!),
        exportedBefore: [...exported].sort(),
        resumed: true,
        skippedSlots: [],
        reason: `finishing interrupted run ${pending.runId}`,
      });
      exported = new Set([...exported, ...pending.batchIds]);
      cursor = {
        audienceId: ds.id,
        datasetId: ds.id,
        lastSlot: pending.logicalTime,
        runId: pending.runId,
        snapshotId: '',
        mode: DATASET_MODE,
        exportedBatches: [...exported].sort(),
      };
    }
    if (blocked) continue;
    const schedule = ds.schedule;
    const slot = latestSlotAtOrBefore(schedule, 'UTC', now);
    const next = nextSlotAfter(schedule, 'UTC', now);
    if (!slot) {
      plan.idle.push({ datasetId: ds.id, reason: 'no slot due yet', nextSlot: next });
      continue;
    }
    const last = cursor ? new Date(cursor.lastSlot) : null;
    if (last && slot.getTime() <= last.getTime()) {
      plan.idle.push({ datasetId: ds.id, reason: `slot ${slot.toISOString()} already exported`, nextSlot: next });
      continue;
    }
    const skippedSlots = last
      ? slotsBetween(schedule, 'UTC', last, slot).filter((s) => s.getTime() < slot.getTime())
      : [];
    const batches = all.filter((b) => !exported.has(b.batchId) && b.committedAt.getTime() <= now.getTime());
    const what = cursor ? `${batches.length} new batch(es)` : `first export: backfill of ${batches.length} batch(es)`;
    plan.runs.push({
      runId: deriveDatasetRunId(dataflow.id, ds.id, slot),
      dataflowId: dataflow.id,
      datasetId: ds.id,
      logicalTime: slot,
      batches,
      exportedBefore: [...exported].sort(),
      resumed: false,
      skippedSlots,
      reason: `slot ${slot.toISOString()} is due${skippedSlots.length ? ` (${skippedSlots.length} missed slot(s) coalesced)` : ''}; ${what}`,
    });
  }
  return plan;
}
