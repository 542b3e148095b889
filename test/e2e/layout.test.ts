// README "Files, names and the manifest" end to end: where files go (`<destination>/<folderPath>/<fileName><ext>`), every
// name token, logical time and timezone, hostile audience names, overwriting without a
// date token, and where the state lives. Every file is produced by the real CLI.
import { describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { stateKeys } from '../../src/state/state-keys.js';
import {
  addSnapshot,
  crmConfig,
  listFiles,
  readCsv,
  readText,
  type CliResult,
  type JsonSummary,
  type Workspace,
  trackWorkspaces,
} from '../helpers/harness.js';

type Run = JsonSummary['runs'][number];

const workspace = trackWorkspaces();

function runCfg(ws: Workspace, config: Record<string, unknown>, name: string, at: string): Promise<CliResult> {
  const file = ws.config(config, `${name}.yaml`);
  return ws.audex(['run', '--config', file, '--at', at, '--json', '--quiet']);
}

/** Runs and asserts exit 0 with every run successful; returns the non-skipped runs. */
async function runOk(ws: Workspace, config: Record<string, unknown>, name: string, at: string): Promise<Run[]> {
  const result = await runCfg(ws, config, name, at);
  expect(result.code, `${name}: ${result.stderr}\n${result.stdout}`).toBe(0);
  const runs = result.json().runs.filter((r) => r.status !== 'skipped');
  for (const r of runs) expect(r.status, `${name} ${r.audienceId}: ${r.error ?? ''}`).toBe('success');
  return runs;
}

const sha256 = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex');
const unix = (iso: string) => String(Date.parse(iso) / 1000);
const isManifest = (f: string) => path.basename(f).startsWith('manifest-');

function fixtureLines(ws: Workspace): string[] {
  const dir = path.join(ws.snapshots, 'snap-20261120', 'profiles');
  return [readText(path.join(dir, 'part-00000.ndjson')), readText(path.join(dir, 'part-00001.ndjson.gz'))]
    .flatMap((t) => t.split('\n'))
    .filter(Boolean);
}

describe('tokens and placement', () => {
  it('puts files at <destination>/<folderPath>/<fileName><ext> with every token expanded at the logical time', async () => {
    const ws = workspace();
    const config = crmConfig({
      name: 'Acme CRM EU',
      id: 'acme-crm-eu',
      customText: 'weekly-drop',
      destination: { path: './out' },
      folderPath: 'exports/%DESTINATION_NAME%/%DESTINATION_INSTANCE_ID%/%SEGMENT_NAME%/%EXPORT_MODE%/%CUSTOM_TEXT%',
      fileName:
        '%SEGMENT_ID%_%DATETIME%_%TIMESTAMP%_%RUN_ID%_%DATETIME(yyyy-MM-DD HH.mm.ss)%_%DATETIME(YYYYdd)%_%DATETIME(Tx hM)%',
      audiences: [
        {
          id: 'aud-vip',
          mode: 'incremental',
          schedule: { frequency: 'daily', startTime: '05:30', startDate: '2026-11-01' },
        },
        {
          id: 'aud-churn',
          mode: 'full',
          schedule: { frequency: 'daily', startTime: '05:30', startDate: '2026-11-01' },
        },
      ],
      mandatory: [],
    });
    const runs = await runOk(ws, config, 'tokens', '2026-11-20T06:00:00Z');
    expect(runs.map((r) => r.audienceId).sort()).toEqual(['aud-churn', 'aud-vip']);

    const expected: string[] = [];
    for (const run of runs) {
      // The slot, not --at.
      expect(run.logicalTime).toBe('2026-11-20T05:30:00.000Z');
      expect(run.runId).toMatch(/^[A-Za-z0-9_-]+$/);
      const segmentName = run.audienceId === 'aud-vip' ? 'VIP Customers' : 'Churn Risk';
      const mode = run.audienceId === 'aud-vip' ? 'incremental' : 'full';
      const folder = `exports/Acme_CRM_EU/acme-crm-eu/${segmentName}/${mode}/weekly-drop`;
      const file =
        `${run.audienceId}_20261120_053000_${unix('2026-11-20T05:30:00Z')}_${run.runId}` +
        `_2026-11-20 05.30.00_202620_Tx hM.csv`;
      expect(unix('2026-11-20T05:30:00Z')).toMatch(/^\d{10}$/);
      expect(run.files.map((f) => f.path)).toEqual([path.join(ws.out, folder, file)]);
      expect(existsSync(path.join(ws.out, folder, file))).toBe(true);
      // The manifest sits next to the run's files.
      const manifest = `${folder}/manifest-acme-crm-eu-${run.runId}.json`;
      const body = JSON.parse(readFileSync(path.join(ws.out, manifest), 'utf8')) as {
        exportResults: { sinkPath: string; name: string }[];
      };
      expect(body.exportResults).toEqual([expect.objectContaining({ sinkPath: folder, name: file })]);
      expected.push(`${folder}/${file}`, manifest);
    }
    expect(ws.files()).toEqual(expected.sort());
  });

  it('renders times in the dataflow timezone, with startTime as local wall-clock time', async () => {
    const ws = workspace();
    // A summer snapshot, to see the other UTC offset of New York (EDT, UTC-4).
    addSnapshot(ws.snapshots, 'snap-summer', '2026-07-01T05:00:00Z', fixtureLines(ws));
    const cfg = (id: string, timezone: string, startDate = '2026-11-01') =>
      crmConfig({
        id,
        timezone,
        folderPath: `${id}/%DATETIME(YYYY-MM-dd)%`,
        fileName: '%SEGMENT_ID%_%DATETIME%_%TIMESTAMP%',
        audiences: [{ id: 'aud-vip', mode: 'full', schedule: { frequency: 'daily', startTime: '05:30', startDate } }],
      });
    const cases = [
      // 05:30 New York (EST, UTC-5) on 2026-11-20 is 10:30Z.
      {
        id: 'ny',
        tz: 'America/New_York',
        at: '2026-11-20T11:00:00Z',
        slot: '2026-11-20T10:30:00.000Z',
        day: '2026-11-20',
        stamp: '20261120_053000',
      },
      // 05:30 Tokyo (UTC+9) on 2026-11-21 is 20:30Z the day before.
      {
        id: 'tokyo',
        tz: 'Asia/Tokyo',
        at: '2026-11-20T21:00:00Z',
        slot: '2026-11-20T20:30:00.000Z',
        day: '2026-11-21',
        stamp: '20261121_053000',
      },
      // 05:30 New York in July (EDT, UTC-4) is 09:30Z.
      {
        id: 'ny-summer',
        tz: 'America/New_York',
        at: '2026-07-01T10:00:00Z',
        slot: '2026-07-01T09:30:00.000Z',
        day: '2026-07-01',
        stamp: '20260701_053000',
        start: '2026-06-01',
      },
      // UTC for contrast.
      {
        id: 'utc',
        tz: 'UTC',
        at: '2026-11-20T11:00:00Z',
        slot: '2026-11-20T05:30:00.000Z',
        day: '2026-11-20',
        stamp: '20261120_053000',
      },
    ];
    const results = await Promise.all(cases.map((c) => runOk(ws, cfg(c.id, c.tz, c.start), c.id, c.at)));
    cases.forEach((c, i) => {
      const [run] = results[i]!;
      expect(run!.logicalTime, c.id).toBe(c.slot);
      expect(
        run!.files.map((f) => path.relative(ws.out, f.path)),
        c.id,
      ).toEqual([`${c.id}/${c.day}/aud-vip_${c.stamp}_${unix(c.slot)}.csv`]);
    });
  });
});

describe('hostile audience names', () => {
  const LONG = '日'.repeat(100); // 300 bytes of UTF-8
  const AUDIENCES = [
    { id: 'h-etc', name: '../../etc' },
    { id: 'h-slash', name: 'a/b' },
    { id: 'h-dotdot', name: '..' },
    { id: 'h-dot', name: '.' },
    { id: 'h-abs', name: '/abs/path' },
    { id: 'h-backslash', name: '..\\..\\win' },
    { id: 'h-ctl', name: 'ctl\u0000nul\u0001\n\r\t\u001b[31mred\u007f' },
    { id: 'h-c1', name: 'c1\u0085nel\u009bcsi' },
    { id: 'h-long', name: LONG },
    { id: 'h-long2', name: `${LONG}-second` },
    { id: 'h-empty', name: '' },
  ];
  const members = [0, 1].map((i) => ({
    profileId: `h-${i}`,
    identityMap: { email: [{ id: `h${i}@example.com` }] },
    loyalty: { tier: 'gold' },
    segmentMembership: {
      ups: Object.fromEntries(
        AUDIENCES.map((a) => [a.id, { status: 'realized', lastQualificationTime: '2026-11-19T10:00:00Z' }]),
      ),
    },
  }));
  const hostileConfig = (id: string, destination: string, extra: Record<string, unknown>) =>
    crmConfig({
      id,
      destination: { path: destination },
      mapping: [
        { source: 'identityMap.email', target: 'email' },
        { source: 'loyalty.tier', target: 'tier' },
      ],
      audiences: AUDIENCES.map((a) => ({
        id: a.id,
        mode: 'full',
        schedule: { frequency: 'daily', startTime: '05:30', startDate: '2026-11-01' },
      })),
      ...extra,
    });

  /**
   * Every file under `root` stays inside it and every path segment is a safe name. C1
   * control characters (U+0080–U+009F) are collected apart, so the caller can assert them
   * last and they do not hide the other checks.
   */
  function checkTree(root: string, runs: Run[]): { files: string[]; problems: string[]; c1: string[] } {
    const files = listFiles(root);
    const problems: string[] = [];
    const c1 = new Set<string>();
    for (const rel of files) {
      const abs = path.resolve(root, rel);
      if (!abs.startsWith(root + path.sep)) problems.push(`${rel}: outside ${root}`);
      for (const seg of rel.split('/')) {
        if (seg === '' || seg === '.' || seg === '..')
          problems.push(`${JSON.stringify(rel)}: segment ${JSON.stringify(seg)}`);
        if (Buffer.byteLength(seg, 'utf8') > 255)
          problems.push(`${JSON.stringify(rel)}: segment of ${Buffer.byteLength(seg)} bytes`);
        if (/[\\\u0000-\u001f\u007f]/u.test(seg))
          problems.push(
            `${JSON.stringify(rel)}: segment ${JSON.stringify(seg)} has a C0 control character, DEL or backslash`,
          );
        if (/[\u0080-\u009f]/u.test(seg)) c1.add(`segment ${JSON.stringify(seg)} has a C1 control character`);
        if (seg.includes('\uFFFD')) problems.push(`${JSON.stringify(rel)}: segment cut inside a UTF-8 character`);
      }
    }
    for (const run of runs) {
      for (const f of [...run.files.map((x) => x.path), ...(run.manifest ? [run.manifest] : [])]) {
        const abs = path.resolve(f);
        if (!abs.startsWith(root + path.sep)) problems.push(`${run.audienceId}: reported ${f} outside ${root}`);
        if (!existsSync(abs)) problems.push(`${run.audienceId}: reported ${f} does not exist`);
      }
    }
    return { files, problems, c1: [...c1] };
  }

  it('keeps every file under the destination with safe segments (folderPath x/%SEGMENT_NAME%)', async () => {
    const ws = workspace();
    addSnapshot(ws.snapshots, 'snap-hostile', '2026-11-20T05:10:00Z', members, AUDIENCES);
    const before = new Set(listFiles(ws.dir));
    const runs = await runOk(
      ws,
      hostileConfig('hostile', './out', { folderPath: 'x/%SEGMENT_NAME%' }),
      'hostile',
      '2026-11-20T06:00:00Z',
    );
    expect(runs.map((r) => r.audienceId).sort()).toEqual(AUDIENCES.map((a) => a.id).sort());

    // Nothing new anywhere in the workspace outside out/, and nothing at the absolute path.
    const created = listFiles(ws.dir).filter((f) => !before.has(f));
    expect(created.filter((f) => !f.startsWith('out/') && f !== 'hostile.yaml')).toEqual([]);
    expect(existsSync('/abs/path')).toBe(false);

    const { files, problems, c1 } = checkTree(ws.out, runs);
    expect(problems).toEqual([]);
    // Each audience got its own data file, all under x/.
    for (const run of runs) {
      expect(run.files, run.audienceId).toHaveLength(1);
      expect(path.relative(ws.out, run.files[0]!.path).startsWith('x/')).toBe(true);
      expect(readCsv(run.files[0]!.path)).toHaveLength(3);
    }
    const dataFiles = files.filter((f) => !f.startsWith('_audex/') && !isManifest(f));
    expect(new Set(dataFiles).size).toBe(AUDIENCES.length);
    // The long name is cut to at most 255 bytes, on a character boundary.
    const longRun = runs.find((r) => r.audienceId === 'h-long')!;
    const longSegment = path.relative(ws.out, longRun.files[0]!.path).split('/')[1]!;
    expect(longSegment.startsWith('日'.repeat(80))).toBe(true);
    expect(Buffer.byteLength(longSegment)).toBeLessThanOrEqual(255);
    // README "Files, names and the manifest" "no control characters": C1 controls (NEL U+0085, CSI U+009B) are controls too.
    expect(c1).toEqual([]);
  });

  it('keeps names safe and audiences apart when %SEGMENT_NAME% is also in fileName', async () => {
    const ws = workspace();
    addSnapshot(ws.snapshots, 'snap-hostile', '2026-11-20T05:10:00Z', members, AUDIENCES);
    const runs = await runOk(
      ws,
      hostileConfig('hostile-names', './out', {
        folderPath: 'x/%SEGMENT_NAME%/%SEGMENT_NAME%',
        fileName: '%SEGMENT_NAME%_%SEGMENT_ID%_%DATETIME%',
      }),
      'hostile-names',
      '2026-11-20T06:00:00Z',
    );
    const { files, problems, c1 } = checkTree(ws.out, runs);
    expect(problems).toEqual([]);
    // Every audience still has its own data file: cutting a long name must not drop the
    // segment id and make two audiences write the same file.
    const paths = runs.map((r) => r.files[0]?.path);
    expect(new Set(paths).size, JSON.stringify(paths.map((p) => p && path.relative(ws.out, p)))).toBe(AUDIENCES.length);
    expect(files.filter((f) => !f.startsWith('_audex/') && !isManifest(f))).toHaveLength(AUDIENCES.length);
    for (const run of runs) {
      const file = run.files[0]!.path;
      expect(path.basename(file), run.audienceId).toContain(run.audienceId);
      expect(sha256(file), run.audienceId).toBe(run.files[0]!.sha256);
    }
    expect(c1).toEqual([]);
  });
});

describe('overwrite without a date token', () => {
  it('a fileName without a date/time token is overwritten by the next run', async () => {
    const ws = workspace();
    const config = crmConfig({ id: 'overwrite', folderPath: 'crm', fileName: '%SEGMENT_ID%' });
    const [first] = await runOk(ws, config, 'overwrite', '2026-11-20T06:00:00Z');
    const [second] = await runOk(ws, config, 'overwrite', '2026-11-21T06:00:00Z');
    const file = path.join(ws.out, 'crm', 'aud-vip.csv');
    expect(first!.files.map((f) => f.path)).toEqual([file]);
    expect(second!.files.map((f) => f.path)).toEqual([file]);
    expect(first!.runId).not.toBe(second!.runId);
    // One data file, holding the second run; one manifest per run.
    expect(ws.files()).toEqual(
      [
        'crm/aud-vip.csv',
        `crm/manifest-overwrite-${first!.runId}.json`,
        `crm/manifest-overwrite-${second!.runId}.json`,
      ].sort(),
    );
    expect(sha256(file)).toBe(second!.files[0]!.sha256);
    const rows = readCsv(file);
    expect(rows).toHaveLength(1 + (second!.counts['rowsWritten'] ?? NaN));
    expect(rows.slice(1).map((r) => [r[0], r[4]])).toEqual([
      ['bob@example.com', 'exited'],
      ['finn@example.com', 'realized'],
      ['ivy@example.com', 'exited'],
      ['june@example.com', 'realized'],
    ]);
  });
});

describe('state layout', () => {
  it('keeps state at <destination>/_audex/<id> by default, or at state.path', async () => {
    const ws = workspace();
    const absState = path.join(ws.dir, 'abs', 'state');
    const configs = {
      dflt: crmConfig({ id: 'st-default', folderPath: 'default' }),
      moved: crmConfig({ id: 'st-moved', folderPath: 'moved', state: { path: './elsewhere/st-moved' } }),
      abs: crmConfig({ id: 'st-abs', folderPath: 'abs', state: { path: absState } }),
    };
    const first = await Promise.all(Object.entries(configs).map(([n, c]) => runOk(ws, c, n, '2026-11-20T06:00:00Z')));
    const second = await Promise.all(Object.entries(configs).map(([n, c]) => runOk(ws, c, n, '2026-11-21T06:00:00Z')));
    const ids = (runs: Run[][]) => runs.map((r) => r[0]!.runId);
    const [d1, m1, a1] = ids(first);
    const [d2, m2, a2] = ids(second);

    const stateFiles = (id: string, r1: string, r2: string) =>
      [
        'cursors/aud-vip.json',
        `baselines/aud-vip/${r1}.parquet`,
        `baselines/aud-vip/${r2}.parquet`,
        stateKeys.history(r1, 'success', 'aud-vip'),
        stateKeys.history(r2, 'success', 'aud-vip'),
      ].sort();

    // Default: under the destination; no lock or pending record left behind.
    expect(listFiles(path.join(ws.out, '_audex'))).toEqual(
      stateFiles('st-default', d1!, d2!).map((f) => `st-default/${f}`),
    );
    // Moved: nothing under the destination's _audex for these ids.
    expect(listFiles(path.join(ws.dir, 'elsewhere', 'st-moved'))).toEqual(stateFiles('st-moved', m1!, m2!));
    expect(listFiles(absState)).toEqual(stateFiles('st-abs', a1!, a2!));

    // The cursor points at the second run; the second run diffed against the first
    // baseline (4 membership changes), so the moved state was read as well as written.
    for (const [dir, runId] of [
      [path.join(ws.out, '_audex', 'st-default'), d2],
      [path.join(ws.dir, 'elsewhere', 'st-moved'), m2],
      [absState, a2],
    ] as const) {
      const cursor = JSON.parse(readFileSync(path.join(dir, 'cursors', 'aud-vip.json'), 'utf8')) as Record<
        string,
        unknown
      >;
      expect(cursor).toMatchObject({
        audienceId: 'aud-vip',
        runId,
        lastSlot: '2026-11-21T05:30:00.000Z',
        snapshotId: 'snap-20261121',
      });
    }
    for (const runs of second) expect(runs[0]!.counts.rowsWritten).toBe(4);
    for (const runs of first) expect(runs[0]!.counts.rowsWritten).toBe(6);
  });
});

describe('dataflows sharing a folder', () => {
  it('two dataflows writing into the same folder at the same time both succeed', async () => {
    const ws = workspace();
    const ids = ['share-a', 'share-b', 'share-c', 'share-d', 'share-e', 'share-f'];
    const results = await Promise.all(
      ids.map((id, i) =>
        runCfg(
          ws,
          crmConfig({
            id,
            folderPath: 'shared',
            fileName: `%SEGMENT_ID%_${id}_%DATETIME%`,
            format: { type: i % 2 ? 'csv' : 'parquet' },
          }),
          id,
          '2026-11-20T06:00:00Z',
        ),
      ),
    );
    const failures = results
      .map((r, i) => ({ id: ids[i], code: r.code, error: r.json().runs[0]?.error }))
      .filter((r) => r.code !== 0);
    expect(failures).toEqual([]);
    expect(ws.files().filter((f) => !isManifest(f))).toHaveLength(ids.length);
  });
});
