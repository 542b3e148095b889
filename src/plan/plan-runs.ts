// Pure planning: (config, snapshots, state, now) → the runs to execute, in order, and why.
//
// - An interrupted run (a pending record exists) is finished first, exactly as it started
//   (same run id, snapshot and logical time), so its files repeat byte for byte and its
//   membership changes are exported once.
// - A scheduled audience runs once, at its latest due slot not yet exported; earlier missed
//   slots are coalesced into it and reported as skipped.
// - afterEvaluation audiences run once per new snapshot, at the snapshot's evaluatedAt.
// - The run id is derived from dataflow, audience, mode, trigger and logical time, so a
//   retried run writes the same keys.
import { createHash } from 'node:crypto';
import type { AudienceConfig, Dataflow } from '../config/schema.js';
import { latestSlotAtOrBefore, nextSlotAfter, slotsBetween, isWithinWindow } from '../schedule/slots.js';
import { pickSnapshot, type SnapshotInfo } from '../snapshots/list-snapshots.js';
import { stateKeys } from '../state/keys.js';
import type { Cursor, PendingRun, RunMode, RunTrigger } from '../state/records.js';

export type PlannedSelection = { kind: 'full' } | { kind: 'backfill' } | { kind: 'diff'; baselineKey: string };

export interface PlannedRun {
  runId: string;
  dataflowId: string;
  audienceId: string;
  audienceName: string;
  mode: RunMode;
  trigger: RunTrigger;
  logicalTime: Date;
  snapshot: SnapshotInfo;
  selection: PlannedSelection;
  /** Scheduled runs move the cursor (and baseline); export-now runs never do. */
  advancesCursor: boolean;
  resumed: boolean;
  /** A resumed run whose earlier attempt may have published data parts. */
  partsPublished?: boolean;
  skippedSlots: Date[];
  reason: string;
}

export type PlanProblemKind = 'config' | 'run';

export interface PlanProblem {
  audienceId: string;
  mode: RunMode;
  trigger: RunTrigger;
  logicalTime: Date | null;
  snapshotId: string | null;
  error: string;
  /**
   * `config`: the config contradicts the snapshot (e.g. prospect + incremental), a usage
   * problem; `run`: this run cannot run now (no snapshot, audience missing), the others do.
   */
  kind: PlanProblemKind;
}

export interface IdleAudience {
  audienceId: string;
  reason: string;
  nextSlot: Date | null;
}

export interface Plan {
  runs: PlannedRun[];
  problems: PlanProblem[];
  idle: IdleAudience[];
  /** Pending records of runs whose cursor was already written (died after the commit point, before cleanup). */
  committedPending: PendingRun[];
}

export interface ScheduledPlanInput {
  dataflow: Dataflow;
  snapshots: SnapshotInfo[];
  cursors: Map<string, Cursor>;
  pending: PendingRun[];
  now: Date;
  pinnedSnapshot?: string;
}

export function deriveRunId(dataflowId: string, audienceId: string, mode: RunMode, trigger: RunTrigger, logicalTime: Date): string {
  const hash = createHash('sha256').update([dataflowId, audienceId, mode, trigger, logicalTime.toISOString()].join('\n')).digest('hex');
  const stamp = logicalTime.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
  return `${stamp}-${hash.slice(0, 8)}`;
}

function selectionFor(mode: RunMode, cursor: Cursor | undefined): PlannedSelection {
  if (mode === 'full') return { kind: 'full' };
  return cursor?.baseline ? { kind: 'diff', baselineKey: cursor.baseline } : { kind: 'backfill' };
}

/** Checks that the snapshot knows the audience and that the mode suits its profile type. */
function checkAudience(audience: AudienceConfig, index: number, snapshot: SnapshotInfo): { name: string } | { error: string; kind: PlanProblemKind } {
  const known = snapshot.audiences.find((a) => a.id === audience.id);
  if (!known) {
    const ids = snapshot.audiences.map((a) => a.id).join(', ') || 'none';
    return { error: `audience ${audience.id} is not in snapshot ${snapshot.snapshotId} (its audiences: ${ids}); check audiences[${index}].id`, kind: 'run' };
  }
  if (known.profileType === 'prospect' && audience.mode === 'incremental') {
    return { error: `audiences[${index}].mode: ${audience.id} is a prospect audience; prospect audiences export full files only (set mode: full)`, kind: 'config' };
  }
  return { name: known.name };
}

export function planScheduledRuns(input: ScheduledPlanInput): Plan {
  const { dataflow, snapshots, now } = input;
  const plan: Plan = { runs: [], problems: [], idle: [], committedPending: [] };
  const tz = dataflow.timezone;
  dataflow.audiences.forEach((audience, index) => {
    let cursor = input.cursors.get(audience.id);
    const trigger: RunTrigger = audience.schedule.trigger === 'afterEvaluation' ? 'afterEvaluation' : 'schedule';
    const problem = (error: string, logicalTime: Date | null, snapshotId: string | null, kind: PlanProblemKind = 'run') =>
      plan.problems.push({ audienceId: audience.id, mode: audience.mode, trigger, logicalTime, snapshotId, error, kind });

    for (const pending of input.pending.filter((p) => p.audienceId === audience.id)) {
      if (pending.trigger !== 'exportNow' && cursor && new Date(cursor.lastSlot).getTime() >= new Date(pending.logicalTime).getTime()) {
        // Its cursor was written: the run is committed; only its history record and cleanup may be missing.
        plan.committedPending.push(pending);
        continue;
      }
      const snapshot = snapshots.find((s) => s.snapshotId === pending.snapshotId);
      const logicalTime = new Date(pending.logicalTime);
      if (!snapshot) {
        problem(
          `interrupted run ${pending.runId} used snapshot ${pending.snapshotId}, which is gone; it cannot be finished exactly. Restore the snapshot, or delete ${stateKeys.pending(pending.runId)} in the state location to drop that run`,
          logicalTime,
          pending.snapshotId,
        );
        return;
      }
      const mode = pending.mode;
      const advancesCursor = pending.trigger !== 'exportNow';
      plan.runs.push({
        runId: pending.runId, dataflowId: dataflow.id, audienceId: audience.id, audienceName: snapshot.audiences.find((a) => a.id === audience.id)?.name ?? audience.id,
        mode, trigger: pending.trigger, logicalTime, snapshot, selection: selectionFor(mode, cursor),
        advancesCursor, resumed: true, ...(pending.published ? { partsPublished: true } : {}), skippedSlots: [], reason: `finishing interrupted run ${pending.runId}`,
      });
      if (!advancesCursor) continue;
      cursor = {
        audienceId: audience.id, lastSlot: pending.logicalTime, runId: pending.runId, snapshotId: pending.snapshotId, mode,
        ...(mode === 'incremental' ? { baseline: stateKeys.baseline(audience.id, pending.runId) } : {}),
      };
    }

    const last = cursor ? new Date(cursor.lastSlot) : null;
    let logicalTime: Date | null;
    let snapshot: SnapshotInfo | undefined;
    let skippedSlots: Date[] = [];
    let reason: string;
    if (trigger === 'afterEvaluation') {
      snapshot = pickSnapshot(snapshots, now, input.pinnedSnapshot);
      logicalTime = snapshot ? snapshot.evaluatedAt : null;
      if (!snapshot || !logicalTime || !isWithinWindow(audience.schedule, tz, logicalTime)) {
        plan.idle.push({ audienceId: audience.id, reason: snapshot ? `snapshot ${snapshot.snapshotId} is outside the schedule window` : 'no complete snapshot yet', nextSlot: null });
        return;
      }
      if (last && logicalTime.getTime() <= last.getTime()) {
        plan.idle.push({ audienceId: audience.id, reason: `snapshot ${snapshot.snapshotId} already exported; waiting for the next evaluation`, nextSlot: null });
        return;
      }
      skippedSlots = snapshots
        .filter((s) => s.evaluatedAt.getTime() < logicalTime!.getTime() && (!last || s.evaluatedAt.getTime() > last.getTime()) && cursor)
        .map((s) => s.evaluatedAt);
      reason = `new snapshot ${snapshot.snapshotId} evaluated at ${logicalTime.toISOString()}`;
    } else {
      logicalTime = latestSlotAtOrBefore(audience.schedule, tz, now);
      if (!logicalTime) {
        plan.idle.push({ audienceId: audience.id, reason: 'no slot due yet', nextSlot: nextSlotAfter(audience.schedule, tz, now) });
        return;
      }
      if (last && logicalTime.getTime() <= last.getTime()) {
        plan.idle.push({ audienceId: audience.id, reason: `slot ${logicalTime.toISOString()} already exported`, nextSlot: nextSlotAfter(audience.schedule, tz, now) });
        return;
      }
      if (last) skippedSlots = slotsBetween(audience.schedule, tz, last, logicalTime).filter((s) => s.getTime() < logicalTime!.getTime());
      snapshot = pickSnapshot(snapshots, now, input.pinnedSnapshot);
      reason = `slot ${logicalTime.toISOString()} is due${skippedSlots.length ? ` (${skippedSlots.length} missed slot(s) coalesced)` : ''}`;
    }
    if (!snapshot) {
      problem(
        input.pinnedSnapshot
          ? `snapshot ${input.pinnedSnapshot} was not found (or has no _snapshot.json yet)`
          : `no complete snapshot evaluated at or before ${now.toISOString()}; the producer must write <snapshotId>/_snapshot.json`,
        logicalTime,
        null,
      );
      return;
    }
    const checked = checkAudience(audience, index, snapshot);
    if ('error' in checked) {
      problem(checked.error, logicalTime, snapshot.snapshotId, checked.kind);
      return;
    }
    plan.runs.push({
      runId: deriveRunId(dataflow.id, audience.id, audience.mode, trigger, logicalTime), dataflowId: dataflow.id,
      audienceId: audience.id, audienceName: checked.name, mode: audience.mode, trigger, logicalTime, snapshot,
      selection: selectionFor(audience.mode, cursor), advancesCursor: true, resumed: false, skippedSlots, reason,
    });
  });
  return plan;
}

export interface ExportNowInput {
  dataflow: Dataflow;
  snapshots: SnapshotInfo[];
  audienceIds: string[];
  now: Date;
  pinnedSnapshot?: string;
}

/** Export now: a full file per audience from the latest snapshot; refusals are usage errors. */
export function planExportNow(input: ExportNowInput): Plan & { refusals: string[] } {
  const { dataflow, now } = input;
  const plan: Plan & { refusals: string[] } = { runs: [], problems: [], idle: [], committedPending: [], refusals: [] };
  const snapshot = pickSnapshot(input.snapshots, now, input.pinnedSnapshot);
  for (const id of input.audienceIds) {
    const index = dataflow.audiences.findIndex((a) => a.id === id);
    const audience = dataflow.audiences[index];
    if (!audience) {
      plan.refusals.push(`audience ${id} is not mapped in dataflow ${dataflow.id}; add it under audiences: first`);
      continue;
    }
    if (!isWithinWindow(audience.schedule, dataflow.timezone, now)) {
      const { startDate, endDate } = audience.schedule;
      plan.refusals.push(`audience ${id}: ${now.toISOString()} is outside its schedule window (${startDate ?? 'open'} to ${endDate ?? 'open'}, end exclusive)`);
      continue;
    }
    const problem = (error: string, kind: PlanProblemKind = 'run') =>
      plan.problems.push({ audienceId: id, mode: 'full', trigger: 'exportNow', logicalTime: now, snapshotId: snapshot?.snapshotId ?? null, error, kind });
    if (!snapshot) {
      problem(input.pinnedSnapshot ? `snapshot ${input.pinnedSnapshot} was not found` : `no complete snapshot evaluated at or before ${now.toISOString()}`);
      continue;
    }
    const checked = checkAudience({ ...audience, mode: 'full' }, index, snapshot);
    if ('error' in checked) {
      problem(checked.error, checked.kind);
      continue;
    }
    plan.runs.push({
      runId: deriveRunId(dataflow.id, id, 'full', 'exportNow', now), dataflowId: dataflow.id, audienceId: id, audienceName: checked.name,
      mode: 'full', trigger: 'exportNow', logicalTime: now, snapshot, selection: { kind: 'full' },
      advancesCursor: false, resumed: false, skippedSlots: [], reason: 'export now',
    });
  }
  return plan;
}
