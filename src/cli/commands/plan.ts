// `audex plan`: what is due now and why, and the rows each run would write; writes nothing.
import { loadConfig } from '../../config/load.js';
import { loadEncryptionKey } from '../../config/load-encryption-key.js';
import { dryRun, type PlanReport } from '../../run/dry-run.js';
import type { Reporter } from '../reporter.js';
import type { CommandOptions } from '../program.js';
import { forEachConfig } from '../several-dataflows.js';
import { formatCounts } from './run.js';
import { planDatasets } from './datasets.js';

export type PlanFlags = CommandOptions<'plan'>;

export async function planCommand(flags: PlanFlags, reporter: Reporter): Promise<number> {
  return forEachConfig('plan', flags, reporter, planOne);
}

async function planOne(flags: PlanFlags & { config: string }, reporter: Reporter): Promise<number> {
  const now = flags.at ?? new Date();
  const { maxBadRecords, memoryLimit } = flags;
  const config = await loadConfig(flags.config);
  Object.assign(reporter.context, { dataflowId: config.dataflow.id, at: now.toISOString() });
  if (config.kind === 'datasets')
    return planDatasets(config, { now, maxBadRecords, memoryLimit, json: flags.json }, reporter);
  if (config.kind === 'http') return (await import('./http.js')).httpPlanCommand(config, flags, reporter);
  await loadEncryptionKey(config, now);
  const report = await dryRun({
    config,
    now,
    pinnedSnapshot: flags.snapshot,
    maxBadRecords,
    memoryLimit,
    progress: (m) => reporter.progress(m),
    warn: (m) => reporter.warn(m),
  });
  reporter.out(flags.json ? JSON.stringify(report, null, 2) : formatPlan(report));
  return 0;
}

function formatPlan(report: PlanReport): string {
  const lines = [
    `dataflow ${report.dataflowId} at ${report.at} (latest complete snapshot: ${report.latestSnapshot ?? 'none'})`,
  ];
  lines.push(report.runs.length ? 'due:' : 'due: nothing');
  for (const run of report.runs) {
    const base =
      run.selection === 'diff'
        ? 'diff against the last baseline'
        : run.selection === 'backfill'
          ? 'first run: full backfill'
          : 'full';
    lines.push(
      `  ${run.audienceId} ${run.mode} (${run.trigger}) slot ${run.logicalTime}, snapshot ${run.snapshotId}, ${base}`,
    );
    lines.push(`    why: ${run.reason}`);
    if (run.skippedSlots.length) lines.push(`    coalesced missed slots: ${run.skippedSlots.join(', ')}`);
    lines.push(`    would write ${formatCounts(run.counts)}`);
    for (const file of run.files) lines.push(`      ${file}`);
  }
  if (report.idle.length) lines.push('not due:');
  for (const idle of report.idle)
    lines.push(`  ${idle.audienceId}: ${idle.reason}${idle.nextSlot ? `; next slot ${idle.nextSlot}` : ''}`);
  if (report.problems.length) lines.push('would fail:');
  for (const p of report.problems) lines.push(`  ${p.audienceId}: ${p.error}`);
  return lines.join('\n');
}
