// `audex status`: per audience, the last successful run, the next slot, the baseline size
// and the last error since that success. Reads state only.
import { loadConfig, type LoadedConfig } from '../../config/load.js';
import { nextExportSlot } from '../../plan/next-slot.js';
import { describeSchedule } from '../../schedule/slots.js';
import { openLocations, readCursors } from '../../run/prepare.js';
import { readLockHolder } from '../../state/lock.js';
import { audienceTag, stateKeys, type HistoryEntry } from '../../state/state-keys.js';
import { StateStore } from '../../state/state-store.js';
import type { RunRecord } from '../../state/records.js';
import type { Reporter } from '../reporter.js';
import type { CommandOptions } from '../program.js';
import { forEachConfig } from '../several-dataflows.js';
import { statusDatasets } from './datasets.js';

export type StatusFlags = CommandOptions<'status'>;

export interface AudienceStatus {
  audienceId: string;
  mode: string;
  schedule: string;
  lastSuccess: {
    runId: string;
    logicalTime: string;
    snapshotId: string | null;
    rowsWritten: number;
    files: number;
  } | null;
  nextSlot: string | null;
  baselineSize: number | null;
  /** Baselines kept in the state location (the current one and older ones, for `audex reset --to`); null where the kind keeps no per-audience baselines (HTTP). */
  keptBaselines: number | null;
  /** Bytes of the audience's cursor and kept baselines (history is shared by the dataflow). */
  stateBytes: number | null;
  pendingRun: string | null;
  lastError: { runId: string; logicalTime: string; error: string } | null;
}

interface LatestRuns {
  success: RunRecord | undefined;
  failed: RunRecord | undefined;
}

/** The same from records already read (newest first). */
function latestIn(history: RunRecord[], audienceId: string): LatestRuns {
  const mine = history.filter((r) => r.audienceId === audienceId);
  const success = mine.find((r) => r.status === 'success');
  return {
    success,
    failed: mine.find((r) => r.status === 'failed' && (!success || r.logicalTime >= success.logicalTime)),
  };
}

/**
 * Per audience, its newest success and its newest failure not older than that success,
 * from the newest history records back. Names tell audience and status, so only the
 * records shown are read (side by side, at the end); the scan stops once every audience
 * has its success and the records left are older. Records of the layout before month
 * folders say neither, so those met on the way are read.
 */
async function readLatestRuns(state: StateStore, audienceIds: string[]): Promise<Map<string, LatestRuns>> {
  type Found = HistoryEntry | RunRecord;
  const found = new Map(
    audienceIds.map((id) => [
      id,
      { success: undefined as Found | undefined, failed: undefined as Found | undefined, stamp: '' },
    ]),
  );
  const byTag = new Map(audienceIds.map((id) => [audienceTag(id), id]));
  const note = (audienceId: string, status: string | undefined, item: Found, stamp: string) => {
    const mine = found.get(audienceId);
    if (!mine) return;
    if (status === 'success' && !mine.success) Object.assign(mine, { success: item, stamp });
    else if (status === 'failed' && !mine.failed && (!mine.success || stamp >= mine.stamp)) mine.failed = item;
  };
  for await (const entry of state.historyEntries()) {
    const stamp = entry.runId.slice(0, 16);
    // Done: every audience has a success, and every record left is older than it.
    if ([...found.values()].every((f) => f.success && f.stamp > stamp)) break;
    if (entry.audienceTag === undefined) {
      const record = await state.readHistoryRecord(entry);
      if (record) note(record.audienceId, record.status, record, stamp);
    } else if (byTag.has(entry.audienceTag)) note(byTag.get(entry.audienceTag)!, entry.status, entry, stamp);
  }
  const read = async (item: Found | undefined): Promise<RunRecord | undefined> =>
    item === undefined || 'counts' in item ? item : ((await state.readHistoryRecord(item)) ?? undefined);
  const latest = new Map<string, LatestRuns>();
  await Promise.all(
    audienceIds.map(async (id) => {
      const f = found.get(id)!;
      const [success, failed] = await Promise.all([read(f.success), read(f.failed)]);
      // Stamps are whole seconds: the failure must not be older than the success.
      latest.set(id, {
        success,
        failed: failed && (!success || failed.logicalTime >= success.logicalTime) ? failed : undefined,
      });
    }),
  );
  return latest;
}

async function readStateSize(
  state: StateStore,
  audienceId: string,
  cursorSizes: Map<string, number>,
): Promise<{ keptBaselines: number; stateBytes: number }> {
  const baselines = [...(await state.storage.listSizes(stateKeys.baselinePrefix(audienceId)))].filter(([k]) =>
    k.endsWith('.parquet'),
  );
  const cursor = cursorSizes.get(stateKeys.cursor(audienceId)) ?? 0;
  return { keptBaselines: baselines.length, stateBytes: cursor + baselines.reduce((sum, [, size]) => sum + size, 0) };
}

export async function statusCommand(flags: StatusFlags, reporter: Reporter): Promise<number> {
  return forEachConfig('status', flags, reporter, statusOne);
}

async function statusOne(flags: StatusFlags & { config: string }, reporter: Reporter): Promise<number> {
  const now = flags.at ?? new Date();
  const config = await loadConfig(flags.config);
  Object.assign(reporter.context, { dataflowId: config.dataflow.id, at: now.toISOString() });
  if (config.kind === 'datasets') return statusDatasets(config, { now, json: flags.json }, reporter);
  if (config.kind === 'http') return (await import('./http.js')).httpStatusCommand(config, flags, reporter);
  const state = new StateStore(openLocations(config).state);
  const [audiences, lockHolder] = await Promise.all([
    readAudienceStatuses(config, state, null, now),
    readLockHolder(state.storage, new Date()),
  ]);
  const dataflowId = config.dataflow.id;
  reporter.out(
    flags.json
      ? JSON.stringify({ dataflowId, at: now.toISOString(), lockHolder, audiences }, null, 2)
      : formatStatus(dataflowId, now, audiences, lockHolder),
  );
  return 0;
}

/**
 * Per configured audience, what `audex status` (and `audex report`) shows. `history`: the
 * dataflow's records already read (the report has them); null: only the newest records
 * needed are read (see readLatestRuns).
 */
export async function readAudienceStatuses(
  config: LoadedConfig,
  state: StateStore,
  history: RunRecord[] | null,
  now: Date,
): Promise<AudienceStatus[]> {
  const { dataflow } = config;
  const ids = dataflow.audiences.map((a) => a.id);
  // Independent reads, side by side (round trips on S3).
  const [cursors, pending, found, cursorSizes] = await Promise.all([
    readCursors(state, ids),
    state.listPending(),
    history ? null : readLatestRuns(state, ids),
    state.storage.listSizes(stateKeys.cursorPrefix),
  ]);
  const latest = (audienceId: string): LatestRuns => found?.get(audienceId) ?? latestIn(history ?? [], audienceId);
  const sizes = await Promise.all(ids.map((id) => readStateSize(state, id, cursorSizes)));
  return dataflow.audiences.map((a, i) => {
    const { success, failed } = latest(a.id);
    const cursor = cursors.get(a.id);
    const afterEvaluation = a.schedule.trigger === 'afterEvaluation';
    return {
      audienceId: a.id,
      mode: a.mode,
      schedule: afterEvaluation
        ? 'after each new snapshot evaluation'
        : describeSchedule(a.schedule, dataflow.timezone),
      lastSuccess: success
        ? {
            runId: success.runId,
            logicalTime: success.logicalTime,
            snapshotId: success.snapshotId,
            rowsWritten: success.counts.rowsWritten,
            files: success.files.length,
          }
        : null,
      nextSlot: afterEvaluation
        ? null
        : (nextExportSlot(
            a.schedule,
            dataflow.timezone,
            now,
            cursor ? new Date(cursor.lastSlot) : null,
          )?.toISOString() ?? null),
      baselineSize: cursor?.baselineSize ?? null,
      ...sizes[i]!,
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
    lines.push(
      `    next slot:    ${a.nextSlot ? `${a.nextSlot}${due}` : a.schedule.startsWith('after') ? 'the next snapshot' : 'none (schedule ended)'}`,
    );
    if (a.mode === 'incremental')
      lines.push(
        `    baseline:     ${a.baselineSize === null ? 'none yet (the first run is a full backfill)' : `${a.baselineSize} profiles`}`,
      );
    if (a.stateBytes !== null && a.keptBaselines !== null && (a.mode === 'incremental' || a.keptBaselines > 0))
      lines.push(`    state:        ${formatBytes(a.stateBytes)}, ${a.keptBaselines} baseline(s) kept`);
    if (a.pendingRun) lines.push(`    interrupted:  run ${a.pendingRun} will be finished by the next \`audex run\``);
    if (a.lastError)
      lines.push(
        `    last error:   ${a.lastError.logicalTime} run ${a.lastError.runId}: ${a.lastError.error.split('\n')[0]}`,
      );
  }
  return lines.join('\n');
}

function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes / 1024;
  let unit = 0;
  for (; value >= 1024 && unit < units.length - 1; unit++) value /= 1024;
  return `${value.toFixed(1)} ${units[unit]}`;
}
