// Sends an outbox (README "Send to an HTTP endpoint"): each line of the outbox file is one request body, line
// n carrying `Idempotency-Key: <runId>-<n>`. Requests already settled are skipped, so a
// resumed run sends only the rest, byte for byte as first built. `concurrency` requests are
// in flight at once, started no faster than `maxRequestsPerSecond`.
//
// Per request: network errors, timeouts, 408, 429 (Retry-After honoured) and 5xx are tried
// again twice with jittered backoff; other 4xx are permanent. A 401/403 fetches a token once
// more (OAuth2); a second one stops the whole delivery as a credentials error (exit 3).
import { createReadStream } from 'node:fs';
import { StorageError } from '../errors.js';
import type { Authenticator } from './auth.js';
import { describeFetchError } from './auth.js';

export interface SendOptions {
  url: string;
  headers: [string, string][];
  timeoutMs: number;
  concurrency: number;
  maxRequestsPerSecond: number;
  auth: Authenticator;
  /** Base of the retry backoff (ms); the n-th retry waits about base·2ⁿ, jittered. */
  backoffMs?: number;
  /** After the first failure, start no new request (in-flight ones finish): the run fails anyway. */
  stopOnFailure?: boolean;
}

export interface Failure {
  seq: number;
  key: string;
  status: number | null;
  error: string;
  response: string;
  attempts: number;
  body: Buffer;
}

export interface SendCallbacks {
  /** A 2xx: the request is acknowledged. */
  onAck(seq: number): Promise<void> | void;
  /** Retries used up, or a permanent 4xx. */
  onFailure(failure: Failure): Promise<void> | void;
}

export interface SendStats {
  sent: number;
  retries: number;
  failed: number;
}

const RETRIES = 2;
const MAX_RETRY_AFTER_MS = 120_000;

/** The lines of a file as bytes, read as they are consumed (bounded memory). */
export async function* readLines(file: string): AsyncGenerator<Buffer> {
  let rest: Buffer[] = [];
  for await (const chunk of createReadStream(file, { highWaterMark: 1 << 20 }) as AsyncIterable<Buffer>) {
    let start = 0;
    for (let i = chunk.indexOf(0x0a); i !== -1; i = chunk.indexOf(0x0a, start)) {
      const piece = chunk.subarray(start, i);
      yield rest.length ? Buffer.concat([...rest, piece]) : piece;
      rest = [];
      start = i + 1;
    }
    if (start < chunk.length) rest.push(chunk.subarray(start));
  }
  if (rest.length) yield Buffer.concat(rest);
}

/** Paces request starts: at most `perSecond`, evenly spaced. */
function pacer(perSecond: number): () => Promise<void> {
  const gap = 1000 / perSecond;
  let next = 0;
  return async () => {
    const now = performance.now();
    const at = Math.max(now, next);
    next = at + gap;
    if (at > now) await sleep(at - now);
  };
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

function retryAfterMs(value: string | null, now: number): number | null {
  if (!value) return null;
  const seconds = Number(value);
  if (Number.isFinite(seconds) && seconds >= 0) return seconds * 1000;
  const date = Date.parse(value);
  return Number.isNaN(date) ? null : Math.max(0, date - now);
}

const isRetryable = (status: number) => status === 408 || status === 429 || status >= 500;

export interface OutgoingRequest {
  seq: number;
  /** The Idempotency-Key: `<runId>-<seq>`, the same on every resend. */
  key: string;
  body: Buffer;
}

/** The unsettled requests of an outbox file (line n = seq n). */
export async function* outboxRequests(
  file: string,
  runId: string,
  settled: Set<number>,
): AsyncGenerator<OutgoingRequest> {
  let seq = 0;
  for await (const line of readLines(file)) {
    seq += 1;
    if (!settled.has(seq) && line.length > 0) yield { seq, key: `${runId}-${seq}`, body: line };
  }
}

export async function sendRequests(
  requests: AsyncIterable<OutgoingRequest>,
  options: SendOptions,
  callbacks: SendCallbacks,
): Promise<SendStats> {
  const stats: SendStats = { sent: 0, retries: 0, failed: 0 };
  const pace = pacer(options.maxRequestsPerSecond);
  const backoff = options.backoffMs ?? 500;
  let fatal: Error | null = null;
  let stopped = false;
  const inFlight = new Set<Promise<void>>();

  const sendOne = async ({ seq, key, body }: OutgoingRequest): Promise<void> => {
    let attempts = 0;
    let authRetried = false;
    for (;;) {
      if (fatal) return;
      await pace();
      attempts += 1;
      const authorization = await options.auth.header();
      const headers: Record<string, string> = {};
      for (const [k, v] of options.headers) headers[k] = v;
      headers['Content-Type'] = 'application/json';
      headers['Idempotency-Key'] = key;
      if (authorization) headers['Authorization'] = authorization;
      let status: number | null = null;
      let error = '';
      let response = '';
      let retryAfter: number | null = null;
      try {
        const res = await fetch(options.url, {
          method: 'POST',
          headers,
          body: body as unknown as BodyInit,
          signal: AbortSignal.timeout(options.timeoutMs),
        });
        status = res.status;
        response = (await res.text()).slice(0, 1024);
        retryAfter = retryAfterMs(res.headers.get('retry-after'), Date.now());
      } catch (e) {
        // A timeout or reset while reading the answer of a 2xx still counts as not acknowledged.
        if (status !== null && status >= 200 && status < 300) status = null;
        error = describeFetchError(e);
      }
      if (status !== null && status >= 200 && status < 300) {
        stats.sent += 1;
        await callbacks.onAck(seq);
        return;
      }
      if (status === 401 || status === 403) {
        if (options.auth.refreshable && !authRetried) {
          authRetried = true;
          options.auth.invalidate();
          attempts -= 1;
          continue;
        }
        fatal ??= new StorageError(
          options.auth.scrub(
            `the endpoint ${options.url} refused ${options.auth.describe}: HTTP ${status}${options.auth.refreshable ? ' again after a fresh token' : ''} (request ${key}); ` +
              'check destination.auth. Nothing was committed: the next `audex run` sends the unacknowledged requests again',
          ),
        );
        return;
      }
      const retryable = status === null || isRetryable(status);
      if (retryable && attempts <= RETRIES) {
        stats.retries += 1;
        const jittered = backoff * 2 ** (attempts - 1) * (0.5 + Math.random());
        const wait =
          status === 429 || status === 503
            ? Math.max(jittered, Math.min(retryAfter ?? 0, MAX_RETRY_AFTER_MS))
            : jittered;
        await sleep(wait);
        continue;
      }
      stats.failed += 1;
      if (options.stopOnFailure) stopped = true;
      await callbacks.onFailure({
        seq,
        key,
        status,
        attempts,
        body,
        error: options.auth.scrub(
          status === null
            ? `network error: ${error}`
            : `HTTP ${status}${retryable ? ` after ${RETRIES} retries` : ' (permanent)'}`,
        ),
        response: options.auth.scrub(response),
      });
      return;
    }
  };

  for await (const request of requests) {
    if (fatal || stopped) break;
    while (inFlight.size >= options.concurrency) await Promise.race(inFlight);
    if (fatal || stopped) break;
    const task: Promise<void> = sendOne(request).then(
      () => {
        inFlight.delete(task);
      },
      (e: unknown) => {
        inFlight.delete(task);
        fatal ??= e instanceof Error ? e : new Error(String(e));
      },
    );
    inFlight.add(task);
  }
  await Promise.all(inFlight);
  if (fatal) throw fatal;
  return stats;
}
