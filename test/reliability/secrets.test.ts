// Credentials never leak (README "Run against S3", RELIABILITY.md "Secrets"): with
// recognisable fake credentials in the environment (AWS_ACCESS_KEY_ID,
// AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN) — or in a shared credentials file picked by
// AWS_PROFILE — none of them appears in stdout, stderr (progress and errors), --json, the
// human summary, `status` / `runs` / `plan` output, or any object audex wrote (data files,
// manifests, cursors, baselines, pending and history records, the lease): for a successful
// run, auth failures (exit 3), a store error that echoes the request's credentials (as
// some S3-compatible stores echo the Authorization header), a transient failure (exit 1)
// and bad input (exit 4). Source, destination and state on S3; every object under the
// dataflow's prefixes is scanned.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { FIXTURE_SNAPSHOTS, crmConfig, runCli, type CliResult } from '../helpers/harness.js';
import {
  rule,
  s3Match,
  startFaultProxy,
  type FaultProxy,
  type FaultRule,
  type ProxyRequest,
} from '../helpers/fault-proxy.js';
import { describeProc } from '../helpers/reliability.js';
import { useS3Server, type S3Test } from '../helpers/s3-server.js';

const DAY1 = '2026-11-20T06:00:00Z';
const DAY2 = '2026-11-21T06:00:00Z';
const TIMEOUT = 60_000;

// Recognisable, and shaped so that only knowing the values (not a pattern) finds them.
const KEY_ID = 'AUDEXKEYID-q7R2x9';
const SECRET = 'audex-secret-V93kQw-do-not-print';
const TOKEN = 'audex-session-token-Pz41mN-do-not-print';
// Keys the test proxy refuses (prefix), as AWS would.
const DENIED_KEY_ID = 'AUDEXDENIED-q7R2x9';
const UNKNOWN_KEY_ID = 'AUDEXBADKEY-q7R2x9';
const EXPIRED_KEY_ID = 'AUDEXEXPIRED-q7R2x9';
// Realistic shapes, for credentials that come from a profile file (not the environment).
const PROFILE_KEY_ID = 'ASIAZ3AUDEXPROFILE7Q';
const PROFILE_SECRET = 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYAUDEXSECRET';
const PROFILE_TOKEN = `IQoJb3JpZ2luX2VjEAUDEX${'Zm9vYmFyYmF6cXV4'.repeat(12)}/AUDEX+TOKEN==`;

/** The file's temp folder, made by the first beforeAll (not at import: a filtered run that skips every test runs no hook). */
let work = '';
const makeWork = () => (work ||= mkdtempSync(path.join(tmpdir(), 'audex-secrets-')));
let s3: S3Test;
const s3Server = useS3Server(['lake', 'exports']);
let n = 0;

beforeAll(async () => {
  makeWork();
  s3 = await s3Server();
  await s3.putTree(FIXTURE_SNAPSHOTS, 'lake', 'snapshots');
  // A snapshot with a bad record, for the exit-4 case.
  const bad = path.join(work, 'bad-snapshots', 'snap-bad');
  mkdirSync(path.join(bad, 'profiles'), { recursive: true });
  writeFileSync(
    path.join(bad, 'profiles', 'part-00000.ndjson'),
    `${JSON.stringify({ profileId: 'p-1', identityMap: { email: [{ id: 'a@example.com' }] }, loyalty: { tier: 'gold' }, segmentMembership: { ups: { 'aud-vip': { status: 'realized', lastQualificationTime: '2026-11-19T10:00:00Z' } } } })}\n{"profileId": "p-2", broken\n`,
  );
  writeFileSync(
    path.join(bad, '_snapshot.json'),
    JSON.stringify({
      snapshotId: 'snap-bad',
      evaluatedAt: '2026-11-20T05:00:00Z',
      audiences: [{ id: 'aud-vip', name: 'VIP Customers' }],
    }),
  );
  await s3.putTree(path.join(work, 'bad-snapshots'), 'lake', 'bad-snapshots');
}, TIMEOUT);

afterAll(async () => {
  if (work) rmSync(work, { recursive: true, force: true });
});

interface Flow {
  root: string;
  dir: string;
  proxy: FaultProxy;
  audex(args: string[], env?: Record<string, string>): Promise<CliResult>;
}

async function flow(source = 's3://lake/snapshots'): Promise<Flow> {
  const root = `secrets-${++n}`;
  const dir = path.join(work, root);
  mkdirSync(dir, { recursive: true });
  // s3rver knows a single access key id (and checks no signature): the recognisable ids are mapped to it on the way.
  const proxy = await startFaultProxy(s3.endpoint, {
    accessKeyIds: { [KEY_ID]: 'S3RVER', [PROFILE_KEY_ID]: 'S3RVER' },
  });
  writeFileSync(
    path.join(dir, 'flow.json'),
    JSON.stringify(
      crmConfig({
        id: root,
        source: { snapshots: source },
        destination: { path: `s3://exports/${root}/out` },
        state: { path: `s3://exports/${root}/state` },
        s3: { endpoint: proxy.endpoint, forcePathStyle: true, region: 'us-east-1' },
        format: { type: 'csv', compression: 'none', manifest: true },
      }),
    ),
  );
  const baseEnv = {
    ...s3.env(),
    AWS_ACCESS_KEY_ID: KEY_ID,
    AWS_SECRET_ACCESS_KEY: SECRET,
    AWS_SESSION_TOKEN: TOKEN,
    TMPDIR: dir,
  };
  return {
    root,
    dir,
    proxy,
    audex: (args, env = {}) =>
      runCli([...args.slice(0, 1), '--config', 'flow.json', ...args.slice(1)], {
        cwd: dir,
        env: { ...baseEnv, ...env },
      }),
  };
}

/** Every place a secret could end up: the processes' output and every object of the flow. */
async function expectNoSecret(f: Flow, procs: CliResult[], needles: string[]): Promise<void> {
  const places: [string, string][] = [];
  for (const [i, p] of procs.entries())
    places.push([`process ${i} stdout`, p.stdout], [`process ${i} stderr`, p.stderr]);
  const keys = await s3.listKeys('exports', `${f.root}/`);
  for (const key of keys) places.push([`s3://exports/${key}`, (await s3.getBytes('exports', key))!.toString('latin1')]);
  expect(keys.length + procs.length).toBeGreaterThan(0);
  const leaks = places.flatMap(([where, text]) =>
    needles.filter((s) => text.includes(s)).map((s) => `${s} in ${where}`),
  );
  expect(leaks).toEqual([]);
  // Even a fragment: the first 12 characters of each secret.
  const fragments = places.flatMap(([where, text]) =>
    needles.filter((s) => text.includes(s.slice(0, 12))).map((s) => `${s.slice(0, 12)}… in ${where}`),
  );
  expect(fragments).toEqual([]);
}

const ENV_SECRETS = [KEY_ID, SECRET, TOKEN, DENIED_KEY_ID, UNKNOWN_KEY_ID, EXPIRED_KEY_ID];

/** A store that echoes the request's credentials in its error message. */
const echo = (r: ProxyRequest) =>
  `invalid request; Authorization: ${String(r.headers.authorization)}; x-amz-security-token: ${String(r.headers['x-amz-security-token'])}`;

/** The run, then its commands that read the state (each with --json and without). */
async function runAndInspect(f: Flow, runArgs: string[] = [], env: Record<string, string> = {}): Promise<CliResult[]> {
  const procs: CliResult[] = [];
  // The human form with progress on stderr, then (a day later, or the same failure again) --json.
  procs.push(await f.audex(['run', '--at', DAY1, ...runArgs], env));
  procs.push(await f.audex(['run', '--at', DAY2, '--json', ...runArgs], env));
  f.proxy.rules = [];
  for (const args of [['status', '--json'], ['status'], ['runs'], ['plan', '--at', DAY2, '--json']]) {
    procs.push(await f.audex(args, env));
  }
  return procs;
}

interface SecretCase {
  name: string;
  exit: number;
  env?: Record<string, string>;
  rules?: (root: string) => FaultRule[];
  source?: string;
  /** What the failure must say (it is still a useful message). */
  message?: RegExp;
}

const CASES: SecretCase[] = [
  { name: 'a successful run', exit: 0 },
  {
    name: 'access denied on every request (exit 3)',
    exit: 3,
    env: { AWS_ACCESS_KEY_ID: DENIED_KEY_ID },
    message: /access denied/,
  },
  {
    name: 'an unknown access key id (exit 3)',
    exit: 3,
    env: { AWS_ACCESS_KEY_ID: UNKNOWN_KEY_ID },
    message: /access key id is not known/,
  },
  {
    name: 'expired session credentials (exit 3)',
    exit: 3,
    env: { AWS_ACCESS_KEY_ID: EXPIRED_KEY_ID },
    message: /session credentials have expired/,
  },
  {
    name: 'access denied at the cursor, the store echoing the Authorization header and the token (exit 3)',
    exit: 3,
    rules: (root) => [
      rule('cursor', s3Match.put(`/exports/${root}/state/cursors/`), {
        kind: 'error',
        status: 403,
        code: 'AccessDenied',
        message: echo,
      }),
    ],
    message: /access denied/,
  },
  {
    name: 'an unexpected store error echoing the credentials, at the manifest (exit 3)',
    exit: 3,
    rules: (root) => [
      rule('manifest', s3Match.put(`/exports/${root}/out/`), {
        kind: 'error',
        status: 400,
        code: 'InvalidArgument',
        message: echo,
      }),
    ],
    // The store's message is kept (it helps), with the credentials in it redacted.
    message: /InvalidArgument, HTTP 400\): .*Credential=\[redacted\]/,
  },
  {
    name: 'a transient failure beyond the retries (exit 1)',
    exit: 1,
    rules: (root) => [
      rule('cursor', s3Match.put(`/exports/${root}/state/cursors/`), {
        kind: 'error',
        status: 500,
        code: 'InternalError',
        message: echo,
      }),
    ],
    message: /failed transiently/,
  },
  { name: 'bad input (exit 4)', exit: 4, source: 's3://lake/bad-snapshots', message: /snap-bad has 1 bad record/ },
];

describe('credentials from the environment never appear in output or state', () => {
  it.concurrent.each(CASES)(
    '$name',
    async (c) => {
      const f = await flow(c.source);
      try {
        f.proxy.rules = c.rules?.(f.root) ?? [];
        const procs = await runAndInspect(f, [], c.env);
        const [human, asJson] = procs;
        expect(asJson!.code, describeProc(asJson!)).toBe(c.exit);
        expect(human!.code, describeProc(human!)).toBe(c.exit);
        if (c.message) expect(`${asJson!.stdout}\n${asJson!.stderr}`).toMatch(c.message);
        // The progress lines were on (no --quiet) in the human run, and it said what it did.
        expect(human!.stderr.length).toBeGreaterThan(0);
        if (c.exit === 0) expect(human!.stdout).toMatch(/success +aud-vip/);
        await expectNoSecret(f, procs, ENV_SECRETS);
      } finally {
        await f.proxy.close();
      }
    },
    TIMEOUT,
  );
});

describe('credentials from a profile file never appear either', () => {
  it.concurrent.each([
    { name: 'a successful run', exit: 0, rules: () => [] as FaultRule[] },
    {
      name: 'a store error echoing the credentials (exit 3)',
      exit: 3,
      rules: (root: string) => [
        rule('manifest', s3Match.put(`/exports/${root}/out/`), {
          kind: 'error',
          status: 400,
          code: 'InvalidArgument',
          message: echo,
        }),
      ],
    },
  ])(
    '$name',
    async (c) => {
      const f = await flow();
      try {
        const credentials = path.join(f.dir, 'aws-credentials');
        writeFileSync(
          credentials,
          `[audex-test]\naws_access_key_id = ${PROFILE_KEY_ID}\naws_secret_access_key = ${PROFILE_SECRET}\naws_session_token = ${PROFILE_TOKEN}\n`,
        );
        const env = {
          AWS_PROFILE: 'audex-test',
          AWS_SHARED_CREDENTIALS_FILE: credentials,
          AWS_ACCESS_KEY_ID: '',
          AWS_SECRET_ACCESS_KEY: '',
          AWS_SESSION_TOKEN: '',
        };
        f.proxy.rules = c.rules(f.root);
        const procs = await runAndInspect(f, [], env);
        expect(procs[0]!.code, describeProc(procs[0]!)).toBe(c.exit);
        // The profile's credentials were the ones in use.
        expect(new Set(f.proxy.requests.map((r) => r.accessKeyId))).toEqual(new Set([PROFILE_KEY_ID]));
        await expectNoSecret(f, procs, [PROFILE_KEY_ID, PROFILE_SECRET, PROFILE_TOKEN]);
      } finally {
        await f.proxy.close();
      }
    },
    TIMEOUT,
  );
});
