// Safety on S3 through the real CLI: the run lease (contention, takeover, a store that
// ignores conditional writes), credentials and bucket errors (exit 3, no secret in the
// output), and transient failures (retried, then exit 1 with the state unchanged; the
// next run finishes the same run).
import { beforeAll, describe, expect, it } from 'vitest';
import { crmConfig, trackWorkspaces, type CliResult } from '../helpers/harness.js';
import { useS3Server, type S3Test } from '../helpers/s3-server.js';
import { rule, s3Match } from '../helpers/fault-proxy.js';

const DAY1 = '2026-11-20T06:00:00Z';
const SECRET = 'S3RVER-test-secret-do-not-print';

const workspace = trackWorkspaces();
let s3: S3Test;
const s3Server = useS3Server(['lake', 'exports']);
let n = 0;

beforeAll(async () => {
  s3 = await s3Server();
  await s3.putTree(workspace().snapshots, 'lake', 'snapshots');
});

/** A dataflow entirely on S3 under its own prefix. */
function s3Flow(endpoint = s3.endpoint, overrides: Record<string, unknown> = {}) {
  const root = `flow-${++n}`;
  const ws = workspace();
  const config = ws.config(
    crmConfig({
      id: `flow-${n}`,
      source: { snapshots: 's3://lake/snapshots' },
      destination: { path: `s3://exports/${root}/out` },
      state: { path: `s3://exports/${root}/state` },
      s3: { endpoint, forcePathStyle: true },
      ...overrides,
    }),
  );
  const audex = (args: string[], env: Record<string, string> = {}): Promise<CliResult> =>
    ws.audex(['run', '--config', config, '--at', DAY1, ...args], { ...s3.env(), ...env });
  return { root, audex };
}

describe('the run lease on S3', () => {
  it('a live lease makes the second run exit 1 with a clear message; an expired one is taken over', async () => {
    const flow = s3Flow();
    const lease = (expiresAt: Date) =>
      JSON.stringify({
        token: 'other-run',
        holder: 'pid 4242 on ci-runner-7',
        dataflowId: 'x',
        acquiredAt: '2026-11-20T05:59:00Z',
        expiresAt: expiresAt.toISOString(),
      });
    await s3.putText('exports', `${flow.root}/state/lock.json`, lease(new Date(Date.now() + 10 * 60_000)));
    const locked = await flow.audex([]);
    expect(locked.code, locked.stderr).toBe(1);
    expect(locked.stderr).toMatch(
      /locked by another audex run \(pid 4242 on ci-runner-7, since 2026-11-20T05:59:00Z\); nothing was exported/,
    );
    expect(locked.stderr).toMatch(/expires at .*taken over/);
    expect(await s3.listKeys('exports', `${flow.root}/out/`)).toEqual([]);

    await s3.putText('exports', `${flow.root}/state/lock.json`, lease(new Date(Date.now() - 60_000)));
    const taken = await flow.audex(['--json']);
    expect(taken.code, taken.stderr).toBe(0);
    expect(taken.json().runs[0]!.status).toBe('success');
    expect(await s3.getBytes('exports', `${flow.root}/state/lock.json`)).toBeNull();
  });

  it('refuses a store that ignores conditional writes (exit 3) unless --no-lock', async () => {
    const flow = s3Flow(s3.bareEndpoint);
    const refused = await flow.audex([]);
    expect(refused.code, refused.stderr).toBe(3);
    expect(refused.stderr).toMatch(/ignores conditional writes .*If-None-Match.*nothing was exported.*--no-lock/s);
    expect(await s3.listKeys('exports', `${flow.root}/`)).toEqual([]);

    const unlocked = await flow.audex(['--no-lock', '--json']);
    expect(unlocked.code, unlocked.stderr).toBe(0);
    expect(unlocked.json().runs[0]!.counts.rowsWritten).toBeGreaterThan(0);
  });
});

describe('S3 errors', () => {
  it.each([
    [
      'AUDEXBADKEY7EXAMPLE01',
      /cannot write s3:\/\/exports\/flow-\d+\/state\/.*InvalidAccessKeyId.*access key id is not known.*bucket exports/,
    ],
    [
      'AUDEXBADSIG7EXAMPLE01',
      /cannot write s3:\/\/exports\/flow-\d+\/state\/.*SignatureDoesNotMatch.*secret key does not match/,
    ],
  ])('bad credentials (%s) → exit 3 naming the bucket, without the key or the secret', async (key, pattern) => {
    const flow = s3Flow();
    const result = await flow.audex([], { AWS_ACCESS_KEY_ID: key });
    expect(result.code, result.stderr).toBe(3);
    expect(result.stderr).toMatch(pattern);
    for (const secret of [key, SECRET]) {
      expect(result.stderr).not.toContain(secret);
      expect(result.stdout).not.toContain(secret);
    }
  });

  it('no credentials anywhere → exit 3 saying where credentials come from', async () => {
    const flow = s3Flow();
    const result = await flow.audex([], { AWS_ACCESS_KEY_ID: '', AWS_SECRET_ACCESS_KEY: '' });
    expect(result.code, result.stderr).toBe(3);
    expect(result.stderr).toMatch(/no AWS credentials were found; provide them through AWS_PROFILE/);
  });

  it('a missing bucket → exit 3 naming the bucket and the config path', async () => {
    const flow = s3Flow(s3.endpoint, {
      destination: { path: 's3://no-such-bucket/out' },
      state: { path: 's3://no-such-bucket/state' },
    });
    const result = await flow.audex([]);
    expect(result.code, result.stderr).toBe(3);
    expect(result.stderr).toMatch(
      /NoSuchBucket.*bucket no-such-bucket does not exist; check the bucket name in state\.path/,
    );
  });

  it('transient failures are retried, then the run fails (exit 1) uncommitted; the next run finishes it', async () => {
    const flow = s3Flow();
    s3.faults = [
      rule('cursor write fails', s3Match.any(`${flow.root}/state/cursors/`, 'PUT'), {
        kind: 'error',
        status: 500,
        code: 'InternalError',
      }),
    ];
    s3.requests = [];
    let failed: CliResult;
    try {
      failed = await flow.audex(['--json']);
    } finally {
      s3.faults = [];
    }
    expect(failed.code, failed.stderr).toBe(1);
    const run = failed.json().runs[0]!;
    expect(run.status).toBe('failed');
    expect(run.error).toMatch(
      /cannot write s3:\/\/exports\/.*cursors\/aud-vip\.json: the store failed transiently \(InternalError, HTTP 500\) after 5 attempts; run audex again\nThe run was not committed; the next `audex run` finishes it/,
    );
    expect(s3.requests.filter((r) => r.method === 'PUT' && r.url.includes('/cursors/'))).toHaveLength(5);
    const state = await s3.listKeys('exports', `${flow.root}/state/`);
    expect(state.some((k) => k.includes('/cursors/'))).toBe(false);
    expect(state.some((k) => k.includes('/pending/'))).toBe(true);

    const resumed = await flow.audex(['--json']);
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(resumed.json().runs[0]!.runId).toBe(run.runId);
    const after = await s3.listKeys('exports', `${flow.root}/state/`);
    expect(after.some((k) => k.endsWith('/cursors/aud-vip.json'))).toBe(true);
    expect(after.some((k) => k.includes('/pending/'))).toBe(false);
  });

  it('takes the endpoint from AWS_ENDPOINT_URL_S3 when the config has none', async () => {
    const flow = s3Flow(s3.endpoint, { s3: { forcePathStyle: true } });
    const result = await flow.audex(['--json'], { AWS_ENDPOINT_URL_S3: s3.endpoint });
    expect(result.code, result.stderr).toBe(0);
    expect(result.json().runs[0]!.files[0]!.path).toMatch(/^s3:\/\/exports\/flow-\d+\/out\//);
  });
});
