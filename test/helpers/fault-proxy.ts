// The suite's one fault-injecting HTTP proxy, for the S3 tests: the proxy of the test S3
// server (s3-server.ts) applies these rules (after its bad-credential answers), and the reliability tests start one of
// their own per test case in front of it (startFaultProxy):
//
//   audex → fault proxy (startFaultProxy) → test S3 server's proxy (rules, conditional writes) → s3rver
//
// One per test case, so cases with faults on shared objects (the snapshot listing, a part)
// can run side by side. Rules match on method, path AND query (a ListObjectsV2 is
// `GET /bucket?list-type=2…`, a CompleteMultipartUpload `POST /bucket/key?uploadId=…`)
// and act:
//   error          answer an S3 error (status + code) without forwarding;
//   reset          drop the connection (TCP reset) before forwarding;
//   stall          hold the request `ms`, then forward it, or drop the connection;
//   truncate       forward, but cut the response body off after `afterBytes`;
//   lose-response  forward (the write happens), then drop the connection instead of answering.
// Every request is recorded (method, path + query, the rule that hit, if any).
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export interface ProxyRequest {
  method: string;
  /** Decoded path: /bucket/key. */
  path: string;
  query: URLSearchParams;
  headers: http.IncomingHttpHeaders;
}

export type FaultAction =
  /** `message` may echo the request (as some stores echo the Authorization header). */
  | { kind: 'error'; status: number; code: string; message?: (r: ProxyRequest) => string }
  | { kind: 'reset' }
  | { kind: 'stall'; ms: number; then: 'forward' | 'reset' }
  | { kind: 'truncate'; afterBytes: number }
  | { kind: 'lose-response' };

export interface FaultRule {
  name: string;
  match: (r: ProxyRequest) => boolean;
  action: FaultAction;
  /** How many matching requests it acts on (default: all). */
  times?: number;
  /** How many it acted on so far. */
  hits: number;
}

export interface SeenRequest {
  method: string;
  url: string;
  fault: string | null;
  /** The access key id of the request's signature, if signed. */
  accessKeyId: string | null;
}

export interface FaultProxy {
  endpoint: string;
  rules: FaultRule[];
  requests: SeenRequest[];
  close(): Promise<void>;
}

export function rule(
  name: string,
  match: (r: ProxyRequest) => boolean,
  action: FaultAction,
  times?: number,
): FaultRule {
  return { name, match, action, ...(times === undefined ? {} : { times }), hits: 0 };
}

function drop(socket: Socket): void {
  // A TCP reset where Node offers it (≥ 18.3), else a plain close.
  const s = socket as Socket & { resetAndDestroy?: () => void };
  if (typeof s.resetAndDestroy === 'function') s.resetAndDestroy();
  else s.destroy();
}

export interface FaultProxyOptions {
  /**
   * Access key ids to replace in the signature's Credential before forwarding (s3rver
   * knows one key id and does not check signatures), so tests can use recognisable ones.
   */
  accessKeyIds?: Record<string, string>;
  /**
   * Requests that go upstream one at a time. s3rver crashes (an unhandled ENOENT) when a
   * PutObject into a folder races the DeleteObject that empties and removes that folder —
   * e.g. several audex processes' lock probes at once; real S3 has no folders.
   */
  serialize?: (r: ProxyRequest) => boolean;
}

/** The request as rules see it. */
export function toProxyRequest(req: http.IncomingMessage): ProxyRequest {
  const url = new URL(req.url ?? '/', 'http://proxy');
  return {
    method: req.method ?? 'GET',
    path: decodeURIComponent(url.pathname),
    query: url.searchParams,
    headers: req.headers,
  };
}

/** The first rule that matches and has acts left, counted as hit; null when none does. */
export function takeRule(rules: FaultRule[], request: ProxyRequest): FaultRule | null {
  const hit = rules.find((r) => (r.times === undefined || r.hits < r.times) && r.match(request));
  if (hit) hit.hits += 1;
  return hit ?? null;
}

/** Acts on a request as the rule says (answers, drops or forwards it). */
export function applyFault(
  action: FaultAction,
  req: http.IncomingMessage,
  res: http.ServerResponse,
  upstream: string,
  request: ProxyRequest,
): void {
  switch (action.kind) {
    case 'error': {
      req.resume();
      const message = (action.message?.(request) ?? 'injected by the fault proxy')
        .replace(/&/g, '&amp;')
        .replace(/</g, '&lt;')
        .replace(/>/g, '&gt;');
      const body = `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${action.code}</Code><Message>${message}</Message><RequestId>fault-proxy</RequestId></Error>`;
      res.writeHead(action.status, {
        'content-type': 'application/xml',
        'content-length': request.method === 'HEAD' ? 0 : Buffer.byteLength(body),
      });
      res.end(request.method === 'HEAD' ? undefined : body);
      return;
    }
    case 'reset':
      req.resume();
      drop(req.socket);
      return;
    case 'stall':
      req.pause();
      setTimeout(() => {
        if (action.then === 'reset') drop(req.socket);
        else void forward(req, res, upstream, {});
      }, action.ms);
      return;
    case 'truncate':
      void forward(req, res, upstream, { truncateAfter: action.afterBytes });
      return;
    case 'lose-response':
      void forward(req, res, upstream, { loseResponse: true });
      return;
  }
}

export async function startFaultProxy(upstream: string, options: FaultProxyOptions = {}): Promise<FaultProxy> {
  const proxy: FaultProxy = { endpoint: '', rules: [], requests: [], close: async () => undefined };
  let queue: Promise<void> = Promise.resolve();
  const server = http.createServer((req, res) => {
    const request = toProxyRequest(req);
    const hit = takeRule(proxy.rules, request);
    const accessKeyId = /Credential=([^/,\s]+)/.exec(req.headers.authorization ?? '')?.[1] ?? null;
    proxy.requests.push({ method: request.method, url: req.url ?? '/', fault: hit?.name ?? null, accessKeyId });
    const mapped = accessKeyId === null ? undefined : options.accessKeyIds?.[accessKeyId];
    if (mapped !== undefined)
      req.headers.authorization = req.headers.authorization!.replace(
        `Credential=${accessKeyId}/`,
        `Credential=${mapped}/`,
      );
    if (hit) return applyFault(hit.action, req, res, upstream, request);
    if (options.serialize?.(request)) {
      queue = queue.then(() => forward(req, res, upstream, {}));
      return;
    }
    void forward(req, res, upstream, {});
  });
  const sockets = new Set<Socket>();
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  // Node closes a keep-alive connection after 5 s idle: a request the client writes on it at
  // that moment fails with ECONNRESET before the proxy sees it, an attempt no rule counts (a
  // slow machine made 'fault hits' read 4 instead of 5). Idle connections stay open instead.
  server.keepAliveTimeout = 120_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  proxy.endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  proxy.close = async () => {
    for (const s of sockets) s.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };
  return proxy;
}

/** Forwards a request; resolves once the exchange is over (answered, cut or failed). */
export function forward(
  req: http.IncomingMessage,
  res: http.ServerResponse,
  upstream: string,
  how: { truncateAfter?: number; loseResponse?: boolean } = {},
): Promise<void> {
  return new Promise((resolve) => {
    res.on('close', () => resolve());
    // Node answered `Expect: 100-continue` already; the upstream gets the body without it.
    const headers = { ...req.headers };
    delete headers.expect;
    const out = http.request(`${upstream}${req.url ?? '/'}`, { method: req.method, headers }, (response) => {
      if (how.loseResponse) {
        response.resume();
        response.on('end', () => {
          drop(req.socket);
          resolve();
        });
        return;
      }
      res.writeHead(response.statusCode ?? 502, response.headers);
      if (how.truncateAfter === undefined) {
        response.pipe(res);
        return;
      }
      let sent = 0;
      const limit = how.truncateAfter;
      response.on('data', (chunk: Buffer) => {
        if (sent >= limit) return;
        if (sent + chunk.length >= limit) {
          res.write(chunk.subarray(0, limit - sent));
          sent = limit;
          response.destroy();
          // Let the partial body reach the client, then cut the connection.
          setTimeout(() => drop(req.socket), 20);
          return;
        }
        sent += chunk.length;
        res.write(chunk);
      });
      response.on('end', () => res.end());
    });
    out.on('error', () => {
      if (!res.headersSent) res.writeHead(502);
      res.end();
      resolve();
    });
    req.pipe(out);
  });
}

// Matchers for the S3 requests audex makes (path-style addressing: /bucket/key).
export const s3Match = {
  /** Any request whose path contains `pathPart` (and, if given, with that method). */
  any: (pathPart: string, method?: string) => (r: ProxyRequest) =>
    (method === undefined || r.method === method) && r.path.includes(pathPart),
  /** ListObjectsV2 on `bucket` whose prefix starts with `prefix` (and, if given, with that delimiter). */
  list: (bucket: string, prefix: string, delimiter?: string) => (r: ProxyRequest) =>
    r.method === 'GET' &&
    r.path.replace(/\/$/, '') === `/${bucket}` &&
    r.query.get('list-type') === '2' &&
    (r.query.get('prefix') ?? '').startsWith(prefix) &&
    (delimiter === undefined || r.query.get('delimiter') === delimiter),
  get: (pathPart: string) => (r: ProxyRequest) =>
    r.method === 'GET' && !r.query.has('list-type') && r.path.includes(pathPart),
  /** A plain PutObject (not a multipart part). */
  put: (pathPart: string) => (r: ProxyRequest) =>
    r.method === 'PUT' && !r.query.has('partNumber') && r.path.includes(pathPart),
  uploadPart: (pathPart: string, partNumber?: number) => (r: ProxyRequest) =>
    r.method === 'PUT' &&
    r.query.has('uploadId') &&
    r.path.includes(pathPart) &&
    (partNumber === undefined || r.query.get('partNumber') === String(partNumber)),
  createMultipart: (pathPart: string) => (r: ProxyRequest) =>
    r.method === 'POST' && r.query.has('uploads') && r.path.includes(pathPart),
  completeMultipart: (pathPart: string) => (r: ProxyRequest) =>
    r.method === 'POST' && r.query.has('uploadId') && r.path.includes(pathPart),
};
