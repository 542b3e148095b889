// Reads and writes audex's state records (cursors, pending runs, history) on any storage
// backend. The commit order itself lives in run/execute-run.ts and the dataflow lock in
// lock.ts; this module only knows where records are and how they are encoded.
import type { StorageBackend } from '../storage/backend.js';
import { stateKeys } from './keys.js';
import type { Cursor, PendingRun, RunRecord } from './records.js';
import { readStateJson } from './read-state-json.js';

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
    return this.writeJson(stateKeys.history(record.runId, record.status), record);
  }

  /** History records, newest logical time first. */
  async readHistory(): Promise<RunRecord[]> {
    const keys = await this.storage.list(stateKeys.historyPrefix);
    const records: RunRecord[] = [];
    for (const key of keys.reverse()) {
      const record = await this.readJson<RunRecord>(key);
      if (record) records.push(record);
    }
    return records;
  }
}
