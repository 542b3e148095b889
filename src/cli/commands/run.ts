// `audex run` and `audex export-now`: execute runs and print their summary.
import { loadConfig } from '../../config/load.js';
import { invoke, type InvocationResult } from '../../run/invoke.js';
import type { Reporter } from '../reporter.js';
import { parseAt, parseCount, parseMemoryLimit } from '../parse-options.js';
import { runDatasets } from './datasets.js';
import { ConfigError } from '../../errors.js';

export interface RunFlags {
  config: string;
  at?: string;
  snapshot?: string;
  json?: boolean;
  maxBadRecords: string;
  memoryLimit?: string;
  audience?: string[];
  lock?: boolean;
}

export async function runCommand(command: 'run' | 'export-now', flags: RunFlags, reporter: Reporter): Promise<number> {
  const now = parseAt(flags.at, () => new Date());
  const maxBadRecords = parseCount('--max-bad-records', flags.maxBadRecords);
  const memoryLimit = parseMemoryLimit(flags.memoryLimit);
  const config = await loadConfig(flags.config);
  Object.assign(reporter.context, { dataflowId: config.dataflow.id, at: now.toISOString() });
  if (config.kind === 'http') {
    const http = await import('./http.js');
    return command === 'export-now' ? http.refuseExportNow(config) : http.httpRunCommand(config, flags, reporter);
  }
  if (config.kind === 'datasets') {
    if (command === 'export-now') throw new ConfigError(`dataflow ${config.dataflow.id} exports datasets; export-now is for audiences. Run \`audex run\` to export the due slots`);
    return runDatasets(config, { now, maxBadRecords, memoryLimit, lock: flags.lock !== false, json: flags.json }, reporter);
  }
  const result = await invoke({
    config, command, now, maxBadRecords, audienceIds: flags.audience, pinnedSnapshot: flags.snapshot,
    memoryLimit, lock: flags.lock !== false, progress: (m) => reporter.progress(m), warn: (m) => reporter.warn(m),
  });
  // A failed run's error also goes to stderr: cron mails stderr, CI logs show it.
  for (const run of result.runs) if (run.status === 'failed' && run.error) reporter.warn(`${run.audienceId}: run ${run.runId} failed:\n${run.error}`);
  reporter.out(flags.json ? JSON.stringify({ dataflowId: result.dataflowId, at: result.at, runs: result.runs }, null, 2) : formatSummary(result));
  return result.exitCode;
}

export function formatCounts(c: InvocationResult['runs'][number]['counts']): string {
  return `${c.rowsWritten} rows from ${c.profilesReceived} profiles (excluded: ${c.excludedMandatory} mandatory, ${c.excludedDuplicate} duplicate; exits omitted: ${c.exitsOmitted}; bad records: ${c.badRecords})`;
}

function formatSummary(result: InvocationResult): string {
  if (result.runs.length === 0) return `dataflow ${result.dataflowId}: nothing due at ${result.at} (see \`audex plan\` for why)`;
  const lines = [`dataflow ${result.dataflowId} at ${result.at}:`];
  for (const run of result.runs) {
    const head = `  ${run.status.padEnd(7)} ${run.audienceId} ${run.mode} (${run.trigger}) slot ${run.logicalTime}`;
    if (run.status === 'skipped') lines.push(`${head}: ${run.note ?? 'skipped'}`);
    else if (run.status === 'failed') lines.push(`${head}: FAILED\n    ${(run.error ?? '').split('\n').join('\n    ')}`);
    else {
      lines.push(`${head}: ${formatCounts(run.counts)}`);
      for (const file of run.files) lines.push(`    ${file.path}  ${file.rows} rows, ${file.bytes} bytes`);
      if (run.manifest) lines.push(`    ${run.manifest}`);
    }
  }
  return lines.join('\n');
}
