// LocalStorage.createExclusive when link() does not simply succeed or answer EEXIST:
//   - a file system without hard links (link() answers EPERM, as on some network and FAT
//     mounts): it still creates once and refuses the second time;
//   - the lock's holder sweeps the temporary file away between its write and its link
//     (state/lock.ts sweepLockLeftovers runs while a run holds the lock): the create
//     reports the name taken, as it would have been, and is no error.
import { afterAll, describe, expect, it, vi } from 'vitest';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type * as FsPromises from 'node:fs/promises';

const linkFault = vi.hoisted(() => ({ mode: 'none' as 'no-links' | 'swept' | 'none' }));

vi.mock('node:fs/promises', async (importOriginal) => {
  const actual = await importOriginal<typeof FsPromises>();
  const link: typeof actual.link = async (existing, target) => {
    if (linkFault.mode === 'no-links')
      throw Object.assign(new Error('EPERM: operation not permitted, link'), { code: 'EPERM' });
    if (linkFault.mode === 'swept') await actual.rm(existing);
    return actual.link(existing, target);
  };
  return { ...actual, link, default: { ...actual, link } };
});

const { LocalStorage } = await import('../../src/storage/local.js');
const root = mkdtempSync(path.join(tmpdir(), 'audex-link-faults-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('local storage, createExclusive when link() fails', () => {
  it('without hard links: creates once, refuses the second, and leaves no temporary file', async () => {
    linkFault.mode = 'no-links';
    const store = new LocalStorage(path.join(root, 'no-links'));
    expect(await store.createExclusive('state/lock.json', 'first')).toBe(true);
    expect(await store.createExclusive('state/lock.json', 'second')).toBe(false);
    expect(await store.readText('state/lock.json')).toBe('first');
    expect(readdirSync(path.join(root, 'no-links', 'state'))).toEqual(['lock.json']);
  });

  it('temporary file swept before its link: answers "taken" and leaves nothing behind', async () => {
    linkFault.mode = 'swept';
    const store = new LocalStorage(path.join(root, 'swept'));
    expect(await store.createExclusive('state/lock.json', 'mine')).toBe(false);
    expect(readdirSync(path.join(root, 'swept', 'state'))).toEqual([]);
  });
});
