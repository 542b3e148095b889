// LocalStorage.createExclusive on a file system without hard links (link() answers EPERM,
// as on some network and FAT mounts): it still creates once and refuses the second time.
import { afterAll, describe, expect, it, vi } from 'vitest';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type * as FsPromises from 'node:fs/promises';

vi.mock('node:fs/promises', async (importOriginal) => {
  const actual = await importOriginal<typeof FsPromises>();
  const noLinks = async () => {
    throw Object.assign(new Error('EPERM: operation not permitted, link'), { code: 'EPERM' });
  };
  return { ...actual, link: noLinks, default: { ...actual, link: noLinks } };
});

const { LocalStorage } = await import('../../src/storage/local.js');
const root = mkdtempSync(path.join(tmpdir(), 'audex-no-links-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('local storage without hard links', () => {
  it('createExclusive creates once, refuses the second, and leaves no temporary file', async () => {
    const store = new LocalStorage(root);
    expect(await store.createExclusive('state/lock.json', 'first')).toBe(true);
    expect(await store.createExclusive('state/lock.json', 'second')).toBe(false);
    expect(await store.readText('state/lock.json')).toBe('first');
    expect(readdirSync(path.join(root, 'state'))).toEqual(['lock.json']);
  });
});
