// Local scratch folders. Remote backends (S3, memory) stage outputs in a local file first
// (DuckDB and the writers need a path), then upload and remove them; commands keep their
// downloads and DuckDB spill in a scratch folder of their own. Each folder belongs to one
// process and is removed when it is done; the next command sweeps the folders left
// behind by killed processes on this machine.
import { rmSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import path from 'node:path';
import { isAlive } from '../process-liveness.js';

const PREFIX = 'audex-';
const SCRATCH_NAME = /^audex-[a-z]+-(\d+)-/;
const OWNER_FILE = 'owner.json';
/** A folder without an owner record is swept only once it has been idle this long. */
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
  const base =
    path.posix
      .basename(key)
      .replace(/[^A-Za-z0-9._-]/g, '_')
      .slice(-120) || 'object';
  return path.join(folder, `${counter}-${base}`);
}

async function createProcessRoot(): Promise<string> {
  const dir = await createScratchDir('staging');
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/**
 * A fresh scratch folder in the system temp folder for one command of this process
 * (`run`, `plan`, `validate`, `staging`): downloads, staged uploads, DuckDB spill. Its
 * owner (pid, host) is written into it, and folders left by killed processes are swept
 * first (README "State and safety": temp files left by a killed run are removed by the next run).
 */
export async function createScratchDir(kind: string): Promise<string> {
  await sweepAbandoned().catch(() => undefined);
  const dir = await mkdtemp(path.join(tmpdir(), `${PREFIX}${kind}-${process.pid}-`));
  await writeFile(path.join(dir, OWNER_FILE), `${JSON.stringify({ pid: process.pid, host: hostname() })}\n`);
  return dir;
}

/**
 * Removes the scratch folders of audex processes that are gone: recorded on this host
 * with a pid that no longer runs. A folder without an owner record (a process killed
 * while creating it) is swept once it has been idle for SWEEP_AFTER_MS. Folders of
 * other hosts (a temp folder shared between machines) are left alone.
 */
async function sweepAbandoned(): Promise<void> {
  const root = tmpdir();
  for (const name of await readdir(root)) {
    const pid = Number(SCRATCH_NAME.exec(name)?.[1]);
    if (!pid || pid === process.pid) continue;
    const full = path.join(root, name);
    const owner = await readOwner(path.join(full, OWNER_FILE));
    let abandoned: boolean;
    if (owner) abandoned = owner.host === hostname() && owner.pid === pid && !isAlive(pid);
    else {
      const info = await stat(full).catch(() => null);
      abandoned = Boolean(info?.isDirectory()) && !isAlive(pid) && Date.now() - info!.mtimeMs > SWEEP_AFTER_MS;
    }
    if (abandoned) await rm(full, { recursive: true, force: true });
  }
}

async function readOwner(file: string): Promise<{ pid?: number; host?: string } | null> {
  try {
    return JSON.parse(await readFile(file, 'utf8')) as { pid?: number; host?: string };
  } catch {
    return null;
  }
}
