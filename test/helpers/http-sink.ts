// A real HTTP endpoint on 127.0.0.1 for the HTTP API destination's tests: it records every
// request (method, path, query, headers, exact body bytes) and answers from a script
// (statuses, Retry-After, stalls, connection resets), then 200 by default.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { afterAll, beforeAll } from 'vitest';
import type { AddressInfo } from 'node:net';

export interface RecordedRequest {
  method: string;
  path: string;
  query: URLSearchParams;
  headers: IncomingMessage['headers'];
  body: Buffer;
  /** Idempotency-Key header. */
  key: string;
  /** What the sink answered (status, or 'reset' / 'stall'). */
  answer: number | 'reset' | 'stall';
  /** When it arrived (performance.now() of the test process). */
  at: number;
}

/** One scripted answer: a status (with optional headers and body), a reset, or a stall (never answered). */
export type Answer =
  | number
  | {
      status: number;
      headers?: Record<string, string>;
      body?: string | ((r: RecordedRequest) => string);
      delayMs?: number;
    }
  | 'reset'
  | 'stall';

export interface HttpSink {
  url: string;
  requests: RecordedRequest[];
  /** Answers used in order, one per request, before the default. */
  script: Answer[];
  /** Answer for a given Idempotency-Key (checked before the script), e.g. a permanent 400 for one request. */
  byKey: Map<string, Answer[]>;
  /** The default answer once the script is used up. */
  fallback: Answer;
  /** When set, a request this refuses is answered 401 (before the script). */
  authorize?: (authorization: string | undefined) => boolean;
  /** Called for each request after it is recorded (to kill audex at a chosen moment, for example). */
  onRequest?: (r: RecordedRequest) => void;
  /** The most requests that were ever open at once (arrived, not yet answered). */
  maxInFlight: number;
  /** Keys of the requests answered 2xx, in order (with repeats). */
  ackedKeys(): string[];
  /** Every message of every acknowledged request, parsed (array envelopes flattened). */
  ackedMessages(): Record<string, unknown>[];
  reset(): void;
  close(): Promise<void>;
}

export async function startHttpSink(): Promise<HttpSink> {
  const stalled: ServerResponse[] = [];
  const sink: HttpSink = {
    url: '',
    requests: [],
    script: [],
    byKey: new Map(),
    fallback: 200,
    maxInFlight: 0,
    ackedKeys: () =>
      sink.requests.filter((r) => typeof r.answer === 'number' && r.answer >= 200 && r.answer < 300).map((r) => r.key),
    ackedMessages: () =>
      sink.requests
        .filter((r) => typeof r.answer === 'number' && r.answer >= 200 && r.answer < 300)
        .flatMap((r) => {
          const parsed = JSON.parse(r.body.toString('utf8')) as unknown;
          return (Array.isArray(parsed) ? parsed : [parsed]) as Record<string, unknown>[];
        }),
    reset() {
      sink.requests.length = 0;
      sink.script = [];
      sink.byKey.clear();
      sink.fallback = 200;
      sink.onRequest = undefined;
      sink.authorize = undefined;
      sink.maxInFlight = 0;
    },
    close: async () => {
      for (const r of stalled) r.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  let open = 0;
  const server: Server = createServer((req, res) => {
    open += 1;
    sink.maxInFlight = Math.max(sink.maxInFlight, open);
    res.on('close', () => (open -= 1));
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://127.0.0.1');
      const key = String(req.headers['idempotency-key'] ?? '');
      const scripted = sink.byKey.get(key);
      const refused = sink.authorize !== undefined && !sink.authorize(req.headers.authorization);
      const answer: Answer = refused
        ? 401
        : scripted?.length
          ? scripted.shift()!
          : sink.script.length
            ? sink.script.shift()!
            : sink.fallback;
      const recorded: RecordedRequest = {
        method: req.method ?? '',
        path: url.pathname,
        query: url.searchParams,
        headers: req.headers,
        body: Buffer.concat(chunks),
        key,
        answer: typeof answer === 'object' ? answer.status : answer,
        at: performance.now(),
      };
      sink.requests.push(recorded);
      if (answer === 'reset') {
        req.socket.destroy();
        return;
      }
      if (answer === 'stall') {
        stalled.push(res);
        return;
      }
      sink.onRequest?.(recorded);
      const a: Exclude<Answer, number | 'reset' | 'stall'> = typeof answer === 'number' ? { status: answer } : answer;
      setTimeout(() => {
        res.writeHead(a.status, { 'Content-Type': 'application/json', ...(a.headers ?? {}) });
        res.end(
          (typeof a.body === 'function' ? a.body(recorded) : a.body) ??
            (a.status < 300 ? '{"ok":true}' : `{"error":"scripted ${a.status}"}`),
        );
      }, a.delayMs ?? 0);
    });
  });
  server.keepAliveTimeout = 1000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  sink.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return sink;
}

export interface TokenServer {
  url: string;
  /** Token requests: grant type and how the client authenticated. */
  requests: { grant: string; clientAuth: 'basic' | 'body' | 'none'; form: URLSearchParams }[];
  /** Tokens issued, in order. */
  issued: string[];
  /** Refresh tokens issued (password grant), in order. */
  refreshIssued: string[];
  /** Lifetime of issued tokens (seconds). */
  expiresIn: number;
  /** Refuse every token request with this status (e.g. 401). */
  refuse: number | null;
  /** Whether the endpoint checks tokens: the sink's 401 for tokens not issued here. */
  isValid(authorization: string | undefined): boolean;
  /** Revokes every token issued so far (the next use gets a 401 from a checking sink). */
  revokeAll(): void;
  close(): Promise<void>;
}

/**
 * A small OAuth2 token endpoint: client credentials (form body or Basic) and password
 * grants, with refresh tokens for the password grant. It checks the client authentication
 * form it was told to expect and refuses anything else with 401 invalid_client.
 */
export async function startTokenServer(expect: {
  clientId: string;
  clientSecret: string;
  clientAuth: 'basic' | 'body';
  username?: string;
  password?: string;
}): Promise<TokenServer> {
  let n = 0;
  const revoked = new Set<string>();
  const refreshTokens = new Set<string>();
  const t: TokenServer = {
    url: '',
    requests: [],
    issued: [],
    refreshIssued: [],
    expiresIn: 3600,
    refuse: null,
    isValid: (authorization) => {
      const token = authorization?.startsWith('Bearer ') ? authorization.slice(7) : '';
      return t.issued.includes(token) && !revoked.has(token);
    },
    revokeAll: () => {
      for (const token of t.issued) revoked.add(token);
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      const form = new URLSearchParams(body);
      const basic = req.headers.authorization?.startsWith('Basic ')
        ? Buffer.from(req.headers.authorization.slice(6), 'base64').toString()
        : null;
      const clientAuth = basic !== null ? 'basic' : form.has('client_id') ? 'body' : 'none';
      const grant = form.get('grant_type') ?? '';
      t.requests.push({ grant, clientAuth, form });
      const refuse = (status: number, error: string) => {
        res.writeHead(status, { 'Content-Type': 'application/json' });
        res.end(JSON.stringify({ error }));
      };
      if (t.refuse) return refuse(t.refuse, 'access_denied');
      const [id, secret] =
        basic !== null ? basic.split(':').map(decodeURIComponent) : [form.get('client_id'), form.get('client_secret')];
      if (clientAuth !== expect.clientAuth || id !== expect.clientId || secret !== expect.clientSecret)
        return refuse(401, 'invalid_client');
      if (req.headers['content-type']?.split(';')[0] !== 'application/x-www-form-urlencoded')
        return refuse(400, 'invalid_request');
      let refresh: string | undefined;
      if (grant === 'client_credentials') {
        if (expect.username) return refuse(400, 'unsupported_grant_type');
      } else if (grant === 'password') {
        if (form.get('username') !== expect.username || form.get('password') !== expect.password)
          return refuse(400, 'invalid_grant');
        refresh = `refresh-${++n}-tok`;
      } else if (grant === 'refresh_token') {
        const old = form.get('refresh_token') ?? '';
        if (!refreshTokens.has(old)) return refuse(400, 'invalid_grant');
        refreshTokens.delete(old);
        refresh = `refresh-${++n}-tok`;
      } else return refuse(400, 'unsupported_grant_type');
      if (refresh) {
        refresh += `-${Math.random().toString(36).slice(2)}`;
        refreshTokens.add(refresh);
        t.refreshIssued.push(refresh);
      }
      const token = `access-${++n}-${Math.random().toString(36).slice(2)}`;
      t.issued.push(token);
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end(
        JSON.stringify({
          access_token: token,
          token_type: 'Bearer',
          expires_in: t.expiresIn,
          ...(refresh ? { refresh_token: refresh } : {}),
        }),
      );
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  t.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/oauth/token`;
  return t;
}

/** The sink of a test file: started before its tests, closed after them. */
export function useHttpSink(): HttpSink {
  let real: HttpSink | null = null;
  beforeAll(async () => {
    real = await startHttpSink();
  });
  afterAll(async () => {
    await real?.close();
  });
  const target = () => {
    if (!real) throw new Error('the sink starts in beforeAll');
    return real;
  };
  return new Proxy({} as HttpSink, {
    get: (_, key) => target()[key as keyof HttpSink],
    set: (_, key, value) => {
      (target() as unknown as Record<string | symbol, unknown>)[key] = value;
      return true;
    },
  });
}
