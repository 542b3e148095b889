// `audex run` and `audex export-now`: execute runs and print their summary.
import { loadConfig } from '../../config/load.js';
import { invoke, type InvocationResult } from '../../run/invoke.js';
import { createReporter } from '../reporter.js';
import { parseAt, parseCount } from '../parse-options.js';

export interface RunFlags {
  config: string;
  at?: string;
  snapshot?: string;
  json?: boolean;
  quiet?: boolean;
  maxBadRecords: string;
  memoryLimit?: string;
  audience?: string[];
}

export async function runCommand(command: 'run' | 'export-now', flags: RunFlags): Promise<number> {
  const reporter = createReporter({ quiet: Boolean(flags.quiet) });
  const now = parseAt(flags.at, () => new Date());
  const maxBadRecords = parseCount('--max-bad-records', flags.maxBadRecords);
  const config = await loadConfig(flags.config);
  const result = await invoke({
    config, command, now, maxBadRecords, audienceIds: flags.audience, pinnedSnapshot: flags.snapshot,
    memoryLimit: flags.memoryLimit, progress: (m) => reporter.progress(m),
  });
  reporter.out(flags.json ? JSON.stringify(toJson(result), null, 2) : formatSummary(result));
  return result.exitCode;
}

function toJson(result: InvocationResult) {
  return { dataflowId: result.dataflowId, at: result.at, runs: result.runs };
}

function formatSummary(result: InvocationResult): string {
  if (result.runs.length === 0) return `dataflow ${result.dataflowId}: nothing due at ${result.at}`;
  const lines = [`dataflow ${result.dataflowId} at ${result.at}:`];
  for (const run of result.runs) {
    const head = `  ${run.status.padEnd(7)} ${run.audienceId} ${run.mode} (${run.trigger}) slot ${run.logicalTime}`;
    if (run.status === 'skipped') {
      lines.push(`${head}: ${run.note ?? 'skipped'}`);
      continue;
    }
    if (run.status === 'failed') {
      lines.push(`${head}: FAILED\n    ${(run.error ?? '').split('\n').join('\n    ')}`);
      continue;
    }
    const c = run.counts;
    lines.push(
      `${head}: ${c.rowsWritten} rows from ${c.profilesReceived} profiles` +
        ` (excluded: ${c.excludedMandatory} mandatory, ${c.excludedDuplicate} duplicate; exits omitted: ${c.exitsOmitted}; bad records: ${c.badRecords})`,
    );
    for (const file of run.files) lines.push(`    ${file.path}  ${file.rows} rows, ${file.bytes} bytes`);
    if (run.manifest) lines.push(`    ${run.manifest}`);
  }
  return lines.join('\n');
}
