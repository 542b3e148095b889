// LocalStorage.createExclusive when the lock's holder sweeps the temporary file away between
// its write and its link (state/lock.ts sweepLockLeftovers runs while a run holds the
// lock): the create reports the name taken, as it would have been, and is no error.
import { afterAll, describe, expect, it, vi } from 'vitest';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type * as FsPromises from 'node:fs/promises';

vi.mock('node:fs/promises', async (importOriginal) => {
  const actual = await importOriginal<typeof FsPromises>();
  const sweptThenLink: typeof actual.link = async (existing, target) => {
    await actual.rm(existing);
    return actual.link(existing, target);
  };
  return { ...actual, link: sweptThenLink, default: { ...actual, link: sweptThenLink } };
});

const { LocalStorage } = await import('../../src/storage/local.js');
const root = mkdtempSync(path.join(tmpdir(), 'audex-swept-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('local storage, temporary file swept before its link', () => {
  it('createExclusive answers "taken" and leaves nothing behind', async () => {
    const store = new LocalStorage(root);
    expect(await store.createExclusive('state/lock.json', 'mine')).toBe(false);
    expect(readdirSync(path.join(root, 'state'))).toEqual([]);
  });
});
