// `audex status`: per audience, the last successful run, the next slot, the baseline size
// and the last error since that success. Reads state only.
import { loadConfig, type LoadedConfig } from '../../config/load.js';
import { describeSchedule, latestSlotAtOrBefore, nextSlotAfter } from '../../schedule/slots.js';
import { openLocations, readCursors } from '../../run/prepare.js';
import { readLockHolder } from '../../state/lock.js';
import { StateStore } from '../../state/state-store.js';
import type { RunRecord } from '../../state/records.js';
import type { Reporter } from '../reporter.js';
import { parseAt } from '../parse-options.js';
import { statusDatasets } from './datasets.js';

export interface StatusFlags {
  config: string;
  at?: string;
  json?: boolean;
}

export interface AudienceStatus {
  audienceId: string;
  mode: string;
  schedule: string;
  lastSuccess: { runId: string; logicalTime: string; snapshotId: string | null; rowsWritten: number; files: number } | null;
  nextSlot: string | null;
  baselineSize: number | null;
  pendingRun: string | null;
  lastError: { runId: string; logicalTime: string; error: string } | null;
}

/** The slot the next `audex run` exports: one already due and not exported, or the next one. */
function nextSlotOf(schedule: Parameters<typeof nextSlotAfter>[0], timezone: string, now: Date, last: Date | null): string | null {
  const due = latestSlotAtOrBefore(schedule, timezone, now);
  if (due && (!last || due.getTime() > last.getTime())) return due.toISOString();
  return nextSlotAfter(schedule, timezone, now)?.toISOString() ?? null;
}

export async function statusCommand(flags: StatusFlags, reporter: Reporter): Promise<number> {
  const now = parseAt(flags.at, () => new Date());
  const config = await loadConfig(flags.config);
  Object.assign(reporter.context, { dataflowId: config.dataflow.id, at: now.toISOString() });
  if (config.kind === 'datasets') return statusDatasets(config, { now, json: flags.json }, reporter);
  if (config.kind === 'http') return (await import('./http.js')).httpStatusCommand(config, flags, reporter);
  const state = new StateStore(openLocations(config).state);
  const audiences = await readAudienceStatuses(config, state, await state.readHistory(), now);
  const lockHolder = await readLockHolder(state.storage, new Date());
  const dataflowId = config.dataflow.id;
  reporter.out(flags.json ? JSON.stringify({ dataflowId, at: now.toISOString(), lockHolder, audiences }, null, 2) : formatStatus(dataflowId, now, audiences, lockHolder));
  return 0;
}

/** Per configured audience, what `audex status` (and `audex report`) shows; `history` is the dataflow's. */
export async function readAudienceStatuses(config: LoadedConfig, state: StateStore, history: RunRecord[], now: Date): Promise<AudienceStatus[]> {
  const { dataflow } = config;
  const cursors = await readCursors(state, dataflow.audiences.map((a) => a.id));
  const pending = await state.listPending();
  return dataflow.audiences.map((a) => {
    const mine = history.filter((r) => r.audienceId === a.id);
    const success = mine.find((r) => r.status === 'success');
    const failed = mine.find((r: RunRecord) => r.status === 'failed' && (!success || r.logicalTime >= success.logicalTime));
    const cursor = cursors.get(a.id);
    const afterEvaluation = a.schedule.trigger === 'afterEvaluation';
    return {
      audienceId: a.id,
      mode: a.mode,
      schedule: afterEvaluation ? 'after each new snapshot evaluation' : describeSchedule(a.schedule, dataflow.timezone),
      lastSuccess: success
        ? { runId: success.runId, logicalTime: success.logicalTime, snapshotId: success.snapshotId, rowsWritten: success.counts.rowsWritten, files: success.files.length }
        : null,
      nextSlot: afterEvaluation ? null : nextSlotOf(a.schedule, dataflow.timezone, now, cursor ? new Date(cursor.lastSlot) : null),
      baselineSize: cursor?.baselineSize ?? null,
      pendingRun: pending.find((p) => p.audienceId === a.id)?.runId ?? null,
      lastError: failed ? { runId: failed.runId, logicalTime: failed.logicalTime, error: failed.error ?? '' } : null,
    };
  });
}

function formatStatus(dataflowId: string, now: Date, audiences: AudienceStatus[], lockHolder: string | null): string {
  const lines = [`dataflow ${dataflowId} at ${now.toISOString()}`];
  if (lockHolder) lines.push(`  locked by ${lockHolder}`);
  for (const a of audiences) {
    lines.push(`  ${a.audienceId} (${a.mode}, ${a.schedule})`);
    lines.push(
      `    last success: ${a.lastSuccess ? `${a.lastSuccess.logicalTime} run ${a.lastSuccess.runId}, ${a.lastSuccess.rowsWritten} rows in ${a.lastSuccess.files} file(s), snapshot ${a.lastSuccess.snapshotId}` : 'never'}`,
    );
    const due = a.nextSlot !== null && a.nextSlot <= now.toISOString() ? ' (due now)' : '';
    lines.push(`    next slot:    ${a.nextSlot ? `${a.nextSlot}${due}` : a.schedule.startsWith('after') ? 'the next snapshot' : 'none (schedule ended)'}`);
    if (a.mode === 'incremental') lines.push(`    baseline:     ${a.baselineSize === null ? 'none yet (the first run is a full backfill)' : `${a.baselineSize} profiles`}`);
    if (a.pendingRun) lines.push(`    interrupted:  run ${a.pendingRun} will be finished by the next \`audex run\``);
    if (a.lastError) lines.push(`    last error:   ${a.lastError.logicalTime} run ${a.lastError.runId}: ${a.lastError.error.split('\n')[0]}`);
  }
  return lines.join('\n');
}
