// Several dataflows in one invocation (README "Several dataflows in one invocation"):
// repeated --config or a folder; each dataflow keeps its own lock, state, history and exit
// status, one failing or locked does not stop the others, the exit code is the most
// severe by the precedence table, and --json prints { dataflows: [...] }.
import { describe, expect, it } from 'vitest';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import path from 'node:path';
import {
  addSnapshot,
  crmConfig,
  trackWorkspaces,
  type CliResult,
  type JsonSummary,
  type Workspace,
} from '../helpers/harness.js';

const workspace = trackWorkspaces();
const DAY1 = '2026-11-20T06:00:00Z'; // aud-vip slot 2026-11-20T05:30, snapshot snap-20261120: 6-row backfill

type Entry = JsonSummary & { config: string; dataflowId: string | null; error?: { exitCode: number; message: string } };
const dataflows = (r: CliResult): Entry[] => (r.json() as unknown as { dataflows: Entry[] }).dataflows;

/** Two CSV dataflows over the same snapshots, each with its own destination (and so its own state). */
function twoConfigs(ws: Workspace, folder = ''): { a: string; b: string } {
  if (folder) mkdirSync(path.join(ws.dir, folder), { recursive: true });
  const up = folder ? '../' : './'; // paths in a config are relative to its folder
  const a = ws.config(
    crmConfig({ id: 'crm-a', source: { snapshots: `${up}snapshots` }, destination: { path: `${up}out-a` } }),
    path.join(folder, 'a.yaml'),
  );
  const b = ws.config(
    crmConfig({
      id: 'crm-b',
      source: { snapshots: `${up}snapshots` },
      destination: { path: `${up}out-b` },
      format: { type: 'json', compression: 'gzip' },
    }),
    path.join(folder, 'b.json'),
  );
  return { a, b };
}

/** Holds dataflow `id`'s local lock as a live process (this test's) would. */
function holdLock(ws: Workspace, destination: string, id: string): void {
  const state = path.join(ws.dir, destination, '_audex', id);
  mkdirSync(state, { recursive: true });
  writeFileSync(
    path.join(state, 'lock.json'),
    JSON.stringify({
      token: 't',
      pid: process.pid,
      host: hostname(),
      acquiredAt: '2026-11-20T05:59:00Z',
      dataflowId: id,
    }),
  );
}

describe('audex run with several dataflows', () => {
  it('reads a snapshot both dataflows use once, and each writes the bytes it writes alone', async () => {
    // Different mappings and audiences: the shared read holds the union of what both read.
    const differing = (ws: Workspace) => {
      const { a } = twoConfigs(ws);
      const b = ws.config(
        crmConfig({
          id: 'crm-b',
          destination: { path: './out-b' },
          format: { type: 'json', compression: 'gzip' },
          mandatory: [],
          mapping: [
            { source: 'personalEmail.address', target: 'email' },
            { source: 'loyalty.points', target: 'points' },
            { source: 'segmentMembership.status', target: 'status' },
          ],
          audiences: [
            {
              id: 'aud-churn',
              mode: 'full',
              schedule: { frequency: 'daily', startTime: '05:30', startDate: '2026-11-01' },
            },
            {
              id: 'aud-vip',
              mode: 'incremental',
              schedule: { frequency: 'daily', startTime: '05:30', startDate: '2026-11-01' },
            },
          ],
        }),
        'b.json',
      );
      return { a, b };
    };
    const ws = workspace();
    const { a, b } = differing(ws);
    const both = await ws.audex(['run', '--config', a, '--config', b, '--at', DAY1], { CI: 'true' });
    expect(both.code, both.stderr).toBe(0);
    expect(both.stderr.match(/reading snapshot snap-20261120 .*once for 2 dataflows/g)).toHaveLength(1);
    expect(both.stderr).not.toMatch(/reading snapshot snap-20261120 \(\d+ part\(s\)\)$/m);
    for (const [config, out] of [
      [a, 'out-a'],
      [b, 'out-b'],
    ] as const) {
      const alone = workspace();
      const { a: aAlone, b: bAlone } = differing(alone);
      const single = await alone.audex(['run', '--config', config === a ? aAlone : bAlone, '--at', DAY1, '-q']);
      expect(single.code, single.stderr).toBe(0);
      const files = alone.files(out);
      expect(files.length, out).toBeGreaterThan(1);
      expect(ws.files(out)).toEqual(files);
      for (const f of files)
        expect(readFileSync(path.join(ws.dir, out, f)), f).toEqual(readFileSync(path.join(alone.dir, out, f)));
    }
  });

  it('two --config: both export, each to its own destination and state, byte for byte as when run alone', async () => {
    const ws = workspace();
    const { a, b } = twoConfigs(ws);
    const both = await ws.audex(['run', '--config', a, '--config', b, '--at', DAY1, '--json', '-q']);
    expect(both.code, both.stderr).toBe(0);
    const entries = dataflows(both);
    expect(
      entries.map((e) => [e.config, e.dataflowId, e.runs.map((r) => [r.status, r.counts['rowsWritten']])]),
    ).toEqual([
      [a, 'crm-a', [['success', 6]]],
      [b, 'crm-b', [['success', 6]]],
    ]);
    expect(Object.keys(entries[0]!)).toEqual(['config', 'dataflowId', 'at', 'runs']);
    expect(ws.files('out-a', true)).toContain('_audex/crm-a/cursors/aud-vip.json');
    expect(ws.files('out-b', true).some((f) => f.startsWith('_audex/crm-a'))).toBe(false);

    const alone = workspace();
    const { b: bAlone } = twoConfigs(alone);
    const single = await alone.audex(['run', '--config', bAlone, '--at', DAY1, '--json', '-q']);
    expect(Object.keys(single.json())).toEqual(['dataflowId', 'at', 'runs']); // one config: the one-dataflow object
    const [file] = single.json().runs[0]!.files;
    const [same] = entries[1]!.runs[0]!.files;
    expect([path.relative(ws.dir, same!.path), same!.sha256, same!.bytes]).toEqual([
      path.relative(alone.dir, file!.path),
      file!.sha256,
      file!.bytes,
    ]);
    expect(readFileSync(same!.path)).toEqual(readFileSync(file!.path));
  });

  it('a folder: every *.yaml, *.yml and *.json in it, in name order; plan, status and validate take it too', async () => {
    const ws = workspace();
    twoConfigs(ws, 'flows');
    writeFileSync(path.join(ws.dir, 'flows', 'notes.txt'), 'not a config');
    const plan = await ws.audex(['plan', '--config', 'flows', '--at', DAY1, '--json', '-q']);
    expect(plan.code, plan.stderr).toBe(0);
    expect(dataflows(plan).map((e) => [e.config, e.dataflowId, e.runs.map((r) => r.counts['rowsWritten'])])).toEqual([
      [path.join('flows', 'a.yaml'), 'crm-a', [6]],
      [path.join('flows', 'b.json'), 'crm-b', [6]],
    ]);
    const validate = await ws.audex(['validate', '--config', 'flows/', '--json', '-q']);
    expect(validate.code, validate.stderr).toBe(0);
    expect(
      (dataflows(validate) as unknown as { valid: boolean; dataflowId: string }[]).map((e) => [e.dataflowId, e.valid]),
    ).toEqual([
      ['crm-a', true],
      ['crm-b', true],
    ]);

    const run = await ws.audex(['run', '--config', 'flows', '--at', DAY1, '-q']);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toMatch(
      /dataflow crm-a at .*\n\s+success aud-vip incremental[\s\S]*\n\ndataflow crm-b at .*\n\s+success aud-vip incremental/,
    );
    const status = await ws.audex(['status', '--config', 'flows', '--at', DAY1, '--json']);
    expect(status.code, status.stderr).toBe(0);
    const statuses = dataflows(status) as unknown as {
      dataflowId: string;
      audiences: { lastSuccess: { rowsWritten: number } | null }[];
    }[];
    expect(statuses.map((s) => [s.dataflowId, s.audiences[0]!.lastSuccess?.rowsWritten])).toEqual([
      ['crm-a', 6],
      ['crm-b', 6],
    ]);

    const empty = workspace();
    mkdirSync(path.join(empty.dir, 'none'));
    const none = await empty.audex(['run', '--config', 'none', '--at', DAY1]);
    expect(none.code).toBe(2);
    expect(none.stderr).toMatch(/--config none: the folder holds no \*\.yaml, \*\.yml or \*\.json config/);
  });

  it('an invalid config and a locked dataflow do not stop the others; the exit code is the most severe', async () => {
    const ws = workspace();
    const { a, b } = twoConfigs(ws);
    const bad = ws.config({ ...crmConfig({ id: 'crm-bad' }), format: { type: 'xml' } }, 'bad.yaml');
    holdLock(ws, 'out-b', 'crm-b');
    const r = await ws.audex(['run', '-c', bad, '-c', a, '-c', b, '--at', DAY1, '--json', '-q']);
    const [badEntry, aEntry, bEntry] = dataflows(r);
    expect(badEntry).toMatchObject({ config: bad, dataflowId: null, runs: [], error: { exitCode: 2 } });
    expect(badEntry!.error!.message).toMatch(/format\.type/);
    expect(aEntry!.runs.map((x) => x.status)).toEqual(['success']);
    expect(bEntry).toMatchObject({ dataflowId: 'crm-b', runs: [], error: { exitCode: 1 } });
    expect(bEntry!.error!.message).toMatch(/dataflow crm-b is locked by another audex run/);
    expect(r.code).toBe(2); // usage (2) before a failed run (1)
    expect(r.stderr).toMatch(/locked by another audex run/);
    expect(ws.files('out-b')).toEqual([]);
    // crm-a has exported; alone with the lock holder, the invocation is exit 1.
    const locked = await ws.audex(['run', '-c', a, '-c', b, '--at', DAY1, '--json', '-q']);
    expect(locked.code).toBe(1);
    expect(dataflows(locked).map((e) => e.error?.exitCode ?? 0)).toEqual([0, 1]);
  });

  it('exit code precedence across dataflows: bad input 4 over storage 3 over config 2 over a failed run 1', async () => {
    const ws = workspace();
    addSnapshot(path.join(ws.dir, 'broken'), 'snap-x', '2026-11-20T05:00:00Z', ['{not json']);
    const badInput = ws.config(
      crmConfig({ id: 'in', source: { snapshots: './broken' }, destination: { path: './out-in' } }),
      'in.yaml',
    );
    const storage = ws.config(
      crmConfig({ id: 'st', source: { snapshots: './no-such-folder' }, destination: { path: './out-st' } }),
      'st.yaml',
    );
    const usage = ws.config({ ...crmConfig({ id: 'us' }), audiences: [] }, 'us.yaml');
    const failed = ws.config(
      crmConfig({
        id: 'fa',
        destination: { path: './out-fa' },
        audiences: [
          {
            id: 'aud-unknown',
            mode: 'full',
            schedule: { frequency: 'daily', startTime: '05:30', startDate: '2026-11-01' },
          },
        ],
      }),
      'fa.yaml',
    );
    const codes = async (...configs: string[]) => {
      const r = await ws.audex(['run', ...configs.flatMap((c) => ['-c', c]), '--at', DAY1, '--json', '-q']);
      return [
        r.code,
        dataflows(r).map((e) => e.error?.exitCode ?? (e.runs.some((x) => x.status === 'failed') ? 1 : 0)),
      ];
    };
    expect(await codes(failed, usage)).toEqual([2, [1, 2]]);
    expect(await codes(usage, storage, failed)).toEqual([3, [2, 3, 1]]);
    expect(await codes(storage, badInput)).toEqual([4, [3, 4]]);
  });
});
