// Shared e2e harness: a fresh temp folder with the fixture snapshots, a config writer,
// the real CLI spawned as a user would, and independent readers for what it writes.
import { afterAll } from 'vitest';
import { spawn } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';
import { parse as parseCsv } from 'csv-parse/sync';
import { parquetReadObjects, parquetMetadata } from 'hyparquet';
import { compressors } from 'hyparquet-compressors';
import { stringify as toYaml } from 'yaml';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const BIN = path.join(ROOT, 'bin', 'audex.js');
export const FIXTURE_SNAPSHOTS = path.join(ROOT, 'fixtures', 'snapshots');

export interface Workspace {
  dir: string;
  snapshots: string;
  out: string;
  /** Writes a config (object → YAML) and returns its path. */
  config(body: Record<string, unknown>, name?: string): string;
  /** Runs the CLI in the workspace. */
  audex(args: string[], env?: Record<string, string>): Promise<CliResult>;
  /** All files under a folder, relative, sorted (state excluded unless asked). */
  files(sub?: string, includeState?: boolean): string[];
  cleanup(): void;
}

export interface CliResult {
  code: number | null;
  /** The signal that ended the process, if one did (e.g. the test's SIGKILL). */
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** How long it ran (wall clock, milliseconds). */
  ms: number;
  json: () => JsonSummary;
}

export interface CliOptions {
  cwd: string;
  env?: Record<string, string>;
  /** Send SIGKILL from the test after this many milliseconds (if still running). */
  killAfterMs?: number;
  /** Runs the CLI's command line (node, bin, args) inside another one, e.g. `unshare … sh -c`. */
  wrap?: (argv: string[]) => string[];
}

export interface JsonSummary {
  dataflowId: string;
  at: string;
  runs: {
    runId: string;
    audienceId: string;
    mode: string;
    trigger: string;
    logicalTime: string;
    snapshotId: string | null;
    status: string;
    counts: Record<string, number>;
    files: { path: string; rows: number; bytes: number; sha256: string }[];
    error?: string;
    manifest?: string;
  }[];
}

/** The suite's one CLI spawner: runs `audex …` as its own process, as a user or cron would, and reports how it ended. */
export function runCli(args: string[], options: CliOptions): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const [command, ...rest] = (options.wrap ?? ((argv) => argv))([process.execPath, BIN, ...args]);
    const child = spawn(command!, rest, {
      cwd: options.cwd,
      env: { ...process.env, ...options.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer =
      options.killAfterMs === undefined ? null : setTimeout(() => child.kill('SIGKILL'), options.killAfterMs);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      if (timer) clearTimeout(timer);
      resolve({
        code,
        signal,
        stdout,
        stderr,
        ms: performance.now() - started,
        json: () => {
          try {
            return JSON.parse(stdout) as JsonSummary;
          } catch {
            throw new Error(`stdout is not JSON (exit ${code}):\n${stdout}\nstderr:\n${stderr}`);
          }
        },
      });
    });
  });
}

/** The demo CRM dataflow, as an object tests can tweak. Paths are relative to the workspace. */
export function crmConfig(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    name: 'Acme CRM',
    id: 'acme-crm',
    customText: 'test',
    source: { snapshots: './snapshots' },
    destination: { path: './out' },
    format: { type: 'csv', compression: 'none' },
    folderPath: 'crm/%SEGMENT_NAME%',
    fileName: '%DESTINATION_NAME%_%SEGMENT_ID%_%DATETIME(YYYYMMdd_HHmmss)%',
    mapping: [
      { source: 'identityMap.email', target: 'email' },
      { source: 'person.name.firstName' },
      { source: 'loyalty.tier', target: 'tier' },
      { source: 'loyalty.points', target: 'points' },
      { source: 'segmentMembership.status', target: 'status' },
    ],
    mandatory: ['loyalty.tier'],
    audiences: [
      {
        id: 'aud-vip',
        mode: 'incremental',
        schedule: { frequency: 'daily', startTime: '05:30', startDate: '2026-11-01' },
      },
    ],
    ...overrides,
  };
}

export function createWorkspace(): Workspace {
  const dir = mkdtempSync(path.join(tmpdir(), 'audex-test-'));
  const snapshots = path.join(dir, 'snapshots');
  cpSync(FIXTURE_SNAPSHOTS, snapshots, { recursive: true });
  const out = path.join(dir, 'out');
  return {
    dir,
    snapshots,
    out,
    config(body, name = 'dataflow.yaml') {
      const file = path.join(dir, name);
      writeFileSync(file, name.endsWith('.json') ? JSON.stringify(body, null, 2) : toYaml(body));
      return file;
    },
    audex: (args, env) => runCli(args, { cwd: dir, env }),
    files(sub = 'out', includeState = false) {
      return listFiles(path.join(dir, sub)).filter((f) => includeState || !f.startsWith('_audex/'));
    },
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/** A `workspace()` factory whose workspaces are removed after the file's tests. */
export function trackWorkspaces(): () => Workspace {
  const made: Workspace[] = [];
  afterAll(() => {
    for (const ws of made) ws.cleanup();
  });
  return () => {
    const ws = createWorkspace();
    made.push(ws);
    return ws;
  };
}

export function listFiles(root: string): string[] {
  const out: string[] = [];
  const walk = (rel: string) => {
    let entries: string[];
    try {
      entries = readdirSync(path.join(root, rel));
    } catch {
      return;
    }
    for (const name of entries) {
      const child = rel ? `${rel}/${name}` : name;
      if (statSync(path.join(root, child)).isDirectory()) walk(child);
      else out.push(child);
    }
  };
  walk('');
  return out.sort();
}

/** Adds a snapshot folder with the given NDJSON lines (raw strings or objects). */
export function addSnapshot(
  snapshotsDir: string,
  id: string,
  evaluatedAt: string,
  lines: (string | object)[],
  audiences: { id: string; name: string; profileType?: string }[] = [{ id: 'aud-vip', name: 'VIP Customers' }],
  partName = 'part-00000.ndjson',
): void {
  const folder = path.join(snapshotsDir, id);
  mkdirSync(path.join(folder, 'profiles'), { recursive: true });
  writeFileSync(
    path.join(folder, 'profiles', partName),
    lines.map((l) => (typeof l === 'string' ? l : JSON.stringify(l))).join('\n') + '\n',
  );
  writeFileSync(path.join(folder, '_snapshot.json'), JSON.stringify({ snapshotId: id, evaluatedAt, audiences }));
}

export function readText(file: string): string {
  const bytes = readFileSync(file);
  return (file.endsWith('.gz') ? gunzipSync(bytes) : bytes).toString('utf8');
}

export function readCsv(file: string, options: Record<string, unknown> = {}): string[][] {
  // audex's default dialect: quote ", escape \ (README "Files, names and the manifest" offers only \ or ' as escape).
  return parseCsv(readText(file), { relax_column_count: false, escape: '\\', ...options }) as string[][];
}

export function readJsonLines(file: string): Record<string, unknown>[] {
  return readText(file)
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

export async function readParquet(file: string): Promise<{
  rows: Record<string, unknown>[];
  codecs: string[];
  columns: { name: string; type?: string; logical?: unknown }[];
}> {
  const bytes = readFileSync(file);
  const buffer = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
  const metadata = parquetMetadata(buffer);
  const rows = (await parquetReadObjects({ file: buffer, compressors })) as Record<string, unknown>[];
  const codecs = [...new Set(metadata.row_groups.flatMap((g) => g.columns.map((c) => String(c.meta_data?.codec))))];
  const columns = metadata.schema.slice(1).map((s) => ({ name: s.name, type: s.type, logical: s.logical_type }));
  return { rows, codecs, columns };
}

/** A well-formed profile that is an active aud-vip member and passes every filter of crmConfig(). */
export function prof(id: string, overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    profileId: id,
    ids: { crm: `crm-${id}` },
    identityMap: { email: [{ id: `${id}@example.com` }] },
    person: { name: { firstName: `F${id}` } },
    loyalty: { tier: 'gold', points: 10 },
    segmentMembership: { ups: { 'aud-vip': { status: 'realized', lastQualificationTime: '2026-11-21T10:00:00Z' } } },
    ...overrides,
  };
}

/** Overrides that replace the aud-vip membership entry. */
export const vip = (entry: unknown) => ({ segmentMembership: { ups: { 'aud-vip': entry } } });
