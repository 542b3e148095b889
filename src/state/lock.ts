// The dataflow lock: two runs of one dataflow never export at once (README "State and
// safety", "The lock on S3"). acquireLock returns a Lease; the commit step calls
// lease.assertHeld() right before each write that commits (the outcome record and the
// cursor), so a run whose lease was lost stops before its commit point.
//
//   one machine's disk   an exclusive-create lock file, taken over when its process is gone
//   shared stores (S3)   an expiring lease object, renewed with conditional writes
import { hostname } from 'node:os';
import { randomUUID } from 'node:crypto';
import { messageOf, RunFailedError, StorageError } from '../errors.js';
import { isAlive } from '../process-liveness.js';
import type { LockableStorage, StorageBackend } from '../storage/backend.js';
import { stateKeys } from './state-keys.js';
import { readStateJson } from './read-state-json.js';

export interface Lease {
  /** Throws RunFailedError when the lock is no longer this run's (call right before a commit write). */
  assertHeld(): void;
  /** Gives the lock back; never throws for a lease (one that cannot be removed expires). */
  release(): Promise<void>;
}

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

/** The lease of a run started with --no-lock: nothing to hold, nothing to lose. */
export const NO_LOCK: Lease = { assertHeld: () => undefined, release: async () => undefined };

/** Short-lived objects of the conditional-write probe, next to the lease. */
const LOCK_PROBE_PREFIX = 'lock-probe';
/** A probe takes a few requests; one older than this was left by a killed run. */
const PROBE_MAX_AGE_MS = 10 * 60_000;

/** Takes the dataflow's lock on the state location. */
export function acquireLock(
  storage: LockableStorage,
  dataflowId: string,
  now: Date,
  timing: LeaseTiming = DEFAULT_LEASE,
): Promise<Lease> {
  return storage.sharedAcrossHosts
    ? acquireLease(storage, dataflowId, timing)
    : acquireLockFile(storage, dataflowId, now);
}

interface LockFile {
  token?: string;
  pid: number;
  host: string;
  acquiredAt: string;
}

/** Local disk: an exclusive-create file, taken over when its process is gone (same host). */
async function acquireLockFile(storage: LockableStorage, dataflowId: string, now: Date): Promise<Lease> {
  const token = randomUUID();
  const mine = { token, pid: process.pid, host: hostname(), acquiredAt: now.toISOString(), dataflowId };
  const text = `${JSON.stringify(mine, null, 2)}\n`;
  for (let attempt = 0; attempt < 5; attempt++) {
    if (await storage.createExclusive(stateKeys.lock, text)) {
      return {
        // Nobody takes over the lock file of a live process.
        assertHeld: () => undefined,
        release: async () => {
          const current = await readStateJson<{ token: string }>(storage, stateKeys.lock);
          if (current?.token === token) await storage.delete(stateKeys.lock);
        },
      };
    }
    const holder = await readStateJson<LockFile>(storage, stateKeys.lock);
    if (!holder) continue;
    if (holder.host === hostname() && !isAlive(holder.pid)) {
      await takeOverStaleLock(storage, holder.token ?? '');
      continue;
    }
    throw new RunFailedError(
      `dataflow ${dataflowId} is locked by another audex run (pid ${holder.pid} on ${holder.host}, since ${holder.acquiredAt}); ` +
        `nothing was exported. Wait for it to finish. If that process is gone on another machine, delete ${storage.describe(stateKeys.lock)}`,
    );
  }
  throw new RunFailedError(`could not take the lock ${storage.describe(stateKeys.lock)}; try again`);
}

/**
 * Removes a lock.json whose process is gone. Several runs may find the same dead holder
 * at once: each first claims the takeover of that holder's token with an exclusive
 * create, and only the one claim that succeeds removes lock.json, after reading it
 * again (it can only still hold that token if nobody removed it). The others go back to
 * competing for lock.json, so a fresh lock is never removed by a late contender.
 */
async function takeOverStaleLock(storage: LockableStorage, staleToken: string): Promise<void> {
  const claim = stateKeys.lockTakeover(staleToken);
  if (!(await storage.createExclusive(claim, `${JSON.stringify({ pid: process.pid, host: hostname() })}\n`))) {
    const taker = await readStateJson<{ pid: number; host: string }>(storage, claim).catch(() => null);
    if (taker && taker.host === hostname() && !isAlive(taker.pid)) {
      throw new RunFailedError(
        `the lock ${storage.describe(stateKeys.lock)} was left by a run that is gone, and so was the run that began to take it over; ` +
          `nothing was exported. Make sure no audex run of this dataflow is running, delete ${storage.describe(stateKeys.lock)} and ${storage.describe(claim)}, and run again`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
    return;
  }
  try {
    const current = await readStateJson<{ token?: string }>(storage, stateKeys.lock);
    if (current && (current.token ?? '') === staleToken) await storage.delete(stateKeys.lock);
  } finally {
    await storage.delete(claim);
  }
}

/**
 * The lease on an object store: `lock.json` holds {token, holder, expiresAt}.
 *   - taken with a conditional create (If-None-Match: *), so only one run can create it;
 *   - renewed every `renewMs` with If-Match on the ETag this run holds, so a lease that
 *     was lost (expired and taken over) is noticed: assertHeld() then throws, and the run
 *     stops before its commit point with exit 1;
 *   - taken over once expired, by a conditional overwrite with If-Match on the expired
 *     lease's ETag, so of two contenders only one wins;
 *   - released at the end: deleted only if it still holds this run's token.
 * A store that ignores conditional writes would let two runs hold it at once: the probe
 * finds that out first, and audex refuses to run (exit 3) unless --no-lock.
 * Expiry compares the holder's clock with the contender's: keep clocks in sync (NTP).
 */
async function acquireLease(storage: LockableStorage, dataflowId: string, timing: LeaseTiming): Promise<Lease> {
  await probeConditionalWrites(storage);
  const key = stateKeys.lock;
  const id: LeaseId = { token: randomUUID(), dataflowId, acquiredAt: new Date().toISOString() };
  for (let attempt = 0; attempt < 3; attempt++) {
    const body = () => leaseText(id, Date.now() + timing.leaseMs);
    if (await storage.createExclusive(key, body())) {
      const current = await storage.readVersioned(key);
      if (current && parseLease(current.text)?.token === id.token)
        return holdLease(storage, id, current.version, timing);
      continue;
    }
    let current = await storage.readVersioned(key);
    if (!current) continue;
    let holder = parseLease(current.text);
    if (!holder) {
      // Unreadable: damaged, not a lease, or read while another run was writing it — some
      // S3-compatible stores can serve an object half written, under its new version
      // already. Taking that over would let two runs in, so read it once more after a pause.
      await new Promise((resolve) => setTimeout(resolve, timing.recheckMs));
      current = await storage.readVersioned(key);
      if (!current) continue;
      holder = parseLease(current.text);
    }
    // A lease that still cannot be read counts as expired.
    // Ours after all: a write that succeeded but whose answer was lost, then retried.
    if (holder?.token === id.token) return holdLease(storage, id, current.version, timing);
    const expiresAt = holder ? Date.parse(holder.expiresAt) : Number.NaN;
    if (holder && expiresAt > Date.now()) {
      throw new RunFailedError(
        `dataflow ${dataflowId} is locked by another audex run (${holder.holder}, since ${holder.acquiredAt}); nothing was exported. ` +
          `Its lease ${storage.describe(key)} is renewed while that run lives and expires at ${holder.expiresAt} if it was killed; ` +
          `run audex again after that (a lease that has expired is taken over)`,
      );
    }
    const version = await storage.replaceIfVersion(key, body(), current.version);
    if (version !== null) return holdLease(storage, id, version, timing);
    // Another contender took the expired lease first: read it again (it is live now).
  }
  throw new RunFailedError(
    `could not take the lease ${storage.describe(key)}: other runs kept taking it; nothing was exported. Run audex again`,
  );
}

function holdLease(storage: LockableStorage, id: LeaseId, version: string, timing: LeaseTiming): Lease {
  const key = stateKeys.lock;
  const lease = { version, expiresAt: Date.now() + timing.leaseMs, lost: false };
  let renewing: Promise<void> | null = null;
  const renew = async () => {
    const expiresAt = Date.now() + timing.leaseMs;
    try {
      const text = leaseText(id, expiresAt);
      let next = await storage.replaceIfVersion(key, text, lease.version);
      if (next === null) {
        // Still ours if the renewal went through and only its answer was lost (then retried).
        const current = await storage.readVersioned(key);
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
  }, timing.renewMs);
  timer.unref();
  // Stop committing a little before the lease could run out.
  const margin = Math.min(5_000, timing.leaseMs / 10);
  return {
    assertHeld() {
      if (lease.lost || Date.now() > lease.expiresAt - margin) {
        throw new RunFailedError(
          `the lease ${storage.describe(key)} of dataflow ${id.dataflowId} was lost during the run (it could not be renewed in time, ` +
            `and another run may have taken it over); this run stopped before its commit point, so nothing was committed. Run audex again`,
        );
      }
    },
    async release() {
      clearInterval(timer);
      try {
        await renewing;
        if (lease.lost) return;
        const current = await storage.readVersioned(key);
        if (current && parseLease(current.text)?.token === id.token) await storage.delete(key);
      } catch {
        // Best effort: a lease that cannot be removed expires on its own.
      }
    },
  };
}

/**
 * Checks that the store enforces conditional writes: a second create of the same key
 * must fail, and so must a replace with a wrong version.
 */
async function probeConditionalWrites(storage: LockableStorage): Promise<void> {
  // The creation time leads the name, so a probe object a killed run left is recognised as old.
  const key = `${LOCK_PROBE_PREFIX}/${Date.now()}-${randomUUID()}.json`;
  let ignored: string | null = null;
  try {
    // Its owner, so that the next run on this host removes it if this one is killed now.
    await storage.createExclusive(key, `${JSON.stringify({ probe: 1, pid: process.pid, host: hostname() })}\n`);
    if (await storage.createExclusive(key, '{"probe":2}\n'))
      ignored = 'a second PutObject with If-None-Match: * on an existing key succeeded';
    else if ((await storage.replaceIfVersion(key, '{"probe":3}\n', '"audex-probe-not-the-etag"')) !== null)
      ignored = 'a PutObject with If-Match on a wrong ETag succeeded';
  } finally {
    await storage.delete(key).catch(() => undefined);
  }
  if (ignored) {
    throw new StorageError(
      `the store behind ${storage.root} ignores conditional writes (${ignored}), so audex cannot hold the dataflow lock there safely; ` +
        `nothing was exported. Use a store that enforces conditional writes (AWS S3 does), or, if you make sure only one audex run ` +
        `of this dataflow runs at a time (one cron entry, one CI job), run with --no-lock`,
    );
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
  const record = {
    token,
    holder: `pid ${process.pid} on ${hostname()}`,
    dataflowId,
    acquiredAt,
    expiresAt: new Date(expiresAt).toISOString(),
  };
  return `${JSON.stringify(record, null, 2)}\n`;
}

function parseLease(text: string): LeaseRecord | null {
  try {
    const value = JSON.parse(text) as Partial<LeaseRecord>;
    return typeof value.token === 'string' && typeof value.expiresAt === 'string'
      ? {
          token: value.token,
          holder: value.holder ?? 'unknown holder',
          dataflowId: value.dataflowId ?? '',
          acquiredAt: value.acquiredAt ?? 'unknown',
          expiresAt: value.expiresAt,
        }
      : null;
  } catch {
    return null;
  }
}

/**
 * Removes what killed runs left of the lock machinery: the temporary files of a lock or
 * claim being created (local disk), takeover claims whose taker is gone (same host) and
 * conditional-write probe objects older than PROBE_MAX_AGE_MS. Call only while holding
 * the lock: a claim or probe of a run starting right now is alive or young, and a run
 * whose temporary file is removed under it finds the lock taken (storage/local.ts).
 */
async function sweepLockLeftovers(storage: LockableStorage): Promise<void> {
  // A lock file or a claim is written whole under a temporary name, then linked to its
  // name (storage/local.ts): a run killed in between leaves that temporary file. A lease
  // (shared stores) is one conditional write and leaves none.
  if (!storage.sharedAcrossHosts) {
    await storage.removeStaged('', [stateKeys.lock]);
    await storage.removeStaged(stateKeys.lockTakeoverPrefix, ['']);
  }
  for (const claim of await storage.list(stateKeys.lockTakeoverPrefix)) {
    if (await leftByDeadProcess(storage, claim)) await storage.delete(claim);
  }
  // A probe of a run killed while it probed is old after a while, or names a process of this
  // host that is gone (a run killed early, then rerun on the same machine, leaves none behind).
  for (const probe of await storage.list(LOCK_PROBE_PREFIX)) {
    const created = Number(/^lock-probe\/(\d+)-/.exec(probe)?.[1]);
    if ((created && Date.now() - created > PROBE_MAX_AGE_MS) || (await leftByDeadProcess(storage, probe)))
      await storage.delete(probe);
  }
}

/** Whether a claim or probe object names a process of this host that is no longer running. */
async function leftByDeadProcess(storage: LockableStorage, key: string): Promise<boolean> {
  const owner = await readStateJson<{ pid?: number; host?: string }>(storage, key).catch(() => null);
  return owner?.host === hostname() && typeof owner.pid === 'number' && !isAlive(owner.pid);
}

/**
 * The start of every run of a dataflow (files, datasets, HTTP): takes its lock, unless
 * `lock` is false (`--no-lock`), then removes what killed runs left under it, the lock's own
 * leftovers and what `sweeps` remove. A sweep that fails is a warning: the runs go on.
 */
export async function lockDataflow(
  storage: LockableStorage,
  dataflowId: string,
  options: { lock?: boolean; warn: (message: string) => void },
  ...sweeps: (() => Promise<unknown>)[]
): Promise<Lease> {
  if (options.lock === false) return NO_LOCK;
  const lease = await acquireLock(storage, dataflowId, new Date());
  await Promise.all([sweepLockLeftovers(storage), ...sweeps.map((sweep) => sweep())]).catch((error: unknown) =>
    options.warn(
      `could not remove what killed runs left in the state location (${messageOf(error)}); the runs go on, the next one tries again`,
    ),
  );
  return lease;
}

/**
 * Who holds the dataflow's lock, in words, or null when it is free (for `status` and
 * `report`; reading never takes or changes the lock). A lease expires in real time, so
 * `wallClock` is the clock, not a logical --at.
 */
export async function readLockHolder(storage: StorageBackend, wallClock: Date): Promise<string | null> {
  const text = await storage.readText(stateKeys.lock);
  if (text === null) return null;
  let lock: { pid?: number; host?: string; holder?: string; acquiredAt?: string; expiresAt?: string };
  try {
    lock = JSON.parse(text) as typeof lock;
  } catch {
    return `an unreadable lock object ${storage.describe(stateKeys.lock)}`;
  }
  const since = lock.acquiredAt ? `, since ${lock.acquiredAt}` : '';
  if (lock.expiresAt !== undefined) {
    const expired = Date.parse(lock.expiresAt) <= wallClock.getTime();
    return `${lock.holder ?? 'unknown holder'}${since} (lease ${expired ? 'expired' : 'expires'} at ${lock.expiresAt}${expired ? '; the next run takes it over' : ''})`;
  }
  const gone = lock.host === hostname() && lock.pid !== undefined && !isAlive(lock.pid);
  return `pid ${lock.pid ?? '?'} on ${lock.host ?? 'unknown host'}${since}${gone ? ' (that process is gone; the next run takes the lock over)' : ''}`;
}
