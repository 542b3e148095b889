// Reads and writes audex's state records (cursors, pending runs, history) on any storage
// backend. The commit order itself lives in run/execute-run.ts and the dataflow lock in
// lock.ts; this module only knows where records are and how they are encoded.
import type { StorageBackend } from '../storage/backend.js';
import { audienceTag, historyMonth, parseHistoryKey, stateKeys, type HistoryEntry } from './state-keys.js';
import type { Cursor, PendingRun, RunRecord, RunStatus } from './records.js';
import { readStateJson } from './read-state-json.js';

/** `state.keepBaselines` when the config does not set it. */
export const DEFAULT_KEEP_BASELINES = 2;

/** What readHistory returns: all records by default, newest first. */
export interface HistoryQuery {
  /** At most this many records (the newest). */
  limit?: number;
  /** Only records whose logical time is at or after this. */
  since?: Date;
  audienceId?: string | string[];
  status?: RunStatus | RunStatus[];
}

/** History records read at once (S3: requests in flight). */
const HISTORY_READ_BATCH = 32;

const STATUS_RANK: Record<string, number> = { failed: 0, reset: 1, skipped: 2, success: 3 };

/** Newest run first; for one run id, its success before its failed attempt (as before month folders). */
function newestFirst(a: HistoryEntry, b: HistoryEntry): number {
  if (a.runId !== b.runId) return a.runId < b.runId ? 1 : -1;
  return (
    (STATUS_RANK[b.status ?? 'success'] ?? 3) - (STATUS_RANK[a.status ?? 'success'] ?? 3) || (a.key < b.key ? 1 : -1)
  );
}

function sameRecord(entry: HistoryEntry): string {
  return `${entry.runId}|${entry.status === 'failed' ? 'failed' : 'other'}`;
}

/** A time as the stamp run ids start with (`20261120T060000Z`), whole seconds. */
export function runStamp(time: Date): string {
  return time
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'Z');
}

export class StateStore {
  constructor(readonly storage: StorageBackend) {}

  private readJson<T>(key: string): Promise<T | null> {
    return readStateJson<T>(this.storage, key);
  }

  private writeJson(key: string, value: unknown): Promise<void> {
    return this.storage.writeText(key, `${JSON.stringify(value, null, 2)}\n`);
  }

  readCursor(audienceId: string): Promise<Cursor | null> {
    return this.readJson<Cursor>(stateKeys.cursor(audienceId));
  }

  writeCursor(cursor: Cursor): Promise<void> {
    return this.writeJson(stateKeys.cursor(cursor.audienceId), cursor);
  }

  async listPending(): Promise<PendingRun[]> {
    const keys = await this.storage.list(stateKeys.pendingPrefix);
    const runs: PendingRun[] = [];
    for (const key of keys) {
      const run = await this.readJson<PendingRun>(key);
      if (run) runs.push(run);
    }
    return runs.sort((a, b) => a.logicalTime.localeCompare(b.logicalTime) || a.runId.localeCompare(b.runId));
  }

  writePending(run: PendingRun): Promise<void> {
    return this.writeJson(stateKeys.pending(run.runId), run);
  }

  deletePending(runId: string): Promise<void> {
    return this.storage.delete(stateKeys.pending(runId));
  }

  appendHistory(record: RunRecord): Promise<void> {
    return this.writeJson(stateKeys.history(record.runId, record.status, record.audienceId), record);
  }

  /**
   * History records, newest logical time first; with `limit`, `since`, `audienceId` or
   * `status`, only those, found from the newest month folder back without reading the
   * records the query does not return.
   */
  async readHistory(query: HistoryQuery = {}): Promise<RunRecord[]> {
    const records: RunRecord[] = [];
    const limit = query.limit ?? Number.POSITIVE_INFINITY;
    if (limit <= 0) return records;
    const audiences = query.audienceId === undefined ? null : [query.audienceId].flat();
    const statuses = query.status === undefined ? null : [query.status].flat();
    const tags = audiences && new Set(audiences.map(audienceTag));
    const keep = (record: RunRecord | null): record is RunRecord =>
      record !== null &&
      (!audiences || audiences.includes(record.audienceId)) &&
      (!statuses || statuses.includes(record.status)) &&
      (!query.since || new Date(record.logicalTime).getTime() >= query.since.getTime());
    // Matching names are read in batches, side by side (one round trip each on S3).
    let batch: HistoryEntry[] = [];
    const flush = async () => {
      for (const record of await Promise.all(batch.map((e) => this.readHistoryRecord(e))))
        if (keep(record) && records.length < limit) records.push(record);
      batch = [];
    };
    for await (const entry of this.historyEntries(query.since)) {
      if (tags && entry.audienceTag !== undefined && !tags.has(entry.audienceTag)) continue;
      if (statuses && !entry.legacy && !statuses.includes(entry.status as RunStatus)) continue;
      batch.push(entry);
      if (batch.length >= Math.min(HISTORY_READ_BATCH, limit - records.length)) await flush();
      if (records.length >= limit) break;
    }
    await flush();
    return records;
  }

  readHistoryRecord(entry: HistoryEntry): Promise<RunRecord | null> {
    return this.readJson<RunRecord>(entry.key);
  }

  /**
   * The keys of every history record, newest first, one month folder at a time (only the
   * folders reached are listed). Records of the layout before month folders
   * (`history/<runId>.json`) are merged in where they belong. With `since`, stops at the
   * first record older than it.
   */
  async *historyEntries(since?: Date): AsyncGenerator<HistoryEntry> {
    const [legacyKeys, monthFolders] = await Promise.all([
      this.storage.list(stateKeys.legacyHistoryPrefix),
      this.historyMonths(),
    ]);
    const legacy = new Map<string, HistoryEntry[]>();
    for (const key of legacyKeys) {
      const entry = parseHistoryKey(key);
      if (entry?.legacy)
        legacy.set(historyMonth(entry.runId), [...(legacy.get(historyMonth(entry.runId)) ?? []), entry]);
    }
    const months = [...new Set([...monthFolders, ...legacy.keys()])].sort().reverse();
    const sinceStamp = since ? runStamp(since) : null;
    for (const month of months) {
      if (sinceStamp && month < `${sinceStamp.slice(0, 4)}-${sinceStamp.slice(4, 6)}`) return;
      const entries = (await this.storage.list(stateKeys.historyMonthPrefix(month)))
        .map(parseHistoryKey)
        .filter((e): e is HistoryEntry => e !== null);
      // While the next run moves legacy records, one may briefly exist in both layouts.
      const moved = new Set(entries.map(sameRecord));
      entries.push(...(legacy.get(month) ?? []).filter((e) => !moved.has(sameRecord(e))));
      for (const entry of entries.sort(newestFirst)) {
        if (sinceStamp && entry.runId.slice(0, 16) < sinceStamp) return;
        yield entry;
      }
    }
  }

  /** The month folders of the history (`YYYY-MM`), oldest first. */
  private async historyMonths(): Promise<string[]> {
    let folders: string[];
    try {
      folders = await this.storage.listFolders(stateKeys.historyPrefix);
    } catch (error) {
      // Local disk reports a folder that does not exist yet as an error; no history yet.
      if ((await this.storage.list(stateKeys.historyPrefix)).length > 0) throw error;
      folders = [];
    }
    return folders.filter((f) => /^\d{4}-\d{2}$/.test(f));
  }

  /**
   * Moves records of the layout before month folders into month folders (written first,
   * then the old key deleted, so a record is never missing). Runs under the lock.
   */
  async migrateLegacyHistory(): Promise<number> {
    let moved = 0;
    for (const key of await this.storage.list(stateKeys.legacyHistoryPrefix)) {
      if (!parseHistoryKey(key)?.legacy) continue;
      const record = await this.readJson<RunRecord>(key);
      if (record) await this.appendHistory(record);
      await this.storage.delete(key);
      moved += 1;
    }
    return moved;
  }

  /**
   * Removes history records whose logical time is before `cutoff`: whole month folders
   * older than the cutoff's month, and the older records of that month. Runs under the lock;
   * `afterEach` is called after each deletion (the crash points of the run step).
   */
  async pruneHistory(cutoff: Date, afterEach: () => void = () => undefined): Promise<number> {
    const cutoffStamp = runStamp(cutoff);
    const legacy = (await this.storage.list(stateKeys.legacyHistoryPrefix)).filter((k) => parseHistoryKey(k)?.legacy);
    const older = (await this.historyMonths()).filter(
      (m) => m <= `${cutoffStamp.slice(0, 4)}-${cutoffStamp.slice(4, 6)}`,
    );
    let removed = 0;
    for (const keys of [
      legacy,
      ...(await Promise.all(older.map((m) => this.storage.list(stateKeys.historyMonthPrefix(m))))),
    ]) {
      for (const key of keys) {
        const entry = parseHistoryKey(key);
        if (!entry || entry.runId.slice(0, 16) >= cutoffStamp) continue;
        await this.storage.delete(key);
        removed += 1;
        afterEach();
      }
    }
    return removed;
  }

  /**
   * Removes temp files of interrupted writes that killed runs of this dataflow left in the
   * state location (pending records, cursors, the newest two history months, the
   * audiences' baselines). Only while holding the lock: then no other run of this dataflow
   * is writing here.
   */
  async sweepLeftovers(audienceIds: string[]): Promise<void> {
    const months = (await this.historyMonths()).slice(-2).map((m) => stateKeys.historyMonthPrefix(m));
    const folders = [
      stateKeys.pendingPrefix,
      stateKeys.cursorPrefix,
      ...months,
      ...audienceIds.map((id) => stateKeys.baselinePrefix(id)),
    ];
    // Staged names are `.<name>.audex-tmp`: '' matches every one of them.
    await Promise.all(folders.map((folder) => this.storage.removeStaged(folder, [''])));
  }

  /** The baseline objects of an audience, oldest first (run ids sort by logical time). */
  async listBaselines(audienceId: string): Promise<string[]> {
    return (await this.storage.list(stateKeys.baselinePrefix(audienceId))).filter((k) => k.endsWith('.parquet'));
  }

  /**
   * Deletes an audience's baselines older than the newest `keep`, never `current` (the
   * one its cursor names), oldest first, so a crash part-way leaves the newest in place;
   * the next commit finishes the job. Runs under the lock, after the commit point.
   */
  async pruneBaselines(
    audienceId: string,
    keep: number,
    current: string | undefined,
    afterEach: () => void = () => undefined,
  ): Promise<string[]> {
    const all = await this.listBaselines(audienceId);
    const kept = new Set(all.slice(-keep));
    if (current) kept.add(current);
    const removed: string[] = [];
    for (const key of all) {
      if (kept.has(key)) continue;
      await this.storage.delete(key);
      removed.push(key);
      afterEach();
    }
    return removed;
  }
}
