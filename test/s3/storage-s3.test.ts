// S3 specifics beyond the storage contract, against s3rver on 127.0.0.1: real 1,000+ key
// listings, multipart uploads, encryption headers, cleanup of incomplete uploads, error
// classification and retries, and the run lease with its conditional-write probe.
import { afterAll, beforeAll, describe, expect, it, onTestFinished, vi } from 'vitest';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { RunFailedError, StorageError } from '../../src/errors.js';
import type { S3Options } from '../../src/config/schema.js';
import { S3Storage, type S3StorageOptions } from '../../src/storage/s3.js';
import { MemoryStorage } from '../../src/storage/memory.js';
import { acquireLock, type Lease } from '../../src/state/lock.js';
import { useS3Server, type S3Test } from '../helpers/s3-server.js';
import { rule, s3Match } from '../helpers/fault-proxy.js';

let s3: S3Test;

const s3Server = useS3Server(['b']);
const temp = mkdtempSync(path.join(tmpdir(), 'audex-s3-test-'));
const clients: S3Client[] = [];
let n = 0;

beforeAll(async () => {
  s3 = await s3Server();
});

afterAll(async () => {
  for (const c of clients) c.destroy();
  rmSync(temp, { recursive: true, force: true });
});

function client(
  endpoint = s3.endpoint,
  accessKeyId = 'S3RVER',
  extra: Partial<ConstructorParameters<typeof S3Client>[0]> = {},
): S3Client {
  const c = new S3Client({
    region: 'us-east-1',
    endpoint,
    forcePathStyle: true,
    credentials: { accessKeyId, secretAccessKey: 'very-secret-value-0123456789' },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    ...extra,
  });
  clients.push(c);
  return c;
}

function store(options: Partial<S3StorageOptions> & { bucket?: string; s3?: S3Options } = {}): S3Storage {
  const { bucket = 'b', ...rest } = options;
  return new S3Storage(
    { bucket, prefix: `t${++n}/root` },
    { configPath: 'destination.path', s3: {}, client: client(), stagingDir: path.join(temp, `staging-${n}`), ...rest },
  );
}

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describe('S3 storage', () => {
  it('lists more than 1,000 keys in two real pages', async () => {
    const st = store();
    const keys = Array.from({ length: 1001 }, (_, i) => `many/${String(i).padStart(4, '0')}.json`);
    const raw = client(s3.bareEndpoint);
    for (let i = 0; i < keys.length; i += 50) {
      await Promise.all(
        keys
          .slice(i, i + 50)
          .map((k) => raw.send(new PutObjectCommand({ Bucket: 'b', Key: `t${n}/root/${k}`, Body: '1' }))),
      );
    }
    s3.requests = [];
    expect(await st.list('many')).toEqual(keys);
    expect(s3.requests.filter((r) => r.method === 'GET' && r.url.includes('list-type=2'))).toHaveLength(2);
  });

  it('publishes a large file as a multipart upload with encryption headers on every write', async () => {
    const st = store({ s3: { sse: 'aws:kms', kmsKeyId: 'alias/audex-test' }, partSize: 5 * 1024 * 1024 });
    const bytes = randomBytes(12 * 1024 * 1024 + 123);
    const staged = await st.stage('big/export.csv.gz');
    writeFileSync(staged, bytes);
    s3.requests = [];
    await st.publish(staged, 'big/export.csv.gz');
    await st.writeText('big/manifest.json', '{}');
    expect(await st.createExclusive('big/lock.json', '{}')).toBe(true);
    const fetched = await st.fetch('big/export.csv.gz', mkdtempSync(path.join(temp, 'scratch-')));
    expect(sha(readFileSync(fetched))).toBe(sha(bytes));
    const creates = s3.requests.filter((r) => r.method === 'POST' && r.url.includes('uploads'));
    const parts = s3.requests.filter((r) => r.method === 'PUT' && r.url.includes('partNumber='));
    expect(creates).toHaveLength(1);
    expect(parts).toHaveLength(3);
    const writes = s3.requests.filter(
      (r) =>
        (r.method === 'PUT' && !r.url.includes('partNumber=')) || (r.method === 'POST' && r.url.includes('uploads')),
    );
    expect(writes).toHaveLength(3);
    for (const w of writes) {
      expect(w.headers['x-amz-server-side-encryption']).toBe('aws:kms');
      expect(w.headers['x-amz-server-side-encryption-aws-kms-key-id']).toBe('alias/audex-test');
    }
  });

  it('a multipart upload that fails leaves nothing under the final key', async () => {
    const st = store({ client: client(s3.endpoint, 'S3RVER', { maxAttempts: 2 }), partSize: 5 * 1024 * 1024 });
    const staged = await st.stage('big/failed.csv.gz');
    writeFileSync(staged, randomBytes(11 * 1024 * 1024));
    s3.faults = [
      rule('upload fails', s3Match.any('big/failed.csv.gz', 'PUT'), {
        kind: 'error',
        status: 503,
        code: 'ServiceUnavailable',
      }),
    ];
    const error = await st.publish(staged, 'big/failed.csv.gz').catch((e: unknown) => e);
    s3.faults = [];
    expect(error).toBeInstanceOf(RunFailedError);
    expect((error as Error).message).toMatch(
      /cannot write s3:\/\/b\/.*big\/failed\.csv\.gz: the store failed transiently/,
    );
    expect(await st.list('big')).toEqual([]);
    expect(existsSync(staged)).toBe(false);
  });

  it('fetches again when a download breaks off midway', async () => {
    const st = store();
    const bytes = randomBytes(200_000);
    const staged = await st.stage('dl/part-00000.parquet');
    writeFileSync(staged, bytes);
    await st.publish(staged, 'dl/part-00000.parquet');
    s3.faults = [
      rule(
        'download breaks off',
        s3Match.any('dl/part-00000.parquet', 'GET'),
        { kind: 'truncate', afterBytes: 70_000 },
        1,
      ),
    ];
    s3.requests = [];
    const file = await st.fetch('dl/part-00000.parquet', mkdtempSync(path.join(temp, 'scratch-')));
    s3.faults = [];
    expect(sha(readFileSync(file))).toBe(sha(bytes));
    expect(s3.requests.filter((r) => r.method === 'GET' && r.url.includes('dl/part-00000.parquet'))).toHaveLength(2);
  });

  it('aborts the incomplete multipart uploads of the named runs only', async () => {
    const st = store();
    const root = `t${n}/root`;
    s3.uploads = [
      { key: `${root}/crm/run1.csv.gz`, uploadId: 'u1' },
      { key: `${root}/crm/run1_2.csv.gz`, uploadId: 'u2' },
      { key: `${root}/crm/other.csv.gz`, uploadId: 'u3' },
      { key: `${root}/crm/deeper/run1.csv.gz`, uploadId: 'u4' },
    ];
    s3.aborted = [];
    try {
      expect(await st.removeStaged('crm', ['run1'])).toBe(2);
      expect(s3.aborted.map((a) => a.uploadId).sort()).toEqual(['u1', 'u2']);
    } finally {
      s3.uploads = null;
    }
    // s3rver itself answers 501 to ListMultipartUploads: tolerated.
    expect(await st.removeStaged('crm', ['run1'])).toBe(0);
  });

  it('retries throttling with backoff, then reports a transient failure (exit 1)', async () => {
    // audex's own client (standard chain, 5 attempts, jittered backoff), not the test one.
    vi.stubEnv('AWS_ACCESS_KEY_ID', 'S3RVER');
    vi.stubEnv('AWS_SECRET_ACCESS_KEY', 'S3RVER');
    vi.stubEnv('AWS_REQUEST_CHECKSUM_CALCULATION', 'WHEN_REQUIRED');
    vi.stubEnv('AWS_RESPONSE_CHECKSUM_VALIDATION', 'WHEN_REQUIRED');
    onTestFinished(() => void vi.unstubAllEnvs());
    const st = new S3Storage(
      { bucket: 'b', prefix: 'retry-root' },
      { configPath: 'state.path', s3: { endpoint: s3.endpoint, forcePathStyle: true, region: 'us-east-1' } },
    );
    await st.writeText('retry/a.json', 'ok');
    s3.faults = [
      rule('throttled twice', s3Match.any('retry/a.json', 'GET'), { kind: 'error', status: 503, code: 'SlowDown' }, 2),
    ];
    expect(await st.readText('retry/a.json')).toBe('ok');
    s3.faults = [
      rule('always failing', s3Match.any('retry/a.json', 'GET'), { kind: 'error', status: 500, code: 'InternalError' }),
    ];
    s3.requests = [];
    const error = await st.readText('retry/a.json').catch((e: unknown) => e);
    s3.faults = [];
    expect(error).toBeInstanceOf(RunFailedError);
    expect((error as Error).message).toMatch(/transient.*InternalError.*after 5 attempts; run audex again/s);
    expect(s3.requests.filter((r) => r.url.includes('retry/a.json'))).toHaveLength(5);
  });

  it('times out a silent connection and reports it as transient', async () => {
    const st = store({
      client: client(s3.endpoint, 'S3RVER', { maxAttempts: 2, requestHandler: { socketTimeout: 300 } }),
    });
    s3.faults = [rule('silent connection', s3Match.any('hang/'), { kind: 'stall', ms: 3_000, then: 'reset' })];
    const error = await st.readText('hang/x.json').catch((e: unknown) => e);
    s3.faults = [];
    expect(error).toBeInstanceOf(RunFailedError);
    expect((error as Error).message).toMatch(/transient/);
  });

  it('classifies credentials, permission and bucket errors (exit 3) without leaking the key', async () => {
    const cases: [string, RegExp][] = [
      ['AUDEXBADKEY0000000001', /InvalidAccessKeyId.*access key id is not known.*AWS_PROFILE/],
      ['AUDEXBADSIG0000000001', /SignatureDoesNotMatch.*secret key does not match/],
      ['AUDEXEXPIRED000000001', /ExpiredToken.*expired/],
      ['AUDEXDENIED0000000001', /AccessDenied.*s3:PutObject on bucket b/],
    ];
    for (const [key, pattern] of cases) {
      const st = store({ client: client(s3.endpoint, key) });
      const error = await st.writeText('x.json', '{}').catch((e: unknown) => e);
      expect(error).toBeInstanceOf(StorageError);
      const message = (error as Error).message;
      expect(message).toMatch(pattern);
      expect(message).toContain('s3://b/');
      expect(message).not.toContain(key);
      expect(message).not.toContain('very-secret-value');
    }
    const missing = store({ bucket: 'no-such-bucket' });
    const error = await missing.list('').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StorageError);
    expect((error as Error).message).toMatch(/NoSuchBucket.*bucket no-such-bucket does not exist.*destination\.path/);
  });

  it('reports a store that cannot be reached (exit 3, naming the endpoint)', async () => {
    const st = store({
      client: client('http://127.0.0.1:9', 'S3RVER', { maxAttempts: 1 }),
      s3: { endpoint: 'http://127.0.0.1:9' },
    });
    const error = await st.readText('x.json').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StorageError);
    expect((error as Error).message).toMatch(/endpoint http:\/\/127\.0\.0\.1:9 cannot be reached/);
  });
});

describe('the run lease on S3', () => {
  const timing = { leaseMs: 1_500, renewMs: 250, recheckMs: 100 };

  it('is exclusive while held, renewed while the run lives, and released at the end', async () => {
    const st = store();
    const release = await acquireLock(st, 'flow', new Date(), timing);
    const first = await st.readVersioned('lock.json');
    await expect(acquireLock(st, 'flow', new Date(), timing)).rejects.toThrow(
      /locked by another audex run \(pid \d+ on .*expires at/,
    );
    await new Promise((r) => setTimeout(r, 2_000));
    // Past the first expiry, but renewed: still held.
    const renewed = await st.readVersioned('lock.json');
    expect(renewed!.version).not.toBe(first!.version);
    expect(JSON.parse(renewed!.text).token).toBe(JSON.parse(first!.text).token);
    await expect(acquireLock(st, 'flow', new Date(), timing)).rejects.toBeInstanceOf(RunFailedError);
    await release.release();
    expect(await st.readText('lock.json')).toBeNull();
    expect(await st.list('')).toEqual([]);
    const again = await acquireLock(st, 'flow', new Date(), timing);
    await again.release();
  });

  it('takes over an expired lease; of two contenders exactly one wins', async () => {
    const st = store();
    const expired = {
      token: 'old',
      holder: 'pid 1 on gone',
      dataflowId: 'flow',
      acquiredAt: '2026-11-20T00:00:00Z',
      expiresAt: '2026-11-20T00:01:00Z',
    };
    await st.writeText('lock.json', JSON.stringify(expired));
    // A long lease here: with the short one, a contender slowed down by a loaded machine
    // could find the winner's fresh lease already expired and rightly take it over.
    const results = await Promise.allSettled(
      [0, 1].map(() => acquireLock(st, 'flow', new Date(), { leaseMs: 30_000, renewMs: 10_000, recheckMs: 100 })),
    );
    const won = results.filter((r) => r.status === 'fulfilled');
    expect(won).toHaveLength(1);
    expect(String((results.find((r) => r.status === 'rejected') as PromiseRejectedResult).reason)).toMatch(
      /locked by another audex run/,
    );
    expect(JSON.parse((await st.readText('lock.json'))!).token).not.toBe('old');
    await (won[0] as PromiseFulfilledResult<Lease>).value.release();
    expect(await st.readText('lock.json')).toBeNull();
  });

  it('stops before the commit point once the lease is lost', async () => {
    const st = store();
    const lease = await acquireLock(st, 'flow', new Date(), timing);
    lease.assertHeld();
    // Another run takes the lease (as it would after an expiry).
    await st.writeText(
      'lock.json',
      JSON.stringify({ token: 'thief', holder: 'elsewhere', expiresAt: new Date(Date.now() + 60_000).toISOString() }),
    );
    await new Promise((r) => setTimeout(r, 600));
    expect(() => lease.assertHeld()).toThrow(/lease .* was lost.*nothing was committed/);
    await lease.release();
    expect(JSON.parse((await st.readText('lock.json'))!).token).toBe('thief');
    expect(await st.readText('cursors/a.json')).toBeNull();
  });

  it('refuses to lock on a store that ignores conditional writes (exit 3, suggesting --no-lock)', async () => {
    const bare = store({ client: client(s3.bareEndpoint) });
    const error = await acquireLock(bare, 'flow', new Date(), timing).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StorageError);
    expect((error as Error).message).toMatch(/ignores conditional writes.*If-None-Match.*--no-lock/s);
    expect(await bare.list('')).toEqual([]);
  });

  it('does not take over a lease read half written (some stores serve that, under the new version); a damaged one it does', async () => {
    // The store answers one read of lock.json with the live lease's new version but only
    // part of its text, as s3rver can while a PUT is still being written to its disk.
    class TornOnce extends MemoryStorage {
      tearNext = false;
      torn = 0;
      override async readVersioned(key: string) {
        const current = await super.readVersioned(key);
        if (key !== 'lock.json' || !current || !this.tearNext) return current;
        this.tearNext = false;
        this.torn += 1;
        return { text: current.text.slice(0, 20), version: current.version };
      }
    }
    const mem = new TornOnce('memory://torn', path.join(temp, 'torn-staging'));
    const lease = await acquireLock(mem, 'flow', new Date(), timing);
    const holder = JSON.parse((await mem.readText('lock.json'))!).token as string;
    mem.tearNext = true;
    await expect(acquireLock(mem, 'flow', new Date(), timing)).rejects.toThrow(
      /locked by another audex run \(pid \d+ on /,
    );
    expect(mem.torn).toBe(1);
    expect(JSON.parse((await mem.readText('lock.json'))!).token).toBe(holder);
    await lease.release();

    // Still unreadable when read again: damaged, so it counts as expired and is taken over.
    await mem.writeText('lock.json', '{"token": "damag');
    const taken = await acquireLock(mem, 'flow', new Date(), timing);
    expect(JSON.parse((await mem.readText('lock.json'))!).token).toMatch(/^[0-9a-f-]{36}$/);
    await taken.release();
    expect(await mem.list('')).toEqual([]);
  });

  it('works the same on the in-memory backend', async () => {
    const mem = new MemoryStorage('memory://lease', path.join(temp, 'mem-staging'));
    const release = await acquireLock(mem, 'flow', new Date(), timing);
    await expect(acquireLock(mem, 'flow', new Date(), timing)).rejects.toBeInstanceOf(RunFailedError);
    await release.release();
    expect(await mem.list('')).toEqual([]);
  });
});
