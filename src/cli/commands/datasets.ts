// The dataset dataflow side (README "Export datasets") of `audex run`, `plan`, `status` and `validate`:
// each command loads the config and hands a dataset dataflow to the function here.
import type { LoadedDatasetConfig } from '../../config/load.js';
import { loadEncryptionKey } from '../../config/load-encryption-key.js';
import { dryRunDatasets, type DatasetPlanReport } from '../../datasets/dry-run-datasets.js';
import { listBatches } from '../../datasets/list-batches.js';
import type { DatasetCursor } from '../../datasets/plan-datasets.js';
import type { InvocationResult } from '../../run/invoke.js';
import { openLocations } from '../../run/prepare.js';
import { nextExportSlot } from '../../plan/next-slot.js';
import { describeSchedule } from '../../schedule/slots.js';
import { StateStore } from '../../state/state-store.js';
import type { Reporter } from '../reporter.js';

export function formatDatasetSummary(result: InvocationResult): string {
  if (result.runs.length === 0)
    return `dataflow ${result.dataflowId}: nothing due at ${result.at} (see \`audex plan\` for why)`;
  const lines = [`dataflow ${result.dataflowId} at ${result.at}:`];
  for (const run of result.runs) {
    const head = `  ${run.status.padEnd(7)} dataset ${run.audienceId} slot ${run.logicalTime}`;
    const batches = 'batchIds' in run && Array.isArray(run.batchIds) ? run.batchIds.length : 0;
    if (run.status === 'skipped') lines.push(`${head}: ${run.note ?? 'skipped'}`);
    else if (run.status === 'failed')
      lines.push(`${head}: FAILED\n    ${(run.error ?? '').split('\n').join('\n    ')}`);
    else {
      lines.push(
        `${head}: ${run.counts.rowsWritten} records from ${batches} new batch(es) in ${run.files.length} file(s); bad records: ${run.counts.badRecords}`,
      );
      for (const file of run.files) lines.push(`    ${file.path}  ${file.rows} records, ${file.bytes} bytes`);
      if (run.manifest) lines.push(`    ${run.manifest}`);
    }
  }
  return lines.join('\n');
}

export async function planDatasets(
  config: LoadedDatasetConfig,
  options: { now: Date; maxBadRecords: number; memoryLimit?: string; json?: boolean },
  reporter: Reporter,
): Promise<number> {
  await loadEncryptionKey(config, options.now);
  const report = await dryRunDatasets({ config, ...options, progress: (m) => reporter.progress(m) });
  reporter.out(options.json ? JSON.stringify(report, null, 2) : formatPlan(report));
  return 0;
}

function formatPlan(report: DatasetPlanReport): string {
  const lines = [`dataflow ${report.dataflowId} at ${report.at}`];
  lines.push(report.runs.length ? 'due:' : 'due: nothing');
  for (const run of report.runs) {
    lines.push(`  dataset ${run.datasetId} slot ${run.logicalTime} → ${run.folder}`);
    lines.push(`    why: ${run.reason}`);
    if (run.skippedSlots.length) lines.push(`    coalesced missed slots: ${run.skippedSlots.join(', ')}`);
    lines.push(
      `    would write ${run.records} records from ${run.batches.length} batch(es)${run.batches.length ? ` (${run.batches.join(', ')})` : ''}; bad records: ${run.badRecords}`,
    );
    for (const file of run.files) lines.push(`      ${file}`);
  }
  if (report.idle.length) lines.push('not due:');
  for (const idle of report.idle)
    lines.push(`  ${idle.datasetId}: ${idle.reason}${idle.nextSlot ? `; next slot ${idle.nextSlot}` : ''}`);
  if (report.problems.length) lines.push('would fail:');
  for (const p of report.problems) lines.push(`  ${p.datasetId}: ${p.error}`);
  return lines.join('\n');
}

export async function statusDatasets(
  config: LoadedDatasetConfig,
  options: { now: Date; json?: boolean },
  reporter: Reporter,
): Promise<number> {
  const { dataflow } = config;
  const { now } = options;
  const state = new StateStore(openLocations(config).state);
  const history = await state.readHistory();
  const pending = await state.listPending();
  const datasets = [];
  for (const ds of dataflow.datasets) {
    const cursor = (await state.readCursor(ds.id)) as DatasetCursor | null;
    const mine = history.filter((r) => r.audienceId === ds.id);
    const success = mine.find((r) => r.status === 'success');
    const failed = mine.find((r) => r.status === 'failed' && (!success || r.logicalTime >= success.logicalTime));
    const nextSlot = nextExportSlot(ds.schedule, 'UTC', now, cursor ? new Date(cursor.lastSlot) : null);
    datasets.push({
      datasetId: ds.id,
      schedule: describeSchedule(ds.schedule, 'UTC'),
      lastSuccess: success
        ? {
            runId: success.runId,
            logicalTime: success.logicalTime,
            records: success.counts.rowsWritten,
            files: success.files.length,
          }
        : null,
      nextSlot: nextSlot?.toISOString() ?? null,
      exportedBatches: cursor?.exportedBatches?.length ?? 0,
      pendingRun: pending.find((p) => p.audienceId === ds.id)?.runId ?? null,
      lastError: failed ? { runId: failed.runId, logicalTime: failed.logicalTime, error: failed.error ?? '' } : null,
    });
  }
  if (options.json) {
    reporter.out(JSON.stringify({ dataflowId: dataflow.id, at: now.toISOString(), datasets }, null, 2));
    return 0;
  }
  const lines = [`dataflow ${dataflow.id} at ${now.toISOString()}`];
  for (const d of datasets) {
    lines.push(`  dataset ${d.datasetId} (${d.schedule})`);
    lines.push(
      `    last success: ${d.lastSuccess ? `${d.lastSuccess.logicalTime} run ${d.lastSuccess.runId}, ${d.lastSuccess.records} records in ${d.lastSuccess.files} file(s)` : 'never'}`,
    );
    const dueNow = d.nextSlot !== null && d.nextSlot <= now.toISOString() ? ' (due now)' : '';
    lines.push(`    next slot:    ${d.nextSlot ? `${d.nextSlot}${dueNow}` : 'none (schedule ended)'}`);
    lines.push(
      `    exported:     ${d.exportedBatches ? `${d.exportedBatches} batch(es)` : 'none yet (the first export is a backfill of every batch)'}`,
    );
    if (d.pendingRun) lines.push(`    interrupted:  run ${d.pendingRun} will be finished by the next \`audex run\``);
    if (d.lastError)
      lines.push(
        `    last error:   ${d.lastError.logicalTime} run ${d.lastError.runId}: ${d.lastError.error.split('\n')[0]}`,
      );
  }
  reporter.out(lines.join('\n'));
  return 0;
}

/**
 * The config is valid once loaded; when the source can be reached, each dataset's
 * complete batches are listed (their _batch.json only, never the records).
 */
export async function validateDatasets(
  config: LoadedDatasetConfig,
  options: { json?: boolean },
  reporter: Reporter,
): Promise<number> {
  const { dataflow } = config;
  await loadEncryptionKey(config, new Date());
  const { source } = openLocations(config);
  const datasets = [];
  for (const ds of dataflow.datasets) {
    const batches = await listBatches(source, ds.id);
    datasets.push({
      id: ds.id,
      batches: batches.length,
      parts: batches.reduce((n, b) => n + b.parts.length, 0),
      latestCommittedAt: batches.at(-1)?.committedAt.toISOString() ?? null,
    });
  }
  const warnings = datasets
    .filter((d) => d.batches === 0)
    .map(
      (d) =>
        `dataset ${d.id} has no complete batch yet under ${source.describe(d.id)} (a batch is complete once its _batch.json is written)`,
    );
  if (options.json) {
    reporter.out(
      JSON.stringify(
        { valid: true, config: config.file, dataflowId: dataflow.id, kind: 'datasets', warnings, datasets },
        null,
        2,
      ),
    );
    return 0;
  }
  const lines = [
    `config ${config.file}: valid (dataset dataflow ${dataflow.id}, ${dataflow.datasets.length} dataset(s))`,
  ];
  for (const d of datasets)
    lines.push(
      `  dataset ${d.id}: ${d.batches} complete batch(es), ${d.parts} part(s)${d.latestCommittedAt ? `, latest committed ${d.latestCommittedAt}` : ''}`,
    );
  for (const w of warnings) lines.push(`  warning: ${w}`);
  reporter.out(lines.join('\n'));
  return 0;
}
