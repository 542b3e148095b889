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
import { stateKeys } from '../state/state-keys.js';
import type { Cursor, PendingRun, RunMode, RunTrigger } from '../state/records.js';
import { nextCursor } from './next-cursor.js';

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

export function deriveRunId(
  dataflowId: string,
  audienceId: string,
  mode: RunMode,
  trigger: RunTrigger,
  logicalTime: Date,
): string {
  const hash = createHash('sha256')
    .update([dataflowId, audienceId, mode, trigger, logicalTime.toISOString()].join('\n'))
    .digest('hex');
  const stamp = logicalTime
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'Z');
  return `${stamp}-${hash.slice(0, 8)}`;
}

function selectionFor(mode: RunMode, cursor: Cursor | undefined): PlannedSelection {
  if (mode === 'full') return { kind: 'full' };
  return cursor?.baseline ? { kind: 'diff', baselineKey: cursor.baseline } : { kind: 'backfill' };
}

/** Checks that the snapshot knows the audience and that the mode suits its profile type. */
function checkAudience(
  audience: AudienceConfig,
  index: number,
  snapshot: SnapshotInfo,
): { name: string } | { error: string; kind: PlanProblemKind } {
  const known = snapshot.audiences.find((a) => a.id === audience.id);
  if (!known) {
    const ids = snapshot.audiences.map((a) => a.id).join(', ') || 'none';
    return {
      error: `audience ${audience.id} is not in snapshot ${snapshot.snapshotId} (its audiences: ${ids}); check audiences[${index}].id`,
      kind: 'run',
    };
  }
  if (known.profileType === 'prospect' && audience.mode === 'incremental') {
    return {
      error: `audiences[${index}].mode: ${audience.id} is a prospect audience; prospect audiences export full files only (set mode: full)`,
      kind: 'config',
    };
  }
  return { name: known.name };
}

/**
 * Per audience, three steps: finish its interrupted runs (planResumes), then find what is
 * due — the new snapshot of an afterEvaluation audience (dueAfterEvaluation) or the latest
 * scheduled slot not yet exported (dueScheduledSlot) — and plan that run (planDueRun).
 */
export function planScheduledRuns(input: ScheduledPlanInput): Plan {
  const plan: Plan = { runs: [], problems: [], idle: [], committedPending: [] };
  input.dataflow.audiences.forEach((audience, index) => {
    const resumed = planResumes(input, audience, plan);
    if (resumed.stopped) return;
    const due =
      audience.schedule.trigger === 'afterEvaluation'
        ? dueAfterEvaluation(input, audience, resumed.cursor)
        : dueScheduledSlot(input, audience, resumed.cursor);
    if ('idle' in due) plan.idle.push(due.idle);
    else planDueRun(input, audience, index, resumed.cursor, due, plan);
  });
  return plan;
}

function scheduledTrigger(audience: AudienceConfig): RunTrigger {
  return audience.schedule.trigger === 'afterEvaluation' ? 'afterEvaluation' : 'schedule';
}

function addProblem(
  plan: Plan,
  audience: AudienceConfig,
  error: string,
  logicalTime: Date | null,
  snapshotId: string | null,
  kind: PlanProblemKind = 'run',
): void {
  plan.problems.push({
    audienceId: audience.id,
    mode: audience.mode,
    trigger: scheduledTrigger(audience),
    logicalTime,
    snapshotId,
    error,
    kind,
  });
}

/**
 * The audience's interrupted runs, finished first exactly as they started; the cursor
 * they leave (nextCursor) is what the due run is planned against. A run committed but
 * not cleaned up goes to `committedPending`; one whose snapshot is gone stops the audience.
 */
function planResumes(
  input: ScheduledPlanInput,
  audience: AudienceConfig,
  plan: Plan,
): { stopped: boolean; cursor: Cursor | undefined } {
  const { dataflow, snapshots } = input;
  let cursor = input.cursors.get(audience.id);
  for (const pending of input.pending.filter((p) => p.audienceId === audience.id)) {
    if (
      pending.trigger !== 'exportNow' &&
      cursor &&
      new Date(cursor.lastSlot).getTime() >= new Date(pending.logicalTime).getTime()
    ) {
      // Its cursor was written: the run is committed; only its history record and cleanup may be missing.
      plan.committedPending.push(pending);
      continue;
    }
    const snapshot = snapshots.find((s) => s.snapshotId === pending.snapshotId);
    const logicalTime = new Date(pending.logicalTime);
    if (!snapshot) {
      addProblem(
        plan,
        audience,
        `interrupted run ${pending.runId} used snapshot ${pending.snapshotId}, which is gone; it cannot be finished exactly. Restore the snapshot, or delete ${stateKeys.pending(pending.runId)} in the state location to drop that run`,
        logicalTime,
        pending.snapshotId,
      );
      return { stopped: true, cursor };
    }
    const mode = pending.mode;
    const advancesCursor = pending.trigger !== 'exportNow';
    plan.runs.push({
      runId: pending.runId,
      dataflowId: dataflow.id,
      audienceId: audience.id,
      audienceName: snapshot.audiences.find((a) => a.id === audience.id)?.name ?? audience.id,
      mode,
      trigger: pending.trigger,
      logicalTime,
      snapshot,
      selection: selectionFor(mode, cursor),
      advancesCursor,
      resumed: true,
      ...(pending.published ? { partsPublished: true } : {}),
      skippedSlots: [],
      reason: `finishing interrupted run ${pending.runId}`,
    });
    cursor = nextCursor(cursor, { ...pending, logicalTime, advancesCursor }, { status: 'success' });
  }
  return { stopped: false, cursor };
}

/** What is due for an audience after its resumes: a run to plan, or why nothing is. */
type Due =
  | { logicalTime: Date; snapshot: SnapshotInfo | undefined; skippedSlots: Date[]; reason: string }
  | { idle: IdleAudience };

/** An afterEvaluation audience: once per new snapshot, at its evaluatedAt. */
function dueAfterEvaluation(input: ScheduledPlanInput, audience: AudienceConfig, cursor: Cursor | undefined): Due {
  const { snapshots, now } = input;
  const last = cursor ? new Date(cursor.lastSlot) : null;
  const snapshot = pickSnapshot(snapshots, now, input.pinnedSnapshot);
  const logicalTime = snapshot ? snapshot.evaluatedAt : null;
  if (!snapshot || !logicalTime || !isWithinWindow(audience.schedule, input.dataflow.timezone, logicalTime)) {
    return {
      idle: {
        audienceId: audience.id,
        reason: snapshot
          ? `snapshot ${snapshot.snapshotId} is outside the schedule window`
          : 'no complete snapshot yet',
        nextSlot: null,
      },
    };
  }
  if (last && logicalTime.getTime() <= last.getTime()) {
    return {
      idle: {
        audienceId: audience.id,
        reason: `snapshot ${snapshot.snapshotId} already exported; waiting for the next evaluation`,
        nextSlot: null,
      },
    };
  }
  const skippedSlots = snapshots
    .filter(
      (s) =>
        s.evaluatedAt.getTime() < logicalTime.getTime() &&
        (!last || s.evaluatedAt.getTime() > last.getTime()) &&
        cursor,
    )
    .map((s) => s.evaluatedAt);
  return {
    logicalTime,
    snapshot,
    skippedSlots,
    reason: `new snapshot ${snapshot.snapshotId} evaluated at ${logicalTime.toISOString()}`,
  };
}

/** A scheduled audience: its latest due slot not yet exported; earlier missed slots are coalesced into it. */
function dueScheduledSlot(input: ScheduledPlanInput, audience: AudienceConfig, cursor: Cursor | undefined): Due {
  const { now } = input;
  const tz = input.dataflow.timezone;
  const last = cursor ? new Date(cursor.lastSlot) : null;
  const logicalTime = latestSlotAtOrBefore(audience.schedule, tz, now);
  if (!logicalTime)
    return {
      idle: { audienceId: audience.id, reason: 'no slot due yet', nextSlot: nextSlotAfter(audience.schedule, tz, now) },
    };
  if (last && logicalTime.getTime() <= last.getTime()) {
    return {
      idle: {
        audienceId: audience.id,
        reason: `slot ${logicalTime.toISOString()} already exported`,
        nextSlot: nextSlotAfter(audience.schedule, tz, now),
      },
    };
  }
  const skippedSlots = last
    ? slotsBetween(audience.schedule, tz, last, logicalTime).filter((s) => s.getTime() < logicalTime.getTime())
    : [];
  const reason = `slot ${logicalTime.toISOString()} is due${skippedSlots.length ? ` (${skippedSlots.length} missed slot(s) coalesced)` : ''}`;
  return { logicalTime, snapshot: pickSnapshot(input.snapshots, now, input.pinnedSnapshot), skippedSlots, reason };
}

/** The due run, or the problem that keeps it from running (no snapshot, audience not in it, wrong mode). */
function planDueRun(
  input: ScheduledPlanInput,
  audience: AudienceConfig,
  index: number,
  cursor: Cursor | undefined,
  due: Exclude<Due, { idle: IdleAudience }>,
  plan: Plan,
): void {
  const { dataflow, now } = input;
  const { logicalTime, snapshot, skippedSlots, reason } = due;
  if (!snapshot) {
    addProblem(
      plan,
      audience,
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
    addProblem(plan, audience, checked.error, logicalTime, snapshot.snapshotId, checked.kind);
    return;
  }
  const trigger = scheduledTrigger(audience);
  plan.runs.push({
    runId: deriveRunId(dataflow.id, audience.id, audience.mode, trigger, logicalTime),
    dataflowId: dataflow.id,
    audienceId: audience.id,
    audienceName: checked.name,
    mode: audience.mode,
    trigger,
    logicalTime,
    snapshot,
    selection: selectionFor(audience.mode, cursor),
    advancesCursor: true,
    resumed: false,
    skippedSlots,
    reason,
  });
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
      plan.refusals.push(
        `audience ${id}: ${now.toISOString()} is outside its schedule window (${startDate ?? 'open'} to ${endDate ?? 'open'}, end exclusive)`,
      );
      continue;
    }
    const problem = (error: string, kind: PlanProblemKind = 'run') =>
      plan.problems.push({
        audienceId: id,
        mode: 'full',
        trigger: 'exportNow',
        logicalTime: now,
        snapshotId: snapshot?.snapshotId ?? null,
        error,
        kind,
      });
    if (!snapshot) {
      problem(
        input.pinnedSnapshot
          ? `snapshot ${input.pinnedSnapshot} was not found`
          : `no complete snapshot evaluated at or before ${now.toISOString()}`,
      );
      continue;
    }
    const checked = checkAudience({ ...audience, mode: 'full' }, index, snapshot);
    if ('error' in checked) {
      problem(checked.error, checked.kind);
      continue;
    }
    plan.runs.push({
      runId: deriveRunId(dataflow.id, id, 'full', 'exportNow', now),
      dataflowId: dataflow.id,
      audienceId: id,
      audienceName: checked.name,
      mode: 'full',
      trigger: 'exportNow',
      logicalTime: now,
      snapshot,
      selection: { kind: 'full' },
      advancesCursor: false,
      resumed: false,
      skippedSlots: [],
      reason: 'export now',
    });
  }
  return plan;
}
