// Shared pieces of the reliability tests (test/reliability/): the dataflow they run, the
// benchmark's deterministic synthetic snapshots, file trees by sha256, a seeded PRNG. The
// CLI is spawned by harness.ts runCli (its death by signal is visible, and the test can
// SIGKILL it at a chosen moment).
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { ROOT, runCli, type CliResult } from './harness.js';
import { localTree } from './s3-server.js';

/** The suite's CLI spawner (harness.ts), by the name test/http/kill.test.ts imports it. */
export const audexProc = runCli;

/** One line to explain a failed expectation on a process. */
export function describeProc(p: CliResult): string {
  return `exit ${p.code} signal ${p.signal}\nstdout:\n${p.stdout.slice(0, 4000)}\nstderr:\n${p.stderr.slice(0, 4000)}`;
}

/** A reliability test's dataflow: where it reads and writes, and what it maps and exports. */
export interface ReliabilityFlow {
  name: string;
  id: string;
  snapshots: string;
  destination: string;
  /** The state path, or the whole state block (retention settings). */
  state: string | Record<string, unknown>;
  s3?: Record<string, unknown>;
  /** Over CSV with a manifest. */
  format?: Record<string, unknown>;
  folderPath?: string;
  fileName?: string;
  /** The mapped columns, source → target, in order. */
  columns: Record<string, string>;
  /** Without a schedule: daily at 06:00 from 2026-11-20 (the synthetic snapshots' first day). */
  audiences: { id: string; mode: 'incremental' | 'full'; schedule?: Record<string, unknown> }[];
}

const DAILY = { frequency: 'daily', startTime: '06:00', startDate: '2026-11-20' };

/** The dataflow config the reliability tests run (an object: write it as JSON or YAML). */
export function reliabilityDataflow(flow: ReliabilityFlow): Record<string, unknown> {
  return {
    name: flow.name,
    id: flow.id,
    source: { snapshots: flow.snapshots },
    destination: { path: flow.destination },
    state: typeof flow.state === 'string' ? { path: flow.state } : flow.state,
    ...(flow.s3 ? { s3: flow.s3 } : {}),
    format: { type: 'csv', manifest: true, ...flow.format },
    folderPath: flow.folderPath ?? '%SEGMENT_ID%',
    fileName: flow.fileName ?? '%SEGMENT_ID%_%DATETIME%',
    mapping: Object.entries(flow.columns).map(([source, target]) => ({ source, target })),
    audiences: flow.audiences.map(({ id, mode, schedule = DAILY }) => ({ id, mode, schedule })),
  };
}

export interface Dataset {
  /** The snapshots folder (<root>/<snapshotId>/_snapshot.json + profiles/). */
  root: string;
  snapshots: { snapshotId: string; evaluatedAt: string; profiles: number }[];
}

type EnsureDataset = (
  options: {
    cacheDir: string;
    profiles: number;
    seed: number;
    partSize: number;
    input: 'ndjson' | 'parquet';
    workers: number;
  },
  log: (message: string) => void,
) => Promise<Dataset>;

/**
 * The benchmark's two deterministic synthetic snapshots (scripts/bench/generate.js): 20
 * audiences (aud-00 … aud-19, aud-00 the biggest), ~5% membership churn between
 * snap-20261120 (evaluated 2026-11-20T05:00Z) and snap-20261121 (2026-11-21T05:00Z).
 */
export async function syntheticSnapshots(
  cacheDir: string,
  profiles: number,
  partSize = 25_000,
  seed = 7,
): Promise<Dataset> {
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

export const isStagedName = (rel: string): boolean =>
  path.posix.basename(rel).startsWith('.') && rel.endsWith('.audex-tmp');

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
  return [...keys]
    .sort()
    .filter((k) => actual[k] !== expected[k])
    .map(
      (k) =>
        `${k}: ${actual[k] ? 'present' : 'missing'}${expected[k] ? (actual[k] ? ', different bytes' : '') : ', unexpected'}`,
    );
}
