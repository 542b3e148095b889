// `audex run` and `audex export-now`: execute runs and print their summary.
import { resolveConfigPaths } from '../../config/config-paths.js';
import { loadConfig, type AnyLoadedConfig, type LoadedConfig } from '../../config/load.js';
import { invokeDatasets } from '../../datasets/invoke-datasets.js';
import { ConfigError, asAudexError, type AudexError } from '../../errors.js';
import { invokeEach, type FailedInvocation, type InvocationResult } from '../../run/invoke.js';
import type { Reporter } from '../reporter.js';
import { exitCodeOfOutcomes, mostSevere } from '../exit-codes.js';
import type { CommandOptions } from '../program.js';
import { printEntries, type DataflowEntry } from '../several-dataflows.js';
import { formatDatasetSummary } from './datasets.js';
import { formatHttpSummary } from './http-summary.js';

export type RunFlags = CommandOptions<'run'> | CommandOptions<'export-now'>;

/** What every dataflow of one invocation shares. */
interface RunRequest {
  command: 'run' | 'export-now';
  now: Date;
  maxBadRecords: number;
  memoryLimit: string;
  flags: RunFlags;
}

type Invoked = InvocationResult | FailedInvocation;

export async function runCommand(command: 'run' | 'export-now', flags: RunFlags, reporter: Reporter): Promise<number> {
  const now = flags.at ?? new Date();
  const { maxBadRecords, memoryLimit } = flags;
  const request: RunRequest = { command, now, maxBadRecords, memoryLimit, flags };
  const { files, several } = await resolveConfigPaths(flags.config);
  if (several) return runSeveral(request, files, reporter);
  const config = await loadConfig(files[0]!);
  Object.assign(reporter.context, { dataflowId: config.dataflow.id, at: now.toISOString() });
  const [result] = await invokeDataflows([config], request, reporter, false);
  if ('error' in result!) throw result.error;
  reportFailedRuns(result!, reporter);
  reporter.out(
    flags.json
      ? JSON.stringify({ dataflowId: result!.dataflowId, at: result!.at, runs: result!.runs }, null, 2)
      : formatResult(config, result!),
  );
  return exitCodeOfOutcomes(result!.outcomes);
}

/**
 * The one place a dataflow's kind picks how it runs. Audience dataflows all go through
 * invokeEach, which reads their snapshots through one seam (run/snapshot-reads.ts);
 * dataset dataflows, then HTTP API dataflows (which read their snapshots themselves: whole
 * identity maps and memberships) run one after the other. Each returns outcomes; a
 * failure stays that dataflow's.
 */
async function invokeDataflows(
  configs: AnyLoadedConfig[],
  request: RunRequest,
  reporter: Reporter,
  prefix: boolean,
): Promise<Invoked[]> {
  const { command, now, maxBadRecords, memoryLimit, flags } = request;
  const results = new Map<AnyLoadedConfig, Invoked>();
  const say = (config: AnyLoadedConfig) => (prefix ? (m: string) => `${config.dataflow.id}: ${m}` : (m: string) => m);
  const common = (config: AnyLoadedConfig) => ({
    now,
    maxBadRecords,
    memoryLimit,
    lock: flags.lock !== false,
    progress: (m: string) => reporter.progress(say(config)(m)),
    warn: (m: string) => reporter.warn(say(config)(m)),
  });
  const audiences = configs.filter((c): c is LoadedConfig => c.kind !== 'datasets' && c.kind !== 'http');
  const audienceIds = 'audience' in flags ? flags.audience : undefined;
  const invoked = await invokeEach(
    audiences.map((config) => ({ config, command, audienceIds, pinnedSnapshot: flags.snapshot, ...common(config) })),
  );
  audiences.forEach((config, i) => results.set(config, invoked[i]!));
  for (const config of configs) {
    if (config.kind !== 'datasets' && config.kind !== 'http') continue;
    try {
      if (config.kind === 'datasets') {
        if (command === 'export-now')
          throw new ConfigError(
            `dataflow ${config.dataflow.id} exports datasets; export-now is for audiences. Run \`audex run\` to export the due slots`,
          );
        results.set(config, await invokeDatasets({ config, ...common(config) }));
      } else {
        if (command === 'export-now') (await import('./http.js')).refuseExportNow(config);
        const { invokeHttp } = await import('../../run/invoke-http.js');
        results.set(config, await invokeHttp({ config, pinnedSnapshot: flags.snapshot, ...common(config) }));
      }
    } catch (error) {
      results.set(config, {
        dataflowId: config.dataflow.id,
        at: now.toISOString(),
        runs: [],
        error: asAudexError(error),
      });
    }
  }
  return configs.map((c) => results.get(c)!);
}

/** Several dataflows (README "Several dataflows in one invocation"). */
async function runSeveral(request: RunRequest, files: string[], reporter: Reporter): Promise<number> {
  const at = request.now.toISOString();
  const loaded: (AnyLoadedConfig | null)[] = [];
  const failures = new Map<string, AudexError>();
  const ids = new Map<string, string>();
  for (const file of files) {
    try {
      const config = await loadConfig(file);
      const other = ids.get(config.dataflow.id);
      if (other !== undefined)
        throw new ConfigError(
          `dataflow id ${config.dataflow.id} is also the id of ${other}: each dataflow of one invocation needs its own id (its lock, state and history are kept by id)`,
          file,
        );
      ids.set(config.dataflow.id, file);
      loaded.push(config);
    } catch (error) {
      failures.set(file, asAudexError(error));
      loaded.push(null);
    }
  }
  const configs = loaded.filter((c): c is AnyLoadedConfig => c !== null);
  const invoked = new Map(configs.map((c, i) => [c, i] as const));
  const results = await invokeDataflows(configs, request, reporter, true);
  const entries: DataflowEntry[] = files.map((file, i) => {
    const config = loaded[i] ?? null;
    const result: Invoked = config
      ? results[invoked.get(config)!]!
      : { dataflowId: '', at, runs: [], error: failures.get(file)! };
    const failure = 'error' in result ? result.error : null;
    if (failure) reporter.warn(`${file}: ${failure.message}`);
    else reportFailedRuns(result as InvocationResult, reporter);
    const code = failure ? failure.exitCode : exitCodeOfOutcomes((result as InvocationResult).outcomes);
    const summary = {
      config: file,
      dataflowId: config ? result.dataflowId : null,
      at: result.at,
      runs: result.runs,
      ...(failure ? { error: { exitCode: code, message: failure.message } } : {}),
    };
    if (request.flags.json) return { config: file, code, output: summary };
    const text = failure
      ? `config ${file}${config ? ` (dataflow ${result.dataflowId})` : ''}: failed (exit ${code}): ${failure.message}`
      : formatResult(config!, result as InvocationResult);
    return { config: file, code, output: text };
  });
  printEntries(entries, Boolean(request.flags.json), reporter);
  return mostSevere(entries.map((e) => e.code));
}

/** A failed run's error also goes to stderr: cron mails stderr, CI logs show it. */
function reportFailedRuns(result: InvocationResult, reporter: Reporter): void {
  for (const run of result.runs)
    if (run.status === 'failed' && run.error)
      reporter.warn(`${run.audienceId}: run ${run.runId} failed:\n${run.error}`);
}

function formatResult(config: AnyLoadedConfig, result: InvocationResult): string {
  return config.kind === 'datasets'
    ? formatDatasetSummary(result)
    : config.kind === 'http'
      ? formatHttpSummary(result)
      : formatSummary(result);
}

export function formatCounts(c: InvocationResult['runs'][number]['counts']): string {
  return `${c.rowsWritten} rows from ${c.profilesReceived} profiles (excluded: ${c.excludedMandatory} mandatory, ${c.excludedDuplicate} duplicate; exits omitted: ${c.exitsOmitted}; bad records: ${c.badRecords})`;
}

function formatSummary(result: InvocationResult): string {
  if (result.runs.length === 0)
    return `dataflow ${result.dataflowId}: nothing due at ${result.at} (see \`audex plan\` for why)`;
  const lines = [`dataflow ${result.dataflowId} at ${result.at}:`];
  for (const run of result.runs) {
    const head = `  ${run.status.padEnd(7)} ${run.audienceId} ${run.mode} (${run.trigger}) slot ${run.logicalTime}`;
    if (run.status === 'skipped') lines.push(`${head}: ${run.note ?? 'skipped'}`);
    else if (run.status === 'failed')
      lines.push(`${head}: FAILED\n    ${(run.error ?? '').split('\n').join('\n    ')}`);
    else {
      lines.push(`${head}: ${formatCounts(run.counts)}`);
      for (const file of run.files) lines.push(`    ${file.path}  ${file.rows} rows, ${file.bytes} bytes`);
      if (run.manifest) lines.push(`    ${run.manifest}`);
    }
  }
  return lines.join('\n');
}
