// Shared pieces of the reliability tests (test/reliability/): the CLI as a child process
// whose death by signal is visible (and that the test can SIGKILL at a chosen moment),
// the benchmark's deterministic synthetic snapshots, file trees by sha256, a seeded PRNG.
import { spawn } from 'node:child_process';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { BIN, ROOT } from './harness.js';
import { localTree } from './s3-server.js';

export interface Proc {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  ms: number;
}

export interface ProcOptions {
  cwd: string;
  env?: Record<string, string>;
  /** Send SIGKILL from the test after this many milliseconds (if still running). */
  killAfterMs?: number;
}

/** Runs `audex …` as its own process, like a user or cron would, and reports how it ended. */
export function audexProc(args: string[], options: ProcOptions): Promise<Proc> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(process.execPath, [BIN, ...args], { cwd: options.cwd, env: { ...process.env, ...options.env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = options.killAfterMs === undefined ? null : setTimeout(() => child.kill('SIGKILL'), options.killAfterMs);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      if (timer) clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, ms: performance.now() - started });
    });
  });
}

/** One line to explain a failed expectation on a process. */
export function describeProc(p: Proc): string {
  return `exit ${p.code} signal ${p.signal}\nstdout:\n${p.stdout.slice(0, 4000)}\nstderr:\n${p.stderr.slice(0, 4000)}`;
}

export interface Dataset {
  /** The snapshots folder (<root>/<snapshotId>/_snapshot.json + profiles/). */
  root: string;
  snapshots: { snapshotId: string; evaluatedAt: string; profiles: number }[];
}

type EnsureDataset = (
  options: { cacheDir: string; profiles: number; seed: number; partSize: number; input: 'ndjson' | 'parquet'; workers: number },
  log: (message: string) => void,
) => Promise<Dataset>;

/**
 * The benchmark's two deterministic synthetic snapshots (scripts/bench/generate.js): 20
 * audiences (aud-00 … aud-19, aud-00 the biggest), ~5% membership churn between
 * snap-20261120 (evaluated 2026-11-20T05:00Z) and snap-20261121 (2026-11-21T05:00Z).
 */
export async function syntheticSnapshots(cacheDir: string, profiles: number, partSize = 25_000, seed = 7): Promise<Dataset> {
  // Loaded at run time: a plain JS module outside the typed sources.
  const url = pathToFileURL(path.join(ROOT, 'scripts', 'bench', 'generate.js')).href;
  const { ensureDataset } = (await import(url)) as { ensureDataset: EnsureDataset };
  return ensureDataset({ cacheDir, profiles, seed, partSize, input: 'ndjson', workers: 2 }, () => undefined);
}

/** sha256 of every file under a folder, by relative path (missing folder: {}). */
export function hashTree(root: string, keep: (rel: string) => boolean = () => true): Record<string, string> {
  return Object.fromEntries(Object.entries(localTree(root)).filter(([rel]) => keep(rel)));
}

/** A temp file audex stages next to its final name (local destination). */
/** State keys that must match a clean run's byte for byte after any kill or fault: cursors and baselines. */
export const isCursorOrBaseline = (rel: string): boolean => /^(cursors|baselines)\//.test(rel);

export const isStagedName = (rel: string): boolean => path.posix.basename(rel).startsWith('.') && rel.endsWith('.audex-tmp');

/** mulberry32: a small seeded PRNG, so "random" kill moments repeat from run to run. */
export function seededRandom(seed: number): () => number {
  let state = seed | 0;
  return () => {
    state = (state + 0x6d2b79f5) | 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Keys whose values differ between two trees (missing on either side included). */
export function treeDiff(actual: Record<string, string>, expected: Record<string, string>): string[] {
  const keys = new Set([...Object.keys(actual), ...Object.keys(expected)]);
  return [...keys].sort().filter((k) => actual[k] !== expected[k]).map((k) => `${k}: ${actual[k] ? 'present' : 'missing'}${expected[k] ? (actual[k] ? ', different bytes' : '') : ', unexpected'}`);
}
