// Kill -9 anywhere, then run again (README "State and safety", RELIABILITY.md). Synthetic snapshots from the
// benchmark generator (scripts/bench/generate.js), a dataflow with an incremental audience
// (aud-00, segmentMembership.status mapped, so exits are written) and a full one (aud-05),
// csv.gz with several parts per file, manifests on:
//   - 100,000 profiles, 1,000 rows a part (62 + 29 parts on day 1, 3 + 29 on day 2) for a
//     representative subset of the points, on local disk (with AUDEX_KILL_PROFILES=100000,
//     as .ci/run runs it; npm test runs the subset at 20,000);
//   - 20,000 profiles, 200 rows a part (the same part structure) for the other points, and
//     for the destination + state on S3 (s3rver behind the test proxy; source local),
//     to keep the file near 90 s.
//
// The clean sequence is computed once per size: day 1 (backfill), day 2 (incremental),
// day 3 (same snapshot: no membership change). Then the day-1 or day-2 run is SIGKILLed —
// at a named crash point (AUDEX_CRASH_AT=<point>[:<n>]) or at a seeded random moment (kill
// from the test) — and after each kill:
//   - the process died by SIGKILL, and the kill landed where intended (per-point checks);
//   - a reader listing the destination sees only complete files: every file under a final
//     name is byte-identical to the clean run's file of that name;
//   - the rerun, without manual cleanup, succeeds (on S3 after the killed run's lease has
//     expired: before that it exits 1 naming the lease); data files and manifests (sha256),
//     cursors and baselines equal the clean sequence's; no pending record, lock, lock probe
//     or temp file remains;
//   - the next day's run equals the clean sequence's next day.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { stateKeys } from '../../src/state/state-keys.js';
import { GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { runCli, type CliResult, type JsonSummary } from '../helpers/harness.js';
import {
  describeProc,
  reliabilityDataflow,
  hashTree,
  isCursorOrBaseline,
  isStagedName,
  seededRandom,
  syntheticSnapshots,
  treeDiff,
  type Dataset,
} from '../helpers/reliability.js';
import { useS3Server, type S3Test } from '../helpers/s3-server.js';

const DAYS = ['2026-11-20T07:00:00Z', '2026-11-21T07:00:00Z', '2026-11-22T07:00:00Z'] as const;
const INCREMENTAL = 'aud-00';
const FULL = 'aud-05';
const TEST_TIMEOUT = 120_000;

/** The file's temp folder, made by the first beforeAll (not at import: a filtered run that skips every test runs no hook). */
let work = '';
const makeWork = () => (work ||= mkdtempSync(path.join(tmpdir(), 'audex-kill-')));
afterAll(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});
let made = 0;

function dataflow(
  snapshots: string,
  destination: string,
  state: string,
  maxRowsPerFile: number,
  s3?: Record<string, unknown>,
): Record<string, unknown> {
  return reliabilityDataflow({
    name: 'Rel Kill',
    id: 'rel-kill',
    snapshots,
    destination,
    state,
    ...(s3 ? { s3 } : {}),
    format: { compression: 'gzip', maxRowsPerFile, emptyExport: 'write' },
    folderPath: '%SEGMENT_NAME%',
    fileName: '%DESTINATION_NAME%_%SEGMENT_ID%_%DATETIME%',
    columns: {
      'identityMap.email': 'email',
      'person.name.firstName': 'first_name',
      'person.name.lastName': 'last_name',
      'loyalty.tier': 'tier',
      'loyalty.points': 'points',
      'segmentMembership.status': 'status',
      'segmentMembership.lastQualificationTime': 'qualified_at',
    },
    audiences: [
      { id: INCREMENTAL, mode: 'incremental' },
      { id: FULL, mode: 'full' },
    ],
  });
}

const isFinal = (rel: string) => !isStagedName(rel);

/** What the clean sequence looks like after one day. */
interface DayRef {
  out: Record<string, string>;
  state: Record<string, string>;
  runs: JsonSummary['runs'];
  ms: number;
}

interface Scale {
  profiles: number;
  maxRowsPerFile: number;
  dataset: Dataset;
  /** After day 1, 2, 3 of the clean sequence (local disk). */
  days: DayRef[];
  /** Copies of the clean out/ and state/ folders after day 1 (the start of a day-2 kill). */
  day1Dir: string;
}

const scales = new Map<number, Promise<Scale>>();

/** The dataset and the clean sequence at one size, computed once. */
function scale(profiles: number, maxRowsPerFile: number): Promise<Scale> {
  let s = scales.get(profiles);
  if (!s) {
    s = (async () => {
      const dataset = await syntheticSnapshots(path.join(work, 'cache'), profiles);
      const dir = path.join(work, `clean-${profiles}`);
      mkdirSync(path.join(dir, 'tmp'), { recursive: true });
      writeFileSync(
        path.join(dir, 'flow.json'),
        JSON.stringify(dataflow(dataset.root, './out', './state', maxRowsPerFile)),
      );
      const days: DayRef[] = [];
      const day1Dir = path.join(work, `clean-${profiles}-day1`);
      for (const at of DAYS) {
        const p = await runCli(['run', '--config', 'flow.json', '--at', at, '--json', '--quiet'], {
          cwd: dir,
          env: { TMPDIR: path.join(dir, 'tmp') },
        });
        expect(p.code, describeProc(p)).toBe(0);
        const runs = (JSON.parse(p.stdout) as JsonSummary).runs;
        expect(runs.map((r) => r.status)).toEqual(['success', 'success']);
        days.push({
          out: hashTree(path.join(dir, 'out')),
          state: hashTree(path.join(dir, 'state'), isCursorOrBaseline),
          runs,
          ms: p.ms,
        });
        if (days.length === 1) {
          cpSync(path.join(dir, 'out'), path.join(day1Dir, 'out'), { recursive: true });
          cpSync(path.join(dir, 'state'), path.join(day1Dir, 'state'), { recursive: true });
        }
      }
      return { profiles, maxRowsPerFile, dataset, days, day1Dir };
    })();
    scales.set(profiles, s);
  }
  return s;
}

/** A destination + state the scenario kills and recovers (local folders, or S3 prefixes). */
interface Site {
  /** Runs audex in the scenario's folder (config, private TMPDIR). */
  audex(at: string, env?: Record<string, string>, killAfterMs?: number): Promise<CliResult>;
  out(): Promise<Record<string, string>>;
  /** Every key under the state location, with its sha256. */
  state(): Promise<Record<string, string>>;
  readState(key: string): Promise<string | null>;
  /** The private TMPDIR of the audex processes, and what is left in it. */
  tmpDir: string;
  tmpLeft(): string[];
  /** S3 only: the lease a killed run left behind expires (as a minute later). */
  expireLease?(): Promise<void>;
}

function scenarioDir(): { dir: string; tmp: string } {
  const dir = path.join(work, `s-${++made}`);
  const tmp = path.join(dir, 'tmp');
  mkdirSync(tmp, { recursive: true });
  return { dir, tmp };
}

function runner(dir: string, tmp: string, baseEnv: Record<string, string> = {}) {
  return (at: string, env: Record<string, string> = {}, killAfterMs?: number) =>
    runCli(['run', '--config', 'flow.json', '--at', at, '--json', '--quiet'], {
      cwd: dir,
      env: { ...baseEnv, TMPDIR: tmp, ...env },
      ...(killAfterMs === undefined ? {} : { killAfterMs }),
    });
}

function localSite(s: Scale, startAfterDay: 0 | 1): Site {
  const { dir, tmp } = scenarioDir();
  if (startAfterDay === 1) {
    cpSync(path.join(s.day1Dir, 'out'), path.join(dir, 'out'), { recursive: true });
    cpSync(path.join(s.day1Dir, 'state'), path.join(dir, 'state'), { recursive: true });
  }
  writeFileSync(
    path.join(dir, 'flow.json'),
    JSON.stringify(dataflow(s.dataset.root, './out', './state', s.maxRowsPerFile)),
  );
  return {
    audex: runner(dir, tmp),
    out: async () => hashTree(path.join(dir, 'out')),
    state: async () => hashTree(path.join(dir, 'state')),
    readState: async (key) => {
      try {
        return readFileSync(path.join(dir, 'state', key), 'utf8');
      } catch {
        return null;
      }
    },
    tmpDir: tmp,
    tmpLeft: () => readdirSync(tmp),
  };
}

let s3: S3Test | undefined;
const s3Server = useS3Server(['exports']);
let s3Flows = 0;

async function s3Site(s: Scale, startAfterDay: 0 | 1): Promise<Site> {
  const server = s3!;
  const { dir, tmp } = scenarioDir();
  const root = `kill-${++s3Flows}`;
  if (startAfterDay === 1) {
    await server.putTree(path.join(s.day1Dir, 'out'), 'exports', `${root}/out`);
    await server.putTree(path.join(s.day1Dir, 'state'), 'exports', `${root}/state`);
  }
  const s3Block = { endpoint: server.endpoint, forcePathStyle: true, region: 'us-east-1' };
  writeFileSync(
    path.join(dir, 'flow.json'),
    JSON.stringify(
      dataflow(s.dataset.root, `s3://exports/${root}/out`, `s3://exports/${root}/state`, s.maxRowsPerFile, s3Block),
    ),
  );
  const readKey = async (key: string) =>
    (await server.getBytes('exports', `${root}/state/${key}`))?.toString('utf8') ?? null;
  return {
    audex: runner(dir, tmp, server.env()),
    out: () => server.tree('exports', `${root}/out`),
    state: () => server.tree('exports', `${root}/state`),
    readState: readKey,
    tmpDir: tmp,
    tmpLeft: () => readdirSync(tmp),
    async expireLease() {
      const key = `${root}/state/lock.json`;
      const current = await server.client.send(new GetObjectCommand({ Bucket: 'exports', Key: key })).then(
        async (r) => JSON.parse(await r.Body!.transformToString()) as Record<string, unknown>,
        () => null,
      );
      if (!current) return;
      const expired = { ...current, expiresAt: new Date(Date.now() - 1_000).toISOString() };
      await server.client.send(new PutObjectCommand({ Bucket: 'exports', Key: key, Body: JSON.stringify(expired) }));
    },
  };
}

/** What the killed run left, for the per-point checks. */
interface CrashView {
  /** Final-name destination files that were not there before the run. */
  newFinal: string[];
  staged: string[];
  state: Record<string, string>;
  cursor(audience: string): Promise<{ lastSlot: string; runId: string } | null>;
}

interface KillCase {
  name: string;
  /** The run that is killed: day 1 (backfill) or day 2 (incremental). */
  day: 1 | 2;
  crashAt?: string;
  /** Random moment: SIGKILL from the test after a seeded delay. */
  seed?: number;
  /** Where the kill must have landed (proves the point was reached). */
  landed?: (
    v: CrashView,
    ref: { run: (aud: string) => JsonSummary['runs'][number]; prevSlot: string | null },
  ) => Promise<void> | void;
}

const partsOf = (newFinal: string[], aud: string) =>
  newFinal.filter((f) => f.includes(`_${aud}_`) && !path.posix.basename(f).startsWith('manifest-'));
const manifestsOf = (newFinal: string[]) => newFinal.filter((f) => path.posix.basename(f).startsWith('manifest-'));
/** Pending records under their final name. */
const pendingOf = (state: Record<string, string>) =>
  Object.keys(state).filter((k) => k.startsWith('pending/') && !isStagedName(k));

// Audiences run two at a time (src/run/invoke.ts), so the n-th pass of a point may be
// either audience's: the checks hold whichever one got there first.
const AUDS = [INCREMENTAL, FULL];
const LANDED: Record<string, KillCase['landed']> = {
  'after-read': (v) => {
    expect(v.newFinal).toEqual([]);
    expect(Object.keys(v.state).filter((k) => k.startsWith('pending/'))).toEqual([]);
  },
  'after-pending': (v) => {
    expect(manifestsOf(v.newFinal)).toEqual([]);
    expect(pendingOf(v.state).length).toBeGreaterThanOrEqual(1);
  },
  'after-part:2': (v) => {
    expect(AUDS.reduce((sum, a) => sum + partsOf(v.newFinal, a).length, 0)).toBeGreaterThanOrEqual(2);
    expect(manifestsOf(v.newFinal)).toEqual([]);
  },
  'after-data': (v, r) => {
    expect(
      AUDS.some((a) => partsOf(v.newFinal, a).length === r.run(a).files.length),
      v.newFinal.join('\n'),
    ).toBe(true);
    expect(manifestsOf(v.newFinal)).toEqual([]);
  },
  'after-manifest': async (v, r) => {
    const withManifest = AUDS.filter((a) => manifestsOf(v.newFinal).some((m) => m.includes(r.run(a).runId)));
    expect(withManifest.length).toBeGreaterThanOrEqual(1);
    const prev = await Promise.all(
      withManifest.map(async (a) => ((await v.cursor(a))?.lastSlot ?? null) === r.prevSlot),
    );
    expect(prev).toContain(true);
  },
  'after-baseline': async (v, r) => {
    expect(Object.keys(v.state)).toContain(`baselines/${INCREMENTAL}/${r.run(INCREMENTAL).runId}.parquet`);
    expect((await v.cursor(INCREMENTAL))?.lastSlot ?? null).toBe(r.prevSlot);
  },
  'after-cursor': async (v, r) => {
    const committed = [];
    for (const a of AUDS) if ((await v.cursor(a))?.runId === r.run(a).runId) committed.push(a);
    expect(committed.length).toBeGreaterThanOrEqual(1);
    expect(committed.some((a) => pendingOf(v.state).includes(`pending/${r.run(a).runId}.json`))).toBe(true);
  },
  'after-cursor:2': async (v, r) => {
    for (const a of AUDS) expect((await v.cursor(a))?.runId, a).toBe(r.run(a).runId);
  },
  'after-part:30': (v) => {
    expect(AUDS.reduce((sum, a) => sum + partsOf(v.newFinal, a).length, 0)).toBeGreaterThanOrEqual(30);
  },
  'after-manifest:2': (v) => {
    expect(manifestsOf(v.newFinal)).toHaveLength(2);
  },
};

const named = (day: 1 | 2, crashAt: string): KillCase => ({
  name: `day ${day}, ${crashAt}`,
  day,
  crashAt,
  landed: LANDED[crashAt],
});

/**
 * Kills one run, checks what a reader can see, reruns, compares with the clean sequence,
 * runs the next day and compares again. Returns the folders left in TMPDIR by then.
 */
async function killAndRecover(s: Scale, site: Site, c: KillCase): Promise<{ tmpLeft: string[]; killed: boolean }> {
  const at = DAYS[c.day - 1]!;
  const ref = s.days[c.day - 1]!;
  const next = s.days[c.day]!;
  const before = await site.out();

  let killAfterMs: number | undefined;
  if (c.seed !== undefined) {
    // Between 25% and 95% of a clean run's duration (the first ~0.5 s is start-up).
    const rand = seededRandom(c.seed);
    killAfterMs = Math.round(ref.ms * (0.25 + 0.7 * rand()));
  }
  const crashed = await site.audex(at, c.crashAt ? { AUDEX_CRASH_AT: c.crashAt } : {}, killAfterMs);
  const killed = crashed.signal === 'SIGKILL';
  if (c.crashAt) {
    expect(crashed.signal, describeProc(crashed)).toBe('SIGKILL');
    expect(crashed.code).toBeNull();
  } else {
    // A random moment may come after the run finished: then it must simply have succeeded.
    expect(killed || crashed.code === 0, describeProc(crashed)).toBe(true);
  }

  // What a reader of the destination sees right after the kill: complete files only.
  const seen = await site.out();
  const staged = Object.keys(seen).filter(isStagedName);
  const visible = Object.keys(seen).filter(isFinal);
  const partial = visible.filter((k) => seen[k] !== ref.out[k]);
  expect(partial, "files under a final name that are not the clean run's bytes").toEqual([]);
  const crashState = await site.state();
  if (c.landed) {
    const run = (aud: string) => ref.runs.find((r) => r.audienceId === aud)!;
    const prevSlot = c.day === 1 ? null : s.days[0]!.runs.find((r) => r.audienceId === INCREMENTAL)!.logicalTime;
    await c.landed(
      {
        newFinal: visible.filter((k) => !(k in before)),
        staged,
        state: crashState,
        cursor: async (aud) => {
          const text = await site.readState(`cursors/${aud}.json`);
          return text ? (JSON.parse(text) as { lastSlot: string; runId: string }) : null;
        },
      },
      { run, prevSlot },
    );
  }

  let rerun = await site.audex(at);
  if (site.expireLease && killed) {
    // On S3 the killed run's lease is still live for up to a minute: the rerun says so
    // and exports nothing; once the lease has expired it is taken over. (A random kill
    // may come before the lease was taken.)
    if (c.crashAt) expect(rerun.code, describeProc(rerun)).toBe(1);
    if (rerun.code === 1) {
      expect(rerun.stderr).toMatch(/locked by another audex run .*nothing was exported/s);
      expect(await site.out()).toEqual(seen);
      await site.expireLease();
      rerun = await site.audex(at);
    }
  }
  expect(rerun.code, describeProc(rerun)).toBe(0);
  const rerunRuns = (JSON.parse(rerun.stdout) as JsonSummary).runs;
  expect(
    rerunRuns.every((r) => r.status === 'success'),
    describeProc(rerun),
  ).toBe(true);
  // Only runs of the clean sequence's day (the interrupted one finished with its own id).
  for (const r of rerunRuns) expect(ref.runs.map((x) => x.runId)).toContain(r.runId);
  await expectLikeClean(site, ref, `after the rerun of day ${c.day}`);

  const nextRun = await site.audex(DAYS[c.day]!);
  expect(nextRun.code, describeProc(nextRun)).toBe(0);
  expect((JSON.parse(nextRun.stdout) as JsonSummary).runs.map((r) => [r.runId, r.counts])).toEqual(
    next.runs.map((r) => [r.runId, r.counts]),
  );
  await expectLikeClean(site, next, `after day ${c.day + 1}`);
  return { tmpLeft: site.tmpLeft(), killed };
}

async function expectLikeClean(site: Site, ref: DayRef, when: string): Promise<void> {
  const out = await site.out();
  expect(treeDiff(out, ref.out), `destination ${when}`).toEqual([]);
  const state = await site.state();
  expect(
    treeDiff(Object.fromEntries(Object.entries(state).filter(([k]) => isCursorOrBaseline(k))), ref.state),
    `cursors and baselines ${when}`,
  ).toEqual([]);
  const leftovers = Object.keys(state).filter(
    (k) => /^(pending\/|lock\.json$|lock-probe\/)/.test(k) || isStagedName(k),
  );
  expect(leftovers, `pending records, lock or temp files in the state ${when}`).toEqual([]);
}

// ---------------------------------------------------------------------------------------

const SMALL = { profiles: 20_000, rows: 200 };
/**
 * The representative subset runs at 100k profiles when AUDEX_KILL_PROFILES=100000 (.ci/run
 * runs the file so after npm test); npm test runs it at 20k, with the same part structure,
 * to stay within its time.
 */
const BIG = process.env['AUDEX_KILL_PROFILES'] === '100000' ? { profiles: 100_000, rows: 1_000 } : SMALL;
type Where = 'local' | 's3';

interface SiteCase extends KillCase {
  where: Where;
  size: typeof BIG;
}

const onSite = (where: Where, size: typeof BIG, cases: KillCase[]): SiteCase[] =>
  cases.map((c) => ({ ...c, where, size, name: `${where} ${size.profiles / 1000}k: ${c.name}` }));
const random = (day: 1 | 2, seed: number): KillCase => ({
  name: `day ${day}, random moment (seed ${seed})`,
  day,
  seed,
});

// BIG for a representative subset, 20k for the rest (same dataflow, 200 rows a
// part, so the same part structure: 62 + 29 parts on day 1, 3 + 29 on day 2).
const CASES: SiteCase[] = [
  ...onSite('local', BIG, [
    ...['after-part:2', 'after-manifest', 'after-baseline', 'after-cursor'].map((p) => named(2, p)),
    named(1, 'after-part:30'),
    random(2, 11),
  ]),
  ...onSite('local', SMALL, [
    ...['after-read', 'after-pending', 'after-data', 'after-cursor:2'].map((p) => named(2, p)),
    ...['after-pending', 'after-manifest:2'].map((p) => named(1, p)),
    random(2, 23),
    random(1, 5),
  ]),
  ...onSite('s3', SMALL, [
    ...['after-part:2', 'after-baseline', 'after-cursor'].map((p) => named(2, p)),
    named(1, 'after-part:30'),
    random(2, 101),
  ]),
];

async function siteFor(where: Where, s: Scale, startAfterDay: 0 | 1): Promise<Site> {
  return where === 'local' ? localSite(s, startAfterDay) : s3Site(s, startAfterDay);
}

describe('kill -9 at every step, then run again', () => {
  beforeAll(async () => {
    makeWork();
    const [big, small] = await Promise.all([
      scale(BIG.profiles, BIG.rows),
      scale(SMALL.profiles, SMALL.rows),
      s3Server().then((t) => (s3 = t)),
    ]);
    for (const s of [big, small]) {
      // The shape the cases rely on: several parts per file on both days.
      const parts = s.days.map((d) => d.runs.map((r) => r.files.length));
      expect(parts[0]![0]).toBeGreaterThan(30);
      expect(parts[1]![0]).toBeGreaterThanOrEqual(3);
      expect(parts[1]![1]).toBeGreaterThan(5);
      // Day 2 has entries and exits; day 3 reads the same snapshot: no membership change.
      expect(s.days[1]!.runs[0]!.counts.rowsWritten).toBeGreaterThan(0);
      expect(s.days[2]!.runs[0]!.counts.rowsWritten).toBe(0);
    }
  }, TEST_TIMEOUT);

  /** Whether each random-moment case's kill landed before its run finished. */
  const randomKills: boolean[] = [];

  afterAll(async () => {
    // A random moment may come after the run finished; but if none landed, the random cases tested nothing.
    if (randomKills.length === CASES.filter((c) => c.seed !== undefined).length) {
      expect(
        randomKills.filter(Boolean).length,
        'random-moment kills that landed before the run finished',
      ).toBeGreaterThan(0);
    }
  });

  it.concurrent.each(CASES)(
    '$name',
    async (c) => {
      const s = await scale(c.size.profiles, c.size.rows);
      const { killed } = await killAndRecover(s, await siteFor(c.where, s, c.day === 2 ? 1 : 0), c);
      if (c.seed !== undefined) randomKills.push(killed);
    },
    TEST_TIMEOUT,
  );

  it.concurrent(
    "a committed run keeps its history record when another audience's run is killed",
    async () => {
      const s = await scale(SMALL.profiles, SMALL.rows);
      const site = localSite(s, 0);
      // Day 1: the full audience (29 parts) is done long before the incremental backfill (62
      // parts, rendered before any is published) publishes its last part, pass 91.
      const total = s.days[0]!.runs.reduce((sum, r) => sum + r.files.length, 0);
      const crashed = await site.audex(DAYS[0], { AUDEX_CRASH_AT: `after-part:${total}` });
      expect(crashed.signal).toBe('SIGKILL');
      const state = await site.state();
      const done = s.days[0]!.runs.filter(
        (r) => `cursors/${r.audienceId}.json` in state && !(`pending/${r.runId}.json` in state),
      );
      expect(
        done.map((r) => r.audienceId),
        'precondition: one audience finished (committed, pending record removed) before the kill',
      ).toHaveLength(1);

      const rerun = await site.audex(DAYS[0]);
      expect(rerun.code, describeProc(rerun)).toBe(0);
      const history = Object.keys(await site.state()).filter((k) => k.startsWith(`${stateKeys.historyPrefix}/`));
      // README "State and safety": one history record per run. This one was committed and finished before the kill.
      expect(history).toContain(stateKeys.history(done[0]!.runId, 'success', done[0]!.audienceId));
    },
    TEST_TIMEOUT,
  );

  it.concurrent(
    'the next run removes the scratch folder (staged uploads, downloads) a killed run left in TMPDIR',
    async () => {
      const s = await scale(SMALL.profiles, SMALL.rows);
      const site = await s3Site(s, 1);
      const crashed = await site.audex(DAYS[1], { AUDEX_CRASH_AT: 'after-part:2' });
      expect(crashed.signal).toBe('SIGKILL');
      const left = site.tmpLeft();
      expect(left.length, 'the killed run left its scratch folder').toBeGreaterThan(0);
      await site.expireLease!();
      const rerun = await site.audex(DAYS[1]);
      expect(rerun.code, describeProc(rerun)).toBe(0);
      // README "State and safety": temp files left by a killed run are removed by the next run.
      const after = site
        .tmpLeft()
        .map(
          (d) =>
            `${d}: ${listDeep(path.join(site.tmpDir, d)).length} file(s), e.g. ${listDeep(path.join(site.tmpDir, d)).slice(0, 3).join(', ')}`,
        );
      expect(after).toEqual([]);
    },
    TEST_TIMEOUT,
  );
});

function listDeep(dir: string): string[] {
  return Object.keys(hashTree(dir));
}
