// In-memory storage: a map of key → bytes with the same contract as the other backends
// (test/contract/storage.test.ts), for fast tests of code that only needs the interface.
// Staged files are local (writers need a path) and move into memory on publish.
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { StorageError } from '../errors.js';
import type { LockableStorage, Versioned } from './backend.js';
import { stagedPath, stagingFolder } from './staging.js';

interface Entry {
  bytes: Buffer;
  version: number;
}

export class MemoryStorage implements LockableStorage {
  readonly sharedAcrossHosts = true;
  private readonly objects = new Map<string, Entry>();
  /** Staged local path → final key, until published or removed. */
  private readonly staged = new Map<string, string>();
  private nextVersion = 1;
  private fetched = 0;

  constructor(
    readonly root = 'memory://',
    private readonly stagingDir?: string,
  ) {}

  describe(key: string): string {
    return `${this.root.replace(/\/+$/, '')}/${key}`;
  }

  private put(key: string, bytes: Buffer): string {
    const version = this.nextVersion++;
    this.objects.set(normalize(key), { bytes, version });
    return String(version);
  }

  async readText(key: string): Promise<string | null> {
    return this.objects.get(normalize(key))?.bytes.toString('utf8') ?? null;
  }

  async writeText(key: string, text: string): Promise<void> {
    this.put(key, Buffer.from(text, 'utf8'));
  }

  async createExclusive(key: string, text: string): Promise<boolean> {
    if (this.objects.has(normalize(key))) return false;
    this.put(key, Buffer.from(text, 'utf8'));
    return true;
  }

  async readVersioned(key: string): Promise<Versioned | null> {
    const entry = this.objects.get(normalize(key));
    return entry ? { text: entry.bytes.toString('utf8'), version: String(entry.version) } : null;
  }

  async replaceIfVersion(key: string, text: string, version: string): Promise<string | null> {
    const entry = this.objects.get(normalize(key));
    if (!entry || String(entry.version) !== version) return null;
    return this.put(key, Buffer.from(text, 'utf8'));
  }

  async delete(key: string): Promise<void> {
    this.objects.delete(normalize(key));
  }

  async list(prefix: string): Promise<string[]> {
    const folder = folderPrefix(prefix);
    return [...this.objects.keys()].filter((k) => k.startsWith(folder)).sort();
  }

  async listSizes(prefix: string): Promise<Map<string, number>> {
    return new Map((await this.list(prefix)).map((k) => [k, this.objects.get(k)!.bytes.length]));
  }

  async listFolders(prefix: string): Promise<string[]> {
    const folder = folderPrefix(prefix);
    const names = new Set<string>();
    for (const key of this.objects.keys()) {
      if (!key.startsWith(folder)) continue;
      const rest = key.slice(folder.length);
      const slash = rest.indexOf('/');
      if (slash > 0) names.add(rest.slice(0, slash));
    }
    return [...names].sort();
  }

  async stage(key: string): Promise<string> {
    const file = stagedPath(await stagingFolder(this.stagingDir), key);
    this.staged.set(file, normalize(key));
    return file;
  }

  async publish(staged: string, key: string): Promise<void> {
    let bytes: Buffer;
    try {
      bytes = await readFile(staged);
    } catch (error) {
      throw new StorageError(
        `cannot publish ${this.describe(key)}: the staged file ${staged} cannot be read (${(error as Error).message})`,
        { cause: error },
      );
    }
    this.put(key, bytes);
    this.staged.delete(staged);
    await rm(staged, { force: true });
  }

  async removeStaged(folder: string, names: string[]): Promise<number> {
    let removed = 0;
    for (const [file, key] of this.staged) {
      if (
        path.posix.dirname(key) !== normalize(folder || '.') ||
        !names.some((n) => path.posix.basename(key).startsWith(n))
      )
        continue;
      await rm(file, { force: true });
      this.staged.delete(file);
      removed += 1;
    }
    return removed;
  }

  async fetch(key: string, scratchDir: string): Promise<string> {
    const entry = this.objects.get(normalize(key));
    if (!entry) throw new StorageError(`${this.describe(key)} does not exist`);
    const dir = path.join(scratchDir, 'fetched');
    await mkdir(dir, { recursive: true });
    const file = path.join(dir, `${++this.fetched}-${path.posix.basename(key)}`);
    await writeFile(file, entry.bytes);
    return file;
  }
}

function normalize(key: string): string {
  return key.replace(/\/+/g, '/').replace(/^\/|\/$/g, '');
}

function folderPrefix(prefix: string): string {
  const p = normalize(prefix);
  return p === '' ? '' : `${p}/`;
}
