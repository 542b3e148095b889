// `audex plan`: what `audex run` would do now and why, with the row counts each run would
// write, computed by the same selection SQL, without writing any file or state. Chained
// runs (an interrupted run finished first, then the newly due slot) diff against the
// baseline the first would leave, built in memory.
import { rm } from 'node:fs/promises';
import path from 'node:path';
import type { LoadedConfig } from '../config/load.js';
import {
  dropRun,
  keepNextBaseline,
  selectRun,
  type BaselineSource,
  type KeptBaseline,
} from '../engine/audience-run.js';
import { nextCursor } from '../plan/next-cursor.js';
import { openEngine } from '../engine/session.js';
import { buildShape } from '../engine/shape.js';
import type { PlanProblem, PlannedRun, IdleAudience } from '../plan/plan-runs.js';
import type { RunCounts } from '../state/records.js';
import { loadSnapshots, prepare } from './prepare.js';
import { resolveRunNames } from './run-names.js';
import { createScratchDir } from '../storage/staging.js';
import { countParts, formatOf } from '../writers/formats.js';
import { BadInputError, messageOf } from '../errors.js';

export interface DryRunOptions {
  config: LoadedConfig;
  now: Date;
  pinnedSnapshot?: string;
  maxBadRecords: number;
  memoryLimit?: string;
  progress: (message: string) => void;
  warn?: (message: string) => void;
}

export interface PlannedRunReport {
  runId: string;
  audienceId: string;
  mode: PlannedRun['mode'];
  trigger: PlannedRun['trigger'];
  logicalTime: string;
  snapshotId: string;
  selection: PlannedRun['selection']['kind'];
  reason: string;
  resumed: boolean;
  skippedSlots: string[];
  counts: RunCounts;
  files: string[];
}

export interface PlanReport {
  dataflowId: string;
  at: string;
  latestSnapshot: string | null;
  runs: PlannedRunReport[];
  idle: { audienceId: string; reason: string; nextSlot: string | null }[];
  problems: { audienceId: string; error: string }[];
}

export async function dryRun(options: DryRunOptions): Promise<PlanReport> {
  const { dataflow } = options.config;
  const prepared = await prepare(options.config, {
    command: 'run',
    now: options.now,
    pinnedSnapshot: options.pinnedSnapshot,
    warn: options.warn,
  });
  const { plan, locations } = prepared;
  const report: PlanReport = {
    dataflowId: dataflow.id,
    at: options.now.toISOString(),
    latestSnapshot:
      prepared.snapshots.filter((s) => s.evaluatedAt.getTime() <= options.now.getTime()).at(-1)?.snapshotId ?? null,
    runs: [],
    idle: plan.idle.map((i: IdleAudience) => ({
      audienceId: i.audienceId,
      reason: i.reason,
      nextSlot: i.nextSlot?.toISOString() ?? null,
    })),
    problems: plan.problems.map((p: PlanProblem) => ({ audienceId: p.audienceId, error: p.error })),
  };
  if (plan.runs.length === 0) return report;
  const scratchDir = await createScratchDir('plan');
  const shape = buildShape(dataflow);
  const engine = await openEngine({ tempDirectory: path.join(scratchDir, 'spill'), memoryLimit: options.memoryLimit });
  try {
    const refused = new Map<PlannedRun, string>();
    const loaded = await loadSnapshots(
      engine,
      shape,
      locations.source,
      plan.runs,
      options,
      scratchDir,
      (run, message) => refused.set(run, message),
    );
    const baselines = new Map<string, KeptBaseline>();
    const failed = new Set<string>();
    for (const run of plan.runs) {
      if (failed.has(run.audienceId)) {
        report.problems.push({
          audienceId: run.audienceId,
          error: `run ${run.runId} would not run: an earlier run of this audience would fail`,
        });
        continue;
      }
      const refusal = refused.get(run);
      if (refusal !== undefined) {
        report.problems.push({
          audienceId: run.audienceId,
          error: `run ${run.runId} would fail with exit 4: ${refusal}`,
        });
        failed.add(run.audienceId);
        continue;
      }
      const snapshot = loaded.get(run.snapshot.snapshotId)!;
      let baseline: BaselineSource | undefined;
      if (run.selection.kind === 'diff') {
        baseline = baselines.get(run.selection.baselineKey) ?? {
          file: await locations.state.fetch(run.selection.baselineKey, scratchDir),
        };
      }
      const selected = await selectRun(engine, shape, snapshot, run.audienceId, baseline, {
        nextBaseline: run.mode === 'incremental',
      });
      try {
        // The check the run makes before writing: a run doomed by its values is shown as failing.
        const doomed = await formatOf(dataflow.format)
          .check(selected.rows)
          .then(
            () => null,
            (e: unknown) => e,
          );
        if (doomed) {
          if (!(doomed instanceof BadInputError)) throw doomed;
          report.problems.push({
            audienceId: run.audienceId,
            error: `run ${run.runId} (${run.reason}) would fail with exit 4: ${messageOf(doomed)}`,
          });
          failed.add(run.audienceId);
          continue;
        }
        // The baseline the run would leave (the cursor's, by the one rule) feeds the next diff.
        const nextBaseline = nextCursor(
          undefined,
          { ...run, snapshotId: run.snapshot.snapshotId },
          { status: 'success' },
        )?.baseline;
        if (nextBaseline) baselines.set(nextBaseline, await keepNextBaseline(selected));
      } finally {
        await dropRun(selected);
      }
      const names = resolveRunNames(dataflow, run);
      const parts = countParts(dataflow.format, selected.counts.rowsWritten);
      report.runs.push({
        runId: run.runId,
        audienceId: run.audienceId,
        mode: run.mode,
        trigger: run.trigger,
        logicalTime: run.logicalTime.toISOString(),
        snapshotId: run.snapshot.snapshotId,
        selection: run.selection.kind,
        reason: run.reason,
        resumed: run.resumed,
        skippedSlots: run.skippedSlots.map((d) => d.toISOString()),
        counts: selected.counts,
        files: Array.from({ length: parts }, (_, n) => locations.destination.describe(names.partKey(n + 1))),
      });
    }
  } finally {
    engine.close();
    await rm(scratchDir, { recursive: true, force: true });
  }
  return report;
}
