// Issue 16: `status` and `report` name who holds a dataflow's lock; on an object store the
// lock is a lease, taken here for real (on the in-memory store), whose expiry is told apart.
import { describe, expect, it } from 'vitest';
import { hostname } from 'node:os';
import { MemoryStorage } from '../../src/storage/memory.js';
import { acquireLock, readLockHolder } from '../../src/state/lock.js';

describe('readLockHolder', () => {
  it('free, then the live lease with its holder and expiry, then expired, then free again after release', async () => {
    const storage = new MemoryStorage();
    expect(await readLockHolder(storage, new Date())).toBeNull();
    const lease = await acquireLock(storage, 'acme', new Date(), { leaseMs: 60_000, renewMs: 30_000, recheckMs: 10 });
    try {
      const live = await readLockHolder(storage, new Date());
      expect(live).toMatch(new RegExp(`^pid ${process.pid} on ${hostname()}, since \\S+ \\(lease expires at \\S+\\)$`));
      const later = await readLockHolder(storage, new Date(Date.now() + 120_000));
      expect(later).toMatch(/\(lease expired at \S+; the next run takes it over\)$/);
    } finally {
      await lease.release();
    }
    expect(await readLockHolder(storage, new Date())).toBeNull();
  });

  it('a lock object that is not JSON is named, not taken for free', async () => {
    const storage = new MemoryStorage('memory://acme');
    await storage.writeText('lock.json', 'garbage');
    expect(await readLockHolder(storage, new Date())).toBe('an unreadable lock object memory://acme/lock.json');
  });
});
