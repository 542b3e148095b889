// Two invocations of one dataflow at once (README "State and safety"): never both exporting. Locally the
// lock is an exclusive-create lock.json, taken over when its process is gone; on S3 a
// lease created with If-None-Match: *, taken over once expired. Started together, exactly
// one run exports (each file's bytes are a single clean run's, written once) and the
// others exit 1 naming the holder; a lock or lease left by a SIGKILLed run does not block
// the next run for longer than documented.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hostname } from 'node:os';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { runCli, type CliResult, type JsonSummary } from '../helpers/harness.js';
import {
  describeProc,
  reliabilityDataflow,
  hashTree,
  syntheticSnapshots,
  treeDiff,
  type Dataset,
} from '../helpers/reliability.js';
import { startFaultProxy, type FaultProxy } from '../helpers/fault-proxy.js';
import { useS3Server, type S3Test } from '../helpers/s3-server.js';

const DAY1 = '2026-11-20T07:00:00Z';
const TIMEOUT = 120_000;
const LOCKED = /dataflow conc is locked by another audex run \(.*\); nothing was exported/;

/** The file's temp folder, made by the first beforeAll (not at import: a filtered run that skips every test runs no hook). */
let work = '';
const makeWork = () => (work ||= mkdtempSync(path.join(tmpdir(), 'audex-conc-')));
let dataset: Dataset;
let s3: S3Test;
const s3Server = useS3Server(['exports']);
let n = 0;
/** The destination after one clean day-1 run (sha256 by path). */
let cleanOut: Record<string, string>;

function dataflow(destination: string, state: string, s3Block?: Record<string, unknown>): Record<string, unknown> {
  return reliabilityDataflow({
    name: 'Conc',
    id: 'conc',
    snapshots: dataset.root,
    destination,
    state,
    ...(s3Block ? { s3: s3Block } : {}),
    format: { compression: 'gzip', maxRowsPerFile: 2_000 },
    columns: {
      'identityMap.email': 'email',
      'person.name.firstName': 'first_name',
      'loyalty.tier': 'tier',
      'segmentMembership.status': 'status',
    },
    audiences: [
      { id: 'aud-00', mode: 'incremental' },
      { id: 'aud-02', mode: 'full' },
    ],
  });
}

interface Flow {
  dir: string;
  root: string;
  run(env?: Record<string, string>): Promise<CliResult>;
  out(): Promise<Record<string, string>>;
  stateKeys(): Promise<string[]>;
}

function localFlow(): Flow {
  const root = `local-${++n}`;
  const dir = path.join(work, root);
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, 'flow.json'), JSON.stringify(dataflow('./out', './state')));
  return {
    dir,
    root,
    // A private TMPDIR: a killed run leaves its scratch folder there.
    run: (env = {}) =>
      runCli(['run', '--config', 'flow.json', '--at', DAY1, '--json', '--quiet'], {
        cwd: dir,
        env: { TMPDIR: dir, ...env },
      }),
    out: async () => hashTree(path.join(dir, 'out')),
    stateKeys: async () => Object.keys(hashTree(path.join(dir, 'state'))),
  };
}

const proxies: FaultProxy[] = [];

async function s3Flow(): Promise<Flow> {
  const root = `s3-${++n}`;
  const dir = path.join(work, root);
  mkdirSync(dir, { recursive: true });
  // No faults: the proxy only passes writes to the state folder on one at a time, because
  // s3rver itself crashes when concurrent lock probes create and remove its folders (see
  // test/helpers/fault-proxy.ts). The lease's conditional writes are still decided by the
  // conditional-write proxy behind it, atomically per key.
  const proxy = await startFaultProxy(s3.endpoint, {
    serialize: (r) => r.method !== 'GET' && r.method !== 'HEAD' && r.path.startsWith(`/exports/${root}/state/`),
  });
  proxies.push(proxy);
  const block = { endpoint: proxy.endpoint, forcePathStyle: true, region: 'us-east-1' };
  writeFileSync(
    path.join(dir, 'flow.json'),
    JSON.stringify(dataflow(`s3://exports/${root}/out`, `s3://exports/${root}/state`, block)),
  );
  return {
    dir,
    root,
    run: (env = {}) =>
      runCli(['run', '--config', 'flow.json', '--at', DAY1, '--json', '--quiet'], {
        cwd: dir,
        env: { ...s3.env(), TMPDIR: dir, ...env },
      }),
    out: () => s3.tree('exports', `${root}/out`),
    stateKeys: async () =>
      (await s3.listKeys('exports', `${root}/state/`)).map((k) => k.slice(`${root}/state/`.length)),
  };
}

beforeAll(async () => {
  makeWork();
  [dataset, s3] = await Promise.all([syntheticSnapshots(path.join(work, 'cache'), 20_000), s3Server()]);
  const f = localFlow();
  const p = await f.run();
  expect(p.code, describeProc(p)).toBe(0);
  cleanOut = await f.out();
  expect(Object.keys(cleanOut).length).toBeGreaterThan(4);
}, TIMEOUT);

afterAll(async () => {
  await Promise.all(proxies.map((p) => p.close()));
  if (work) rmSync(work, { recursive: true, force: true });
});

/** How many runs a process exported (whatever its exit code). */
function exported(p: CliResult): number {
  if (!p.stdout.trim()) return 0;
  return (JSON.parse(p.stdout) as JsonSummary).runs.filter((r) => r.status === 'success').length;
}

/**
 * Starts `count` runs of one flow at the same moment and checks: exactly one exported;
 * every other one either exited 1 with the lock message (having written nothing) or, if it
 * started after the winner had finished, found nothing due. The destination is a single
 * clean run's, and no lock is left.
 */
async function race(f: Flow, count: number): Promise<CliResult[]> {
  const procs = await Promise.all(Array.from({ length: count }, () => f.run()));
  const winners = procs.filter((p) => exported(p) > 0);
  expect(winners.length, `processes that exported:\n${procs.map(describeProc).join('\n----\n')}`).toBe(1);
  for (const p of procs) {
    if (p === winners[0]) continue;
    if (p.code === 1) {
      expect(p.stderr).toMatch(LOCKED);
      // --json still prints its one object: no run, and the lock error.
      expect(JSON.parse(p.stdout), 'a refused run prints no run').toMatchObject({
        runs: [],
        error: { exitCode: 1, message: expect.stringMatching(LOCKED) },
      });
    } else {
      expect(p.code, describeProc(p)).toBe(0);
      expect((JSON.parse(p.stdout) as JsonSummary).runs).toEqual([]);
    }
  }
  expect(treeDiff(await f.out(), cleanOut)).toEqual([]);
  expect((await f.stateKeys()).filter((k) => /^(lock\.json|pending\/|lock-probe\/|lock-takeover\/)/.test(k))).toEqual(
    [],
  );
  return procs;
}

describe('runs of one dataflow started together', () => {
  it(
    'local state: two at once — one exports, the other exits 1 naming the holder',
    async () => {
      const procs = await race(localFlow(), 2);
      // With ~1 s of work after taking the lock, the second one does overlap the first.
      expect(procs.filter((p) => p.code === 1)).toHaveLength(1);
      const refused = procs.find((p) => p.code === 1)!;
      expect(refused.stderr).toMatch(
        new RegExp(`\\(pid \\d+ on ${hostname().replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}, since `),
      );
    },
    TIMEOUT,
  );

  it(
    'local state: six at once — still exactly one exports',
    async () => {
      await race(localFlow(), 6);
    },
    TIMEOUT,
  );

  it(
    'S3 state: two at once — one holds the lease and exports, the other exits 1',
    async () => {
      const procs = await race(await s3Flow(), 2);
      expect(procs.filter((p) => p.code === 1)).toHaveLength(1);
      expect(procs.find((p) => p.code === 1)!.stderr).toMatch(
        /Its lease s3:\/\/exports\/.*\/state\/lock\.json is renewed while that run lives and expires at /,
      );
    },
    TIMEOUT,
  );

  it(
    'S3 state: six at once — still exactly one exports',
    async () => {
      await race(await s3Flow(), 6);
    },
    TIMEOUT,
  );
});

describe('a lock left by a killed run', () => {
  it(
    'local: the lock.json of a SIGKILLed run does not block the next run (its pid is gone)',
    async () => {
      const f = localFlow();
      const killed = await f.run({ AUDEX_CRASH_AT: 'after-data' });
      expect(killed.signal).toBe('SIGKILL');
      const lock = JSON.parse(readFileSync(path.join(f.dir, 'state', 'lock.json'), 'utf8')) as {
        pid: number;
        host: string;
      };
      expect(lock.host).toBe(hostname());
      const rerun = await f.run();
      expect(rerun.code, describeProc(rerun)).toBe(0);
      expect(exported(rerun)).toBe(2);
      expect(treeDiff(await f.out(), cleanOut)).toEqual([]);
      expect(await f.stateKeys()).not.toContain('lock.json');
    },
    TIMEOUT,
  );

  it(
    'local: runs racing to take over the same stale lock — exactly one exports',
    async () => {
      // A lock whose process is gone, as a killed run leaves it; then several runs at once.
      // Each one sees the dead holder; taking it over must still let only one of them in.
      // The stale lock is padded with whitespace (still the same JSON) so that reading it
      // takes a few tens of milliseconds: that widens, without changing, the window between
      // a contender reading the dead holder and deleting "its" lock — by then another
      // contender may have taken the lock over already.
      const padding = ' '.repeat(48 * 1024 * 1024);
      for (let round = 0; round < 2; round++) {
        const f = localFlow();
        const dead = spawn(process.execPath, ['-e', '']);
        await new Promise((resolve) => dead.on('exit', resolve));
        mkdirSync(path.join(f.dir, 'state'), { recursive: true });
        writeFileSync(
          path.join(f.dir, 'state', 'lock.json'),
          `${JSON.stringify({ token: 'killed-run', pid: dead.pid, host: hostname(), acquiredAt: '2026-11-20T06:59:00.000Z', dataflowId: 'conc' }, null, 2)}${padding}\n`,
        );
        await race(f, 4);
      }
    },
    TIMEOUT,
  );

  it(
    'S3: a live lease blocks (exit 1, when it expires); an expired lease is taken over',
    async () => {
      const f = await s3Flow();
      const killed = await f.run({ AUDEX_CRASH_AT: 'after-part:3' });
      expect(killed.signal).toBe('SIGKILL');
      const leaseKey = `${f.root}/state/lock.json`;
      const lease = JSON.parse((await s3.getBytes('exports', leaseKey))!.toString('utf8')) as {
        expiresAt: string;
        holder: string;
      };
      expect(Date.parse(lease.expiresAt)).toBeGreaterThan(Date.now());

      const blocked = await f.run();
      expect(blocked.code, describeProc(blocked)).toBe(1);
      expect(blocked.stderr).toMatch(LOCKED);
      expect(blocked.stderr).toContain(lease.holder);
      expect(blocked.stderr).toContain(`expires at ${lease.expiresAt}`);

      // A minute later: the lease has expired (rewritten with expiresAt in the past).
      await s3.putText(
        'exports',
        leaseKey,
        JSON.stringify({ ...lease, expiresAt: new Date(Date.now() - 1_000).toISOString() }),
      );
      const rerun = await f.run();
      expect(rerun.code, describeProc(rerun)).toBe(0);
      expect(exported(rerun)).toBe(2);
      expect(treeDiff(await f.out(), cleanOut)).toEqual([]);
      expect(
        (await f.stateKeys()).filter((k) => /^(lock\.json|pending\/|lock-probe\/|lock-takeover\/)/.test(k)),
      ).toEqual([]);
    },
    TIMEOUT,
  );

  it(
    'S3: several runs racing for the same expired lease — exactly one takes it over and exports',
    async () => {
      const f = await s3Flow();
      await s3.putText(
        'exports',
        `${f.root}/state/lock.json`,
        JSON.stringify({
          token: 'killed-run',
          holder: 'pid 4242 on gone-host',
          dataflowId: 'conc',
          acquiredAt: '2026-11-20T06:59:00Z',
          expiresAt: new Date(Date.now() - 60_000).toISOString(),
        }),
      );
      await race(f, 4);
    },
    TIMEOUT,
  );
});
