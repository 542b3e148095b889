// A tiny run of the benchmark harness (scripts/bench.js): ~2,000 profiles, a temp cache,
// JSON report. Checks the report's structure, not speed (speed is measured with
// `npm run bench`, never in tests).
import { afterAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const cache = mkdtempSync(path.join(tmpdir(), 'audex-bench-smoke-'));
afterAll(() => rmSync(cache, { recursive: true, force: true }));

interface BenchRun {
  name: string;
  kind: 'audex' | 'raw';
  ok: boolean;
  error?: string;
  wallSeconds: number;
  profilesPerSecond: number;
  peakRssMB: number | null;
  rows: number;
  stages: { name: string; seconds: number }[];
}

function bench(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(ROOT, 'scripts', 'bench.js'), ...args], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('bench smoke', () => {
  it('generates tiny snapshots, times audex and the raw baseline, and reports JSON', async () => {
    const result = await bench(['--profiles', '2000', '--part-size', '1000', '--cache', cache, '--json']);
    expect(result.code, result.stderr).toBe(0);
    const report = JSON.parse(result.stdout) as {
      params: { profiles: number; audiences: string[] };
      dataset: { snapshots: { profiles: number }[]; parts: number };
      runs: BenchRun[];
      ratios: { full: number | null; incremental: number | null; total: number | null };
    };
    expect(report.params.profiles).toBe(2000);
    expect(report.params.audiences).toHaveLength(5);
    expect(report.dataset.parts).toBe(2);
    for (const s of report.dataset.snapshots) expect(s.profiles).toBeGreaterThan(1900);

    const names = report.runs.map((r) => r.name);
    for (const name of ['audex full', 'audex incremental', 'raw full', 'raw incremental', 'raw full+incremental'])
      expect(names).toContain(name);
    for (const run of report.runs) {
      expect(run.ok, `${run.name}: ${run.error}`).toBe(true);
      expect(run.rows, run.name).toBeGreaterThan(0);
      expect(run.wallSeconds).toBeGreaterThan(0);
      expect(run.profilesPerSecond).toBeGreaterThan(0);
      expect(run.peakRssMB ?? 1).toBeGreaterThan(0);
      expect(run.stages.length, run.name).toBeGreaterThan(0);
    }
    const full = report.runs.find((r) => r.name === 'audex full')!;
    // Progress lines became stages: start-up, the snapshot load, one select + write per audience.
    expect(full.stages.filter((s) => s.name.endsWith('select + write'))).toHaveLength(5);
    for (const key of ['full', 'incremental', 'total'] as const) expect(report.ratios[key]).toBeGreaterThan(0);

    // The snapshots are cached: a second run reuses them (and --generate-only stops there).
    const again = await bench(['--profiles', '2000', '--part-size', '1000', '--cache', cache, '--generate-only']);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stderr).toMatch(/reusing/);
    expect(readdirSync(cache)).toHaveLength(1);
  });

  it('--encrypt times the full run with OpenPGP encryption beside the plain one', async () => {
    const result = await bench([
      '--profiles',
      '2000',
      '--part-size',
      '1000',
      '--cache',
      cache,
      '--runs',
      'full',
      '--encrypt',
      '--json',
    ]);
    expect(result.code, result.stderr).toBe(0);
    const report = JSON.parse(result.stdout) as {
      runs: (BenchRun & { bytes: number })[];
      ratios: { encryption: number | null };
    };
    expect(report.runs.map((r) => r.name)).toEqual(['audex full', 'audex full, encrypted']);
    const [plain, encrypted] = report.runs;
    for (const run of report.runs) expect(run.ok, `${run.name}: ${run.error}`).toBe(true);
    expect(encrypted!.rows).toBe(plain!.rows);
    // Each OpenPGP file carries a session-key packet and framing on top of the gzip bytes.
    expect(encrypted!.bytes).toBeGreaterThan(plain!.bytes);
    expect(report.ratios.encryption).toBeGreaterThan(0);
  });

  it('--datasets times dataset exports (backfill and increment) against the raw COPY', async () => {
    const dsCache = mkdtempSync(path.join(tmpdir(), 'audex-bench-smoke-ds-'));
    try {
      // json.gz only, to keep this quick; --formats parquet runs the same steps.
      const result = await bench([
        '--datasets',
        '--records',
        '3000',
        '--batches',
        '3',
        '--formats',
        'json',
        '--cache',
        dsCache,
        '--json',
      ]);
      expect(result.code, result.stderr).toBe(0);
      const report = JSON.parse(result.stdout) as {
        records: number;
        incrementRecords: number;
        runs: {
          name: string;
          kind: string;
          format: string;
          ok: boolean;
          rows: number;
          wallSeconds: number;
          vsRaw?: number | null;
        }[];
      };
      expect(report.runs.map((r) => `${r.kind} ${r.name} ${r.format}`)).toEqual([
        'audex backfill json',
        'raw backfill json',
        'audex increment json',
        'raw increment json',
      ]);
      for (const run of report.runs) {
        expect(run.ok, `${run.kind} ${run.name} ${run.format}`).toBe(true);
        expect(run.rows).toBe(run.name === 'backfill' ? 3000 : report.incrementRecords);
        if (run.kind === 'audex') expect(run.vsRaw).toBeGreaterThan(0);
      }
    } finally {
      rmSync(dsCache, { recursive: true, force: true });
    }
  });
});
