// A real S3-compatible server for the tests: s3rver in a child process on 127.0.0.1 (a
// free port, a fresh temp folder), behind a small proxy that
//   - enforces conditional writes (s3rver ignores them): PutObject with If-None-Match: *
//     on an existing key → 412, with If-Match on another ETag → 412 (missing key → 404);
//   - answers for marked access keys as AWS would for bad credentials
//     (AUDEXBADKEY… → 403 InvalidAccessKeyId, AUDEXBADSIG… → 403 SignatureDoesNotMatch,
//     AUDEXDENIED… → 403 AccessDenied, AUDEXEXPIRED… → 400 ExpiredToken);
//   - applies fault rules (fault-proxy.ts: errors, stalls, truncated bodies, ...) set in `faults`;
//   - optionally emulates ListMultipartUploads / AbortMultipartUpload (s3rver: 501/405);
//   - records every request (method, url, headers) for assertions.
// `bareEndpoint` reaches s3rver directly: a store that ignores conditional writes.
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll } from 'vitest';
import {
  CreateBucketCommand,
  GetObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { applyFault, forward, takeRule, toProxyRequest, type FaultRule } from './fault-proxy.js';

const CHILD = path.join(path.dirname(fileURLToPath(import.meta.url)), 's3rver-child.mjs');

/** The environment an audex process needs to talk to the test server (no real AWS config is read). */
export function s3TestEnv(dir: string, accessKeyId = 'S3RVER'): Record<string, string> {
  return {
    AWS_ACCESS_KEY_ID: accessKeyId,
    AWS_SECRET_ACCESS_KEY: 'S3RVER-test-secret-do-not-print',
    AWS_SESSION_TOKEN: '',
    AWS_PROFILE: '',
    AWS_REGION: 'us-east-1',
    AWS_CONFIG_FILE: path.join(dir, 'no-aws-config'),
    AWS_SHARED_CREDENTIALS_FILE: path.join(dir, 'no-aws-credentials'),
    AWS_EC2_METADATA_DISABLED: 'true',
    AWS_ENDPOINT_URL_S3: '',
    AWS_ENDPOINT_URL: '',
    // s3rver stores streamed uploads with the aws-chunked framing under the SDK's default
    // checksums; real S3 needs neither setting.
    AWS_REQUEST_CHECKSUM_CALCULATION: 'WHEN_REQUIRED',
    AWS_RESPONSE_CHECKSUM_VALIDATION: 'WHEN_REQUIRED',
  };
}

export interface RecordedRequest {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
}

export interface S3Test {
  /** The proxy (enforces conditional writes). */
  endpoint: string;
  /** s3rver itself (ignores conditional writes). */
  bareEndpoint: string;
  dir: string;
  client: S3Client;
  requests: RecordedRequest[];
  /** Fault rules (fault-proxy.ts `rule`), applied before anything else but bad credentials. */
  faults: FaultRule[];
  /** When set, the proxy answers ListMultipartUploads from this list and records aborts. */
  uploads: { key: string; uploadId: string }[] | null;
  aborted: { key: string; uploadId: string }[];
  env(accessKeyId?: string): Record<string, string>;
  createBucket(name: string): Promise<void>;
  /** Uploads every file under a local folder to s3://bucket/prefix/. */
  putTree(localDir: string, bucket: string, prefix: string): Promise<void>;
  putText(bucket: string, key: string, text: string): Promise<void>;
  getBytes(bucket: string, key: string): Promise<Buffer | null>;
  listKeys(bucket: string, prefix?: string): Promise<string[]>;
  /** sha256 of every object under s3://bucket/prefix/, by key relative to the prefix. */
  tree(bucket: string, prefix: string): Promise<Record<string, string>>;
  stop(): Promise<void>;
}

export async function startS3(buckets: string[] = []): Promise<S3Test> {
  const dir = mkdtempSync(path.join(tmpdir(), 'audex-s3rver-'));
  const child = spawn(
    process.execPath,
    ['--openssl-legacy-provider', '--no-deprecation', CHILD, path.join(dir, 'data'), buckets.join(',')],
    {
      stdio: ['pipe', 'pipe', 'inherit'],
    },
  );
  const port = await readPort(child);
  const upstream = `http://127.0.0.1:${port}`;
  const state = {
    requests: [] as RecordedRequest[],
    faults: [] as FaultRule[],
    uploads: null as { key: string; uploadId: string }[] | null,
    aborted: [] as { key: string; uploadId: string }[],
  };
  const proxy = http.createServer((req, res) => void handle(req, res, upstream, state));
  proxy.keepAliveTimeout = 120_000; // as in fault-proxy.ts: no idle connection closed under a request
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  const endpoint = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`;
  const client = new S3Client({
    region: 'us-east-1',
    endpoint: upstream,
    forcePathStyle: true,
    credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
  const test: S3Test = {
    endpoint,
    bareEndpoint: upstream,
    dir,
    client,
    get requests() {
      return state.requests;
    },
    set requests(v) {
      state.requests = v;
    },
    get faults() {
      return state.faults;
    },
    set faults(v) {
      state.faults = v;
    },
    get uploads() {
      return state.uploads;
    },
    set uploads(v) {
      state.uploads = v;
    },
    get aborted() {
      return state.aborted;
    },
    set aborted(v) {
      state.aborted = v;
    },
    env: (accessKeyId) => s3TestEnv(dir, accessKeyId),
    async createBucket(name) {
      await client.send(new CreateBucketCommand({ Bucket: name }));
    },
    async putTree(localDir, bucket, prefix) {
      const files: string[] = [];
      const walk = (rel: string) => {
        for (const name of readdirSync(path.join(localDir, rel))) {
          const child = rel ? `${rel}/${name}` : name;
          if (statSync(path.join(localDir, child)).isDirectory()) walk(child);
          else files.push(child);
        }
      };
      walk('');
      await Promise.all(
        files.map((f) =>
          client.send(
            new PutObjectCommand({
              Bucket: bucket,
              Key: prefix ? `${prefix}/${f}` : f,
              Body: readFileSync(path.join(localDir, f)),
            }),
          ),
        ),
      );
    },
    async putText(bucket, key, text) {
      await client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: text }));
    },
    async getBytes(bucket, key) {
      try {
        const r = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
        return Buffer.from(await r.Body!.transformToByteArray());
      } catch (error) {
        if ((error as { name?: string }).name === 'NoSuchKey') return null;
        throw error;
      }
    },
    async listKeys(bucket, prefix = '') {
      const keys: string[] = [];
      let token: string | undefined;
      do {
        const page = await client.send(
          new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }),
        );
        for (const o of page.Contents ?? []) keys.push(o.Key!);
        token = page.IsTruncated ? page.NextContinuationToken : undefined;
      } while (token);
      return keys.sort();
    },
    async tree(bucket, prefix) {
      const out: Record<string, string> = {};
      for (const key of await test.listKeys(bucket, `${prefix}/`)) {
        out[key.slice(prefix.length + 1)] = createHash('sha256')
          .update((await test.getBytes(bucket, key))!)
          .digest('hex');
      }
      return out;
    },
    async stop() {
      client.destroy();
      proxy.closeAllConnections();
      await new Promise<void>((resolve) => proxy.close(() => resolve()));
      child.stdin?.end();
      child.kill();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return test;
}

/**
 * The test file's (or describe block's) S3 server: started at the first call (from a
 * beforeAll), stopped after the tests of the file or block it was declared in. The
 * suite's one S3 teardown.
 */
export function useS3Server(buckets: string[] = []): () => Promise<S3Test> {
  let server: Promise<S3Test> | undefined;
  afterAll(async () => {
    await server?.then(
      (s) => s.stop(),
      () => undefined,
    );
  });
  return () => (server ??= startS3(buckets));
}

function readPort(child: ChildProcess): Promise<number> {
  return new Promise((resolve, reject) => {
    let buffered = '';
    const timer = setTimeout(() => reject(new Error('s3rver did not start within 20 s')), 20_000);
    child.stdout!.on('data', (d: Buffer) => {
      buffered += d.toString();
      const line = buffered.split('\n')[0];
      if (buffered.includes('\n') && line) {
        clearTimeout(timer);
        resolve((JSON.parse(line) as { port: number }).port);
      }
    });
    child.on('exit', (code) => reject(new Error(`s3rver exited with ${code}`)));
  });
}

interface ProxyState {
  requests: RecordedRequest[];
  faults: FaultRule[];
  uploads: { key: string; uploadId: string }[] | null;
  aborted: { key: string; uploadId: string }[];
}

/** Mutating requests on one key go through one at a time, so check + write is atomic here. */
const keyLocks = new Map<string, Promise<void>>();

async function withKeyLock<T>(key: string, fn: () => Promise<T>): Promise<T> {
  const previous = keyLocks.get(key) ?? Promise.resolve();
  let release!: () => void;
  const mine = new Promise<void>((r) => (release = r));
  keyLocks.set(
    key,
    previous.then(() => mine),
  );
  await previous;
  try {
    return await fn();
  } finally {
    release();
  }
}

async function handle(
  req: http.IncomingMessage,
  res: http.ServerResponse,
  upstream: string,
  state: ProxyState,
): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://proxy');
  const method = req.method ?? 'GET';
  state.requests.push({ method, url: req.url ?? '/', headers: req.headers });
  const accessKey = /Credential=([^/,\s]+)/.exec(req.headers.authorization ?? '')?.[1] ?? '';
  const deny: Record<string, [number, string]> = {
    AUDEXBADKEY: [403, 'InvalidAccessKeyId'],
    AUDEXBADSIG: [403, 'SignatureDoesNotMatch'],
    AUDEXDENIED: [403, 'AccessDenied'],
    AUDEXEXPIRED: [400, 'ExpiredToken'],
  };
  for (const [marker, [status, code]] of Object.entries(deny)) {
    if (accessKey.startsWith(marker))
      return answer(req, res, status, code, {
        AWSAccessKeyId: accessKey,
        StringToSign: `AWS4-HMAC-SHA256 ${accessKey}`,
      });
  }
  const request = toProxyRequest(req);
  const fault = takeRule(state.faults, request);
  if (fault) return applyFault(fault.action, req, res, upstream, request);
  const [bucket = '', ...rest] = decodeURIComponent(url.pathname).slice(1).split('/');
  const key = rest.join('/');
  if (state.uploads && url.searchParams.has('uploads') && method === 'GET')
    return listUploads(req, res, bucket, url.searchParams.get('prefix') ?? '', state.uploads);
  if (state.uploads && url.searchParams.has('uploadId') && method === 'DELETE') {
    const uploadId = url.searchParams.get('uploadId')!;
    state.aborted.push({ key, uploadId });
    state.uploads = state.uploads.filter((u) => u.uploadId !== uploadId);
    req.resume();
    res.writeHead(204).end();
    return;
  }
  const mutating = (method === 'PUT' || method === 'DELETE' || method === 'POST') && key !== '';
  if (!mutating) return forward(req, res, upstream);
  await withKeyLock(`${bucket}/${key}`, async () => {
    const ifNoneMatch = req.headers['if-none-match'];
    const ifMatch = req.headers['if-match'];
    if (method === 'PUT' && !url.searchParams.has('partNumber') && (ifNoneMatch || ifMatch)) {
      const etag = await headEtag(upstream, url.pathname);
      if (ifNoneMatch === '*' && etag !== null) return answer(req, res, 412, 'PreconditionFailed');
      if (ifMatch && etag === null) return answer(req, res, 404, 'NoSuchKey');
      if (ifMatch && ifMatch !== etag) return answer(req, res, 412, 'PreconditionFailed');
    }
    await forward(req, res, upstream);
  });
}

function headEtag(upstream: string, pathname: string): Promise<string | null> {
  return new Promise((resolve, reject) => {
    const r = http.request(`${upstream}${pathname}`, { method: 'HEAD' }, (response) => {
      response.resume();
      resolve(response.statusCode === 200 ? String(response.headers.etag ?? '') : null);
    });
    r.on('error', reject);
    r.end();
  });
}

function xmlEscape(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

function answer(
  req: http.IncomingMessage,
  res: http.ServerResponse,
  status: number,
  code: string,
  extra: Record<string, string> = {},
): void {
  req.resume();
  const fields = Object.entries(extra)
    .map(([k, v]) => `<${k}>${xmlEscape(v)}</${k}>`)
    .join('');
  const body = `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>injected by the test proxy: ${code}</Message>${fields}<RequestId>audex-test</RequestId></Error>`;
  res.writeHead(status, {
    'content-type': 'application/xml',
    'content-length': req.method === 'HEAD' ? 0 : Buffer.byteLength(body),
  });
  res.end(req.method === 'HEAD' ? undefined : body);
}

function listUploads(
  req: http.IncomingMessage,
  res: http.ServerResponse,
  bucket: string,
  prefix: string,
  uploads: { key: string; uploadId: string }[],
): void {
  req.resume();
  const items = uploads
    .filter((u) => u.key.startsWith(prefix))
    .map(
      (u) =>
        `<Upload><Key>${xmlEscape(u.key)}</Key><UploadId>${u.uploadId}</UploadId><Initiated>2026-11-20T00:00:00.000Z</Initiated></Upload>`,
    )
    .join('');
  const body = `<?xml version="1.0" encoding="UTF-8"?>\n<ListMultipartUploadsResult><Bucket>${bucket}</Bucket><Prefix>${xmlEscape(prefix)}</Prefix><IsTruncated>false</IsTruncated>${items}</ListMultipartUploadsResult>`;
  res.writeHead(200, { 'content-type': 'application/xml' });
  res.end(body);
}

/** sha256 of every file under a local folder, by path relative to it. */
export function localTree(root: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (rel: string) => {
    let names: string[];
    try {
      names = readdirSync(path.join(root, rel));
    } catch {
      return;
    }
    for (const name of names) {
      const child = rel ? `${rel}/${name}` : name;
      if (statSync(path.join(root, child)).isDirectory()) walk(child);
      else
        out[child] = createHash('sha256')
          .update(readFileSync(path.join(root, child)))
          .digest('hex');
    }
  };
  walk('');
  return out;
}
