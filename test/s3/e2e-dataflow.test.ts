// The demo-like dataflows through the real CLI with source, destination and state on S3
// (s3rver on 127.0.0.1 behind the conditional-write proxy), and mixed with local disk:
// two days in a row (backfill, then incremental) must give the same bytes as on local
// disk, with manifests, cursors, baselines and history on S3, and nothing left behind.
import { beforeAll, describe, expect, it } from 'vitest';
import { mkdirSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { crmConfig, trackWorkspaces, type CliResult, type Workspace } from '../helpers/harness.js';
import { localTree, useS3Server, type S3Test } from '../helpers/s3-server.js';
import { stateKeys } from '../../src/state/state-keys.js';

const DAY1 = '2026-11-20T06:00:00Z';
const DAY2 = '2026-11-21T06:00:00Z';

const workspace = trackWorkspaces();
let s3: S3Test;
const s3Server = useS3Server(['lake', 'exports']);

beforeAll(async () => {
  s3 = await s3Server();
  await s3.putTree(workspace().snapshots, 'lake', 'snapshots');
});

const flows: Record<string, Record<string, unknown>> = {
  csv: crmConfig({
    audiences: [
      {
        id: 'aud-vip',
        mode: 'incremental',
        schedule: { frequency: 'daily', startTime: '05:30', startDate: '2026-11-01' },
      },
      { id: 'aud-churn', mode: 'full', schedule: { frequency: 'daily', trigger: 'afterEvaluation' } },
    ],
  }),
  parquet: crmConfig({ id: 'acme-pq', format: { type: 'parquet', compression: 'gzip' } }),
};

/** Runs the CLI with the test server's environment and a private TMPDIR (checked empty afterwards). */
async function run(ws: Workspace, config: string, at: string): Promise<CliResult> {
  const tmp = path.join(ws.dir, 'tmp');
  mkdirSync(tmp, { recursive: true });
  const result = await ws.audex(['run', '--config', config, '--at', at, '--json'], { ...s3.env(), TMPDIR: tmp });
  expect(result.code, result.stderr).toBe(0);
  expect(result.stderr).not.toMatch(/Warning|NodeVersionSupport/);
  expect(readdirSync(tmp), 'run-owned temp folders are removed').toEqual([]);
  return result;
}

const references = new Map<Record<string, unknown>, Promise<{ out: Record<string, string>; state: string[] }>>();

/** Day one and day two on local disk: the reference bytes (once per dataflow). */
function localReference(flow: Record<string, unknown>): Promise<{ out: Record<string, string>; state: string[] }> {
  let reference = references.get(flow);
  if (!reference) {
    reference = (async () => {
      const ws = workspace();
      const config = ws.config({ ...flow, destination: { path: './out' }, state: { path: './state' } });
      await run(ws, config, DAY1);
      await run(ws, config, DAY2);
      const out = localTree(ws.out);
      expect(Object.keys(out).filter((k) => k.includes('/manifest-')).length).toBeGreaterThanOrEqual(2);
      expect(Object.keys(out).filter((k) => !k.includes('/manifest-')).length).toBeGreaterThanOrEqual(2);
      return { out, state: Object.keys(localTree(path.join(ws.dir, 'state'))).sort() };
    })();
    references.set(flow, reference);
  }
  return reference;
}

const s3Block = () => ({ endpoint: s3.endpoint, forcePathStyle: true, region: 'us-east-1' });

describe.each(Object.keys(flows))('%s dataflow on S3', (name) => {
  const flow = flows[name]!;

  it('source, destination and state on S3: same bytes as on local disk, two days in a row; a rerun exports nothing', async () => {
    const reference = await localReference(flow);
    const ws = workspace();
    const root = `all-${name}`;
    const config = ws.config({
      ...flow,
      source: { snapshots: 's3://lake/snapshots' },
      destination: { path: `s3://exports/${root}/out` },
      state: { path: `s3://exports/${root}/state` },
      s3: { ...s3Block(), sse: 'AES256' },
    });
    s3.requests = [];
    const day1 = await run(ws, config, DAY1);
    const day2 = await run(ws, config, DAY2);
    expect(day1.json().runs.map((r) => r.status)).not.toContain('failed');
    const vip2 = day2.json().runs.find((r) => r.audienceId === 'aud-vip')!;
    expect(vip2.mode).toBe('incremental');
    expect(vip2.files[0]!.path).toMatch(new RegExp(`^s3://exports/${root}/out/crm/VIP Customers/`));

    expect(await s3.tree('exports', `${root}/out`)).toEqual(reference.out);
    const state = await s3.tree('exports', `${root}/state`);
    expect(Object.keys(state).sort()).toEqual(reference.state);
    expect(Object.keys(state).filter((k) => k.startsWith('baselines/'))).toHaveLength(2);
    expect(Object.keys(state).filter((k) => k.startsWith(`${stateKeys.historyPrefix}/`)).length).toBeGreaterThanOrEqual(
      2,
    );
    expect(Object.keys(state).some((k) => /^(lock|pending|lock-probe)/.test(k))).toBe(false);

    // Every write carried the encryption header.
    const writes = s3.requests.filter((r) => r.method === 'PUT' && !r.url.includes('partNumber='));
    expect(writes.length).toBeGreaterThan(5);
    for (const w of writes) expect(w.headers['x-amz-server-side-encryption'], w.url).toBe('AES256');

    const before = await s3.listKeys('exports', `${root}/`);
    const again = await run(ws, config, DAY2);
    expect(again.json().runs).toEqual([]);
    expect(await s3.listKeys('exports', `${root}/`)).toEqual(before);
  });
});

describe('mixed locations', () => {
  it('local source + S3 destination (state in the destination by default): same bytes as on local disk', async () => {
    const flow = flows.csv!;
    const reference = await localReference(flow);
    const ws = workspace();
    const config = ws.config({
      ...flow,
      source: { snapshots: './snapshots' },
      destination: { path: 's3://exports/mixed-local-src/out', s3: s3Block() },
    });
    await run(ws, config, DAY1);
    await run(ws, config, DAY2);
    const out = await s3.tree('exports', 'mixed-local-src/out');
    const data = Object.fromEntries(Object.entries(out).filter(([k]) => !k.startsWith('_audex/')));
    expect(data).toEqual(reference.out);
    const state = Object.keys(out)
      .filter((k) => k.startsWith(`_audex/${flow.id as string}/`))
      .map((k) => k.split('/').slice(2).join('/'));
    expect(state.sort()).toEqual(reference.state);
  });

  it('S3 source + local destination and state: same bytes as on local disk', async () => {
    const flow = flows.parquet!;
    const reference = await localReference(flow);
    const ws = workspace();
    const config = ws.config({
      ...flow,
      source: { snapshots: 's3://lake/snapshots', s3: s3Block() },
      destination: { path: './out' },
      state: { path: './state' },
    });
    await run(ws, config, DAY1);
    await run(ws, config, DAY2);
    expect(localTree(ws.out)).toEqual(reference.out);
    expect(Object.keys(localTree(path.join(ws.dir, 'state'))).sort()).toEqual(reference.state);
  });
});
