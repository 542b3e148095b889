// README "State and safety" (state and safety) and README "Running it" exit codes: cursors, baselines and history after runs;
// failed and interrupted runs finished by the next run with the same id and bytes; the
// dataflow lock; storage errors; reruns that find nothing due.
import { describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import path from 'node:path';
import {
  crmConfig,
  listFiles,
  readCsv,
  readParquet,
  trackWorkspaces,
  type CliResult,
  type Workspace,
} from '../helpers/harness.js';
import { stateKeys } from '../../src/state/state-keys.js';

const workspace = trackWorkspaces();

const DAY1 = '2026-11-20T06:00:00Z'; // slot 2026-11-20T05:30, snapshot snap-20261120
const DAY2 = '2026-11-21T06:00:00Z'; // slot 2026-11-21T05:30, snapshot snap-20261121
const SLOT1 = '2026-11-20T05:30:00.000Z';
const SLOT2 = '2026-11-21T05:30:00.000Z';
const HEADER = ['email', 'person_name_firstName', 'tier', 'points', 'status'];

const stateDir = (w: Workspace, id = 'acme-crm') => path.join(w.out, '_audex', id);
const readJson = <T = Record<string, unknown>>(file: string): T => JSON.parse(readFileSync(file, 'utf8')) as T;
const sha256 = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex');

async function run(
  w: Workspace,
  at: string,
  config: Record<string, unknown> = crmConfig(),
  extra: string[] = [],
): Promise<CliResult> {
  const file = w.config(config);
  return w.audex(['run', '--config', file, '--at', at, '--json', ...extra]);
}

/** Every file under a folder with its bytes (hex), for byte-for-byte comparisons. */
function tree(root: string, filter: (rel: string) => boolean = () => true): Record<string, string> {
  return Object.fromEntries(
    listFiles(root)
      .filter(filter)
      .map((rel) => [rel, readFileSync(path.join(root, rel)).toString('hex')]),
  );
}
const exportsOnly = (rel: string) => !rel.startsWith('_audex/');

/** Files under final names (not `.…audex-tmp`) outside the state folder. */
const finalNames = (w: Workspace) => w.files('out').filter((f) => !path.basename(f).startsWith('.'));

describe('state after successful runs', () => {
  it('keeps a cursor, a baseline and one history record per run, and releases the lock', async () => {
    const w = workspace();
    const r1 = await run(w, DAY1);
    expect(r1.code, r1.stderr).toBe(0);
    const r2 = await run(w, DAY2);
    expect(r2.code, r2.stderr).toBe(0);
    const run1 = r1.json().runs[0]!;
    const run2 = r2.json().runs[0]!;
    expect(run1.status).toBe('success');
    expect(run2.status).toBe('success');
    expect(run2.snapshotId).toBe('snap-20261121');
    const state = stateDir(w);

    // The incremental file of day 2: enters and exits only (README "What gets exported").
    expect(readCsv(run2.files[0]!.path)).toEqual([
      HEADER,
      ['bob@example.com', 'Bob', 'silver', '300.5', 'exited'],
      ['finn@example.com', 'Finn', 'bronze', '5', 'realized'],
      ['ivy@example.com', '', '', '', 'exited'],
      ['june@example.com', 'June', 'gold', '640', 'realized'],
    ]);

    // Cursor: the commit point of the last run.
    const cursor = readJson(path.join(state, 'cursors', 'aud-vip.json'));
    expect(cursor).toMatchObject({
      audienceId: 'aud-vip',
      lastSlot: SLOT2,
      runId: run2.runId,
      snapshotId: 'snap-20261121',
      mode: 'incremental',
      baseline: `baselines/aud-vip/${run2.runId}.parquet`,
      baselineSize: 6,
    });

    // Baseline: the profiles exported as members (README "State and safety"): day 1's still active, plus day 2's
    // enters; held-back members (p-003, p-005, p-007) and exits (p-002, p-011) are not in it.
    const baseline = await readParquet(path.join(state, 'baselines', 'aud-vip', `${run2.runId}.parquet`));
    const members = baseline.rows.map((r) => [r['k'], r['status']]).sort();
    expect(members).toEqual([
      ['p-001', 'existing'],
      ['p-004', 'existing'],
      ['p-006', 'existing'],
      ['p-008', 'realized'],
      ['p-009', 'existing'],
      ['p-012', 'realized'],
    ]);
    expect(existsSync(path.join(state, 'baselines', 'aud-vip', `${run1.runId}.parquet`))).toBe(true);

    // History: one record per run, the same record as the --json summary.
    expect(listFiles(path.join(state, stateKeys.historyPrefix))).toEqual(
      [run1, run2].map((r) => stateKeys.history(r.runId, 'success', 'aud-vip').slice(5)).sort(),
    );
    for (const [summary, rows] of [
      [run1, 6],
      [run2, 4],
    ] as const) {
      const record = readJson<Record<string, any>>(
        path.join(state, stateKeys.history(summary.runId, 'success', 'aud-vip')),
      );
      expect(record).toMatchObject({
        runId: summary.runId,
        audienceId: 'aud-vip',
        mode: 'incremental',
        trigger: 'schedule',
        status: 'success',
        logicalTime: summary.logicalTime,
        snapshotId: summary.snapshotId,
        counts: summary.counts,
        files: summary.files,
      });
      expect(record.counts.rowsWritten).toBe(rows);
      expect(typeof record.durationMs).toBe('number');
      expect(record.error).toBeUndefined();
      for (const f of record.files as { path: string; rows: number; bytes: number; sha256: string }[]) {
        expect(f.sha256).toBe(sha256(f.path));
        expect(f.bytes).toBe(readFileSync(f.path).length);
      }
    }

    // Nothing pending, no lock, no temp file left.
    expect(listFiles(path.join(state, 'pending'))).toEqual([]);
    expect(existsSync(path.join(state, 'lock.json'))).toBe(false);
    expect(w.files('out', true).filter((f) => f.endsWith('.audex-tmp'))).toEqual([]);
  });

  it('records coalesced missed slots as skipped runs in the history', async () => {
    const w = workspace();
    expect((await run(w, DAY1)).code).toBe(0);
    const r = await run(w, '2026-11-23T06:00:00Z');
    expect(r.code, r.stderr).toBe(0);
    const runs = r.json().runs;
    expect(runs.map((x) => [x.logicalTime, x.status])).toEqual([
      ['2026-11-21T05:30:00.000Z', 'skipped'],
      ['2026-11-22T05:30:00.000Z', 'skipped'],
      ['2026-11-23T05:30:00.000Z', 'success'],
    ]);
    const history = listFiles(path.join(stateDir(w), stateKeys.historyPrefix)).map((f) =>
      readJson<Record<string, any>>(path.join(stateDir(w), stateKeys.historyPrefix, f)),
    );
    expect(history).toHaveLength(4);
    expect(history.map((h) => h.status).sort()).toEqual(['skipped', 'skipped', 'success', 'success']);
    expect(readJson(path.join(stateDir(w), 'cursors', 'aud-vip.json'))).toMatchObject({
      lastSlot: '2026-11-23T05:30:00.000Z',
    });
  });

  it('a rerun with the same --at after success finds nothing due and writes nothing', async () => {
    const w = workspace();
    const first = await run(w, DAY1);
    expect(first.code, first.stderr).toBe(0);
    const before = tree(w.out);
    const again = await run(w, DAY1);
    expect(again.code, again.stderr).toBe(0);
    expect(again.json().runs).toEqual([]);
    const plain = await w.audex(['run', '--config', w.config(crmConfig()), '--at', DAY1]);
    expect(plain.code, plain.stderr).toBe(0);
    expect(plain.stdout).toMatch(/nothing due/);
    expect(tree(w.out)).toEqual(before);
  });
});

describe('failed runs', () => {
  const parquetConfig = (tierType: string) =>
    crmConfig({
      format: { type: 'parquet', compression: 'none' },
      mapping: [
        { source: 'identityMap.email', target: 'email' },
        { source: 'person.name.firstName' },
        { source: 'loyalty.tier', target: 'tier', type: tierType },
        { source: 'loyalty.points', target: 'points' },
        { source: 'segmentMembership.status', target: 'status' },
      ],
    });

  it('leave no cursor, no final-name file and no pending record (they failed on their input); the next run plans afresh: same slot, same run id', async () => {
    const w = workspace();
    const state = stateDir(w);
    const cursorFile = path.join(state, 'cursors', 'aud-vip.json');

    // Day 1, first run of the audience: tier "gold" is not an int64.
    const bad1 = await run(w, DAY1, parquetConfig('int64'));
    expect(bad1.code, bad1.stderr + bad1.stdout).toBe(4);
    const failed1 = bad1.json().runs[0]!;
    expect(failed1.status).toBe('failed');
    expect(failed1.error).toContain('loyalty.tier');
    expect(failed1.error).toContain('int64');
    expect(existsSync(cursorFile)).toBe(false);
    expect(finalNames(w)).toEqual([]);
    expect(existsSync(path.join(state, 'lock.json'))).toBe(false);
    // Not kept pending: the same snapshot would fail the same way.
    expect(existsSync(path.join(state, 'pending', `${failed1.runId}.json`))).toBe(false);
    expect(readJson(path.join(state, stateKeys.history(failed1.runId, 'failed', 'aud-vip')))).toMatchObject({
      status: 'failed',
      runId: failed1.runId,
    });

    // Fixed config, same --at: planned afresh, the same slot gives the same id and snapshot.
    const fixed1 = await run(w, DAY1, parquetConfig('string'));
    expect(fixed1.code, fixed1.stderr).toBe(0);
    const runs1 = fixed1.json().runs;
    expect(runs1.map((r) => [r.runId, r.status, r.logicalTime, r.snapshotId])).toEqual([
      [failed1.runId, 'success', SLOT1, 'snap-20261120'],
    ]);
    expect((await readParquet(runs1[0]!.files[0]!.path)).rows).toHaveLength(6);
    expect(readJson(cursorFile)).toMatchObject({ runId: failed1.runId, lastSlot: SLOT1 });
    expect(listFiles(path.join(state, 'pending'))).toEqual([]);
    // The history keeps both: the failed attempt and the success that finished it.
    expect(readJson(path.join(state, stateKeys.history(failed1.runId, 'failed', 'aud-vip')))).toMatchObject({
      status: 'failed',
    });
    expect(readJson(path.join(state, stateKeys.history(failed1.runId, 'success', 'aud-vip')))).toMatchObject({
      status: 'success',
    });

    // Day 2 fails again: the cursor does not move and no new final-name file appears.
    const cursorBefore = readFileSync(cursorFile, 'utf8');
    const filesBefore = finalNames(w);
    const bad2 = await run(w, DAY2, parquetConfig('int64'));
    expect(bad2.code, bad2.stderr + bad2.stdout).toBe(4);
    const failed2 = bad2.json().runs[0]!;
    expect(failed2.status).toBe('failed');
    expect(readFileSync(cursorFile, 'utf8')).toBe(cursorBefore);
    expect(finalNames(w)).toEqual(filesBefore);

    // ...and the fixed run is the same run again: the day-2 diff (4 changes).
    const fixed2 = await run(w, DAY2, parquetConfig('string'));
    expect(fixed2.code, fixed2.stderr).toBe(0);
    const runs2 = fixed2.json().runs;
    expect(runs2.map((r) => [r.runId, r.status, r.logicalTime, r.snapshotId])).toEqual([
      [failed2.runId, 'success', SLOT2, 'snap-20261121'],
    ]);
    expect(runs2[0]!.counts.rowsWritten).toBe(4);
    expect(readJson(cursorFile)).toMatchObject({ runId: failed2.runId, lastSlot: SLOT2 });
  });
});

describe('interrupted runs', () => {
  it('a run killed after its data files is finished first by the next run, byte for byte, before the new slot', async () => {
    // Workspace A: the clean sequence, day 1 then day 2.
    const a = workspace();
    const a1 = await run(a, DAY1);
    expect(a1.code, a1.stderr).toBe(0);
    const a2 = await run(a, DAY2);
    expect(a2.code, a2.stderr).toBe(0);
    const cleanRun1 = a1.json().runs[0]!;
    const cleanRun2 = a2.json().runs[0]!;
    const cleanExports = tree(a.out, exportsOnly);
    const cleanCursor = readJson(path.join(stateDir(a), 'cursors', 'aud-vip.json'));

    // Workspace B: day 1 "killed after the data files, before manifest, baseline and cursor".
    const b = workspace();
    const b1 = await run(b, DAY1);
    expect(b1.code, b1.stderr).toBe(0);
    const killed = b1.json().runs[0]!;
    expect(killed.runId).toBe(cleanRun1.runId);
    const state = stateDir(b);
    const dataFile = killed.files[0]!.path;
    const folder = path.relative(b.out, path.dirname(dataFile)).split(path.sep).join('/');
    rmSync(path.join(state, 'cursors', 'aud-vip.json'));
    rmSync(path.join(state, 'baselines', 'aud-vip', `${killed.runId}.parquet`));
    rmSync(killed.manifest!);
    mkdirSync(path.join(state, 'pending'), { recursive: true });
    writeFileSync(
      path.join(state, 'pending', `${killed.runId}.json`),
      JSON.stringify(
        {
          runId: killed.runId,
          audienceId: 'aud-vip',
          mode: 'incremental',
          trigger: 'schedule',
          logicalTime: killed.logicalTime,
          snapshotId: killed.snapshotId,
          folders: [folder],
        },
        null,
        2,
      ) + '\n',
    );
    // The killed run's own half-written temp file, and another dataflow's temp file in the
    // same folder (possibly being written right now): only the first may be removed.
    const staleTemp = path.join(path.dirname(dataFile), `.${path.basename(dataFile)}.audex-tmp`);
    writeFileSync(staleTemp, 'partial,garbage\n');
    const foreignTemp = path.join(path.dirname(dataFile), '.other-dataflow_file.csv.audex-tmp');
    writeFileSync(foreignTemp, 'someone else is writing this\n');

    // The next run, a day later: finishes day 1 first (same id, slot, snapshot, bytes), then day 2.
    const b2 = await run(b, DAY2);
    expect(b2.code, b2.stderr).toBe(0);
    const runs = b2.json().runs;
    expect(runs.map((r) => [r.runId, r.status, r.logicalTime, r.snapshotId])).toEqual([
      [cleanRun1.runId, 'success', SLOT1, 'snap-20261120'],
      [cleanRun2.runId, 'success', SLOT2, 'snap-20261121'],
    ]);
    expect(runs[0]!.files.map((f) => f.sha256)).toEqual(cleanRun1.files.map((f) => f.sha256));
    expect(runs[1]!.files.map((f) => f.sha256)).toEqual(cleanRun2.files.map((f) => f.sha256));
    expect(runs[1]!.counts).toEqual(cleanRun2.counts);
    expect(existsSync(staleTemp)).toBe(false);
    expect(readFileSync(foreignTemp, 'utf8')).toBe('someone else is writing this\n');
    rmSync(foreignTemp);
    // Same export tree (data files and manifests) as the clean sequence, byte for byte.
    expect(tree(b.out, exportsOnly)).toEqual(cleanExports);
    expect(readJson(path.join(state, 'cursors', 'aud-vip.json'))).toEqual(cleanCursor);
    expect(listFiles(path.join(state, 'pending'))).toEqual([]);
  });
});

describe('interrupted runs after the commit point', () => {
  it('a run killed after its cursor (pending record left) is not redone: its files and the next diff are unchanged', async () => {
    const a = workspace();
    expect((await run(a, DAY1)).code).toBe(0);
    const a2 = await run(a, DAY2);
    expect(a2.code, a2.stderr).toBe(0);
    const cleanExports = tree(a.out, exportsOnly);

    const b = workspace();
    const b1 = await run(b, DAY1);
    expect(b1.code, b1.stderr).toBe(0);
    const committed = b1.json().runs[0]!;
    const state = stateDir(b);
    const folder = path.relative(b.out, path.dirname(committed.files[0]!.path)).split(path.sep).join('/');
    mkdirSync(path.join(state, 'pending'), { recursive: true });
    writeFileSync(
      path.join(state, 'pending', `${committed.runId}.json`),
      JSON.stringify({
        runId: committed.runId,
        audienceId: 'aud-vip',
        mode: 'incremental',
        trigger: 'schedule',
        logicalTime: committed.logicalTime,
        snapshotId: committed.snapshotId,
        folders: [folder],
      }),
    );
    const b2 = await run(b, DAY2);
    expect(b2.code, b2.stderr).toBe(0);
    const runs = b2.json().runs.filter((r) => r.status !== 'skipped');
    expect(runs.at(-1)!.logicalTime).toBe(SLOT2);
    expect(runs.at(-1)!.counts).toEqual(a2.json().runs[0]!.counts);
    expect(tree(b.out, exportsOnly)).toEqual(cleanExports);
    expect(listFiles(path.join(state, 'pending'))).toEqual([]);
  });
});

describe('the dataflow lock', () => {
  const lockFile = (w: Workspace) => path.join(stateDir(w), 'lock.json');
  function writeLock(w: Workspace, pid: number, host: string): string {
    mkdirSync(stateDir(w), { recursive: true });
    const text =
      JSON.stringify(
        { token: 'held-by-test', pid, host, acquiredAt: '2026-11-20T05:59:00.000Z', dataflowId: 'acme-crm' },
        null,
        2,
      ) + '\n';
    writeFileSync(lockFile(w), text);
    return text;
  }
  async function deadPid(): Promise<number> {
    const child = spawn(process.execPath, ['-e', '']);
    await new Promise((resolve) => child.on('exit', resolve));
    return child.pid!;
  }

  it('a lock held by a live process fails the run (exit 1) with a clear message and exports nothing', async () => {
    const w = workspace();
    const text = writeLock(w, process.pid, hostname());
    const result = await run(w, DAY1);
    expect(result.code, result.stderr + result.stdout).toBe(1);
    expect(result.stderr).toContain(`pid ${process.pid}`);
    expect(result.stderr).toContain(hostname());
    expect(result.stderr).toContain(lockFile(w)); // how to proceed if that process is gone
    expect(result.stderr).toMatch(/wait/i);
    expect(w.files('out')).toEqual([]);
    expect(existsSync(path.join(stateDir(w), 'cursors', 'aud-vip.json'))).toBe(false);
    expect(readFileSync(lockFile(w), 'utf8')).toBe(text); // the other run's lock is left alone
  });

  it('a lock left by a dead process on this host is taken over', async () => {
    const w = workspace();
    writeLock(w, await deadPid(), hostname());
    const result = await run(w, DAY1);
    expect(result.code, result.stderr).toBe(0);
    expect(result.json().runs[0]!.status).toBe('success');
    expect(existsSync(lockFile(w))).toBe(false);
    expect(existsSync(path.join(stateDir(w), 'cursors', 'aud-vip.json'))).toBe(true);
  });

  it('the temporary files of a lock or takeover claim that killed runs left are removed by the next run', async () => {
    const w = workspace();
    mkdirSync(path.join(stateDir(w), 'lock-takeover'), { recursive: true });
    // A lock is written whole under such a name, then linked to lock.json (storage/local.ts).
    const left = [
      path.join(stateDir(w), '.lock.json.0b7c1d2e-1111-4222-8333-944455556666.audex-tmp'),
      path.join(stateDir(w), 'lock-takeover', '.held-by-test.json.0b7c1d2e-1111-4222-8333-944455556667.audex-tmp'),
    ];
    for (const file of left) writeFileSync(file, '{"pid":1');
    const result = await run(w, DAY1);
    expect(result.code, result.stderr).toBe(0);
    expect(left.filter((file) => existsSync(file))).toEqual([]);
    expect(existsSync(lockFile(w))).toBe(false);
  });

  it('a lock from another host is not taken over (its process cannot be checked)', async () => {
    const w = workspace();
    const text = writeLock(w, await deadPid(), 'some-other-host.invalid');
    const result = await run(w, DAY1);
    expect(result.code, result.stderr).toBe(1);
    expect(result.stderr).toContain('some-other-host.invalid');
    expect(w.files('out')).toEqual([]);
    expect(readFileSync(lockFile(w), 'utf8')).toBe(text);
  });
});

describe('storage errors (exit 3)', () => {
  it('destination path that is a file (state under it)', async () => {
    const w = workspace();
    const target = path.join(w.dir, 'out-is-a-file');
    writeFileSync(target, 'not a folder\n');
    const result = await run(w, DAY1, crmConfig({ destination: { path: './out-is-a-file' } }));
    expect(result.code, result.stderr + result.stdout).toBe(3);
    expect(result.stderr + result.stdout).toContain(target);
    expect(readFileSync(target, 'utf8')).toBe('not a folder\n');
  });

  it('destination path that is a file (state elsewhere): the run fails, nothing is committed', async () => {
    const w = workspace();
    const target = path.join(w.dir, 'out-is-a-file');
    writeFileSync(target, 'not a folder\n');
    const result = await run(
      w,
      DAY1,
      crmConfig({ destination: { path: './out-is-a-file' }, state: { path: './state' } }),
    );
    expect(result.code, result.stderr + result.stdout).toBe(3);
    const r = result.json().runs[0]!;
    expect(r.status).toBe('failed');
    expect(r.error).toContain(target);
    expect(readFileSync(target, 'utf8')).toBe('not a folder\n');
    const state = path.join(w.dir, 'state');
    expect(existsSync(path.join(state, 'cursors', 'aud-vip.json'))).toBe(false);
    expect(existsSync(path.join(state, 'lock.json'))).toBe(false);
  });
});

describe('an audience whose earlier run fails in the same invocation', () => {
  it('does not run its later slot (no diff against a baseline that was never written); both run in order next time', async () => {
    const w = workspace();
    const config = w.config(crmConfig());
    // Day 1 dies after its pending record: the next invocation first finishes it, then day 2.
    const killed = await w.audex(['run', '--config', config, '--at', DAY1], { AUDEX_CRASH_AT: 'after-pending' });
    expect(killed.code).not.toBe(0);
    // The audience's folder cannot be written now: the resumed day-1 run fails.
    const folder = path.join(w.out, 'crm', 'VIP Customers');
    rmSync(folder, { recursive: true, force: true });
    mkdirSync(path.dirname(folder), { recursive: true });
    writeFileSync(folder, 'not a folder');
    const failed = await w.audex(['run', '--config', config, '--at', DAY2, '--json']);
    expect(failed.code).not.toBe(0);
    const runs = failed.json().runs;
    expect(runs.map((r) => [r.logicalTime, r.status])).toEqual([
      [SLOT1, 'failed'],
      [SLOT2, 'failed'],
    ]);
    expect(runs[1]!.error).toMatch(/^not run: run .* of this audience failed before it/);
    expect(runs[1]!.error).not.toMatch(/baseline|ENOENT/);

    rmSync(folder);
    const again = await w.audex(['run', '--config', config, '--at', DAY2, '--json']);
    expect(again.code, again.stderr).toBe(0);
    expect(again.json().runs.map((r) => [r.logicalTime, r.status])).toEqual([
      [SLOT1, 'success'],
      [SLOT2, 'success'],
    ]);
  });
});
