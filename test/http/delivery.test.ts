// README "Send to an HTTP endpoint" (authentication, delivery) against a real endpoint and a real OAuth2 token endpoint on 127.0.0.1:
// retries (5xx, 429 with Retry-After, resets, stalls), permanent 4xx, onExhausted fail
// (resumed by the next run) and deadLetter (+ redrive), every auth form, token expiry and
// refresh, credential failures (exit 3 naming the token URL), and no secret anywhere.
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { listFiles } from '../helpers/harness.js';
import { AT, person, trackHttpWorkspaces, webhookConfig, type HttpWorkspace } from '../helpers/http-flow.js';
import { startTokenServer, useHttpSink } from '../helpers/http-sink.js';

const sink = useHttpSink();
const workspace = trackHttpWorkspaces();

const S1 = '2026-11-20T05:00:00Z';
const members = (n: number) =>
  Array.from({ length: n }, (_, i) => person(`p${String(i + 1).padStart(2, '0')}`, { 'aud-vip': 'realized' }));

/** A workspace with one snapshot of n members; returns it and the run id its first run will use. */
async function prepared(
  destination: Record<string, unknown>,
  n = 4,
  env: Record<string, string> = {},
): Promise<{ ws: HttpWorkspace; runId: string }> {
  const ws = workspace();
  ws.snapshot('s1', S1, members(n));
  ws.config(webhookConfig(sink.url, { aggregation: { policy: 'bestEffort', maxUsersPerRequest: 2 }, ...destination }));
  const plan = await ws.audex(['plan', '-c', 'webhook.yaml', '--at', AT, '--json'], env);
  expect(plan.code, plan.stderr).toBe(0);
  return { ws, runId: (JSON.parse(plan.stdout) as { runs: { runId: string }[] }).runs[0]!.runId };
}

/** Every byte audex wrote under its state, as text. */
const stateText = (ws: HttpWorkspace) =>
  listFiles(path.join(ws.dir, 'state'))
    .map((f) => readFileSync(path.join(ws.dir, 'state', f), 'latin1'))
    .join('\n');

describe('HTTP API destination: retries and failures', () => {
  it('retries 5xx and 429 (honouring Retry-After) twice, resending the same bytes and key', async () => {
    const { ws, runId } = await prepared({});
    sink.reset();
    sink.byKey.set(`${runId}-1`, [503, { status: 429, headers: { 'Retry-After': '1' } }]);
    const r = await ws.audex(['run', '-c', 'webhook.yaml', '--at', AT, '--json']);
    expect(r.code, r.stderr).toBe(0);
    const tries = sink.requests.filter((q) => q.key === `${runId}-1`);
    expect(tries.map((q) => q.answer)).toEqual([503, 429, 200]);
    expect(new Set(tries.map((q) => q.body.toString('hex'))).size).toBe(1);
    expect(tries[2]!.at - tries[1]!.at).toBeGreaterThanOrEqual(950);
    expect(r.json().runs[0]!.counts).toMatchObject({ requests: 2, acknowledged: 2, retries: 2 });
  });

  it('retries connection resets and timeouts (a stalled endpoint)', async () => {
    const { ws, runId } = await prepared({ timeoutSeconds: 1 });
    sink.reset();
    sink.byKey.set(`${runId}-2`, ['reset', 'stall']);
    const r = await ws.audex(['run', '-c', 'webhook.yaml', '--at', AT, '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(sink.requests.filter((q) => q.key === `${runId}-2`).map((q) => q.answer)).toEqual(['reset', 'stall', 200]);
    expect(r.json().runs[0]!.counts).toMatchObject({ acknowledged: 2, retries: 2 });
  });

  it('onExhausted fail: exit 1, nothing committed; the next run sends only the unacknowledged request, byte-identical', async () => {
    const { ws, runId } = await prepared({});
    sink.reset();
    sink.byKey.set(`${runId}-1`, [500, 502, 500]);
    const failed = await ws.audex(['run', '-c', 'webhook.yaml', '--at', AT]);
    expect(failed.code).toBe(1);
    expect(failed.stdout).toContain(`request ${runId}-1: HTTP 500 after 2 retries`);
    const firstBody = sink.requests.find((q) => q.key === `${runId}-1`)!.body;
    const status = await ws.audex(['status', '-c', 'webhook.yaml', '--json']);
    expect(JSON.parse(status.stdout)).toMatchObject({
      lastDelivered: null,
      outbox: [{ runId, sealed: true, total: 2, acknowledged: 1 }],
    });
    sink.reset();
    const resumed = await ws.audex(['run', '-c', 'webhook.yaml', '--at', AT, '--json']);
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(sink.requests.map((q) => q.key)).toEqual([`${runId}-1`]);
    expect(sink.requests[0]!.body.equals(firstBody)).toBe(true);
    const after = JSON.parse((await ws.audex(['status', '-c', 'webhook.yaml', '--json'])).stdout) as Record<
      string,
      unknown
    >;
    expect(after).toMatchObject({ lastDelivered: { runId, snapshotId: 's1' }, outbox: [] });
    const runs = JSON.parse((await ws.audex(['runs', '-c', 'webhook.yaml', '--json'])).stdout) as {
      runs: { status: string }[];
    };
    expect(runs.runs.map((x) => x.status)).toEqual(['success', 'failed']);
  });

  it('onExhausted deadLetter: a permanent 4xx is kept with its status, the run commits with exit 1, and redrive resends it with its key', async () => {
    const { ws, runId } = await prepared({ onExhausted: 'deadLetter' });
    sink.reset();
    sink.byKey.set(`${runId}-2`, [{ status: 422, body: '{"error":"bad profile"}' }]);
    const r = await ws.audex(['run', '-c', 'webhook.yaml', '--at', AT, '--json']);
    expect(r.code).toBe(1);
    expect(r.json().runs[0]).toMatchObject({
      status: 'success',
      counts: { acknowledged: 1, deadLetters: 1, retries: 0 },
    });
    expect(sink.requests.filter((q) => q.key === `${runId}-2`)).toHaveLength(1); // permanent: not retried
    const letter = JSON.parse(
      readFileSync(path.join(ws.dir, 'state', 'dead-letter', `${runId}-2.json`), 'utf8'),
    ) as Record<string, unknown>;
    expect(letter).toMatchObject({ idempotencyKey: `${runId}-2`, status: 422, response: '{"error":"bad profile"}' });
    expect(letter['body']).toBe(sink.requests.find((q) => q.key === `${runId}-2`)!.body.toString());
    const status = JSON.parse((await ws.audex(['status', '-c', 'webhook.yaml', '--json'])).stdout) as Record<
      string,
      unknown
    >;
    expect(status).toMatchObject({
      lastDelivered: { runId },
      deadLetters: [{ idempotencyKey: `${runId}-2`, status: 422 }],
    });
    sink.reset();
    const redrive = await ws.audex(['redrive', '-c', 'webhook.yaml', '--json']);
    expect(redrive.code, redrive.stderr).toBe(0);
    expect(JSON.parse(redrive.stdout)).toMatchObject({ delivered: 1, failed: [] });
    expect(sink.requests.map((q) => q.key)).toEqual([`${runId}-2`]);
    expect(sink.requests[0]!.body.toString()).toBe(letter['body']);
    expect(listFiles(path.join(ws.dir, 'state', 'dead-letter'))).toEqual([]);
  });
});

describe('HTTP API destination: concurrency', () => {
  it('keeps at most `concurrency` requests in flight', async () => {
    const { ws } = await prepared({ concurrency: 2, maxRequestsPerSecond: 1000 }, 12);
    sink.reset();
    sink.fallback = { status: 200, delayMs: 300 };
    const r = await ws.audex(['run', '-c', 'webhook.yaml', '--at', AT, '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(sink.requests).toHaveLength(6);
    expect(sink.maxInFlight).toBe(2);
  });
});

describe('HTTP API destination: authentication', () => {
  const SECRET = 'cs-Zq81-never-print-me';
  const PASSWORD = 'pw-Lk22-never-print-me';

  it('bearer: the token from { env } in Authorization, never printed or stored (history, dead letters)', async () => {
    const env = { HOOK_TOKEN: 'bearer-Xy7-never-print-me' };
    const { ws, runId } = await prepared(
      { auth: { type: 'bearer', token: { env: 'HOOK_TOKEN' } }, onExhausted: 'deadLetter' },
      4,
      env,
    );
    sink.reset();
    sink.byKey.set(`${runId}-2`, [{ status: 400, body: '{"echo":"Authorization: Bearer bearer-Xy7-never-print-me"}' }]);
    const r = await ws.audex(['run', '-c', 'webhook.yaml', '--at', AT, '--json'], env);
    expect(r.code, r.stderr).toBe(1);
    expect(sink.requests.map((q) => q.headers.authorization)).toEqual([
      'Bearer bearer-Xy7-never-print-me',
      'Bearer bearer-Xy7-never-print-me',
    ]);
    expect(listFiles(path.join(ws.dir, 'state', 'dead-letter'))).toEqual([`${runId}-2.json`]);
    const status = await ws.audex(['status', '-c', 'webhook.yaml', '--json']);
    expect(r.stdout + r.stderr + status.stdout + stateText(ws)).not.toContain('bearer-Xy7');
  });

  for (const clientAuth of ['body', 'basic'] as const) {
    it(`oauth2ClientCredentials (${clientAuth === 'body' ? 'bodyFormEncoded' : 'basicAuthorization'}): a token fetched, and fetched again before it expires`, async () => {
      const tokens = await startTokenServer({ clientId: 'audex', clientSecret: SECRET, clientAuth });
      try {
        // Body form: 1-second tokens over ~2 s of paced requests, so one is fetched again before it
        // expires even when the first token takes a while to arrive (renewal is 0.9 s after it arrives).
        if (clientAuth === 'body') tokens.expiresIn = 1;
        const perSecond = clientAuth === 'body' ? 2 : 4;
        const env = { ACME_SECRET: SECRET };
        const auth = {
          type: 'oauth2ClientCredentials',
          tokenUrl: tokens.url,
          clientId: 'audex',
          clientSecret: { env: 'ACME_SECRET' },
          clientCredentialsType: clientAuth === 'body' ? 'bodyFormEncoded' : 'basicAuthorization',
        };
        const { ws } = await prepared({ auth, concurrency: 1, maxRequestsPerSecond: perSecond }, 10, env);
        sink.reset();
        sink.authorize = tokens.isValid;
        const r = await ws.audex(['run', '-c', 'webhook.yaml', '--at', AT, '--json'], env);
        expect(r.code, r.stderr).toBe(0);
        expect(sink.requests.map((q) => q.answer)).toEqual([200, 200, 200, 200, 200]);
        // Five starts 1/maxRequestsPerSecond apart span 4 gaps (arrivals jitter a little).
        expect(sink.requests.at(-1)!.at - sink.requests[0]!.at).toBeGreaterThanOrEqual((4 * 1000) / perSecond - 300);
        if (clientAuth === 'body') expect(tokens.requests.length).toBeGreaterThanOrEqual(2);
        else expect(tokens.requests).toHaveLength(1);
        expect(tokens.requests.every((t) => t.grant === 'client_credentials' && t.clientAuth === clientAuth)).toBe(
          true,
        );
        expect(r.stdout + r.stderr + stateText(ws)).not.toContain(SECRET);
        for (const token of tokens.issued) expect(r.stdout + r.stderr + stateText(ws)).not.toContain(token);
      } finally {
        await tokens.close();
      }
    });
  }

  it('oauth2Password: password grant, then the refresh token after a 401', async () => {
    const tokens = await startTokenServer({
      clientId: 'audex',
      clientSecret: SECRET,
      clientAuth: 'body',
      username: 'hooks',
      password: PASSWORD,
    });
    try {
      const env = { ACME_SECRET: SECRET, ACME_PASSWORD: PASSWORD };
      const auth = {
        type: 'oauth2Password',
        tokenUrl: tokens.url,
        clientId: 'audex',
        clientSecret: { env: 'ACME_SECRET' },
        username: 'hooks',
        password: { env: 'ACME_PASSWORD' },
      };
      const { ws } = await prepared({ auth, concurrency: 1 }, 4, env);
      sink.reset();
      sink.authorize = tokens.isValid;
      sink.onRequest = () => tokens.revokeAll(); // every token works once
      const r = await ws.audex(['run', '-c', 'webhook.yaml', '--at', AT, '--json'], env);
      expect(r.code, r.stderr).toBe(0);
      expect(sink.requests.map((q) => q.answer)).toEqual([200, 401, 200]);
      expect(tokens.requests.map((t) => t.grant)).toEqual(['password', 'refresh_token']);
      const all = r.stdout + r.stderr + stateText(ws);
      for (const s of [SECRET, PASSWORD, ...tokens.issued, 'refresh-']) expect(all).not.toContain(s);
    } finally {
      await tokens.close();
    }
  });

  it('a token endpoint refusal, or a second 401, is exit 3 naming the token URL, never the secret', async () => {
    const tokens = await startTokenServer({ clientId: 'audex', clientSecret: SECRET, clientAuth: 'body' });
    try {
      const env = { ACME_SECRET: SECRET };
      const auth = {
        type: 'oauth2ClientCredentials',
        tokenUrl: tokens.url,
        clientId: 'audex',
        clientSecret: { env: 'ACME_SECRET' },
      };
      const { ws } = await prepared({ auth }, 4, env);
      tokens.refuse = 401;
      sink.reset();
      const refused = await ws.audex(['run', '-c', 'webhook.yaml', '--at', AT, '--json'], env);
      expect(refused.code).toBe(3);
      expect(refused.stdout).toContain(`the token endpoint ${tokens.url} refused to issue a token: HTTP 401`);
      expect(sink.requests).toHaveLength(0);
      tokens.refuse = null;
      sink.authorize = () => false;
      const rejected = await ws.audex(['run', '-c', 'webhook.yaml', '--at', AT], env);
      expect(rejected.code).toBe(3);
      expect(rejected.stdout).toContain(`refused the token from ${tokens.url}: HTTP 401 again after a fresh token`);
      const all = refused.stdout + refused.stderr + rejected.stdout + rejected.stderr + stateText(ws);
      for (const s of [SECRET, ...tokens.issued]) expect(all).not.toContain(s);
    } finally {
      await tokens.close();
    }
  });
});
