// Reads and writes audex's state (cursors, pending runs, history, lock) on any storage
// backend. The commit order itself lives in run/execute-run.ts; this module only knows
// where things are and how they are encoded.
import { hostname } from 'node:os';
import { randomUUID } from 'node:crypto';
import { RunFailedError, StorageError } from '../errors.js';
import type { StorageBackend } from '../storage/backend.js';
import { stateKeys } from './keys.js';
import type { Cursor, PendingRun, RunRecord } from './records.js';

export class StateStore {
  constructor(readonly storage: StorageBackend) {}

  private async readJson<T>(key: string): Promise<T | null> {
    const text = await this.storage.readText(key);
    if (text === null) return null;
    try {
      return JSON.parse(text) as T;
    } catch {
      throw new StorageError(`state object ${this.storage.describe(key)} is not valid JSON; it was changed by hand or damaged. Restore it, or delete it to start that audience over`);
    }
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
    return this.writeJson(stateKeys.history(record.runId), record);
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

  /**
   * Takes the dataflow's lock (exclusive create). A lock whose process is gone (same host)
   * is taken over. Returns the release function.
   */
  async acquireLock(dataflowId: string, now: Date): Promise<() => Promise<void>> {
    const token = randomUUID();
    const mine = { token, pid: process.pid, host: hostname(), acquiredAt: now.toISOString(), dataflowId };
    const text = `${JSON.stringify(mine, null, 2)}\n`;
    for (let attempt = 0; attempt < 2; attempt++) {
      if (await this.storage.createExclusive(stateKeys.lock, text)) {
        return async () => {
          const current = await this.readJson<{ token: string }>(stateKeys.lock);
          if (current?.token === token) await this.storage.delete(stateKeys.lock);
        };
      }
      const holder = await this.readJson<{ pid: number; host: string; acquiredAt: string }>(stateKeys.lock);
      if (holder && holder.host === hostname() && !isAlive(holder.pid)) {
        await this.storage.delete(stateKeys.lock);
        continue;
      }
      if (!holder) continue;
      throw new RunFailedError(
        `dataflow ${dataflowId} is locked by another audex run (pid ${holder.pid} on ${holder.host}, since ${holder.acquiredAt}); ` +
          `nothing was exported. Wait for it to finish. If that process is gone on another machine, delete ${this.storage.describe(stateKeys.lock)}`,
      );
    }
    throw new RunFailedError(`could not take the lock ${this.storage.describe(stateKeys.lock)}; try again`);
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
