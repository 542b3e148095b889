// Reads and writes audex's state (cursors, pending runs, history, lock) on any storage
// backend. The commit order itself lives in run/execute-run.ts; this module only knows
// where things are and how they are encoded.
import { hostname } from 'node:os';
import { randomUUID } from 'node:crypto';
import { RunFailedError, StorageError } from '../errors.js';
import type { StorageBackend } from '../storage/backend.js';
import { isAlive } from '../storage/staging.js';
import { stateKeys } from './keys.js';
import type { Cursor, PendingRun, RunRecord } from './records.js';

/**
 * Lease timings on object stores: a killed run blocks the next for at most `leaseMs`.
 * `recheckMs`: how long to wait before reading an unreadable lease again (see acquireLease).
 */
export interface LeaseTiming {
  leaseMs: number;
  renewMs: number;
  recheckMs: number;
}

export const DEFAULT_LEASE: LeaseTiming = { leaseMs: 60_000, renewMs: 15_000, recheckMs: 1_000 };

/** Short-lived objects of the conditional-write probe, next to the lease. */
const LOCK_PROBE_PREFIX = 'lock-probe';

export class StateStore {
  constructor(
    readonly storage: StorageBackend,
    private readonly timing: LeaseTiming = DEFAULT_LEASE,
  ) {}

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

  async writeCursor(cursor: Cursor): Promise<void> {
    this.leaseCheck?.();
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

  async writePending(run: PendingRun): Promise<void> {
    this.leaseCheck?.();
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

  /**
   * Takes the dataflow's lock and returns the release function.
   * Local disk: an exclusive-create file, taken over when its process is gone (same host).
   * Object stores: a lease (see acquireLease), whose release never throws.
   */
  async acquireLock(dataflowId: string, now: Date): Promise<() => Promise<void>> {
    if (this.storage.lockStyle === 'lease') return this.acquireLease(dataflowId);
    const token = randomUUID();
    const mine = { token, pid: process.pid, host: hostname(), acquiredAt: now.toISOString(), dataflowId };
    const text = `${JSON.stringify(mine, null, 2)}\n`;
    for (let attempt = 0; attempt < 5; attempt++) {
      if (await this.storage.createExclusive(stateKeys.lock, text)) {
        return async () => {
          const current = await this.readJson<{ token: string }>(stateKeys.lock);
          if (current?.token === token) await this.storage.delete(stateKeys.lock);
        };
      }
      const holder = await this.readJson<{ token?: string; pid: number; host: string; acquiredAt: string }>(stateKeys.lock);
      if (!holder) continue;
      if (holder.host === hostname() && !isAlive(holder.pid)) {
        await this.takeOverStaleLock(holder.token ?? '');
        continue;
      }
      throw new RunFailedError(
        `dataflow ${dataflowId} is locked by another audex run (pid ${holder.pid} on ${holder.host}, since ${holder.acquiredAt}); ` +
          `nothing was exported. Wait for it to finish. If that process is gone on another machine, delete ${this.storage.describe(stateKeys.lock)}`,
      );
    }
    throw new RunFailedError(`could not take the lock ${this.storage.describe(stateKeys.lock)}; try again`);
  }

  /**
   * Removes a lock.json whose process is gone. Several runs may find the same dead holder
   * at once: each first claims the takeover of that holder's token with an exclusive
   * create, and only the one claim that succeeds removes lock.json, after reading it
   * again (it can only still hold that token if nobody removed it). The others go back to
   * competing for lock.json, so a fresh lock is never removed by a late contender.
   */
  private async takeOverStaleLock(staleToken: string): Promise<void> {
    const claim = stateKeys.lockTakeover(staleToken);
    if (!(await this.storage.createExclusive(claim, `${JSON.stringify({ pid: process.pid, host: hostname() })}\n`))) {
      const taker = await this.readJson<{ pid: number; host: string }>(claim).catch(() => null);
      if (taker && taker.host === hostname() && !isAlive(taker.pid)) {
        throw new RunFailedError(
          `the lock ${this.storage.describe(stateKeys.lock)} was left by a run that is gone, and so was the run that began to take it over; ` +
            `nothing was exported. Make sure no audex run of this dataflow is running, delete ${this.storage.describe(stateKeys.lock)} and ${this.storage.describe(claim)}, and run again`,
        );
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
      return;
    }
    try {
      const current = await this.readJson<{ token?: string }>(stateKeys.lock);
      if (current && (current.token ?? '') === staleToken) await this.storage.delete(stateKeys.lock);
    } finally {
      await this.storage.delete(claim);
    }
  }

  /**
   * The lease on an object store (SPEC §8): `lock.json` holds {token, holder, expiresAt}.
   *   - taken with a conditional create (If-None-Match: *), so only one run can create it;
   *   - renewed every `renewMs` with If-Match on the ETag this run holds, so a lease that
   *     was lost (expired and taken over) is noticed: the run then refuses to write its
   *     cursor (the commit point) and fails with exit 1;
   *   - taken over once expired, by a conditional overwrite with If-Match on the expired
   *     lease's ETag, so of two contenders only one wins;
   *   - released at the end: deleted only if it still holds this run's token.
   * A store that ignores conditional writes would let two runs hold it at once: the probe
   * finds that out first, and audex refuses to run (exit 3) unless --no-lock.
   * Expiry compares the holder's clock with the contender's: keep clocks in sync (NTP).
   */
  private async acquireLease(dataflowId: string): Promise<() => Promise<void>> {
    await this.probeConditionalWrites();
    const key = stateKeys.lock;
    const token = randomUUID();
    const acquiredAt = new Date().toISOString();
    for (let attempt = 0; attempt < 3; attempt++) {
      const body = () => leaseText({ token, dataflowId, acquiredAt }, Date.now() + this.timing.leaseMs);
      if (await this.storage.createExclusive(key, body())) {
        const current = await this.storage.readVersioned(key);
        if (current && parseLease(current.text)?.token === token) return this.holdLease({ token, dataflowId, acquiredAt }, current.version);
        continue;
      }
      let current = await this.storage.readVersioned(key);
      if (!current) continue;
      let holder = parseLease(current.text);
      if (!holder) {
        // Unreadable: damaged, not a lease, or read while another run was writing it — some
        // S3-compatible stores can serve an object half written, under its new version
        // already. Taking that over would let two runs in, so read it once more after a pause.
        await new Promise((resolve) => setTimeout(resolve, this.timing.recheckMs));
        current = await this.storage.readVersioned(key);
        if (!current) continue;
        holder = parseLease(current.text);
      }
      // A lease that still cannot be read counts as expired.
      // Ours after all: a write that succeeded but whose answer was lost, then retried.
      if (holder?.token === token) return this.holdLease({ token, dataflowId, acquiredAt }, current.version);
      const expiresAt = holder ? Date.parse(holder.expiresAt) : Number.NaN;
      if (holder && expiresAt > Date.now()) {
        throw new RunFailedError(
          `dataflow ${dataflowId} is locked by another audex run (${holder.holder}, since ${holder.acquiredAt}); nothing was exported. ` +
            `Its lease ${this.storage.describe(key)} is renewed while that run lives and expires at ${holder.expiresAt} if it was killed; ` +
            `run audex again after that (a lease that has expired is taken over)`,
        );
      }
      const version = await this.storage.replaceIfVersion(key, body(), current.version);
      if (version !== null) return this.holdLease({ token, dataflowId, acquiredAt }, version);
      // Another contender took the expired lease first: read it again (it is live now).
    }
    throw new RunFailedError(`could not take the lease ${this.storage.describe(key)}: other runs kept taking it; nothing was exported. Run audex again`);
  }

  private holdLease(id: LeaseId, version: string): () => Promise<void> {
    const key = stateKeys.lock;
    const { token, dataflowId } = id;
    const lease = { version, expiresAt: Date.now() + this.timing.leaseMs, lost: false };
    let renewing: Promise<void> | null = null;
    const renew = async () => {
      const expiresAt = Date.now() + this.timing.leaseMs;
      try {
        const text = leaseText(id, expiresAt);
        let next = await this.storage.replaceIfVersion(key, text, lease.version);
        if (next === null) {
          // Still ours if the renewal went through and only its answer was lost (then retried).
          const current = await this.storage.readVersioned(key);
          next = current && current.text === text ? current.version : null;
        }
        if (next === null) lease.lost = true;
        else Object.assign(lease, { version: next, expiresAt });
      } catch {
        // A failed renewal is tried again at the next tick; the lease still runs until expiresAt.
      }
    };
    const timer = setInterval(() => {
      if (lease.lost || renewing) return;
      renewing = renew().finally(() => (renewing = null));
    }, this.timing.renewMs);
    timer.unref();
    // Stop committing a little before the lease could run out.
    const margin = Math.min(5_000, this.timing.leaseMs / 10);
    this.leaseCheck = () => {
      if (lease.lost || Date.now() > lease.expiresAt - margin) {
        throw new RunFailedError(
          `the lease ${this.storage.describe(key)} of dataflow ${dataflowId} was lost during the run (it could not be renewed in time, ` +
            `and another run may have taken it over); this run stopped before its commit point, so nothing was committed. Run audex again`,
        );
      }
    };
    return async () => {
      clearInterval(timer);
      this.leaseCheck = null;
      try {
        await renewing;
        if (lease.lost) return;
        const current = await this.storage.readVersioned(key);
        if (current && parseLease(current.text)?.token === token) await this.storage.delete(key);
      } catch {
        // Best effort: a lease that cannot be removed expires on its own.
      }
    };
  }

  /** Refuses to go on when this process's lease is lost (called before writes that commit). */
  private leaseCheck: (() => void) | null = null;

  /**
   * Checks that the store enforces conditional writes: a second create of the same key
   * must fail, and so must a replace with a wrong version.
   */
  private async probeConditionalWrites(): Promise<void> {
    const key = `${LOCK_PROBE_PREFIX}/${randomUUID()}.json`;
    let ignored: string | null = null;
    try {
      await this.storage.createExclusive(key, '{"probe":1}\n');
      if (await this.storage.createExclusive(key, '{"probe":2}\n')) ignored = 'a second PutObject with If-None-Match: * on an existing key succeeded';
      else if ((await this.storage.replaceIfVersion(key, '{"probe":3}\n', '"audex-probe-not-the-etag"')) !== null) ignored = 'a PutObject with If-Match on a wrong ETag succeeded';
    } finally {
      await this.storage.delete(key).catch(() => undefined);
    }
    if (ignored) {
      throw new StorageError(
        `the store behind ${this.storage.root} ignores conditional writes (${ignored}), so audex cannot hold the dataflow lock there safely; ` +
          `nothing was exported. Use a store that enforces conditional writes (AWS S3 does), or, if you make sure only one audex run ` +
          `of this dataflow runs at a time (one cron entry, one CI job), run with --no-lock`,
      );
    }
  }
}

interface LeaseRecord {
  token: string;
  holder: string;
  dataflowId: string;
  acquiredAt: string;
  expiresAt: string;
}

interface LeaseId {
  token: string;
  dataflowId: string;
  acquiredAt: string;
}

function leaseText({ token, dataflowId, acquiredAt }: LeaseId, expiresAt: number): string {
  const record = { token, holder: `pid ${process.pid} on ${hostname()}`, dataflowId, acquiredAt, expiresAt: new Date(expiresAt).toISOString() };
  return `${JSON.stringify(record, null, 2)}\n`;
}

function parseLease(text: string): LeaseRecord | null {
  try {
    const value = JSON.parse(text) as Partial<LeaseRecord>;
    return typeof value.token === 'string' && typeof value.expiresAt === 'string'
      ? { token: value.token, holder: value.holder ?? 'unknown holder', dataflowId: value.dataflowId ?? '', acquiredAt: value.acquiredAt ?? 'unknown', expiresAt: value.expiresAt }
      : null;
  } catch {
    return null;
  }
}
