// README "Several dataflows in one invocation" with an HTTP API dataflow among others: `audex run --config files.yaml --config
// webhook.yaml` runs both in one process, each with its own state and outcome; the HTTP
// dataflow sends what it sends alone, the file dataflow writes what it writes alone, and
// the exit code is the most severe of the dataflows' (cli/exit-codes.ts).
import { describe, expect, it } from 'vitest';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { listFiles } from '../helpers/harness.js';
import { AT, person, trackHttpWorkspaces, webhookConfig, type HttpWorkspace } from '../helpers/http-flow.js';
import { startTokenServer, useHttpSink } from '../helpers/http-sink.js';

const sink = useHttpSink();
const workspace = trackHttpWorkspaces();

const members = () => [
  person('p01', { 'aud-vip': 'realized' }),
  person('p02', { 'aud-vip': 'existing', 'aud-churn': 'realized' }),
  person('p03', { 'aud-churn': 'exited' }),
];

const filesConfig = {
  name: 'Acme Files',
  id: 'acme-files',
  source: { snapshots: './snapshots' },
  destination: { path: './out' },
  format: { type: 'csv' },
  fileName: '%SEGMENT_ID%',
  mapping: [{ source: 'profileId' }, { source: 'person.name.firstName' }, { source: 'segmentMembership.status' }],
  audiences: [{ id: 'aud-vip', mode: 'full', schedule: { frequency: 'daily', trigger: 'afterEvaluation' } }],
};

function prepared(): HttpWorkspace {
  const ws = workspace();
  ws.snapshot('s1', '2026-11-20T05:00:00Z', members());
  ws.config(webhookConfig(sink.url));
  ws.config(filesConfig, 'files.yaml');
  return ws;
}

const outFiles = (ws: HttpWorkspace) =>
  Object.fromEntries(
    listFiles(path.join(ws.dir, 'out'))
      .filter((f) => !f.startsWith('_audex'))
      .map((f) => [f, readFileSync(path.join(ws.dir, 'out', f), 'utf8')]),
  );

describe('HTTP API destination: several dataflows in one invocation', () => {
  it('an HTTP and a file dataflow in one run: each as alone, one --json object each, exit 0', async () => {
    const alone = prepared();
    sink.reset();
    expect((await alone.audex(['run', '-c', 'webhook.yaml', '--at', AT])).code).toBe(0);
    const aloneBodies = sink.requests.map((q) => q.body.toString());
    expect((await alone.audex(['run', '-c', 'files.yaml', '--at', AT])).code).toBe(0);

    const ws = prepared();
    sink.reset();
    const r = await ws.audex(['run', '-c', 'files.yaml', '-c', 'webhook.yaml', '--at', AT, '--json']);
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as {
      dataflows: { config: string; dataflowId: string; runs: { status: string; counts: Record<string, number> }[] }[];
    };
    expect(out.dataflows.map((d) => [path.basename(d.config), d.dataflowId, d.runs.map((x) => x.status)])).toEqual([
      ['files.yaml', 'acme-files', ['success']],
      ['webhook.yaml', 'acme-http', ['success']],
    ]);
    expect(out.dataflows[1]!.runs[0]!.counts).toMatchObject({ messages: 2, requests: 1, acknowledged: 1, entered: 2 });
    expect(sink.requests.map((q) => q.body.toString())).toEqual(aloneBodies);
    expect(outFiles(ws)).toEqual(outFiles(alone));
    expect(Object.keys(outFiles(ws))).toContain('aud-vip.csv');
    // Each keeps its own state: nothing more is due for either.
    sink.reset();
    const again = await ws.audex(['run', '-c', 'files.yaml', '-c', 'webhook.yaml', '--at', AT, '--json']);
    expect(again.code).toBe(0);
    expect(
      (JSON.parse(again.stdout) as { dataflows: { runs: unknown[] }[] }).dataflows.map((d) => d.runs.length),
    ).toEqual([0, 0]);
    expect(sink.requests).toHaveLength(0);
  });

  it('each dataflow removes the temporary file of a lock that a killed run left in its own state', async () => {
    const ws = prepared();
    // A lock is written whole under such a name, then linked to lock.json (storage/local.ts).
    const left = [path.join(ws.dir, 'state'), path.join(ws.dir, 'out', '_audex', 'acme-files')].map((dir) => {
      mkdirSync(dir, { recursive: true });
      const file = path.join(dir, '.lock.json.0b7c1d2e-1111-4222-8333-944455556666.audex-tmp');
      writeFileSync(file, '{"pid":1');
      return file;
    });
    const r = await ws.audex(['run', '-c', 'files.yaml', '-c', 'webhook.yaml', '--at', AT]);
    expect(r.code, r.stderr).toBe(0);
    expect(left.filter((file) => existsSync(file))).toEqual([]);
  });

  it("the exit code is the most severe of the dataflows': a refused token (3) beside a bad config (2) is 3", async () => {
    const ws = prepared();
    ws.config({ ...filesConfig, format: { type: 'xml' } }, 'bad.yaml');
    const tokens = await startTokenServer({ clientId: 'audex', clientSecret: 'cs-never-shown', clientAuth: 'body' });
    try {
      tokens.refuse = 401;
      ws.config(
        webhookConfig(sink.url, {
          auth: {
            type: 'oauth2ClientCredentials',
            tokenUrl: tokens.url,
            clientId: 'audex',
            clientSecret: { env: 'ACME_SECRET' },
          },
        }),
      );
      sink.reset();
      const refused = await ws.audex(['run', '-c', 'bad.yaml', '-c', 'webhook.yaml', '--at', AT, '--json'], {
        ACME_SECRET: 'cs-never-shown',
      });
      expect(refused.code, refused.stderr).toBe(3);
      const entries = (
        JSON.parse(refused.stdout) as {
          dataflows: { runs: { status: string; error?: string }[]; error?: { exitCode: number } }[];
        }
      ).dataflows;
      expect(entries[0]!.error?.exitCode).toBe(2);
      expect(entries[1]!.runs.map((x) => x.status)).toEqual(['failed']);
      expect(entries[1]!.runs[0]!.error).toContain(`the token endpoint ${tokens.url} refused to issue a token`);
      expect(sink.requests).toHaveLength(0);
    } finally {
      await tokens.close();
    }
  });
});
