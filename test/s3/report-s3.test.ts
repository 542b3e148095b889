// Issue 16: `audex report` with the state on S3 (s3rver behind the conditional-write
// proxy): the history is read from the bucket, and a lease held there is named with its expiry.
import { beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { crmConfig, trackWorkspaces, type CliResult } from '../helpers/harness.js';
import { useS3Server, type S3Test } from '../helpers/s3-server.js';

const workspace = trackWorkspaces();
let s3: S3Test;
const s3Server = useS3Server(['exports']);

beforeAll(async () => {
  s3 = await s3Server();
});

function ok(r: CliResult): CliResult {
  if (r.code !== 0) throw new Error(`exit ${r.code}\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`);
  return r;
}

describe('audex report with the state on S3', () => {
  it('charts the runs kept in the bucket and names the holder of a live lease there', async () => {
    const ws = workspace();
    const config = ws.config(
      crmConfig({
        destination: { path: './out' },
        state: { path: 's3://exports/report/state' },
        s3: { endpoint: s3.endpoint, forcePathStyle: true, region: 'us-east-1' },
      }),
    );
    const env = s3.env();
    ok(await ws.audex(['run', '-c', config, '--at', '2026-11-20T06:00:00Z', '-q'], env));
    ok(await ws.audex(['run', '-c', config, '--at', '2026-11-21T06:00:00Z', '-q'], env));
    const runs = (
      JSON.parse(ok(await ws.audex(['runs', '-c', config, '--json'], env)).stdout) as {
        runs: { runId: string; counts: Record<string, number> }[];
      }
    ).runs;
    expect(runs).toHaveLength(2);

    const expiresAt = new Date(Date.now() + 3_600_000).toISOString();
    await s3.putText(
      'exports',
      'report/state/lock.json',
      JSON.stringify({
        token: 't',
        holder: 'pid 7 on host-a',
        dataflowId: 'acme-crm',
        acquiredAt: '2026-11-21T06:59:00.000Z',
        expiresAt,
      }),
    );
    const out = path.join(ws.dir, 'report.html');
    ok(await ws.audex(['report', '-c', config, '--at', '2026-11-21T07:00:00Z', '--out', out, '-q'], env));
    const html = readFileSync(out, 'utf8');
    const rows = [
      ...html.matchAll(
        /<tr data-run-id="([^"]+)" data-status="success"><td>[^<]+<\/td><td>success<\/td><td>[^<]+<\/td><td class="num" data-counter="profilesReceived">(\d+)<\/td><td class="num" data-counter="rowsWritten">(\d+)<\/td>/g,
      ),
    ];
    expect(rows.map((m) => [m[1], Number(m[2]), Number(m[3])])).toEqual(
      runs.map((r) => [r.runId, r.counts['profilesReceived'], r.counts['rowsWritten']]),
    );
    expect(html).toContain(
      `Lock: <span class="flag warn">locked</span> by pid 7 on host-a, since 2026-11-21T06:59:00.000Z (lease expires at ${expiresAt})</p>`,
    );
  });
});
