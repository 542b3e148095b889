// README "State and safety" "state stays bounded" through the real CLI on local disk: old baselines pruned
// after the commit point (and a kill before, during or after that changes nothing the
// next run sees), export-now leaving baselines alone, history read newest first without
// reading every record, the layout before month folders still read and moved, what killed
// runs leave (temp files, a dead taker's takeover claim) swept by the next run,
// state.keepHistoryDays, `status` sizes, and `audex reset` (backfill, --to, refusals).
import { describe, expect, it } from 'vitest';
import { cpSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { hostname } from 'node:os';
import path from 'node:path';
import { crmConfig, listFiles, readCsv, trackWorkspaces, type CliResult, type Workspace } from '../helpers/harness.js';
import { stateKeys } from '../../src/state/state-keys.js';

const workspace = trackWorkspaces();
/** Day n's run: slot 2026-11-(19+n)T05:30Z; days 2 and later read snap-20261121 (the latest). */
const day = (n: number) => `2026-11-${String(19 + n).padStart(2, '0')}T06:00:00Z`;
const stateDir = (w: Workspace) => path.join(w.out, '_audex', 'acme-crm');
const readJson = (file: string): Record<string, unknown> =>
  JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
const baselines = (w: Workspace) => listFiles(path.join(stateDir(w), 'baselines', 'aud-vip'));
const cursorOf = (w: Workspace) => readJson(path.join(stateDir(w), 'cursors', 'aud-vip.json'));

async function run(
  w: Workspace,
  n: number,
  config: Record<string, unknown> = crmConfig(),
  env: Record<string, string> = {},
): Promise<CliResult> {
  return w.audex(['run', '--config', w.config(config), '--at', day(n), '--json'], env);
}

async function runOk(w: Workspace, n: number, config?: Record<string, unknown>) {
  const r = await run(w, n, config);
  expect(r.code, r.stderr).toBe(0);
  return r
    .json()
    .runs.filter((x) => x.status === 'success')
    .at(-1)!;
}

/** A copy of a workspace (config paths are relative, so it runs on its own). */
function copyOf(w: Workspace): Workspace {
  const copy = workspace();
  cpSync(w.dir, copy.dir, { recursive: true });
  return copy;
}

/**
 * What killed runs leave in the state location: temp files of interrupted writes, and a
 * takeover claim whose taker is gone; plus the claim of a live taker, which must stay.
 */
async function plantLeftovers(w: Workspace): Promise<void> {
  const child = spawn(process.execPath, ['-e', '']);
  await new Promise((resolve) => child.on('exit', resolve));
  const put = (rel: string, text: string) => {
    mkdirSync(path.dirname(path.join(stateDir(w), rel)), { recursive: true });
    writeFileSync(path.join(stateDir(w), rel), text);
  };
  put('pending/.20261120T053000Z-00000000.json.audex-tmp', '{"half');
  put('cursors/.aud-vip.json.audex-tmp', '{"half');
  put(`${stateKeys.historyPrefix}/2026-11/.20261120T053000Z-00000000.failed.aud-vip.json.audex-tmp`, '{"half');
  put('baselines/aud-vip/.20261120T053000Z-00000000.parquet.audex-tmp', 'PAR1 half');
  put('lock-takeover/dead.json', JSON.stringify({ pid: child.pid, host: hostname() }));
  put('lock-takeover/live.json', JSON.stringify({ pid: process.pid, host: hostname() }));
}

describe('baselines are pruned after the commit point', () => {
  it('keeps the newest state.keepBaselines per audience, never the one the cursor names; export-now leaves them alone', async () => {
    const w = workspace();
    const ids: string[] = [];
    const expected: string[][] = [];
    for (let n = 1; n <= 4; n++) {
      if (n === 2) await plantLeftovers(w);
      ids.push((await runOk(w, n)).runId);
      expected.push(baselines(w));
      if (n === 2)
        expect(
          listFiles(stateDir(w)).filter((f) => path.basename(f).startsWith('.') || f.startsWith('lock-takeover/')),
        ).toEqual(['lock-takeover/live.json']);
    }
    // Default 2: the current one and the one before it.
    expect(expected).toEqual(
      [[ids[0]], ids.slice(0, 2), ids.slice(1, 3), ids.slice(2, 4)].map((l) => l.map((id) => `${id}.parquet`)),
    );
    expect(cursorOf(w).baseline).toBe(`baselines/aud-vip/${ids[3]}.parquet`);

    const now = await w.audex([
      'export-now',
      '--config',
      w.config(crmConfig()),
      '--audience',
      'aud-vip',
      '--at',
      '2026-11-22T12:00:00Z',
      '--json',
    ]);
    expect(now.code, now.stderr).toBe(0);
    expect(now.json().runs[0]!.trigger).toBe('exportNow');
    expect(baselines(w)).toEqual(ids.slice(2, 4).map((id) => `${id}.parquet`));

    // status: the state's size (cursor + kept baselines) and their number.
    const status = await w.audex(['status', '--config', w.config(crmConfig()), '--at', day(4), '--json']);
    const files = [
      path.join(stateDir(w), 'cursors', 'aud-vip.json'),
      ...baselines(w).map((f) => path.join(stateDir(w), 'baselines', 'aud-vip', f)),
    ];
    expect(JSON.parse(status.stdout).audiences[0]).toMatchObject({
      keptBaselines: 2,
      stateBytes: files.reduce((sum, f) => sum + statSync(f).size, 0),
    });

    // keepBaselines: 1 keeps only the cursor's; keepHistoryDays: 2 at day 5 (2026-11-24T06:00)
    // removes the records before 2026-11-22T06:00 (days 1 to 3, at 05:30).
    const fifth = await runOk(w, 5, crmConfig({ state: { keepBaselines: 1, keepHistoryDays: 2 } }));
    expect(baselines(w)).toEqual([`${fifth.runId}.parquet`]);
    expect(cursorOf(w).baseline).toBe(`baselines/aud-vip/${fifth.runId}.parquet`);
    const runs = (await w.audex(['runs', '--config', w.config(crmConfig()), '--json'])).json().runs;
    expect(runs.map((r) => [r.logicalTime, r.trigger])).toEqual([
      ['2026-11-24T05:30:00.000Z', 'schedule'],
      ['2026-11-23T05:30:00.000Z', 'schedule'],
      ['2026-11-22T12:00:00.000Z', 'exportNow'],
    ]);
  });

  it('a run killed before, during or after pruning leaves state the next run continues from exactly', async () => {
    // Days 1-2 once; then, per crash point, a copy killed on day 3 and run again on day 4.
    const base = workspace();
    const r1 = await runOk(base, 1);
    const r2 = await runOk(base, 2);
    const clean = copyOf(base);
    const r3 = await runOk(clean, 3);
    const r4 = await runOk(clean, 4);
    const cleanCursor = cursorOf(clean);
    const cleanFile = readCsv(r4.files[0]!.path);
    expect(baselines(clean)).toEqual([r3, r4].map((r) => `${r.runId}.parquet`));

    const points = ['after-cursor', 'after-commit', 'in-prune', 'after-prune'];
    await Promise.all(
      points.map(async (point) => {
        const w = copyOf(base);
        const killed = await run(w, 3, crmConfig(), { AUDEX_CRASH_AT: point });
        expect(killed.code, `${point}: ${killed.stderr}`).toBeNull(); // died by SIGKILL
        // Committed: the cursor names day 3's baseline, which is there whatever the kill spared.
        expect(cursorOf(w), point).toMatchObject({
          runId: r3.runId,
          baseline: `baselines/aud-vip/${r3.runId}.parquet`,
        });
        expect(baselines(w), point).toContain(`${r3.runId}.parquet`);
        expect(baselines(w), point).toEqual(
          point === 'after-cursor' || point === 'after-commit'
            ? [r1, r2, r3].map((r) => `${r.runId}.parquet`)
            : [r2, r3].map((r) => `${r.runId}.parquet`),
        );

        const next = await run(w, 4);
        expect(next.code, `${point}: ${next.stderr}`).toBe(0);
        const last = next.json().runs.at(-1)!;
        expect(last.runId, point).toBe(r4.runId);
        expect(last.counts, point).toEqual(r4.counts);
        expect(readCsv(last.files[0]!.path), point).toEqual(cleanFile);
        expect(cursorOf(w), point).toEqual(cleanCursor);
        expect(baselines(w), point).toEqual(baselines(clean));
        expect(listFiles(path.join(stateDir(w), 'pending')), point).toEqual([]);
        // One success record per run, also for the run killed after its cursor.
        const history = listFiles(path.join(stateDir(w), stateKeys.historyPrefix)).filter((f) =>
          f.includes('.success.'),
        );
        expect(history.length, point).toBe(4);
      }),
    );
  });
});

describe('history', () => {
  it('runs --limit and status read the newest records only; the layout before month folders is read and then moved', async () => {
    const w = workspace();
    const ids = [];
    for (let n = 1; n <= 3; n++) ids.push((await runOk(w, n)).runId);
    const config = w.config(crmConfig());
    const all = await w.audex(['runs', '--config', config, '--json']);
    expect(all.code, all.stderr).toBe(0);
    expect(all.json().runs.map((r) => r.runId)).toEqual([...ids].reverse());

    // A damaged record in an older month: readers that stop at what they show never read it.
    const damaged = path.join(stateDir(w), stateKeys.history('20261001T053000Z-0badf00d', 'success', 'aud-vip'));
    mkdirSync(path.dirname(damaged), { recursive: true });
    writeFileSync(damaged, '{ not json');
    const limited = await w.audex(['runs', '--config', config, '--limit', '2', '--json']);
    expect(limited.code, limited.stderr).toBe(0);
    expect(limited.json().runs.map((r) => r.runId)).toEqual([ids[2], ids[1]]);
    const status = await w.audex(['status', '--config', config, '--at', day(3)]);
    expect(status.code, status.stderr).toBe(0);
    expect(status.stdout).toContain(`last success: 2026-11-22T05:30:00.000Z run ${ids[2]}`);
    expect(status.stdout).toMatch(/state: +\d+(\.\d)? (B|KiB), 2 baseline\(s\) kept/);
    const everything = await w.audex(['runs', '--config', config, '--json']);
    expect(everything.code).toBe(3);
    expect(everything.stderr).toContain(damaged);
    writeFileSync(
      damaged,
      JSON.stringify({
        ...all.json().runs[2],
        runId: '20261001T053000Z-0badf00d',
        logicalTime: '2026-10-01T05:30:00.000Z',
      }),
    );

    // The layout before month folders (history/<runId>.json): moved back there, still read.
    const history = path.join(stateDir(w), 'history');
    mkdirSync(history);
    for (const id of ids)
      renameSync(path.join(stateDir(w), stateKeys.history(id, 'success', 'aud-vip')), path.join(history, `${id}.json`));
    const legacy = await w.audex(['runs', '--config', config, '--json']);
    expect(legacy.json().runs.map((r) => r.runId)).toEqual([...[...ids].reverse(), '20261001T053000Z-0badf00d']);
    expect(
      (await w.audex(['runs', '--config', config, '--limit', '1', '--json'])).json().runs.map((r) => r.runId),
    ).toEqual([ids[2]]);
    // The next run moves them into month folders.
    const r4 = await runOk(w, 4);
    expect(listFiles(history)).toEqual([]);
    expect((await w.audex(['runs', '--config', config, '--json'])).json().runs.map((r) => r.runId)).toEqual([
      r4.runId,
      ...[...ids].reverse(),
      '20261001T053000Z-0badf00d',
    ]);
  });
});

describe('audex reset', () => {
  it('--to diffs the next run against a kept baseline; without it the next run is a full backfill; recorded with user and host; refusals', async () => {
    const w = workspace();
    const r1 = await runOk(w, 1);
    const r2 = await runOk(w, 2);
    const config = w.config(crmConfig());
    const who = { USER: 'ops-anna', AWS_SECRET_ACCESS_KEY: 'never-recorded-secret' };
    const reset = (args: string[], at: string) =>
      w.audex(['reset', '--config', config, '--audience', 'aud-vip', '--at', at, '--json', ...args], who);

    // --to a kept run: day 3 (same snapshot as day 2) sends day 2's changes again.
    const to = await reset(['--to', r1.runId], '2026-11-21T12:00:00Z');
    expect(to.code, to.stderr).toBe(0);
    expect(cursorOf(w)).toMatchObject({
      runId: r2.runId,
      lastSlot: r2.logicalTime,
      baseline: `baselines/aud-vip/${r1.runId}.parquet`,
      baselineSize: 6,
    });
    const r3 = await runOk(w, 3);
    expect(r3.counts).toEqual(r2.counts);
    expect(readCsv(r3.files[0]!.path)).toEqual(readCsv(r2.files[0]!.path));

    // Refused: a baseline no longer kept (day 3 pruned day 1's), an unmapped audience, a held lock.
    const cursorBefore = readFileSync(path.join(stateDir(w), 'cursors', 'aud-vip.json'), 'utf8');
    const gone = await reset(['--to', r1.runId], '2026-11-22T12:00:00Z');
    expect(gone.code).toBe(2);
    expect(JSON.parse(gone.stdout)).toMatchObject({ audienceId: 'aud-vip', error: { exitCode: 2 } });
    expect(gone.stderr).toContain(
      `--to ${r1.runId}: no baseline of that run is kept for audience aud-vip (kept: ${r2.runId}, ${r3.runId})`,
    );
    const unknown = await w.audex(['reset', '--config', config, '--audience', 'aud-nope']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('--audience aud-nope: not mapped in dataflow acme-crm');
    const lock = path.join(stateDir(w), 'lock.json');
    writeFileSync(
      lock,
      JSON.stringify({
        token: 't',
        pid: process.pid,
        host: hostname(),
        acquiredAt: '2026-11-22T05:59:00.000Z',
        dataflowId: 'acme-crm',
      }),
    );
    const locked = await reset([], '2026-11-22T12:00:00Z');
    expect(locked.code).toBe(1);
    expect(locked.stderr).toMatch(
      new RegExp(`cannot reset aud-vip while a run holds the dataflow lock; nothing was reset.*pid ${process.pid}`),
    );
    expect(existsSync(lock)).toBe(true);
    expect(readFileSync(path.join(stateDir(w), 'cursors', 'aud-vip.json'), 'utf8')).toBe(cursorBefore);
    rmSync(lock);

    // No --to: day 4 is a full backfill of the snapshot (every active member, no exits).
    const full = await reset([], '2026-11-22T12:00:00Z');
    expect(full.code, full.stderr).toBe(0);
    const record = JSON.parse(full.stdout).reset;
    expect(record).toMatchObject({
      audienceId: 'aud-vip',
      status: 'reset',
      trigger: 'operator',
      logicalTime: '2026-11-22T12:00:00.000Z',
      reset: { user: 'ops-anna', host: hostname() },
    });
    expect(record.reset.previousCursor).toMatchObject({
      runId: r3.runId,
      baseline: `baselines/aud-vip/${r3.runId}.parquet`,
    });
    expect(cursorOf(w).baseline).toBeUndefined();
    expect(cursorOf(w).lastSlot).toBe(r3.logicalTime);
    const r4 = await runOk(w, 4);
    const rows = readCsv(r4.files[0]!.path);
    expect(rows.length - 1).toBeGreaterThan(r3.counts.rowsWritten!);
    expect(new Set(rows.slice(1).map((r) => r[4]))).toEqual(new Set(['realized', 'existing']));

    // Both resets are in the history (and only they), with no secret from the environment.
    const runs = (await w.audex(['runs', '--config', config, '--status', 'reset', '--json'])).json().runs;
    expect(runs.map((r) => r.logicalTime)).toEqual(['2026-11-22T12:00:00.000Z', '2026-11-21T12:00:00.000Z']);
    const stateText = listFiles(stateDir(w))
      .filter((f) => f.endsWith('.json'))
      .map((f) => readFileSync(path.join(stateDir(w), f), 'utf8'))
      .join('\n');
    expect(stateText).toContain('ops-anna');
    expect(stateText).not.toContain('never-recorded-secret');
  });
});
