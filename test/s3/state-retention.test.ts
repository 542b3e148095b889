// README "State and safety" "state stays bounded" with the state on S3 (s3rver behind the test proxy):
// baselines pruned after each commit; a DELETE the store refuses (403, a permission
// missing) only warns, and a later run prunes; reset --to with the baseline on S3; status
// sizes from the listing; runs --limit; a probe object a killed run left is removed, a
// fresh one (a run probing right now) is not.
import { beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { hostname } from 'node:os';
import { crmConfig, trackWorkspaces } from '../helpers/harness.js';
import { useS3Server, type S3Test } from '../helpers/s3-server.js';
import { rule, s3Match } from '../helpers/fault-proxy.js';

const workspace = trackWorkspaces();
const day = (n: number) => `2026-11-${String(19 + n).padStart(2, '0')}T06:00:00Z`;
let s3: S3Test;
const s3Server = useS3Server(['lake', 'exports']);

beforeAll(async () => {
  s3 = await s3Server();
  await s3.putTree(workspace().snapshots, 'lake', 'snapshots');
});

describe('state on S3 stays bounded', () => {
  it('prunes after each commit, warns when a delete is refused, resets --to a kept baseline, and reads history newest first', async () => {
    const ws = workspace();
    const config = ws.config(
      crmConfig({
        id: 'bounded-s3',
        source: { snapshots: 's3://lake/snapshots' },
        destination: { path: 's3://exports/bounded/out' },
        state: { path: 's3://exports/bounded/state' },
        s3: { endpoint: s3.endpoint, forcePathStyle: true },
      }),
    );
    const run = async (n: number) => {
      const r = await ws.audex(['run', '--config', config, '--at', day(n), '--json'], s3.env());
      expect(r.code, r.stderr).toBe(0);
      return r;
    };
    const baselines = async () =>
      (await s3.listKeys('exports', 'bounded/state/baselines/aud-vip/')).map((k) => k.split('/').pop());
    const ids: string[] = [];
    for (let n = 1; n <= 3; n++) ids.push((await run(n)).json().runs[0]!.runId);
    expect(await baselines()).toEqual([ids[1], ids[2]].map((id) => `${id}.parquet`));

    // A lease probe object a killed run left long ago goes, and so does a young one whose
    // process on this host is gone (a run killed while it probed); one being probed right now stays.
    const stale = `bounded/state/lock-probe/${Date.now() - 3_600_000}-killed.json`;
    const fresh = `bounded/state/lock-probe/${Date.now() + 60_000}-probing.json`;
    const orphan = `bounded/state/lock-probe/${Date.now()}-killed-early.json`;
    await s3.putText('exports', stale, '{"probe":1}\n');
    await s3.putText('exports', fresh, `${JSON.stringify({ probe: 1, pid: process.pid, host: hostname() })}\n`);
    const gone = spawnSync(process.execPath, ['-e', '0']).pid;
    await s3.putText('exports', orphan, `${JSON.stringify({ probe: 1, pid: gone, host: hostname() })}\n`);

    // Day 4: the store refuses to delete baselines: committed, exit 0, a warning.
    s3.faults = [
      rule('baseline delete refused', s3Match.any('bounded/state/baselines/', 'DELETE'), {
        kind: 'error',
        status: 403,
        code: 'AccessDenied',
      }),
    ];
    const refused = await run(4);
    s3.faults = [];
    ids.push(refused.json().runs[0]!.runId);
    expect(refused.json().runs[0]!.status).toBe('success');
    expect(refused.stderr).toMatch(
      /aud-vip: the run is committed, but the audience's older baselines could not be removed \(.*exports\/bounded\/state\/baselines\/aud-vip\/.*\); they take space until a later run removes them/,
    );
    expect(await baselines()).toEqual([ids[1], ids[2], ids[3]].map((id) => `${id}.parquet`));
    const probes = await s3.listKeys('exports', 'bounded/state/lock-probe/');
    expect(probes).toEqual([fresh]);

    // status: kept baselines and their bytes, from the S3 listing.
    const status = await ws.audex(['status', '--config', config, '--at', day(4), '--json'], s3.env());
    expect(status.code, status.stderr).toBe(0);
    const [aud] = JSON.parse(status.stdout).audiences;
    const bytes = await Promise.all(
      [`cursors/aud-vip.json`, ...(await baselines()).map((b) => `baselines/aud-vip/${b}`)].map(
        async (k) => (await s3.getBytes('exports', `bounded/state/${k}`))!.length,
      ),
    );
    expect(aud).toMatchObject({
      keptBaselines: 3,
      stateBytes: bytes.reduce((a, b) => a + b, 0),
      lastSuccess: { runId: ids[3] },
    });

    // reset --to day 2: its baseline is still kept (day 4 could not delete it).
    const reset = await ws.audex(
      ['reset', '--config', config, '--audience', 'aud-vip', '--to', ids[1]!, '--at', '2026-11-23T12:00:00Z', '--json'],
      s3.env(),
    );
    expect(reset.code, reset.stderr).toBe(0);
    const cursor = JSON.parse((await s3.getBytes('exports', 'bounded/state/cursors/aud-vip.json'))!.toString('utf8'));
    expect(cursor).toMatchObject({ runId: ids[3], baseline: `baselines/aud-vip/${ids[1]}.parquet`, baselineSize: 6 });

    // Day 5 prunes what day 4 could not: the newest two (day 4's, day 5's) stay.
    const fifth = (await run(5)).json().runs[0]!;
    expect(await baselines()).toEqual([ids[3], fifth.runId].map((id) => `${id}.parquet`));
    const runs = await ws.audex(['runs', '--config', config, '--limit', '3', '--json'], s3.env());
    expect(runs.json().runs.map((r) => [r.runId, r.status])).toEqual([
      [fifth.runId, 'success'],
      [JSON.parse(reset.stdout).reset.runId, 'reset'],
      [ids[3], 'success'],
    ]);
  });
});
