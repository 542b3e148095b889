// Local staging for remote backends (S3, memory). Outputs are written to a local file
// first (DuckDB and the writers need a path), then uploaded and removed. The staging
// folder belongs to this process: it is removed when the process exits, and the next
// run sweeps folders left behind by killed processes on this machine.
import { rmSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';

const PREFIX = 'audex-staging-';
/** A folder of a dead process is swept only once it has been idle this long (pid namespaces can differ). */
const SWEEP_AFTER_MS = 10 * 60 * 1000;

let processRoot: Promise<string> | undefined;
let counter = 0;

/** The staging folder: `dir` when the caller owns one, else a per-process temp folder. */
export async function stagingFolder(dir?: string): Promise<string> {
  if (dir !== undefined) {
    await mkdir(dir, { recursive: true });
    return dir;
  }
  processRoot ??= createProcessRoot();
  return processRoot;
}

/** A fresh local path in `folder` that keeps the key's file name (and so its extension). */
export function stagedPath(folder: string, key: string): string {
  counter += 1;
  const base = path.posix.basename(key).replace(/[^A-Za-z0-9._-]/g, '_').slice(-120) || 'object';
  return path.join(folder, `${counter}-${base}`);
}

async function createProcessRoot(): Promise<string> {
  await sweepAbandoned().catch(() => undefined);
  const dir = await mkdtemp(path.join(tmpdir(), `${PREFIX}${process.pid}-`));
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

async function sweepAbandoned(): Promise<void> {
  const root = tmpdir();
  for (const name of await readdir(root)) {
    const pid = Number(/^audex-staging-(\d+)-/.exec(name)?.[1]);
    if (!pid || pid === process.pid || isAlive(pid)) continue;
    const full = path.join(root, name);
    const info = await stat(full).catch(() => null);
    if (info?.isDirectory() && Date.now() - info.mtimeMs > SWEEP_AFTER_MS) await rm(full, { recursive: true, force: true });
  }
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
