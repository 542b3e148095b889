// Local-disk storage: staged files are written next to their final name (same file
// system) under a dot-prefixed temp name, then renamed, so readers never see a partial
// file under a final name.
import { createHash, randomUUID } from 'node:crypto';
import { accessSync, constants, existsSync } from 'node:fs';
import { link, mkdir, open, readFile, readdir, rename, rm, stat, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { StorageError } from '../errors.js';
import type { LockableStorage, Versioned } from './backend.js';

const STAGED_SUFFIX = '.audex-tmp';
/** What link() answers on a file system that has no hard links. */
const NO_HARD_LINKS = new Set(['EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'ENOSYS']);

function storageError(action: string, where: string, error: unknown): StorageError {
  let code = (error as NodeJS.ErrnoException).code ?? '';
  let message = (error as Error).message;
  // Creating folders on a read-only file system reports ENOENT (recursive mkdir): say what it is.
  if (code === 'ENOENT' && action !== 'read' && isReadOnly(where)) {
    code = 'EROFS';
    message = `EROFS: read-only file system (${message})`;
  }
  const hint =
    code === 'EACCES' || code === 'EPERM'
      ? 'check the permissions of that folder'
      : code === 'ENOSPC' || code === 'EDQUOT'
        ? 'free some disk space there (or raise the quota)'
        : code === 'EROFS'
          ? 'the location is on a read-only file system: mount it read-write or point the config at a writable location'
          : code === 'ENOTDIR' || code === 'EEXIST'
            ? 'a file stands where a folder is needed; move it away'
            : 'check the path in the config';
  return new StorageError(`cannot ${action} ${where}: ${message}; ${hint}`, { cause: error });
}

/** Whether the nearest existing folder above `where` is on a read-only file system. */
function isReadOnly(where: string): boolean {
  let dir = path.dirname(path.resolve(where));
  while (!existsSync(dir) && path.dirname(dir) !== dir) dir = path.dirname(dir);
  try {
    accessSync(dir, constants.W_OK);
    return false;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EROFS';
  }
}

const FULL_DISK_CODES = new Set(['ENOSPC', 'EDQUOT', 'EROFS', 'EACCES', 'EPERM', 'EIO']);

/**
 * A file-system error raised while a run writes its files (a full disk, a read-only or
 * forbidden folder) as a StorageError (exit 3) naming the location; others unchanged.
 */
export function fileSystemErrorOf(error: unknown, where: string): unknown {
  const code = (error as NodeJS.ErrnoException | null)?.code ?? '';
  if (error instanceof StorageError || !FULL_DISK_CODES.has(code)) return error;
  return storageError('write', where, error);
}

export class LocalStorage implements LockableStorage {
  readonly root: string;
  readonly sharedAcrossHosts = false;

  constructor(root: string) {
    this.root = path.resolve(root);
  }

  describe(key: string): string {
    return path.join(this.root, key);
  }

  private abs(key: string): string {
    const full = path.resolve(this.root, key);
    if (full !== this.root && !full.startsWith(this.root + path.sep))
      throw new Error(`key escapes the storage root: ${key}`);
    return full;
  }

  async readText(key: string): Promise<string | null> {
    try {
      return await readFile(this.abs(key), 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw storageError('read', this.describe(key), error);
    }
  }

  async writeText(key: string, text: string): Promise<void> {
    const staged = await this.stage(key);
    try {
      const handle = await open(staged, 'w');
      try {
        await handle.writeFile(text, 'utf8');
        await handle.sync();
      } finally {
        await handle.close();
      }
    } catch (error) {
      throw storageError('write', this.describe(key), error);
    }
    await this.publish(staged, key);
  }

  /**
   * The content is written whole under a temporary name of this call's own, then linked to
   * the final name: a link fails when the name exists, so exactly one creator wins, and a
   * reader never sees the file empty or cut (open(…, 'wx') then a write showed a racing run
   * an empty lock, which it took for a damaged one).
   */
  async createExclusive(key: string, text: string): Promise<boolean> {
    const file = this.abs(key);
    const staged = path.join(path.dirname(file), `.${path.basename(file)}.${randomUUID()}${STAGED_SUFFIX}`);
    try {
      await mkdir(path.dirname(file), { recursive: true });
      await writeFile(staged, text, 'utf8');
      await link(staged, file).catch(async (error: NodeJS.ErrnoException) => {
        // A file system without hard links: create in place (a racing reader may then see it empty).
        if (!NO_HARD_LINKS.has(error.code ?? '')) throw error;
        const handle = await open(file, 'wx');
        try {
          await handle.writeFile(text, 'utf8');
        } finally {
          await handle.close();
        }
      });
      return true;
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      // ENOENT from link: the lock's holder swept the temporary file away (state/lock.ts
      // sweepLockLeftovers), which it only does while it holds the lock: taken.
      if (code === 'EEXIST' || (code === 'ENOENT' && (error as NodeJS.ErrnoException).syscall === 'link')) return false;
      throw storageError('create', this.describe(key), error);
    } finally {
      // Nothing to remove when the folder could not be made (a file where it should be).
      await rm(staged, { force: true }).catch(() => undefined);
    }
  }

  // Versions are content hashes. The compare-and-replace is not atomic across processes;
  // locally the lock is the exclusive-create file (sharedAcrossHosts false), not a lease.
  async readVersioned(key: string): Promise<Versioned | null> {
    const text = await this.readText(key);
    return text === null ? null : { text, version: contentVersion(text) };
  }

  async replaceIfVersion(key: string, text: string, version: string): Promise<string | null> {
    const current = await this.readText(key);
    if (current === null || contentVersion(current) !== version) return null;
    await this.writeText(key, text);
    return contentVersion(text);
  }

  async delete(key: string): Promise<void> {
    try {
      await unlink(this.abs(key));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw storageError('delete', this.describe(key), error);
    }
  }

  async list(prefix: string): Promise<string[]> {
    const out: string[] = [];
    const walk = async (rel: string): Promise<void> => {
      let entries;
      try {
        entries = await readdir(this.abs(rel), { withFileTypes: true });
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code;
        if (code === 'ENOENT' || code === 'ENOTDIR') return;
        throw storageError('list', this.describe(rel), error);
      }
      for (const entry of entries) {
        const child = rel ? `${rel}/${entry.name}` : entry.name;
        // Follow symlinks: snapshot parts are often linked in from elsewhere.
        const kind = entry.isSymbolicLink() ? await stat(this.abs(child)).catch(() => null) : entry;
        if (kind?.isDirectory()) await walk(child);
        else if (kind?.isFile() && !entry.name.endsWith(STAGED_SUFFIX)) out.push(child);
      }
    };
    await walk(prefix.replace(/\/+$/, ''));
    return out.sort();
  }

  async listSizes(prefix: string): Promise<Map<string, number>> {
    const sizes = new Map<string, number>();
    for (const key of await this.list(prefix)) {
      const info = await stat(this.abs(key)).catch(() => null);
      if (info) sizes.set(key, info.size);
    }
    return sizes;
  }

  async listFolders(prefix: string): Promise<string[]> {
    try {
      const entries = await readdir(this.abs(prefix), { withFileTypes: true });
      return entries
        .filter((e) => e.isDirectory())
        .map((e) => e.name)
        .sort();
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
        throw new StorageError(`${this.describe(prefix)} does not exist; check the path in the config`);
      }
      throw storageError('list', this.describe(prefix), error);
    }
  }

  async stage(key: string): Promise<string> {
    const file = this.abs(key);
    try {
      await mkdir(path.dirname(file), { recursive: true });
    } catch (error) {
      throw storageError('create the folder', path.dirname(file), error);
    }
    return path.join(path.dirname(file), `.${path.basename(file)}${STAGED_SUFFIX}`);
  }

  async publish(staged: string, key: string): Promise<void> {
    try {
      await rename(staged, this.abs(key));
    } catch (error) {
      throw storageError('publish', this.describe(key), error);
    }
  }

  async removeStaged(folder: string, names: string[]): Promise<number> {
    let removed = 0;
    let entries: string[];
    try {
      entries = await readdir(this.abs(folder));
    } catch {
      return 0;
    }
    for (const entry of entries) {
      if (entry.endsWith(STAGED_SUFFIX) && names.some((n) => entry.startsWith(`.${n}`))) {
        await rm(path.join(this.abs(folder), entry), { force: true });
        removed += 1;
      }
    }
    return removed;
  }

  async fetch(key: string): Promise<string> {
    const file = this.abs(key);
    try {
      await stat(file);
    } catch (error) {
      throw storageError('read', this.describe(key), error);
    }
    return file;
  }
}

function contentVersion(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}
