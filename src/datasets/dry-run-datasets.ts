// `audex plan` for a dataset dataflow: what `audex run` would export now and why, with the
// records and file names of each run, read from the batches without writing anything.
import { rm } from 'node:fs/promises';
import path from 'node:path';
import type { LoadedDatasetConfig } from '../config/load.js';
import { openEngine } from '../engine/session.js';
import { createScratchDir } from '../storage/staging.js';
import { resolveDatasetRunNames } from './dataset-names.js';
import { prepareDatasets, readRunInputs } from './invoke-datasets.js';

export interface DatasetPlanReport {
  dataflowId: string;
  at: string;
  runs: {
    runId: string;
    datasetId: string;
    logicalTime: string;
    folder: string;
    batches: string[];
    reason: string;
    resumed: boolean;
    skippedSlots: string[];
    records: number;
    badRecords: number;
    files: string[];
  }[];
  idle: { datasetId: string; reason: string; nextSlot: string | null }[];
  problems: { datasetId: string; error: string }[];
}

export async function dryRunDatasets(options: {
  config: LoadedDatasetConfig;
  now: Date;
  maxBadRecords: number;
  memoryLimit?: string;
  progress: (message: string) => void;
}): Promise<DatasetPlanReport> {
  const { dataflow } = options.config;
  const { plan, locations } = await prepareDatasets(options.config, options.now);
  const report: DatasetPlanReport = {
    dataflowId: dataflow.id,
    at: options.now.toISOString(),
    runs: [],
    idle: plan.idle.map((i) => ({
      datasetId: i.datasetId,
      reason: i.reason,
      nextSlot: i.nextSlot?.toISOString() ?? null,
    })),
    problems: plan.problems.map((p) => ({ datasetId: p.datasetId, error: p.error })),
  };
  if (plan.runs.length === 0) return report;
  const scratchDir = await createScratchDir('plan');
  const engine = await openEngine({ tempDirectory: path.join(scratchDir, 'spill'), memoryLimit: options.memoryLimit });
  try {
    const inputs = await readRunInputs(
      engine,
      locations.source,
      plan.runs,
      options,
      scratchDir,
      dataflow.format,
      'count',
    );
    for (const run of plan.runs) {
      const input = inputs.get(run)!;
      const { records } = input;
      const names = resolveDatasetRunNames(dataflow, run.datasetId, run.runId, run.logicalTime);
      const parts = Math.ceil(records / dataflow.format.maxRowsPerFile);
      report.runs.push({
        runId: run.runId,
        datasetId: run.datasetId,
        logicalTime: run.logicalTime.toISOString(),
        folder: locations.destination.describe(names.folder),
        batches: run.batches.map((b) => b.batchId),
        reason: run.reason,
        resumed: run.resumed,
        skippedSlots: run.skippedSlots.map((d) => d.toISOString()),
        records,
        badRecords: input.bad.length,
        files: [
          ...Array.from({ length: parts }, (_, i) => locations.destination.describe(names.partKey(i))),
          ...(dataflow.format.manifest ? [locations.destination.describe(names.manifestKey)] : []),
        ],
      });
    }
  } finally {
    engine.close();
    await rm(scratchDir, { recursive: true, force: true });
  }
  return report;
}
