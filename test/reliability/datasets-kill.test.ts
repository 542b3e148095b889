// Kill -9 at every commit step of a dataset export, then run again (README "State and safety", "Export datasets"). Two
// datasets (json.gz, 2 records a part, manifests on), a clean sequence computed once:
//   06:00 slot: backfill of ds-orders b-001 + b-002 (4 parts) and ds-web w-001;
//   12:00 slot: the increment: ds-orders b-late (committed before 06:00, arrived after it)
//               and b-003 (3 parts), ds-web w-002.
// The 12:00 run is SIGKILLed at each named crash point (AUDEX_CRASH_AT), on local disk and
// with destination + state on S3 (s3rver behind the test proxy). After each kill:
//   - a reader sees only complete files: every file under a final name has the clean run's bytes;
//   - the rerun succeeds and leaves exactly the clean sequence's files and cursors (so the
//     interrupted folder is completed with the same names and bytes), no pending record,
//     lock or temp file; every batch is in exactly one export folder, none skipped.
// A batch that arrives between the kill and the rerun goes to the next slot, not into the
// interrupted run's folder.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { type JsonSummary, runCli, type CliResult } from '../helpers/harness.js';
import { addBatch, batchLines, datasetConfig } from '../helpers/datasets.js';
import { describeProc, hashTree, isStagedName, treeDiff } from '../helpers/reliability.js';
import { useS3Server, type S3Test } from '../helpers/s3-server.js';

const T1 = '2026-11-20T07:00:00Z';
const T2 = '2026-11-20T13:00:00Z';
const T3 = '2026-11-20T19:00:00Z';
const DATASETS = ['ds-orders', 'ds-web'];
const TIMEOUT = 60_000;

let work = '';
afterAll(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

/** Inputs as the producer leaves them before each slot: A (06:00), B (12:00), C (B + a batch that arrives during a kill). */
function writeSources(): { A: string; B: string; C: string } {
  const A = path.join(work, 'src-a');
  addBatch(A, 'ds-orders', 'b-001', '2026-11-20T01:00:00Z', {
    'part-00000.ndjson': batchLines('b1', 3),
    'part-00001.ndjson': batchLines('b1', 2, 4),
  });
  addBatch(A, 'ds-orders', 'b-002', '2026-11-20T02:00:00Z', { 'part-00000.ndjson': batchLines('b2', 2) });
  addBatch(A, 'ds-web', 'w-001', '2026-11-20T03:00:00Z', { 'part-00000.ndjson': batchLines('w1', 2) });
  const B = path.join(work, 'src-b');
  cpSync(A, B, { recursive: true });
  addBatch(B, 'ds-orders', 'b-late', '2026-11-20T05:00:00Z', { 'part-00000.ndjson': batchLines('late', 2) });
  addBatch(B, 'ds-orders', 'b-003', '2026-11-20T08:00:00Z', { 'part-00000.ndjson': batchLines('b3', 4) });
  addBatch(B, 'ds-web', 'w-002', '2026-11-20T09:00:00Z', { 'part-00000.ndjson': batchLines('w2', 1) });
  const C = path.join(work, 'src-c');
  cpSync(B, C, { recursive: true });
  addBatch(C, 'ds-orders', 'b-004', '2026-11-20T10:00:00Z', { 'part-00000.ndjson': batchLines('b4', 1) });
  return { A, B, C };
}

function flow(
  source: string,
  destination: string,
  state: string,
  s3?: Record<string, unknown>,
  type = 'json',
): Record<string, unknown> {
  return datasetConfig({
    id: 'rel-ds',
    source: { datasets: source },
    destination: { path: destination },
    state: { path: state },
    ...(s3 ? { s3 } : {}),
    format: { type, compression: 'gzip', maxRowsPerFile: type === 'json' ? 2 : 1_000, manifest: true },
    datasets: DATASETS.map((id) => ({
      id,
      schedule: { frequency: 'every6Hours', startTime: '00:00', startDate: '2026-11-20' },
    })),
  });
}

const isCursor = (k: string) => k.startsWith('cursors/');

interface Ref {
  out: Record<string, string>;
  cursors: Record<string, string>;
  runs: JsonSummary['runs'];
}

let sources: { A: string; B: string; C: string };
let afterT1: Ref;
let afterT2: Ref;
let cleanDir = '';
let s3: S3Test;
const s3Server = useS3Server(['exports']);
let made = 0;

interface Site {
  dir: string;
  audex(at: string, source: string, env?: Record<string, string>): Promise<CliResult>;
  out(): Promise<Record<string, string>>;
  state(): Promise<Record<string, string>>;
  /** The text of every final-name manifest in the destination. */
  manifests(): Promise<string[]>;
  expireLease?(): Promise<void>;
}

function localSite(fromT1: boolean, type = 'json'): Site {
  const dir = path.join(work, `s-${++made}`);
  mkdirSync(path.join(dir, 'tmp'), { recursive: true });
  if (fromT1) {
    cpSync(path.join(cleanDir, 't1', 'out'), path.join(dir, 'out'), { recursive: true });
    cpSync(path.join(cleanDir, 't1', 'state'), path.join(dir, 'state'), { recursive: true });
  }
  return {
    dir,
    audex(at, source, env = {}) {
      writeFileSync(path.join(dir, 'flow.json'), JSON.stringify(flow(source, './out', './state', undefined, type)));
      return runCli(['run', '--config', 'flow.json', '--at', at, '--json', '--quiet'], {
        cwd: dir,
        env: { TMPDIR: path.join(dir, 'tmp'), ...env },
      });
    },
    out: async () => hashTree(path.join(dir, 'out')),
    state: async () => hashTree(path.join(dir, 'state')),
    manifests: async () =>
      Object.keys(hashTree(path.join(dir, 'out')))
        .filter((k) => path.posix.basename(k).startsWith('manifest-'))
        .map((k) => readFileSync(path.join(dir, 'out', k), 'utf8')),
  };
}

async function s3Site(): Promise<Site> {
  const dir = path.join(work, `s-${++made}`);
  mkdirSync(path.join(dir, 'tmp'), { recursive: true });
  const root = `ds-kill-${made}`;
  await s3.putTree(path.join(cleanDir, 't1', 'out'), 'exports', `${root}/out`);
  await s3.putTree(path.join(cleanDir, 't1', 'state'), 'exports', `${root}/state`);
  const s3Block = { endpoint: s3.endpoint, forcePathStyle: true, region: 'us-east-1' };
  return {
    dir,
    audex(at, source, env = {}) {
      writeFileSync(
        path.join(dir, 'flow.json'),
        JSON.stringify(flow(source, `s3://exports/${root}/out`, `s3://exports/${root}/state`, s3Block)),
      );
      return runCli(['run', '--config', 'flow.json', '--at', at, '--json', '--quiet'], {
        cwd: dir,
        env: { ...s3.env(), TMPDIR: path.join(dir, 'tmp'), ...env },
      });
    },
    out: () => s3.tree('exports', `${root}/out`),
    state: () => s3.tree('exports', `${root}/state`),
    async manifests() {
      const keys = (await s3.listKeys('exports', `${root}/out/`)).filter((k) =>
        path.posix.basename(k).startsWith('manifest-'),
      );
      return Promise.all(keys.map(async (k) => (await s3.getBytes('exports', k))!.toString('utf8')));
    },
    async expireLease() {
      const key = `${root}/state/lock.json`;
      const current = await s3.client.send(new GetObjectCommand({ Bucket: 'exports', Key: key })).then(
        async (r) => JSON.parse(await r.Body!.transformToString()) as Record<string, unknown>,
        () => null,
      );
      if (current)
        await s3.client.send(
          new PutObjectCommand({
            Bucket: 'exports',
            Key: key,
            Body: JSON.stringify({ ...current, expiresAt: new Date(Date.now() - 1_000).toISOString() }),
          }),
        );
    },
  };
}

async function refOf(site: Site, p: CliResult): Promise<Ref> {
  expect(p.code, describeProc(p)).toBe(0);
  const state = await site.state();
  return {
    out: await site.out(),
    cursors: Object.fromEntries(Object.entries(state).filter(([k]) => isCursor(k))),
    runs: (JSON.parse(p.stdout) as JsonSummary).runs,
  };
}

/** Every batch id is in exactly one manifest, and every manifest lists distinct ids. */
async function batchesByManifest(site: Site): Promise<string[]> {
  return (await site.manifests()).flatMap(
    (text) => (JSON.parse(text) as { datasetId: string; batches: string[] }).batches,
  );
}

async function rerunAfterKill(site: Site, at: string, source: string): Promise<CliResult> {
  // On S3 the killed run's lease stays live for up to a minute (test/reliability/kill.test.ts
  // checks that the rerun then refuses with a clear message); here it expires at once.
  await site.expireLease?.();
  return site.audex(at, source);
}

async function expectLikeClean(site: Site, ref: Ref, when: string): Promise<void> {
  expect(treeDiff(await site.out(), ref.out), `destination ${when}`).toEqual([]);
  const state = await site.state();
  expect(
    treeDiff(Object.fromEntries(Object.entries(state).filter(([k]) => isCursor(k))), ref.cursors),
    `cursors ${when}`,
  ).toEqual([]);
  expect(
    Object.keys(state).filter((k) => /^(pending\/|lock\.json$|lock-probe\/)/.test(k) || isStagedName(k)),
    `leftovers ${when}`,
  ).toEqual([]);
}

beforeAll(async () => {
  work = mkdtempSync(path.join(tmpdir(), 'audex-ds-kill-'));
  sources = writeSources();
  s3 = await s3Server();
  cleanDir = path.join(work, 'clean');
  const site = localSite(false);
  afterT1 = await refOf(site, await site.audex(T1, sources.A));
  cpSync(path.join(site.dir, 'out'), path.join(cleanDir, 't1', 'out'), { recursive: true });
  cpSync(path.join(site.dir, 'state'), path.join(cleanDir, 't1', 'state'), { recursive: true });
  afterT2 = await refOf(site, await site.audex(T2, sources.B));
  // The shape the cases rely on: several parts in both slots, the late batch in the 12:00 folder.
  expect(afterT1.runs.map((r) => r.files.length)).toEqual([4, 1]);
  expect(afterT2.runs.map((r) => [r.files.length, (r as { batchIds?: string[] }).batchIds])).toEqual([
    [3, ['b-late', 'b-003']],
    [1, ['w-002']],
  ]);
  const batches = await batchesByManifest(site);
  expect(batches.sort()).toEqual(['b-001', 'b-002', 'b-003', 'b-late', 'w-001', 'w-002']);
}, TIMEOUT);

const POINTS = [
  'after-read',
  'after-pending',
  'after-part',
  'after-part:3',
  'after-data',
  'after-manifest',
  'after-cursor',
];
const CASES = [
  ...POINTS.map((point) => ({ where: 'local' as const, point })),
  ...POINTS.map((point) => ({ where: 's3' as const, point })),
];

describe('kill -9 during a dataset export, then run again', () => {
  it.concurrent.each(CASES)(
    '$where: the 12:00 increment killed at $point',
    async ({ where, point }) => {
      const site = where === 'local' ? localSite(true) : await s3Site();
      const before = await site.out();
      const crashed = await site.audex(T2, sources.B, { AUDEX_CRASH_AT: point });
      expect(crashed.signal, describeProc(crashed)).toBe('SIGKILL');
      // What a reader sees right after the kill: only complete files, with the clean run's bytes.
      const seen = await site.out();
      const visible = Object.keys(seen).filter((k) => !isStagedName(k));
      expect(
        visible.filter((k) => seen[k] !== afterT2.out[k]),
        'partial or foreign files under a final name',
      ).toEqual([]);
      const added = visible.filter((k) => !(k in before));
      if (point === 'after-read' || point === 'after-pending') expect(added).toEqual([]);
      if (point === 'after-part') expect(added).toHaveLength(1);
      if (point === 'after-part:3') expect(added).toHaveLength(3);
      if (point === 'after-cursor') expect(added.filter((k) => k.includes('/ds-orders/'))).toHaveLength(4);

      const rerun = await rerunAfterKill(site, T2, sources.B);
      expect(rerun.code, describeProc(rerun)).toBe(0);
      await expectLikeClean(site, afterT2, `after the rerun (${point})`);
      const batches = await batchesByManifest(site);
      expect(batches.sort(), 'each batch in exactly one export folder').toEqual([
        'b-001',
        'b-002',
        'b-003',
        'b-late',
        'w-001',
        'w-002',
      ]);
    },
    TIMEOUT,
  );

  it.concurrent(
    'local: the 06:00 backfill killed after its second part, then run again',
    async () => {
      const site = localSite(false);
      const crashed = await site.audex(T1, sources.A, { AUDEX_CRASH_AT: 'after-part:2' });
      expect(crashed.signal, describeProc(crashed)).toBe('SIGKILL');
      expect((await site.audex(T1, sources.A)).code).toBe(0);
      await expectLikeClean(site, afterT1, 'after the rerun of the backfill');
      expect((await site.audex(T2, sources.B)).code).toBe(0);
      await expectLikeClean(site, afterT2, 'after the next slot');
    },
    TIMEOUT,
  );

  it.concurrent(
    'a batch that arrives between the kill and the rerun goes to the next slot, not into the interrupted folder',
    async () => {
      const site = localSite(true);
      const crashed = await site.audex(T2, sources.B, { AUDEX_CRASH_AT: 'after-part' });
      expect(crashed.signal, describeProc(crashed)).toBe('SIGKILL');
      const rerun = await site.audex(T2, sources.C);
      expect(rerun.code, describeProc(rerun)).toBe(0);
      await expectLikeClean(site, afterT2, 'after the rerun with a new batch in the source');
      const next = await site.audex(T3, sources.C);
      expect(next.code, describeProc(next)).toBe(0);
      const runs = (JSON.parse(next.stdout) as JsonSummary).runs as (JsonSummary['runs'][number] & {
        batchIds: string[];
      })[];
      expect(runs.map((r) => [r.audienceId, r.batchIds])).toEqual([
        ['ds-orders', ['b-004']],
        ['ds-web', []],
      ]);
      const out = await site.out();
      const late = Object.keys(out).filter((k) => k.startsWith('aep/ds-orders/exportTime=202611201800/part-'));
      expect(late.map((k) => gunzipSync(readFileSync(path.join(site.dir, 'out', k))).toString())).toEqual([
        batchLines('b4', 1),
      ]);
      expect((await batchesByManifest(site)).sort()).toEqual([
        'b-001',
        'b-002',
        'b-003',
        'b-004',
        'b-late',
        'w-001',
        'w-002',
      ]);
    },
    TIMEOUT,
  );

  it.concurrent(
    "gz.parquet (converted while reading): killed after its part is published, the rerun gives the clean run's bytes",
    async () => {
      const clean = localSite(false, 'parquet');
      const ref = await refOf(clean, await clean.audex(T1, sources.A));
      expect(ref.runs.map((r) => r.files.length)).toEqual([1, 1]);
      const site = localSite(false, 'parquet');
      const crashed = await site.audex(T1, sources.A, { AUDEX_CRASH_AT: 'after-part' });
      expect(crashed.signal, describeProc(crashed)).toBe('SIGKILL');
      const seen = await site.out();
      expect(Object.keys(seen).filter((k) => !isStagedName(k) && seen[k] !== ref.out[k])).toEqual([]);
      expect((await site.audex(T1, sources.A)).code).toBe(0);
      await expectLikeClean(site, ref, 'after the rerun of the Parquet backfill');
    },
    TIMEOUT,
  );

  it.concurrent(
    'batches read from S3 export the same files as from local disk',
    async () => {
      await s3.putTree(sources.A, 'exports', 'ds-source');
      const dir = path.join(work, `s-${++made}`);
      mkdirSync(path.join(dir, 'tmp'), { recursive: true });
      const s3Block = { endpoint: s3.endpoint, forcePathStyle: true, region: 'us-east-1' };
      writeFileSync(
        path.join(dir, 'flow.json'),
        JSON.stringify(flow('s3://exports/ds-source', './out', './state', s3Block)),
      );
      const p = await runCli(['run', '--config', 'flow.json', '--at', T1, '--json', '--quiet'], {
        cwd: dir,
        env: { ...s3.env(), TMPDIR: path.join(dir, 'tmp') },
      });
      expect(p.code, describeProc(p)).toBe(0);
      expect(treeDiff(hashTree(path.join(dir, 'out')), afterT1.out)).toEqual([]);
    },
    TIMEOUT,
  );
});
