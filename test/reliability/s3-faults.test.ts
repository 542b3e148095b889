// Injected S3 faults (RELIABILITY.md, README "Run against S3 → Errors"): a fault proxy on
// 127.0.0.1 (test/helpers/fault-proxy.ts) sits between audex and the test S3 server and
// answers chosen requests with 500 InternalError, 503 SlowDown, 403 AccessDenied, a
// connection reset, a stall, a cut-off body or a lost response:
//   the snapshot listing, a GetObject of a snapshot part, a part upload and the
//   CompleteMultipartUpload of a 10 MB data file, and the PutObject of the manifest, the
//   baseline, the cursor and the lease.
// Each case either completes correctly after retries (transient, fewer failures than
// attempts), or fails — exit 1 when transient beyond the retries, exit 3 for auth — with
// the state unchanged: every cursor as before (or, for an audience whose run did succeed,
// the clean run's), every file under a final name a complete file of the clean run. The
// rerun then completes and its output is identical to a clean run's.
//
// Every case is day 2 of a dataflow whose day 1 ran cleanly (its files and state are put in
// place first): an incremental audience (small file, a baseline) and a full one, source,
// destination and state on S3. The cases at the multipart upload read a snapshot whose full
// audience's CSV is ~10 MB (multipart, 8 MiB parts; s3://lake/big/snapshots); the others read
// one with the same profiles and short texts (s3://lake/snapshots), so that each case does not
// move ~40 MB through the proxy and the test server for a fault at a small object.
//
// Stalls: audex's S3 client gives up on a silent socket after 60 s (src/storage/s3-client.ts,
// not configurable), then retries 5 times; a stall longer than that would take minutes per
// case. So stalls here are shorter than the timeout (the request then completes late), or
// end with the connection dropped — what the SDK sees when its own timeout fires.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { stateKeys } from '../../src/state/state-keys.js';
import { runCli, type CliResult, type JsonSummary } from '../helpers/harness.js';
import {
  rule,
  s3Match,
  startFaultProxy,
  type FaultProxy,
  type FaultRule,
  type ProxyRequest,
} from '../helpers/fault-proxy.js';
import { describeProc, reliabilityDataflow, hashTree, isCursorOrBaseline, treeDiff } from '../helpers/reliability.js';
import { useS3Server, type S3Test } from '../helpers/s3-server.js';

const DAY1 = '2026-11-20T07:00:00Z';
const DAY2 = '2026-11-21T07:00:00Z';
const INC = 'aud-inc';
const BIG = 'aud-big';
const PROFILES = 6_000;
const MiB = 1024 * 1024;
const TIMEOUT = 120_000;

/** The file's temp folder, made by the first beforeAll (not at import: a filtered run that skips every test runs no hook). */
let work = '';
const makeWork = () => (work ||= mkdtempSync(path.join(tmpdir(), 'audex-faults-')));
let s3: S3Test;
const s3Server = useS3Server(['lake', 'exports']);
let n = 0;

/** The two snapshot pairs: `big` gives the full audience a ~10 MB CSV (multipart), `small` a ~0.4 MB one. */
type Size = 'big' | 'small';
const SIZES: Size[] = ['big', 'small'];
const BIO_CHARS: Record<Size, number> = { big: 1700, small: 40 };
const snapshotsKey = (size: Size) => (size === 'big' ? 'big/snapshots' : 'snapshots');

/** Deterministic text per profile: ~1.7 kB for `big`, so the full audience's CSV is ~10 MB. */
function bio(i: number, size: Size): string {
  const words = [
    'alpha',
    'bravo',
    'charlie',
    'delta',
    'echo',
    'foxtrot',
    'golf',
    'hotel',
    'india',
    'juliet',
    'kilo',
    'lima',
  ];
  let s = `profile ${i}:`;
  for (let k = 0; s.length < BIO_CHARS[size]; k++) s += ` ${words[(i * 7 + k * 3) % words.length]}${(i + k) % 97}`;
  return s;
}

function profileLine(i: number, day: 1 | 2, size: Size): string {
  const ups: Record<string, unknown> = { [BIG]: { status: 'existing', lastQualificationTime: '2026-10-01T00:00:00Z' } };
  if (i % 40 === 0)
    ups[INC] =
      day === 1 || i % 80 !== 0
        ? { status: 'existing', lastQualificationTime: '2026-10-02T00:00:00Z' }
        : { status: 'exited', lastQualificationTime: '2026-11-21T01:00:00Z' };
  if (i % 40 === 1 && day === 2) ups[INC] = { status: 'realized', lastQualificationTime: '2026-11-21T02:00:00Z' };
  return JSON.stringify({
    profileId: `p-${String(i).padStart(5, '0')}`,
    identityMap: { email: [{ id: `u${i}@example.com` }] },
    bio: bio(i, size),
    loyalty: { tier: ['bronze', 'silver', 'gold'][i % 3] },
    segmentMembership: { ups },
  });
}

function writeSnapshots(snapshotsDir: string, size: Size): void {
  for (const [day, id, evaluatedAt] of [
    [1, 'snap-1', '2026-11-20T05:00:00Z'],
    [2, 'snap-2', '2026-11-21T05:00:00Z'],
  ] as const) {
    const dir = path.join(snapshotsDir, id, 'profiles');
    mkdirSync(dir, { recursive: true });
    for (let part = 0; part < 2; part++) {
      const lines: string[] = [];
      for (let i = part * (PROFILES / 2); i < (part + 1) * (PROFILES / 2); i++) lines.push(profileLine(i, day, size));
      writeFileSync(path.join(dir, `part-0000${part}.ndjson`), `${lines.join('\n')}\n`);
    }
    writeFileSync(
      path.join(snapshotsDir, id, '_snapshot.json'),
      JSON.stringify({
        snapshotId: id,
        evaluatedAt,
        audiences: [
          { id: INC, name: 'Incremental' },
          { id: BIG, name: 'Big' },
        ],
      }),
    );
  }
}

function dataflow(source: string, destination: string, state: string, endpoint?: string): Record<string, unknown> {
  return reliabilityDataflow({
    name: 'Faults',
    id: 'faults',
    snapshots: source,
    destination,
    state,
    ...(endpoint ? { s3: { endpoint, forcePathStyle: true, region: 'us-east-1' } } : {}),
    format: { compression: 'none' },
    columns: { 'identityMap.email': 'email', bio: 'bio', 'loyalty.tier': 'tier', 'segmentMembership.status': 'status' },
    audiences: [
      { id: INC, mode: 'incremental' },
      { id: BIG, mode: 'full' },
    ],
  });
}

interface Clean {
  day1Dir: string;
  day1: { out: Record<string, string>; state: Record<string, string>; cursors: Record<string, string> };
  day2: {
    out: Record<string, string>;
    state: Record<string, string>;
    cursors: Record<string, string>;
    runs: JsonSummary['runs'];
  };
}
/** The clean sequence of each size on local disk: same bytes as on S3 (checked by the no-fault cases). */
const cleanOf = {} as Record<Size, Clean>;

const readCursors = (stateDir: string) =>
  Object.fromEntries(
    [INC, BIG].map((a) => [
      a,
      (() => {
        try {
          return readFileSync(path.join(stateDir, 'cursors', `${a}.json`), 'utf8');
        } catch {
          return '';
        }
      })(),
    ]),
  );

/** Day 1 and day 2 of one size on local disk, the snapshots also put on S3. */
async function cleanSequence(size: Size): Promise<Clean> {
  const snapshotsDir = path.join(work, `snapshots-${size}`);
  writeSnapshots(snapshotsDir, size);
  await s3.putTree(snapshotsDir, 'lake', snapshotsKey(size));
  const dir = path.join(work, `clean-${size}`);
  mkdirSync(dir);
  writeFileSync(path.join(dir, 'flow.json'), JSON.stringify(dataflow(snapshotsDir, './out', './state')));
  const run = (at: string) => runCli(['run', '--config', 'flow.json', '--at', at, '--json', '--quiet'], { cwd: dir });
  const d1 = await run(DAY1);
  expect(d1.code, describeProc(d1)).toBe(0);
  const day1Dir = path.join(work, `clean-${size}-day1`);
  cpSync(path.join(dir, 'out'), path.join(day1Dir, 'out'), { recursive: true });
  cpSync(path.join(dir, 'state'), path.join(day1Dir, 'state'), { recursive: true });
  const day1 = {
    out: hashTree(path.join(dir, 'out')),
    state: hashTree(path.join(dir, 'state'), isCursorOrBaseline),
    cursors: readCursors(path.join(dir, 'state')),
  };
  const d2 = await run(DAY2);
  expect(d2.code, describeProc(d2)).toBe(0);
  const runs = (JSON.parse(d2.stdout) as JsonSummary).runs;
  // The shape the cases rely on: a multipart data file (> 8 MiB) for `big`, a single PUT for
  // `small`, and a small incremental file with entries and exits; snapshot parts over the
  // 100 kB at which a GetObject is cut.
  const big = runs.find((r) => r.audienceId === BIG)!;
  const inc = runs.find((r) => r.audienceId === INC)!;
  if (size === 'big') expect(big.files[0]!.bytes).toBeGreaterThan(8 * MiB);
  expect(big.files[0]!.bytes).toBeLessThan(size === 'big' ? 16 * MiB : MiB);
  expect(inc.counts.rowsWritten).toBeGreaterThan(100);
  expect(statSync(path.join(snapshotsDir, 'snap-2', 'profiles', 'part-00001.ndjson')).size).toBeGreaterThan(200_000);
  return {
    day1Dir,
    day1,
    day2: {
      out: hashTree(path.join(dir, 'out')),
      state: hashTree(path.join(dir, 'state'), isCursorOrBaseline),
      cursors: readCursors(path.join(dir, 'state')),
      runs,
    },
  };
}

beforeAll(async () => {
  makeWork();
  s3 = await s3Server();
  const [big, small] = await Promise.all(SIZES.map(cleanSequence));
  Object.assign(cleanOf, { big, small });
}, TIMEOUT);

afterAll(async () => {
  if (work) rmSync(work, { recursive: true, force: true });
});

interface Flow {
  root: string;
  clean: Clean;
  proxy: FaultProxy;
  audex(): Promise<CliResult>;
  out(): Promise<Record<string, string>>;
  state(): Promise<Record<string, string>>;
  cursors(): Promise<Record<string, string>>;
}

/** A dataflow on S3 under its own prefix, day 1 done, behind its own fault proxy. */
async function flow(size: Size = 'small'): Promise<Flow> {
  const root = `faults-${++n}`;
  const clean = cleanOf[size];
  const proxy = await startFaultProxy(s3.endpoint);
  await s3.putTree(path.join(clean.day1Dir, 'out'), 'exports', `${root}/out`);
  await s3.putTree(path.join(clean.day1Dir, 'state'), 'exports', `${root}/state`);
  const dir = path.join(work, root);
  mkdirSync(dir);
  writeFileSync(
    path.join(dir, 'flow.json'),
    JSON.stringify(
      dataflow(
        `s3://lake/${snapshotsKey(size)}`,
        `s3://exports/${root}/out`,
        `s3://exports/${root}/state`,
        proxy.endpoint,
      ),
    ),
  );
  return {
    root,
    clean,
    proxy,
    audex: () =>
      runCli(['run', '--config', 'flow.json', '--at', DAY2, '--json', '--quiet'], { cwd: dir, env: s3.env() }),
    out: () => s3.tree('exports', `${root}/out`),
    state: () => s3.tree('exports', `${root}/state`),
    cursors: async () =>
      Object.fromEntries(
        await Promise.all(
          [INC, BIG].map(
            async (a) =>
              [a, (await s3.getBytes('exports', `${root}/state/cursors/${a}.json`))?.toString('utf8') ?? ''] as const,
          ),
        ),
      ),
  };
}

type Outcome =
  | { kind: 'recovers' }
  /** The whole invocation stops before any run (listing, reading the snapshot). */
  | { kind: 'stops'; exit: 1 | 3; message: RegExp }
  /** These audiences' runs fail; the others succeed. */
  | { kind: 'fails'; exit: 1 | 3; audiences: string[]; message: RegExp };

interface FaultCase {
  name: string;
  rules: (root: string) => FaultRule[];
  outcome: Outcome;
  /** How often the fault must have been hit (default: its `times`, or ≥ 5 attempts when unlimited). */
  hits?: number;
  /** The faulted invocation must take at least this long (stalls). */
  minMs?: number;
  /** The case needs the multipart data file (the `big` snapshots). */
  big?: true;
}

const E500 = { kind: 'error', status: 500, code: 'InternalError' } as const;
const SLOWDOWN = { kind: 'error', status: 503, code: 'SlowDown' } as const;
const DENIED = { kind: 'error', status: 403, code: 'AccessDenied' } as const;
const RESET = { kind: 'reset' } as const;
const TRANSIENT = /the store failed transiently \(.*\) after 5 attempts; run audex again/;

const listing = () => s3Match.list('lake', 'snapshots/', '/');
const part = () => s3Match.get('/lake/snapshots/snap-2/profiles/part-00001.ndjson');
const bigPart = (root: string) => s3Match.uploadPart(`/exports/${root}/out/${BIG}/`, 2);
const complete = (root: string) => s3Match.completeMultipart(`/exports/${root}/out/${BIG}/`);
const manifest = (root: string) => s3Match.put(`/exports/${root}/out/${INC}/manifest-`);
const manifests = (root: string) => (q: ProxyRequest) =>
  s3Match.put(`/exports/${root}/out/`)(q) && q.path.includes('/manifest-');
const baseline = (root: string) => s3Match.put(`/exports/${root}/state/baselines/`);
const cursor = (root: string) => s3Match.put(`/exports/${root}/state/cursors/`);
const lease = (root: string) => s3Match.put(`/exports/${root}/state/lock.json`);

const CASES: FaultCase[] = [
  { name: 'no fault (the S3 run equals the clean local run)', rules: () => [], outcome: { kind: 'recovers' }, hits: 0 },
  {
    name: 'no fault, a multipart data file (the S3 run equals the clean local run)',
    rules: () => [],
    outcome: { kind: 'recovers' },
    hits: 0,
    big: true,
  },

  // Transient, fewer failures than attempts: the run completes, byte for byte.
  {
    name: 'snapshot listing: 500 twice',
    rules: () => [rule('list', listing(), E500, 2)],
    outcome: { kind: 'recovers' },
  },
  {
    name: 'snapshot listing: connection reset twice',
    rules: () => [rule('list', listing(), RESET, 2)],
    outcome: { kind: 'recovers' },
  },
  {
    name: 'GetObject of a part: 503 SlowDown 4 times (5 attempts)',
    rules: () => [rule('get', part(), SLOWDOWN, 4)],
    outcome: { kind: 'recovers' },
  },
  {
    name: 'GetObject of a part: body cut off twice',
    rules: () => [rule('get', part(), { kind: 'truncate', afterBytes: 100_000 }, 2)],
    outcome: { kind: 'recovers' },
  },
  {
    name: 'GetObject of a part: stalled 2 s, then answered',
    rules: () => [rule('get', part(), { kind: 'stall', ms: 2_000, then: 'forward' }, 1)],
    outcome: { kind: 'recovers' },
    minMs: 2_000,
  },
  {
    name: 'multipart part upload: connection reset twice',
    big: true,
    rules: (r) => [rule('part', bigPart(r), RESET, 2)],
    outcome: { kind: 'recovers' },
  },
  {
    name: 'multipart part upload: 503 SlowDown twice',
    big: true,
    rules: (r) => [rule('part', bigPart(r), SLOWDOWN, 2)],
    outcome: { kind: 'recovers' },
  },
  {
    name: 'CompleteMultipartUpload: 500 twice',
    big: true,
    rules: (r) => [rule('complete', complete(r), E500, 2)],
    outcome: { kind: 'recovers' },
  },
  {
    name: 'manifest PUT: 503 SlowDown once',
    rules: (r) => [rule('manifest', manifest(r), SLOWDOWN, 1)],
    outcome: { kind: 'recovers' },
  },
  {
    name: 'manifest PUT: stalled 2 s, then answered',
    rules: (r) => [rule('manifest', manifest(r), { kind: 'stall', ms: 2_000, then: 'forward' }, 1)],
    outcome: { kind: 'recovers' },
    minMs: 2_000,
  },
  {
    name: 'baseline PUT: connection reset 3 times',
    rules: (r) => [rule('baseline', baseline(r), RESET, 3)],
    outcome: { kind: 'recovers' },
  },
  {
    name: 'cursor PUT: 500 four times (5 attempts)',
    rules: (r) => [rule('cursor', cursor(r), E500, 4)],
    outcome: { kind: 'recovers' },
  },
  {
    name: 'cursor PUT: stalled 1.5 s, then the connection dropped',
    rules: (r) => [rule('cursor', cursor(r), { kind: 'stall', ms: 1_500, then: 'reset' }, 1)],
    outcome: { kind: 'recovers' },
    minMs: 1_500,
  },
  {
    name: 'cursor PUT: written, but the response lost',
    rules: (r) => [rule('cursor', cursor(r), { kind: 'lose-response' }, 1)],
    outcome: { kind: 'recovers' },
  },
  {
    name: 'cursor GET: body cut off once (a state read)',
    rules: (r) => [
      rule('cursor-get', s3Match.get(`/exports/${r}/state/cursors/`), { kind: 'truncate', afterBytes: 20 }, 1),
    ],
    outcome: { kind: 'recovers' },
  },
  {
    name: 'lease PUT (If-None-Match): written, but the response lost',
    rules: (r) => [rule('lease', lease(r), { kind: 'lose-response' }, 1)],
    outcome: { kind: 'recovers' },
  },

  // Transient beyond the retries: exit 1, nothing committed for that run; the rerun finishes it.
  {
    name: 'snapshot listing: 500 on every attempt',
    rules: () => [rule('list', listing(), E500)],
    outcome: { kind: 'stops', exit: 1, message: /cannot list s3:\/\/lake\/snapshots\/.*failed transiently/ },
  },
  {
    name: 'GetObject of a part: 503 SlowDown on every attempt',
    rules: () => [rule('get', part(), SLOWDOWN)],
    outcome: {
      kind: 'stops',
      exit: 1,
      message:
        /cannot read s3:\/\/lake\/snapshots\/snap-2\/profiles\/part-00001\.ndjson.*failed transiently \(SlowDown, HTTP 503\)/,
    },
  },
  {
    name: 'GetObject of a part: body cut off on every attempt',
    rules: () => [rule('get', part(), { kind: 'truncate', afterBytes: 100_000 })],
    outcome: {
      kind: 'stops',
      exit: 1,
      message: /cannot read s3:\/\/lake\/snapshots\/snap-2\/profiles\/part-00001\.ndjson.*failed transiently/,
    },
    hits: 3,
  },
  {
    name: 'multipart part upload: connection reset on every attempt',
    big: true,
    rules: (r) => [rule('part', bigPart(r), RESET)],
    outcome: {
      kind: 'fails',
      exit: 1,
      audiences: [BIG],
      message: /cannot write s3:\/\/exports\/.*\/aud-big\/.*failed transiently/,
    },
  },
  {
    name: 'CompleteMultipartUpload: 500 on every attempt',
    big: true,
    rules: (r) => [rule('complete', complete(r), E500)],
    outcome: { kind: 'fails', exit: 1, audiences: [BIG], message: TRANSIENT },
  },
  {
    name: 'manifest PUTs: 503 SlowDown on every attempt',
    rules: (r) => [rule('manifest', manifests(r), SLOWDOWN)],
    outcome: { kind: 'fails', exit: 1, audiences: [INC, BIG], message: TRANSIENT },
    hits: 10,
  },
  {
    name: 'baseline PUT: 500 on every attempt',
    rules: (r) => [rule('baseline', baseline(r), E500)],
    outcome: { kind: 'fails', exit: 1, audiences: [INC], message: TRANSIENT },
  },
  {
    name: 'cursor PUTs: connection reset on every attempt',
    rules: (r) => [rule('cursor', cursor(r), RESET)],
    outcome: {
      kind: 'fails',
      exit: 1,
      audiences: [INC, BIG],
      message:
        /cannot write s3:\/\/exports\/.*\/cursors\/aud-(inc|big)\.json: the store failed transiently \((ECONNRESET|socket hang up|Unknown)/,
    },
    hits: 10,
  },

  // Credentials / permissions: exit 3, named, state unchanged.
  {
    name: 'snapshot listing: 403 AccessDenied',
    rules: () => [rule('list', listing(), DENIED)],
    outcome: {
      kind: 'stops',
      exit: 3,
      message:
        /cannot list s3:\/\/lake\/snapshots\/ \(AccessDenied, HTTP 403\): access denied; the credentials in use need s3:ListBucket/,
    },
    hits: 1,
  },
  {
    name: 'multipart part upload: 403 AccessDenied',
    big: true,
    rules: (r) => [rule('part', bigPart(r), DENIED)],
    outcome: {
      kind: 'fails',
      exit: 3,
      audiences: [BIG],
      message: /\(AccessDenied, HTTP 403\): access denied; the credentials in use need s3:PutObject/,
    },
    hits: 1,
  },
  {
    name: 'cursor PUTs: 403 AccessDenied',
    rules: (r) => [rule('cursor', cursor(r), DENIED)],
    outcome: {
      kind: 'fails',
      exit: 3,
      audiences: [INC, BIG],
      message: /cursors\/aud-(inc|big)\.json \(AccessDenied, HTTP 403\): access denied/,
    },
    hits: 2,
  },
];

describe('S3 faults at chosen requests', () => {
  it.concurrent.each(CASES)(
    '$name',
    async (c) => {
      const f = await flow(c.big ? 'big' : 'small');
      try {
        f.proxy.rules = c.rules(f.root);
        const faulted = await f.audex();
        const hits = f.proxy.rules.reduce((sum, r) => sum + r.hits, 0);
        const expectedHits = c.hits ?? f.proxy.rules[0]?.times ?? 5;
        if (c.outcome.kind === 'recovers' || c.hits !== undefined)
          expect(hits, `fault hits\n${describeProc(faulted)}`).toBe(expectedHits);
        else expect(hits, `fault hits\n${describeProc(faulted)}`).toBeGreaterThanOrEqual(expectedHits);
        if (c.minMs) expect(faulted.ms).toBeGreaterThanOrEqual(c.minMs);
        f.proxy.rules = [];

        if (c.outcome.kind === 'recovers') {
          expect(faulted.code, describeProc(faulted)).toBe(0);
          await expectClean(f, faulted);
          return;
        }
        expect(faulted.code, describeProc(faulted)).toBe(c.outcome.exit);
        const cursors = await f.cursors();
        const out = await f.out();
        if (c.outcome.kind === 'stops') {
          expect(faulted.stderr).toMatch(c.outcome.message);
          // Nothing was written at all: not a file, not a pending record.
          expect(treeDiff(out, f.clean.day1.out)).toEqual([]);
          expect(cursors).toEqual(f.clean.day1.cursors);
          expect(Object.keys(await f.state()).filter((k) => /^(pending\/|lock\.json$)/.test(k))).toEqual([]);
        } else {
          const runs = (JSON.parse(faulted.stdout) as JsonSummary).runs;
          const failed = runs.filter((r) => r.status === 'failed');
          expect(failed.map((r) => r.audienceId).sort(), describeProc(faulted)).toEqual(
            [...c.outcome.audiences].sort(),
          );
          for (const r of failed) {
            expect(r.error).toMatch(c.outcome.message);
            expect(r.error).toMatch(/The run was not committed; the next `audex run` finishes it/);
          }
          for (const a of [INC, BIG]) {
            // A failed audience's cursor is as before; one that succeeded is the clean run's.
            expect(cursors[a], a).toBe(
              c.outcome.audiences.includes(a) ? f.clean.day1.cursors[a] : f.clean.day2.cursors[a],
            );
          }
          // Readers see only complete files: each is the clean run's file of that name.
          expect(Object.keys(out).filter((k) => out[k] !== f.clean.day2.out[k])).toEqual([]);
          const state = Object.keys(await f.state());
          expect(state).not.toContain('lock.json');
          for (const r of failed) expect(state).toContain(stateKeys.history(r.runId, 'failed', r.audienceId));
        }
        const rerun = await f.audex();
        expect(rerun.code, describeProc(rerun)).toBe(0);
        await expectClean(f, rerun);
      } finally {
        await f.proxy.close();
      }
    },
    TIMEOUT,
  );
});

/** Day 2 as in the clean sequence: same files, manifests, cursors and baselines; nothing left over. */
async function expectClean(f: Flow, p: CliResult): Promise<void> {
  const runs = (JSON.parse(p.stdout) as JsonSummary).runs;
  expect(
    runs.every((r) => r.status === 'success'),
    describeProc(p),
  ).toBe(true);
  for (const r of runs) expect(f.clean.day2.runs.map((x) => x.runId)).toContain(r.runId);
  expect(treeDiff(await f.out(), f.clean.day2.out)).toEqual([]);
  const state = await f.state();
  expect(
    treeDiff(Object.fromEntries(Object.entries(state).filter(([k]) => isCursorOrBaseline(k))), f.clean.day2.state),
  ).toEqual([]);
  expect(Object.keys(state).filter((k) => /^(pending\/|lock\.json$|lock-probe\/)/.test(k))).toEqual([]);
}

// After the commit point (the cursor), a failure must not be reported as "not committed":
// the files were delivered and the next run will not export them again.
describe('S3 faults after the commit point', () => {
  it.concurrent(
    'the pending record cannot be removed (DELETE 500 on every attempt): committed runs are not reported as uncommitted, and their history says success',
    async () => {
      const f = await flow();
      try {
        f.proxy.rules = [
          rule(
            'pending-delete',
            (q) => q.method === 'DELETE' && q.path.includes(`/exports/${f.root}/state/pending/`),
            E500,
          ),
        ];
        const faulted = await f.audex();
        f.proxy.rules = [];
        expect(f.proxy.requests.filter((r) => r.fault).length).toBeGreaterThanOrEqual(5);
        // Both runs reached their commit point: files, manifests, baselines and cursors are the clean run's.
        expect(await f.cursors()).toEqual(f.clean.day2.cursors);
        expect(treeDiff(await f.out(), f.clean.day2.out)).toEqual([]);
        const runs = (JSON.parse(faulted.stdout) as JsonSummary).runs;
        for (const r of runs)
          expect(r.error ?? '', `${r.audienceId} (${r.status})`).not.toMatch(/not committed|nothing was committed/);

        const rerun = await f.audex();
        expect(rerun.code, describeProc(rerun)).toBe(0);
        await expectCleanState(f);
        // README "State and safety": one history record per run, with its status: these runs succeeded.
        const history = Object.keys(await f.state()).filter((k) => k.startsWith(`${stateKeys.historyPrefix}/`));
        for (const r of f.clean.day2.runs)
          expect(history, r.audienceId).toContain(stateKeys.history(r.runId, 'success', r.audienceId));
      } finally {
        await f.proxy.close();
      }
    },
    TIMEOUT,
  );

  it.concurrent(
    'the history record cannot be written (PUT 500 on every attempt): exit 1, but the message does not claim that nothing was committed',
    async () => {
      const f = await flow();
      try {
        f.proxy.rules = [rule('history', s3Match.put(`/exports/${f.root}/state/${stateKeys.historyPrefix}/`), E500)];
        const faulted = await f.audex();
        f.proxy.rules = [];
        expect(faulted.code, describeProc(faulted)).toBe(1);
        expect(faulted.stderr).toMatch(/cannot write s3:\/\/exports\/.*\/state\/runs\//);
        // Both runs were committed before the history write.
        expect(await f.cursors()).toEqual(f.clean.day2.cursors);
        expect(treeDiff(await f.out(), f.clean.day2.out)).toEqual([]);
        expect(faulted.stderr).not.toMatch(/nothing was committed and the state is unchanged/);

        const rerun = await f.audex();
        expect(rerun.code, describeProc(rerun)).toBe(0);
        expect((JSON.parse(rerun.stdout) as JsonSummary).runs).toEqual([]);
        await expectCleanState(f);
      } finally {
        await f.proxy.close();
      }
    },
    TIMEOUT,
  );
});

async function expectCleanState(f: Flow): Promise<void> {
  expect(treeDiff(await f.out(), f.clean.day2.out)).toEqual([]);
  const state = await f.state();
  expect(
    treeDiff(Object.fromEntries(Object.entries(state).filter(([k]) => isCursorOrBaseline(k))), f.clean.day2.state),
  ).toEqual([]);
  expect(Object.keys(state).filter((k) => /^(pending\/|lock\.json$|lock-probe\/)/.test(k))).toEqual([]);
}
