// README "Send to an HTTP endpoint", authentication: secrets and tokens never appear in output, --json, history, state, the
// outbox or dead letters — for every auth flow. Each flow goes through a failed run (the
// outbox and its acks stay in state), a resumed run that dead-letters a request (the
// endpoint's answer echoes the Authorization header it got) and redrive (status and runs
// print from the same state); then every file under the state folder and every output is searched for each
// secret, each token issued, each refresh token and the Basic credentials.
import { describe, expect, it } from 'vitest';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { listFiles } from '../helpers/harness.js';
import { AT, person, trackHttpWorkspaces, webhookConfig } from '../helpers/http-flow.js';
import { startTokenServer, useHttpSink, type RecordedRequest, type TokenServer } from '../helpers/http-sink.js';

const sink = useHttpSink();
const workspace = trackHttpWorkspaces();

const SECRET = 'cs-Qw93-never-print-me';
const PASSWORD = 'pw-Rt56-never-print-me';
const BEARER = 'bearer-Hj71-never-print-me';
const echo = (r: RecordedRequest) => JSON.stringify({ error: 'refused', youSent: r.headers.authorization ?? null });

interface Flow {
  name: string;
  tokens?: Parameters<typeof startTokenServer>[0];
  auth(tokens: TokenServer | null): Record<string, unknown>;
  env: Record<string, string>;
  /** What the endpoint must have seen in Authorization. */
  header: RegExp | null;
}

const FLOWS: Flow[] = [
  { name: 'none', auth: () => ({ type: 'none' }), env: {}, header: null },
  {
    name: 'bearer',
    auth: () => ({ type: 'bearer', token: { env: 'HOOK_TOKEN' } }),
    env: { HOOK_TOKEN: BEARER },
    header: new RegExp(`^Bearer ${BEARER}$`),
  },
  ...(['bodyFormEncoded', 'basicAuthorization'] as const).map((type): Flow => ({
    name: `oauth2ClientCredentials ${type}`,
    tokens: { clientId: 'audex', clientSecret: SECRET, clientAuth: type === 'bodyFormEncoded' ? 'body' : 'basic' },
    auth: (t) => ({
      type: 'oauth2ClientCredentials',
      tokenUrl: t!.url,
      clientId: 'audex',
      clientSecret: { env: 'ACME_SECRET' },
      clientCredentialsType: type,
    }),
    env: { ACME_SECRET: SECRET },
    header: /^Bearer access-/,
  })),
  {
    name: 'oauth2Password with a refresh token',
    tokens: { clientId: 'audex', clientSecret: SECRET, clientAuth: 'body', username: 'hooks', password: PASSWORD },
    auth: (t) => ({
      type: 'oauth2Password',
      tokenUrl: t!.url,
      clientId: 'audex',
      clientSecret: { env: 'ACME_SECRET' },
      username: 'hooks',
      password: { file: 'password.txt' },
    }),
    env: { ACME_SECRET: SECRET },
    header: /^Bearer access-/,
  },
];

describe('HTTP API destination: no secret or token anywhere', () => {
  for (const flow of FLOWS) {
    it(`${flow.name}: not in stdout, stderr, --json, history, state, the outbox or dead letters`, async () => {
      const tokens = flow.tokens ? await startTokenServer(flow.tokens) : null;
      try {
        const ws = workspace();
        ws.snapshot(
          's1',
          '2026-11-20T05:00:00Z',
          ['p1', 'p2', 'p3', 'p4'].map((id) => person(id, { 'aud-vip': 'realized' })),
        );
        writeSecretFile(ws.dir);
        const destination = {
          auth: flow.auth(tokens),
          aggregation: { policy: 'bestEffort', maxUsersPerRequest: 2 },
          concurrency: 1,
        };
        ws.config(webhookConfig(sink.url, destination));
        const outputs: string[] = [];
        const audex = async (args: string[], code: number) => {
          const r = await ws.audex(args, flow.env);
          expect(r.code, r.stdout + r.stderr).toBe(code);
          outputs.push(r.stdout, r.stderr);
          return r;
        };
        // Run 1 (onExhausted: fail): request 2 answers 503 with the Authorization it got, three times.
        sink.reset();
        if (tokens) sink.authorize = tokens.isValid;
        if (flow.name.startsWith('oauth2Password')) {
          // The first token is revoked after the first request: the next one is fetched with the refresh token.
          let revoked = false;
          sink.onRequest = () => {
            if (!revoked) tokens!.revokeAll();
            revoked = true;
          };
        }
        sink.script = [200, ...[0, 1, 2].map(() => ({ status: 503, body: echo }))];
        const failed = await audex(['run', '-c', 'webhook.yaml', '--at', AT, '--json'], 1);
        const runId = (JSON.parse(failed.stdout) as { runs: { runId: string }[] }).runs[0]!.runId;
        const outbox = path.join(ws.dir, 'state', 'http', 'runs', runId, 'requests.ndjson');
        expect(listFiles(path.join(ws.dir, 'state'))).toContain(`http/runs/${runId}/requests.ndjson`);
        const stateWithOutbox = stateText(ws.dir);
        expect(stateWithOutbox).toContain(readFileSync(outbox, 'latin1'));

        // Run 2 (onExhausted: deadLetter): request 2 is refused for good, still echoing; the run commits.
        ws.config(webhookConfig(sink.url, { ...destination, onExhausted: 'deadLetter' }));
        sink.byKey.set(`${runId}-2`, [{ status: 400, body: echo }]);
        await audex(['run', '-c', 'webhook.yaml', '--at', AT, '--json'], 1);
        expect(listFiles(path.join(ws.dir, 'state', 'dead-letter'))).toEqual([`${runId}-2.json`]);
        const stateWithDeadLetter = stateText(ws.dir);
        await audex(['redrive', '-c', 'webhook.yaml', '--json'], 0);

        // The endpoint did get the credentials (so each one was there to leak) and answered with them.
        const sent = sink.requests.map((q) => q.headers.authorization);
        if (flow.header) for (const h of sent) expect(h).toMatch(flow.header);
        else expect(sent.every((h) => h === undefined)).toBe(true);
        if (flow.name.startsWith('oauth2Password'))
          expect(tokens!.requests.map((t) => t.grant)).toContain('refresh_token');
        const secrets = [
          ...Object.values(flow.env),
          ...(flow.name.startsWith('oauth2Password') ? [PASSWORD] : []),
          ...(tokens
            ? [...tokens.issued, ...tokens.refreshIssued, Buffer.from(`audex:${SECRET}`).toString('base64')]
            : []),
        ];
        expect(secrets.length > 0).toBe(flow.name !== 'none');
        const everything = [...outputs, stateWithOutbox, stateWithDeadLetter, stateText(ws.dir)].join('\n');
        for (const secret of secrets) expect(everything, secret).not.toContain(secret);
      } finally {
        await tokens?.close();
      }
    });
  }
});

/** Every file under the state folder, as text (the outbox, acks, baselines, history, dead letters…). */
function stateText(dir: string): string {
  const root = path.join(dir, 'state');
  return listFiles(root)
    .map((f) => `${f}\n${readFileSync(path.join(root, f), 'latin1')}`)
    .join('\n');
}

function writeSecretFile(dir: string): void {
  // oauth2Password reads its password from { file }: the other secret form.
  const file = path.join(dir, 'password.txt');
  writeFileSync(file, `${PASSWORD}\n`);
}
