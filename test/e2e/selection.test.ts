// Which profiles a run exports and the rows they become (README "What gets exported", §4, §6 manifest, §9
// --json), end to end through the real CLI on the fixture snapshots and on small custom
// snapshots built with addSnapshot.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import {
  addSnapshot,
  createWorkspace,
  crmConfig,
  listFiles,
  readCsv,
  readJsonLines,
  type CliResult,
  type JsonSummary,
  type Workspace,
} from '../helpers/harness.js';

type Run = JsonSummary['runs'][number];

const AT_20 = '2026-11-20T06:00:00Z';
const AT_21 = '2026-11-21T06:00:00Z';
const HEADER = ['email', 'person_name_firstName', 'tier', 'points', 'status'];

const sha256 = (data: Buffer | string) => createHash('sha256').update(data).digest('hex');
const fileSha = (file: string) => sha256(readFileSync(file));

function ok(result: CliResult): JsonSummary {
  expect(result.code, `exit ${result.code}\nstdout:\n${result.stdout}\nstderr:\n${result.stderr}`).toBe(0);
  return result.json();
}

function onlyRun(summary: JsonSummary, audienceId?: string): Run {
  const runs = summary.runs.filter((r) => (audienceId ? r.audienceId === audienceId : true) && r.status !== 'skipped');
  expect(runs, JSON.stringify(summary, null, 2)).toHaveLength(1);
  return runs[0]!;
}

/** Data rows (header dropped) of the run's single file. */
function csvRows(run: Run): string[][] {
  expect(run.files).toHaveLength(1);
  const rows = readCsv(run.files[0]!.path);
  expect(rows[0]).toEqual(HEADER);
  return rows.slice(1);
}

/** Every file under a folder with its sha256, for before/after comparisons. */
function snapshotFolder(dir: string): Record<string, string> {
  return Object.fromEntries(listFiles(dir).map((f) => [f, fileSha(path.join(dir, f))]));
}

// ---------------------------------------------------------------------------------------
describe('incremental aud-vip on the fixtures (crmConfig)', () => {
  let ws: Workspace;
  let config: string;
  let first: CliResult;
  let second: CliResult;
  let third: CliResult;

  beforeAll(async () => {
    ws = createWorkspace();
    config = ws.config(crmConfig());
    first = await ws.audex(['run', '--config', config, '--at', AT_20, '--json']);
    second = await ws.audex(['run', '--config', config, '--at', AT_21, '--json']);
    third = await ws.audex(['run', '--config', config, '--at', AT_21, '--json']);
  });
  afterAll(() => ws?.cleanup());

  it('first run is a backfill of all active members, deduped and filtered', () => {
    const run = onlyRun(ok(first));
    expect(run).toMatchObject({
      audienceId: 'aud-vip',
      mode: 'incremental',
      trigger: 'schedule',
      status: 'success',
      logicalTime: '2026-11-20T05:30:00.000Z',
      snapshotId: 'snap-20261120',
    });
    expect(run.counts).toEqual({
      profilesReceived: 9,
      rowsWritten: 6,
      excludedMandatory: 2,
      excludedDuplicate: 1,
      exitsOmitted: 0,
      exitsWritten: 0,
      badRecords: 0,
    });
    // Ordered by profile key: p-001, p-002, p-004 (wins johndoe over p-003), p-006, p-009, p-011.
    // p-005 (no tier) and p-007 (no email) are out; p-008 is exited; p-010 not a member.
    expect(csvRows(run)).toEqual([
      ['ann@example.com', 'Ann', 'gold', '1200', 'realized'],
      ['bob@example.com', 'Bob', 'silver', '300.5', 'existing'],
      ['johndoe@example.com', 'John', 'platinum', '5000', 'realized'],
      ['dan@example.com', 'Dan, "D"', 'gold', '75', 'existing'],
      ['gail@example.com', 'Gail', 'silver', '12', 'realized'],
      ['ivy@example.com', 'Ivy', 'gold', '820', 'existing'],
    ]);
  });

  it('dedup excludes p-003 as a whole, including its other email john.a@example.com', () => {
    const text = readFileSync(onlyRun(first.json()).files[0]!.path, 'utf8');
    expect(text).not.toContain('john.a@example.com');
    expect(text.match(/johndoe@example\.com/g)).toHaveLength(1);
  });

  it('second run exports only enters and exits; attribute- and identity-only changes stay out', () => {
    const run = onlyRun(ok(second));
    expect(run).toMatchObject({
      mode: 'incremental',
      trigger: 'schedule',
      status: 'success',
      logicalTime: '2026-11-21T05:30:00.000Z',
      snapshotId: 'snap-20261121',
    });
    // The baseline holds the profiles exported as members (README "State and safety"), so the members held
    // back on day 1 (p-005, p-007: mandatory; p-003: dedup loser to p-004, still exported)
    // are candidates again and excluded again: 5 enters + 2 exits received.
    expect(run.counts).toEqual({
      profilesReceived: 7,
      rowsWritten: 4,
      excludedMandatory: 2,
      excludedDuplicate: 1,
      exitsOmitted: 0,
      exitsWritten: 2,
      badRecords: 0,
    });
    // bob exits (still present: current values); finn enters (Parquet part); ivy vanished
    // (only the baseline's email and the status); june is new. ann (tier change) and
    // gail (new email) are not exported.
    expect(csvRows(run)).toEqual([
      ['bob@example.com', 'Bob', 'silver', '300.5', 'exited'],
      ['finn@example.com', 'Finn', 'bronze', '5', 'realized'],
      ['ivy@example.com', '', '', '', 'exited'],
      ['june@example.com', 'June', 'gold', '640', 'realized'],
    ]);
  });

  it('a third run at the same time has nothing due', () => {
    expect(third.code, third.stderr).toBe(0);
    expect(third.json().runs).toEqual([]);
  });

  it('--json summary has the README "Running it" shape and files match the bytes on disk', () => {
    for (const result of [first, second]) {
      const summary = result.json();
      expect(Object.keys(summary).sort()).toEqual(['at', 'dataflowId', 'runs']);
      expect(summary.dataflowId).toBe('acme-crm');
      for (const run of summary.runs) {
        for (const key of [
          'runId',
          'audienceId',
          'mode',
          'trigger',
          'logicalTime',
          'snapshotId',
          'status',
          'counts',
          'files',
        ]) {
          expect(run, key).toHaveProperty(key);
        }
        expect(Object.keys(run.counts).sort()).toEqual([
          'badRecords',
          'excludedDuplicate',
          'excludedMandatory',
          'exitsOmitted',
          'exitsWritten',
          'profilesReceived',
          'rowsWritten',
        ]);
        for (const file of run.files) {
          expect(Object.keys(file).sort()).toEqual(['bytes', 'path', 'rows', 'sha256']);
          expect(existsSync(file.path), file.path).toBe(true);
          expect(file.bytes).toBe(statSync(file.path).size);
          expect(file.sha256).toBe(fileSha(file.path));
          expect(file.rows).toBe(readCsv(file.path).length - 1);
        }
      }
    }
    expect(first.json().at).toBe('2026-11-20T06:00:00.000Z');
  });

  it('runId is <logical time stamp>-<8 hex> and files land under destination/folderPath/fileName', () => {
    const run1 = onlyRun(first.json());
    const run2 = onlyRun(second.json());
    expect(run1.runId).toMatch(/^20261120T053000Z-[0-9a-f]{8}$/);
    expect(run2.runId).toMatch(/^20261121T053000Z-[0-9a-f]{8}$/);
    expect(ws.files()).toContain('crm/VIP Customers/Acme_CRM_aud-vip_20261120_053000.csv');
    expect(ws.files()).toContain('crm/VIP Customers/Acme_CRM_aud-vip_20261121_053000.csv');
    expect(path.resolve(run1.files[0]!.path)).toBe(
      path.join(ws.out, 'crm/VIP Customers/Acme_CRM_aud-vip_20261120_053000.csv'),
    );
  });

  it('writes a manifest next to the data files describing the run', () => {
    for (const result of [first, second]) {
      const run = onlyRun(result.json());
      const file = run.files[0]!;
      const manifestPath = path.join(path.dirname(file.path), `manifest-acme-crm-${run.runId}.json`);
      expect(existsSync(manifestPath), manifestPath).toBe(true);
      const manifest = JSON.parse(readFileSync(manifestPath, 'utf8')) as Record<string, unknown>;
      expect(manifest).toMatchObject({
        flowRunId: run.runId,
        scheduledTime: run.logicalTime,
        audienceId: 'aud-vip',
        exportMode: 'incremental',
        snapshotId: run.snapshotId,
        // README "Files, names and the manifest"'s counts: the manifest leaves out exitsWritten (in --json and history only).
        counts: Object.fromEntries(Object.entries(run.counts).filter(([k]) => k !== 'exitsWritten')),
      });
      expect(manifest['counts']).not.toHaveProperty('exitsWritten');
      const results = manifest['exportResults'] as Record<string, unknown>[];
      expect(results).toHaveLength(1);
      expect(results[0]).toMatchObject({
        name: path.basename(file.path),
        size: file.bytes,
        rows: file.rows,
        sha256: file.sha256,
      });
      expect(String(results[0]!['sinkPath'])).toMatch(/crm\/VIP Customers$/);
    }
  });

  it('runId is the same for the same dataflow/audience/mode/trigger/time in a fresh workspace', async () => {
    const fresh = createWorkspace();
    try {
      const again = onlyRun(
        ok(await fresh.audex(['run', '--config', fresh.config(crmConfig()), '--at', AT_20, '--json'])),
      );
      const original = onlyRun(first.json());
      expect(again.runId).toBe(original.runId);
      // Same inputs and config: byte-identical file.
      expect(again.files[0]!.sha256).toBe(original.files[0]!.sha256);
    } finally {
      fresh.cleanup();
    }
  });
});

// ---------------------------------------------------------------------------------------
describe('exits without segmentMembership.status mapped', () => {
  let ws: Workspace;
  afterAll(() => ws?.cleanup());

  it('leaves exit rows out and counts them as exitsOmitted', async () => {
    ws = createWorkspace();
    const base = crmConfig();
    const mapping = (base['mapping'] as { source: string }[]).filter((m) => m.source !== 'segmentMembership.status');
    const config = ws.config(crmConfig({ mapping }));
    ok(await ws.audex(['run', '--config', config, '--at', AT_20, '--json']));
    const run = onlyRun(ok(await ws.audex(['run', '--config', config, '--at', AT_21, '--json'])));
    expect(run.counts).toEqual({
      profilesReceived: 7,
      rowsWritten: 2,
      excludedMandatory: 2,
      excludedDuplicate: 1,
      exitsOmitted: 2,
      exitsWritten: 0,
      badRecords: 0,
    });
    const rows = readCsv(run.files[0]!.path);
    expect(rows).toEqual([
      ['email', 'person_name_firstName', 'tier', 'points'],
      ['finn@example.com', 'Finn', 'bronze', '5'],
      ['june@example.com', 'June', 'gold', '640'],
    ]);
  });
});

// ---------------------------------------------------------------------------------------
describe('full export of snap-20261121 via export-now, and its effect on state', () => {
  let ws: Workspace;
  let config: string;
  let stateBefore: Record<string, string>;
  let exportNow: CliResult;
  afterAll(() => ws?.cleanup());

  beforeAll(async () => {
    ws = createWorkspace();
    config = ws.config(
      crmConfig({
        audiences: [
          {
            id: 'aud-vip',
            mode: 'incremental',
            schedule: { frequency: 'daily', startTime: '05:30', startDate: '2026-11-01' },
          },
          {
            id: 'aud-promo',
            mode: 'full',
            schedule: { frequency: 'once', startDate: '2026-11-25', startTime: '09:00' },
          },
          {
            id: 'aud-churn',
            mode: 'full',
            schedule: { frequency: 'daily', startTime: '05:30', startDate: '2026-11-01', endDate: '2026-11-21' },
          },
        ],
      }),
    );
    // Scheduled backfill on the 20th (aud-vip and aud-churn due; aud-promo not yet).
    ok(await ws.audex(['run', '--config', config, '--at', AT_20, '--json']));
    stateBefore = snapshotFolder(path.join(ws.out, '_audex', 'acme-crm'));
    exportNow = await ws.audex([
      'export-now',
      '--config',
      config,
      '--audience',
      'aud-vip',
      '--at',
      '2026-11-21T05:10:00Z',
      '--json',
    ]);
  });

  it('writes a full file (trigger exportNow, mode full) from the latest snapshot', () => {
    const run = onlyRun(ok(exportNow));
    expect(run).toMatchObject({
      audienceId: 'aud-vip',
      mode: 'full',
      trigger: 'exportNow',
      status: 'success',
      logicalTime: '2026-11-21T05:10:00.000Z',
      snapshotId: 'snap-20261121',
    });
    expect(run.runId).toMatch(/^20261121T051000Z-[0-9a-f]{8}$/);
    expect(path.basename(run.files[0]!.path)).toBe('Acme_CRM_aud-vip_20261121_051000.csv');
    // Active members only (bob exited, ivy gone); gail has two emails -> two rows, ordered
    // by profile key then id ('.' sorts before '@').
    expect(csvRows(run)).toEqual([
      ['ann@example.com', 'Ann', 'platinum', '1200', 'existing'],
      ['johndoe@example.com', 'John', 'platinum', '5000', 'existing'],
      ['dan@example.com', 'Dan, "D"', 'gold', '75', 'existing'],
      ['finn@example.com', 'Finn', 'bronze', '5', 'realized'],
      ['gail.ruiz@example.com', 'Gail', 'silver', '12', 'existing'],
      ['gail@example.com', 'Gail', 'silver', '12', 'existing'],
      ['june@example.com', 'June', 'gold', '640', 'realized'],
    ]);
    expect(run.counts).toEqual({
      profilesReceived: 9,
      rowsWritten: 7,
      excludedMandatory: 2,
      excludedDuplicate: 1,
      exitsOmitted: 0,
      exitsWritten: 0,
      badRecords: 0,
    });
    const manifest = JSON.parse(
      readFileSync(path.join(path.dirname(run.files[0]!.path), `manifest-acme-crm-${run.runId}.json`), 'utf8'),
    );
    expect(manifest).toMatchObject({
      flowRunId: run.runId,
      exportMode: 'full',
      audienceId: 'aud-vip',
      snapshotId: 'snap-20261121',
    });
  });

  it('does not create or modify cursors or baselines', () => {
    const stateAfter = snapshotFolder(path.join(ws.out, '_audex', 'acme-crm'));
    const pick = (s: Record<string, string>) =>
      Object.fromEntries(Object.entries(s).filter(([k]) => k.startsWith('cursors/') || k.startsWith('baselines/')));
    expect(Object.keys(pick(stateBefore))).toContain('cursors/aud-vip.json');
    expect(pick(stateAfter)).toEqual(pick(stateBefore));
  });

  it('the next scheduled incremental run still diffs against the old baseline', async () => {
    const summary = ok(await ws.audex(['run', '--config', config, '--at', AT_21, '--json']));
    const run = onlyRun(summary, 'aud-vip');
    expect(run).toMatchObject({ mode: 'incremental', trigger: 'schedule', logicalTime: '2026-11-21T05:30:00.000Z' });
    expect(csvRows(run).map((r) => `${r[0]} ${r[4]}`)).toEqual([
      'bob@example.com exited',
      'finn@example.com realized',
      'ivy@example.com exited',
      'june@example.com realized',
    ]);
  });

  it('refuses an audience that is not mapped (exit 2, naming it)', async () => {
    const result = await ws.audex([
      'export-now',
      '--config',
      config,
      '--audience',
      'aud-nope',
      '--at',
      AT_21,
      '--json',
    ]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('aud-nope');
  });

  it('refuses an audience whose schedule window does not include --at (exit 2)', async () => {
    // aud-promo starts 2026-11-25.
    const early = await ws.audex([
      'export-now',
      '--config',
      config,
      '--audience',
      'aud-promo',
      '--at',
      AT_21,
      '--json',
    ]);
    expect(early.code).toBe(2);
    expect(early.stderr).toContain('aud-promo');
    // aud-churn ends 2026-11-21 (exclusive): refused at 00:00 on the 21st, allowed just before.
    const late = await ws.audex([
      'export-now',
      '--config',
      config,
      '--audience',
      'aud-churn',
      '--at',
      '2026-11-21T00:00:00Z',
      '--json',
    ]);
    expect(late.code).toBe(2);
    expect(late.stderr).toContain('aud-churn');
    const inside = await ws.audex([
      'export-now',
      '--config',
      config,
      '--audience',
      'aud-churn',
      '--at',
      '2026-11-20T23:59:00Z',
      '--json',
    ]);
    expect(onlyRun(ok(inside))).toMatchObject({ audienceId: 'aud-churn', trigger: 'exportNow', status: 'success' });
  });
});

// ---------------------------------------------------------------------------------------
describe('values, columns and transforms', () => {
  let ws: Workspace;
  let csvRun: Run;
  let jsonRun: Run;
  const custom = () => path.join(ws.dir, 'custom');

  const profiles = [
    {
      profileId: 'v-2',
      identityMap: { email: [{ id: 'b@example.com' }] },
      personalEmail: { address: '  Mixed.Case@Example.COM ' },
      person: { name: { firstName: 'Bee' } },
      attrs: {
        flag: true,
        count: 5,
        ratio: 300.5,
        big: 12345678901234,
        neg: -7,
        tags: ['x', 'y,z'],
        obj: { a: 1, b: 'q"r' },
        empty: '',
      },
      segmentMembership: {
        ups: { 'aud-vip': { status: 'realized', lastQualificationTime: '2026-11-19T10:00:00.123+01:00' } },
      },
    },
    {
      profileId: 'v-1',
      identityMap: { email: [{ id: 'a@example.com' }] },
      person: { name: { firstName: 'Ay' } },
      attrs: { flag: false, count: 0 },
      segmentMembership: { ups: { 'aud-vip': { status: 'existing', lastQualificationTime: '2026-10-01T00:00:00Z' } } },
    },
  ];
  const mapping = [
    { source: 'identityMap.email', target: 'email' },
    { source: 'person.name.firstName' },
    { source: 'attrs.flag' },
    { source: 'attrs.count', target: 'count' },
    { source: 'attrs.ratio' },
    { source: 'attrs.big' },
    { source: 'attrs.neg' },
    { source: 'attrs.tags' },
    { source: 'attrs.obj' },
    { source: 'attrs.empty' },
    { source: 'attrs.missing' },
    { source: 'segmentMembership.lastQualificationTime', target: 'qualified_at' },
    { source: 'personalEmail.address', target: 'email_sha256', transform: 'sha256' },
    { source: 'segmentMembership.status', target: 'status' },
  ];
  const header = [
    'email',
    'person_name_firstName',
    'attrs_flag',
    'count',
    'attrs_ratio',
    'attrs_big',
    'attrs_neg',
    'attrs_tags',
    'attrs_obj',
    'attrs_empty',
    'attrs_missing',
    'qualified_at',
    'email_sha256',
    'status',
  ];
  const hashed = createHash('sha256').update('mixed.case@example.com').digest('hex');

  beforeAll(async () => {
    ws = createWorkspace();
    addSnapshot(custom(), 'vals', '2026-11-20T05:00:00Z', profiles);
    const base = {
      source: { snapshots: './custom' },
      mapping,
      mandatory: [],
      audiences: [
        { id: 'aud-vip', mode: 'full', schedule: { frequency: 'daily', startTime: '05:30', startDate: '2026-11-01' } },
      ],
    };
    csvRun = onlyRun(
      ok(
        await ws.audex([
          'run',
          '--config',
          ws.config(crmConfig({ ...base, id: 'vals-csv' }), 'csv.yaml'),
          '--at',
          AT_20,
          '--json',
        ]),
      ),
    );
    jsonRun = onlyRun(
      ok(
        await ws.audex([
          'run',
          '--config',
          ws.config(
            crmConfig({ ...base, id: 'vals-json', folderPath: 'json', format: { type: 'json', compression: 'none' } }),
            'json.yaml',
          ),
          '--at',
          AT_20,
          '--json',
        ]),
      ),
    );
  });
  afterAll(() => ws?.cleanup());

  it('CSV: header in mapping order with defaulted names; values in JSON form; missing -> empty', () => {
    const rows = readCsv(csvRun.files[0]!.path);
    expect(rows[0]).toEqual(header);
    expect(rows.slice(1)).toEqual([
      ['a@example.com', 'Ay', 'false', '0', '', '', '', '', '', '', '', '2026-10-01T00:00:00Z', '', 'existing'],
      [
        'b@example.com',
        'Bee',
        'true',
        '5',
        '300.5',
        '12345678901234',
        '-7',
        '["x","y,z"]',
        '{"a":1,"b":"q\\"r"}',
        '',
        '',
        '2026-11-19T10:00:00.123+01:00',
        hashed,
        'realized',
      ],
    ]);
  });

  it('JSON: keys = target names, nested arrays/objects, typed scalars, null for missing', () => {
    const rows = readJsonLines(jsonRun.files[0]!.path);
    expect(rows.map((r) => Object.keys(r))).toEqual([header, header]);
    expect(rows[0]).toEqual({
      email: 'a@example.com',
      person_name_firstName: 'Ay',
      attrs_flag: false,
      count: 0,
      attrs_ratio: null,
      attrs_big: null,
      attrs_neg: null,
      attrs_tags: null,
      attrs_obj: null,
      attrs_empty: null,
      attrs_missing: null,
      qualified_at: '2026-10-01T00:00:00Z',
      email_sha256: null,
      status: 'existing',
    });
    expect(rows[1]).toEqual({
      email: 'b@example.com',
      person_name_firstName: 'Bee',
      attrs_flag: true,
      count: 5,
      attrs_ratio: 300.5,
      attrs_big: 12345678901234,
      attrs_neg: -7,
      attrs_tags: ['x', 'y,z'],
      attrs_obj: { a: 1, b: 'q"r' },
      attrs_empty: '',
      attrs_missing: null,
      qualified_at: '2026-11-19T10:00:00.123+01:00',
      email_sha256: hashed,
      status: 'realized',
    });
  });
});

// ---------------------------------------------------------------------------------------
describe('mandatory and dedup on custom snapshots', () => {
  let ws: Workspace;
  beforeAll(() => {
    ws = createWorkspace();
  });
  afterAll(() => ws?.cleanup());

  const member = (q: string) => ({ ups: { 'aud-vip': { status: 'realized', lastQualificationTime: q } } });
  const fullVip = [
    { id: 'aud-vip', mode: 'full', schedule: { frequency: 'daily', startTime: '05:30', startDate: '2026-11-01' } },
  ];

  it('dedup by one attribute: latest qualification wins; ties by other columns (nulls last), then key', async () => {
    const lines = [
      // x@: d-02 qualified later than d-01 (11:00Z, although its string sorts after) -> d-02 wins.
      {
        profileId: 'd-01',
        personalEmail: { address: 'x@example.com' },
        person: { name: { firstName: 'Old' } },
        segmentMembership: member('2026-11-19T13:00:00+02:00'),
      },
      {
        profileId: 'd-02',
        personalEmail: { address: 'x@example.com' },
        person: { name: { firstName: 'New' } },
        segmentMembership: member('2026-11-19T12:00:00Z'),
      },
      // y@: same time; 'Amy' < 'Zed' -> d-04 wins although its key is larger.
      {
        profileId: 'd-03',
        personalEmail: { address: 'y@example.com' },
        person: { name: { firstName: 'Zed' } },
        segmentMembership: member('2026-11-19T11:00:00Z'),
      },
      {
        profileId: 'd-04',
        personalEmail: { address: 'y@example.com' },
        person: { name: { firstName: 'Amy' } },
        segmentMembership: member('2026-11-19T11:00:00Z'),
      },
      // z@: same time; d-05 has no first name (null sorts last) -> d-06 wins.
      {
        profileId: 'd-05',
        personalEmail: { address: 'z@example.com' },
        person: { name: {} },
        segmentMembership: member('2026-11-19T11:00:00Z'),
      },
      {
        profileId: 'd-06',
        personalEmail: { address: 'z@example.com' },
        person: { name: { firstName: 'Zoe' } },
        segmentMembership: member('2026-11-19T11:00:00Z'),
      },
      // w@: identical columns and time -> the smaller profile key wins.
      {
        profileId: 'd-08',
        personalEmail: { address: 'w@example.com' },
        person: { name: { firstName: 'Wes' } },
        segmentMembership: member('2026-11-19T11:00:00Z'),
      },
      {
        profileId: 'd-07',
        personalEmail: { address: 'w@example.com' },
        person: { name: { firstName: 'Wes' } },
        segmentMembership: member('2026-11-19T11:00:00Z'),
      },
      // no / empty dedup key -> excluded as missing a mandatory field.
      {
        profileId: 'd-09',
        person: { name: { firstName: 'Nokey' } },
        segmentMembership: member('2026-11-19T11:00:00Z'),
      },
      {
        profileId: 'd-10',
        personalEmail: { address: '' },
        person: { name: { firstName: 'Empty' } },
        segmentMembership: member('2026-11-19T11:00:00Z'),
      },
      // unique key -> kept.
      {
        profileId: 'd-11',
        personalEmail: { address: 'v@example.com' },
        person: { name: { firstName: 'Val' } },
        segmentMembership: member('2026-11-19T11:00:00Z'),
      },
    ];
    addSnapshot(path.join(ws.dir, 'dedup1'), 'd1', '2026-11-20T05:00:00Z', lines);
    const config = ws.config(
      crmConfig({
        id: 'dedup-one',
        source: { snapshots: './dedup1' },
        folderPath: 'dedup1',
        // The profile key is mapped last, so the tie-break tuple is (first, key).
        mapping: [
          { source: 'personalEmail.address', target: 'email' },
          { source: 'person.name.firstName', target: 'first' },
          { source: 'profileId', target: 'key' },
        ],
        mandatory: [],
        dedupKeys: ['personalEmail.address'],
        audiences: fullVip,
      }),
      'dedup1.yaml',
    );
    const run = onlyRun(ok(await ws.audex(['run', '--config', config, '--at', AT_20, '--json'])));
    expect(readCsv(run.files[0]!.path)).toEqual([
      ['email', 'first', 'key'],
      ['x@example.com', 'New', 'd-02'],
      ['y@example.com', 'Amy', 'd-04'],
      ['z@example.com', 'Zoe', 'd-06'],
      ['w@example.com', 'Wes', 'd-07'],
      ['v@example.com', 'Val', 'd-11'],
    ]);
    expect(run.counts).toEqual({
      profilesReceived: 11,
      rowsWritten: 5,
      excludedMandatory: 2,
      excludedDuplicate: 4,
      exitsOmitted: 0,
      exitsWritten: 0,
      badRecords: 0,
    });
  });

  it('dedup by an attribute pair: one composite key', async () => {
    const lines = [
      {
        profileId: 'c-1',
        person: { name: { firstName: 'Ann', lastName: 'Lee' } },
        loyalty: { tier: 'gold' },
        segmentMembership: member('2026-11-19T10:00:00Z'),
      },
      {
        profileId: 'c-2',
        person: { name: { firstName: 'Ann', lastName: 'Lee' } },
        loyalty: { tier: 'silver' },
        segmentMembership: member('2026-11-19T12:00:00Z'),
      },
      // Same first name, other last name: a different composite value -> kept.
      {
        profileId: 'c-3',
        person: { name: { firstName: 'Ann', lastName: 'Ray' } },
        loyalty: { tier: 'bronze' },
        segmentMembership: member('2026-11-19T09:00:00Z'),
      },
      // Same last name, other first name -> kept.
      {
        profileId: 'c-4',
        person: { name: { firstName: 'Bob', lastName: 'Lee' } },
        loyalty: { tier: 'gold' },
        segmentMembership: member('2026-11-19T09:00:00Z'),
      },
      // Missing half of the pair -> excluded as mandatory.
      {
        profileId: 'c-5',
        person: { name: { firstName: 'Cy' } },
        loyalty: { tier: 'gold' },
        segmentMembership: member('2026-11-19T09:00:00Z'),
      },
    ];
    addSnapshot(path.join(ws.dir, 'dedup2'), 'd2', '2026-11-20T05:00:00Z', lines);
    const config = ws.config(
      crmConfig({
        id: 'dedup-pair',
        source: { snapshots: './dedup2' },
        folderPath: 'dedup2',
        format: { type: 'json', compression: 'none' },
        mapping: [
          { source: 'profileId', target: 'key' },
          { source: 'person.name.firstName', target: 'first' },
          { source: 'person.name.lastName', target: 'last' },
          { source: 'loyalty.tier', target: 'tier' },
        ],
        mandatory: [],
        dedupKeys: ['person.name.firstName', 'person.name.lastName'],
        audiences: fullVip,
      }),
      'dedup2.yaml',
    );
    const run = onlyRun(ok(await ws.audex(['run', '--config', config, '--at', AT_20, '--json'])));
    expect(readJsonLines(run.files[0]!.path)).toEqual([
      { key: 'c-2', first: 'Ann', last: 'Lee', tier: 'silver' },
      { key: 'c-3', first: 'Ann', last: 'Ray', tier: 'bronze' },
      { key: 'c-4', first: 'Bob', last: 'Lee', tier: 'gold' },
    ]);
    expect(run.counts).toEqual({
      profilesReceived: 5,
      rowsWritten: 3,
      excludedMandatory: 1,
      excludedDuplicate: 1,
      exitsOmitted: 0,
      exitsWritten: 0,
      badRecords: 0,
    });
  });

  it('identity-namespace ties break on the other columns; a smaller key wins identical ties', async () => {
    const lines = [
      {
        profileId: 'i-2',
        identityMap: { email: [{ id: 's@example.com' }] },
        loyalty: { tier: 'gold' },
        segmentMembership: member('2026-11-19T10:00:00Z'),
      },
      {
        profileId: 'i-1',
        identityMap: { email: [{ id: 's@example.com' }, { id: 'i1@example.com' }] },
        loyalty: { tier: 'silver' },
        segmentMembership: member('2026-11-19T10:00:00Z'),
      },
      {
        profileId: 'i-4',
        identityMap: { email: [{ id: 't@example.com' }] },
        loyalty: { tier: 'gold' },
        segmentMembership: member('2026-11-19T10:00:00Z'),
      },
      {
        profileId: 'i-3',
        identityMap: { email: [{ id: 't@example.com' }] },
        loyalty: { tier: 'gold' },
        segmentMembership: member('2026-11-19T10:00:00Z'),
      },
      // Empty string tier counts as missing.
      {
        profileId: 'i-5',
        identityMap: { email: [{ id: 'u@example.com' }] },
        loyalty: { tier: '' },
        segmentMembership: member('2026-11-19T10:00:00Z'),
      },
    ];
    addSnapshot(path.join(ws.dir, 'dedup3'), 'd3', '2026-11-20T05:00:00Z', lines);
    const config = ws.config(
      crmConfig({
        id: 'dedup-ns',
        source: { snapshots: './dedup3' },
        folderPath: 'dedup3',
        format: { type: 'json', compression: 'none' },
        mapping: [
          { source: 'identityMap.email', target: 'email' },
          { source: 'profileId', target: 'key' },
          { source: 'loyalty.tier', target: 'tier' },
        ],
        mandatory: ['loyalty.tier'],
        audiences: fullVip,
      }),
      'dedup3.yaml',
    );
    const run = onlyRun(ok(await ws.audex(['run', '--config', config, '--at', AT_20, '--json'])));
    // s@: tie on time; tuple ('i-1','silver') < ('i-2','gold') -> i-1 wins, with both its rows.
    // t@: tuple ('i-3','gold') < ('i-4','gold') -> i-3.
    expect(readJsonLines(run.files[0]!.path)).toEqual([
      { email: 'i1@example.com', key: 'i-1', tier: 'silver' },
      { email: 's@example.com', key: 'i-1', tier: 'silver' },
      { email: 't@example.com', key: 'i-3', tier: 'gold' },
    ]);
    expect(run.counts).toEqual({
      profilesReceived: 5,
      rowsWritten: 3,
      excludedMandatory: 1,
      excludedDuplicate: 2,
      exitsOmitted: 0,
      exitsWritten: 0,
      badRecords: 0,
    });
  });

  it('mandatory: an empty string is missing, also when the column is hashed (transform sha256)', async () => {
    addSnapshot(path.join(ws.dir, 'mand'), 'm1', '2026-11-20T05:00:00Z', [
      { profileId: 'h-1', personalEmail: { address: '' }, segmentMembership: member('2026-11-19T10:00:00Z') },
      { profileId: 'h-2', personalEmail: {}, segmentMembership: member('2026-11-19T10:00:00Z') },
      {
        profileId: 'h-3',
        personalEmail: { address: ' A@Example.com' },
        segmentMembership: member('2026-11-19T10:00:00Z'),
      },
    ]);
    const config = ws.config(
      crmConfig({
        id: 'mand',
        source: { snapshots: './mand' },
        folderPath: 'mand',
        format: { type: 'json', compression: 'none' },
        mapping: [
          { source: 'profileId', target: 'key' },
          { source: 'personalEmail.address', target: 'email_sha256', transform: 'sha256' },
        ],
        mandatory: ['personalEmail.address'],
        audiences: fullVip,
      }),
      'mand.yaml',
    );
    const run = onlyRun(ok(await ws.audex(['run', '--config', config, '--at', AT_20, '--json'])));
    expect(readJsonLines(run.files[0]!.path)).toEqual([{ key: 'h-3', email_sha256: sha256('a@example.com') }]);
    expect(run.counts).toMatchObject({
      profilesReceived: 3,
      rowsWritten: 1,
      excludedMandatory: 2,
      excludedDuplicate: 0,
    });
  });

  it('a dedup loser that was never exported produces no exit row when it leaves', async () => {
    // README "State and safety": the baseline holds the profiles last exported as members. g-2 lost
    // shared@ to g-1 in the backfill, so the consumer never got it; when g-2 exits, an
    // exit row for shared@ would remove g-1's still-active email downstream.
    const root = path.join(ws.dir, 'loser');
    const vip = (status: string, q: string) => ({ ups: { 'aud-vip': { status, lastQualificationTime: q } } });
    const g1 = { profileId: 'g-1', identityMap: { email: [{ id: 'shared@example.com' }] }, loyalty: { tier: 'gold' } };
    const g2 = {
      profileId: 'g-2',
      identityMap: { email: [{ id: 'shared@example.com' }, { id: 'g2@example.com' }] },
      loyalty: { tier: 'gold' },
    };
    addSnapshot(root, 'l1', '2026-11-20T05:00:00Z', [
      { ...g1, segmentMembership: vip('realized', '2026-11-19T12:00:00Z') },
      { ...g2, segmentMembership: vip('realized', '2026-11-19T10:00:00Z') },
    ]);
    addSnapshot(root, 'l2', '2026-11-21T05:00:00Z', [
      { ...g1, segmentMembership: vip('existing', '2026-11-19T12:00:00Z') },
      { ...g2, segmentMembership: vip('exited', '2026-11-21T01:00:00Z') },
    ]);
    const config = ws.config(
      crmConfig({
        id: 'loser',
        source: { snapshots: './loser' },
        folderPath: 'loser',
        format: { type: 'json', compression: 'none' },
        mapping: [
          { source: 'identityMap.email', target: 'email' },
          { source: 'loyalty.tier', target: 'tier' },
          { source: 'segmentMembership.status', target: 'status' },
        ],
      }),
      'loser.yaml',
    );
    const backfill = onlyRun(ok(await ws.audex(['run', '--config', config, '--at', AT_20, '--json'])));
    expect(readJsonLines(backfill.files[0]!.path)).toEqual([
      { email: 'shared@example.com', tier: 'gold', status: 'realized' },
    ]);
    const run = onlyRun(ok(await ws.audex(['run', '--config', config, '--at', AT_21, '--json'])));
    expect(readJsonLines(run.files[0]!.path)).toEqual([]);
    expect(run.counts.rowsWritten).toBe(0);
  });

  it('exit rows are not subject to mandatory or dedup; they carry the ids the baseline kept', async () => {
    const root = path.join(ws.dir, 'exits');
    const vip = (status: string, q: string) => ({ ups: { 'aud-vip': { status, lastQualificationTime: q } } });
    addSnapshot(root, 'e1', '2026-11-20T05:00:00Z', [
      {
        profileId: 'e-1',
        identityMap: { email: [{ id: 'e1@example.com' }] },
        loyalty: { tier: 'gold' },
        segmentMembership: vip('realized', '2026-11-19T10:00:00Z'),
      },
      {
        profileId: 'e-2',
        identityMap: { email: [{ id: 'e2@example.com' }] },
        loyalty: { tier: 'gold' },
        segmentMembership: vip('realized', '2026-11-19T10:00:00Z'),
      },
      {
        profileId: 'e-3',
        identityMap: { email: [{ id: 'e3@example.com' }] },
        loyalty: { tier: 'gold' },
        segmentMembership: vip('realized', '2026-11-19T10:00:00Z'),
      },
    ]);
    addSnapshot(root, 'e2', '2026-11-21T05:00:00Z', [
      // e-1 exits and lost its (mandatory) tier; e-2 exits and now shares e-1's email (its
      // exit row removes the email it was exported with).
      {
        profileId: 'e-1',
        identityMap: { email: [{ id: 'e1@example.com' }] },
        loyalty: {},
        segmentMembership: vip('exited', '2026-11-21T01:00:00Z'),
      },
      {
        profileId: 'e-2',
        identityMap: { email: [{ id: 'e1@example.com' }] },
        loyalty: { tier: 'gold' },
        segmentMembership: vip('exited', '2026-11-21T02:00:00Z'),
      },
      // e-3 exits with no email left: the baseline's email is used.
      {
        profileId: 'e-3',
        identityMap: {},
        loyalty: { tier: 'silver' },
        segmentMembership: vip('exited', '2026-11-21T03:00:00Z'),
      },
    ]);
    const config = ws.config(
      crmConfig({
        id: 'exits',
        source: { snapshots: './exits' },
        folderPath: 'exits',
        format: { type: 'json', compression: 'none' },
        mapping: [
          { source: 'identityMap.email', target: 'email' },
          { source: 'loyalty.tier', target: 'tier' },
          { source: 'segmentMembership.status', target: 'status' },
        ],
      }),
      'exits.yaml',
    );
    const backfill = onlyRun(ok(await ws.audex(['run', '--config', config, '--at', AT_20, '--json'])));
    expect(backfill.counts.rowsWritten).toBe(3);
    const run = onlyRun(ok(await ws.audex(['run', '--config', config, '--at', AT_21, '--json'])));
    expect(readJsonLines(run.files[0]!.path)).toEqual([
      { email: 'e1@example.com', tier: null, status: 'exited' },
      { email: 'e2@example.com', tier: 'gold', status: 'exited' },
      { email: 'e3@example.com', tier: 'silver', status: 'exited' },
    ]);
    expect(run.counts).toEqual({
      profilesReceived: 3,
      rowsWritten: 3,
      excludedMandatory: 0,
      excludedDuplicate: 0,
      exitsOmitted: 0,
      exitsWritten: 3,
      badRecords: 0,
    });
  });

  it('the baseline keeps a member whose entry is unreadable, and the ids of a member that lost them, for later exits', async () => {
    const root = path.join(ws.dir, 'kept');
    const vip = (status: string, q: string) => ({ ups: { 'aud-vip': { status, lastQualificationTime: q } } });
    const email = (id: string) => ({ email: [{ id }] });
    addSnapshot(root, 'k1', '2026-11-20T05:00:00Z', [
      {
        profileId: 'k-1',
        identityMap: email('k1@example.com'),
        loyalty: { tier: 'gold' },
        segmentMembership: vip('realized', '2026-11-19T10:00:00Z'),
      },
      {
        profileId: 'k-2',
        identityMap: email('k2@example.com'),
        loyalty: { tier: 'gold' },
        segmentMembership: vip('realized', '2026-11-19T10:00:00Z'),
      },
    ]);
    addSnapshot(root, 'k2', '2026-11-21T05:00:00Z', [
      // k-1's entry cannot be read: neither an exit nor a new member, it stays as it was.
      {
        profileId: 'k-1',
        identityMap: email('k1@example.com'),
        loyalty: { tier: 'gold' },
        segmentMembership: vip('weird', '2026-11-20T10:00:00Z'),
      },
      // k-2 is still a member but has no email this time.
      {
        profileId: 'k-2',
        identityMap: {},
        loyalty: { tier: 'gold' },
        segmentMembership: vip('existing', '2026-11-19T10:00:00Z'),
      },
    ]);
    addSnapshot(root, 'k3', '2026-11-22T05:00:00Z', [
      {
        profileId: 'k-1',
        identityMap: email('k1@example.com'),
        loyalty: { tier: 'gold' },
        segmentMembership: vip('exited', '2026-11-22T01:00:00Z'),
      },
      {
        profileId: 'k-2',
        identityMap: {},
        loyalty: { tier: 'gold' },
        segmentMembership: vip('exited', '2026-11-22T02:00:00Z'),
      },
    ]);
    const config = ws.config(
      crmConfig({
        id: 'kept',
        source: { snapshots: './kept' },
        folderPath: 'kept',
        format: { type: 'json', compression: 'none' },
        mapping: [
          { source: 'identityMap.email', target: 'email' },
          { source: 'segmentMembership.status', target: 'status' },
        ],
        mandatory: [],
      }),
      'kept.yaml',
    );
    const run = async (at: string) => {
      const result = await ws.audex(['run', '--config', config, '--at', at, '--max-bad-records', '1', '--json']);
      expect(result.code, result.stderr).toBe(0);
      return onlyRun(result.json());
    };
    expect((await run(AT_20)).counts.rowsWritten).toBe(2);
    const day2 = await run(AT_21);
    expect(day2.counts).toMatchObject({ profilesReceived: 0, rowsWritten: 0, badRecords: 1 });
    const day3 = await run('2026-11-22T06:00:00Z');
    expect(readJsonLines(day3.files[0]!.path)).toEqual([
      { email: 'k1@example.com', status: 'exited' },
      { email: 'k2@example.com', status: 'exited' },
    ]);
  });
});

// ---------------------------------------------------------------------------------------
describe('audiences are independent', () => {
  it('adding audiences to the dataflow does not change aud-vip files', async () => {
    const alone = createWorkspace();
    const many = createWorkspace();
    try {
      const vip = {
        id: 'aud-vip',
        mode: 'incremental',
        schedule: { frequency: 'daily', startTime: '05:30', startDate: '2026-11-01' },
      };
      const others = [
        { id: 'aud-churn', mode: 'full', schedule: { frequency: 'daily', trigger: 'afterEvaluation' } },
        {
          id: 'aud-promo',
          mode: 'incremental',
          schedule: { frequency: 'every6Hours', startTime: '00:00', startDate: '2026-11-01' },
        },
      ];
      const a = alone.config(crmConfig({ audiences: [vip] }));
      const b = many.config(crmConfig({ audiences: [...others, vip] }));
      for (const at of [AT_20, AT_21]) {
        const ra = onlyRun(ok(await alone.audex(['run', '--config', a, '--at', at, '--json'])), 'aud-vip');
        const rb = ok(await many.audex(['run', '--config', b, '--at', at, '--json']));
        expect(
          rb.runs
            .filter((r) => r.status === 'success')
            .map((r) => r.audienceId)
            .sort(),
        ).toEqual(['aud-churn', 'aud-promo', 'aud-vip']);
        const vb = onlyRun(rb, 'aud-vip');
        expect(vb.runId).toBe(ra.runId);
        expect(vb.counts).toEqual(ra.counts);
        expect(fileSha(vb.files[0]!.path)).toBe(fileSha(ra.files[0]!.path));
      }
      const vipFiles = (w: Workspace) => w.files().filter((f) => f.startsWith('crm/VIP Customers/'));
      expect(vipFiles(many)).toEqual(vipFiles(alone));
      for (const f of vipFiles(alone))
        expect(fileSha(path.join(many.out, f)), f).toBe(fileSha(path.join(alone.out, f)));
    } finally {
      alone.cleanup();
      many.cleanup();
    }
  });
});

// ---------------------------------------------------------------------------------------
describe('audiences are independent, even with a malformed membership of another audience', () => {
  it('a bad aud-churn entry does not change the aud-vip file', async () => {
    const ws = createWorkspace();
    try {
      const audiences = [
        { id: 'aud-vip', name: 'VIP Customers' },
        { id: 'aud-churn', name: 'Churn Risk' },
      ];
      addSnapshot(
        path.join(ws.dir, 'indep'),
        'i1',
        '2026-11-20T05:00:00Z',
        [
          {
            profileId: 'q-1',
            identityMap: { email: [{ id: 'q1@example.com' }] },
            segmentMembership: {
              ups: {
                'aud-vip': { status: 'realized', lastQualificationTime: '2026-11-19T12:00:00Z' },
                'aud-churn': { status: 'weird', lastQualificationTime: '2026-11-19T12:00:00Z' },
              },
            },
          },
          {
            profileId: 'q-2',
            identityMap: { email: [{ id: 'q2@example.com' }] },
            segmentMembership: {
              ups: {
                'aud-vip': { status: 'realized', lastQualificationTime: '2026-11-19T12:00:00Z' },
              },
            },
          },
        ],
        audiences,
      );
      const daily = { frequency: 'daily', startTime: '05:30', startDate: '2026-11-01' };
      // Separate dataflow ids: each has its own state.
      const body = (auds: string[], folderPath: string) =>
        crmConfig({
          id: `indep-${folderPath}`,
          source: { snapshots: './indep' },
          folderPath,
          fileName: '%SEGMENT_ID%',
          mapping: [{ source: 'identityMap.email', target: 'email' }],
          mandatory: [],
          audiences: auds.map((id) => ({ id, mode: 'full', schedule: daily })),
        });
      const alone = await ws.audex([
        'run',
        '--config',
        ws.config(body(['aud-vip'], 'alone'), 'alone.yaml'),
        '--at',
        AT_20,
        '--max-bad-records',
        '1',
        '--json',
      ]);
      const both = await ws.audex([
        'run',
        '--config',
        ws.config(body(['aud-vip', 'aud-churn'], 'both'), 'both.yaml'),
        '--at',
        AT_20,
        '--max-bad-records',
        '1',
        '--json',
      ]);
      expect(alone.code, alone.stderr).toBe(0);
      expect(both.code, both.stderr).toBe(0);
      const a = onlyRun(alone.json(), 'aud-vip');
      const b = onlyRun(both.json(), 'aud-vip');
      expect(readFileSync(b.files[0]!.path, 'utf8')).toBe(readFileSync(a.files[0]!.path, 'utf8'));
      expect(b.counts).toEqual(a.counts);
    } finally {
      ws.cleanup();
    }
  });
});

// ---------------------------------------------------------------------------------------
describe('manifest with several parts and with an empty run', () => {
  it('lists every part; with emptyExport skip an empty run writes only the manifest', async () => {
    const ws = createWorkspace();
    try {
      const config = ws.config(
        crmConfig({ format: { type: 'csv', compression: 'gzip', maxRowsPerFile: 4, emptyExport: 'skip' } }),
      );
      const run = onlyRun(ok(await ws.audex(['run', '--config', config, '--at', AT_20, '--json'])));
      expect(run.files.map((f) => path.basename(f.path))).toEqual([
        'Acme_CRM_aud-vip_20261120_053000.csv.gz',
        'Acme_CRM_aud-vip_20261120_053000_2.csv.gz',
      ]);
      expect(run.files.map((f) => f.rows)).toEqual([4, 2]);
      const dir = path.dirname(run.files[0]!.path);
      const manifest = JSON.parse(readFileSync(path.join(dir, `manifest-acme-crm-${run.runId}.json`), 'utf8'));
      expect(
        manifest.exportResults.map((r: Record<string, unknown>) => [r['name'], r['rows'], r['size'], r['sha256']]),
      ).toEqual(run.files.map((f) => [path.basename(f.path), f.rows, statSync(f.path).size, fileSha(f.path)]));
      // Same snapshot again on the 21st: no membership change, no rows (the three members held
      // back on day 1 are candidates again and excluded again).
      const empty = onlyRun(
        ok(await ws.audex(['run', '--config', config, '--at', AT_21, '--snapshot', 'snap-20261120', '--json'])),
      );
      expect(empty.files).toEqual([]);
      expect(empty.counts).toMatchObject({
        profilesReceived: 3,
        rowsWritten: 0,
        excludedMandatory: 2,
        excludedDuplicate: 1,
      });
      const emptyManifest = JSON.parse(readFileSync(path.join(dir, `manifest-acme-crm-${empty.runId}.json`), 'utf8'));
      expect(emptyManifest).toMatchObject({
        flowRunId: empty.runId,
        scheduledTime: '2026-11-21T05:30:00.000Z',
        exportResults: [],
      });
      expect(ws.files().filter((f) => f.includes('20261121'))).toEqual([
        `crm/VIP Customers/manifest-acme-crm-${empty.runId}.json`,
      ]);
    } finally {
      ws.cleanup();
    }
  });
});

// ---------------------------------------------------------------------------------------
describe('prospect audiences', () => {
  let ws: Workspace;
  beforeAll(() => {
    ws = createWorkspace();
  });
  afterAll(() => ws?.cleanup());

  it('incremental on a prospect audience fails that run with exit 2 naming audiences[i].mode', async () => {
    const config = ws.config(
      crmConfig({
        id: 'prospect-inc',
        audiences: [
          {
            id: 'aud-vip',
            mode: 'full',
            schedule: { frequency: 'daily', startTime: '05:30', startDate: '2026-11-01' },
          },
          {
            id: 'aud-prospects',
            mode: 'incremental',
            schedule: { frequency: 'daily', startTime: '05:30', startDate: '2026-11-01' },
          },
        ],
      }),
      'inc.yaml',
    );
    const result = await ws.audex(['run', '--config', config, '--at', AT_20, '--json']);
    expect(result.code, result.stderr).toBe(2);
    const run = result.json().runs.find((r) => r.audienceId === 'aud-prospects');
    expect(run?.status).toBe('failed');
    expect(run?.error).toContain('audiences[1].mode');
    expect(run?.files).toEqual([]);
    expect(ws.files().some((f) => f.includes('aud-prospects'))).toBe(false);
  });

  it('full on a prospect audience exports its members', async () => {
    const config = ws.config(
      crmConfig({
        id: 'prospect-full',
        folderPath: 'prospects',
        audiences: [
          {
            id: 'aud-prospects',
            mode: 'full',
            schedule: { frequency: 'daily', startTime: '05:30', startDate: '2026-11-01' },
          },
        ],
      }),
      'full.yaml',
    );
    const run = onlyRun(ok(await ws.audex(['run', '--config', config, '--at', AT_20, '--json'])));
    expect(csvRows(run)).toEqual([['hank@example.net', 'Hank', 'none', '0', 'realized']]);
  });
});

// ---------------------------------------------------------------------------------------
describe('an audience missing from the snapshot', () => {
  it('fails that run (naming it), the others still succeed, exit 1', async () => {
    const ws = createWorkspace();
    try {
      const config = ws.config(
        crmConfig({
          audiences: [
            {
              id: 'aud-ghost',
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
      );
      const result = await ws.audex(['run', '--config', config, '--at', AT_20, '--json']);
      expect(result.code, result.stderr).toBe(1);
      const summary = result.json();
      const ghost = summary.runs.find((r) => r.audienceId === 'aud-ghost');
      expect(ghost?.status).toBe('failed');
      expect(ghost?.error).toContain('aud-ghost');
      const vip = onlyRun(summary, 'aud-vip');
      expect(vip.status).toBe('success');
      expect(vip.counts.rowsWritten).toBe(6);
    } finally {
      ws.cleanup();
    }
  });
});

// ---------------------------------------------------------------------------------------
describe('afterEvaluation trigger', () => {
  it('runs once per new snapshot with the snapshot evaluatedAt as logical time', async () => {
    const ws = createWorkspace();
    try {
      const config = ws.config(
        crmConfig({
          id: 'churn',
          audiences: [{ id: 'aud-churn', mode: 'full', schedule: { frequency: 'daily', trigger: 'afterEvaluation' } }],
        }),
      );
      const r1 = onlyRun(ok(await ws.audex(['run', '--config', config, '--at', AT_20, '--json'])));
      expect(r1).toMatchObject({
        trigger: 'afterEvaluation',
        mode: 'full',
        logicalTime: '2026-11-20T05:00:00.000Z',
        snapshotId: 'snap-20261120',
      });
      expect(r1.runId).toMatch(/^20261120T050000Z-[0-9a-f]{8}$/);
      expect(csvRows(r1).map((r) => r[0])).toEqual(['ann@example.com', 'dan@example.com', 'finn@example.com']);
      // Later the same day, no new snapshot: nothing due.
      const idle = ok(await ws.audex(['run', '--config', config, '--at', '2026-11-20T23:00:00Z', '--json']));
      expect(idle.runs).toEqual([]);
      const r2 = onlyRun(ok(await ws.audex(['run', '--config', config, '--at', AT_21, '--json'])));
      expect(r2).toMatchObject({
        trigger: 'afterEvaluation',
        logicalTime: '2026-11-21T05:00:00.000Z',
        snapshotId: 'snap-20261121',
      });
      expect(csvRows(r2).map((r) => r[0])).toEqual([
        'ann@example.com',
        'dan@example.com',
        'finn@example.com',
        'june@example.com',
      ]);
      // The incomplete 22nd folder is not a new snapshot.
      expect(ok(await ws.audex(['run', '--config', config, '--at', '2026-11-23T06:00:00Z', '--json'])).runs).toEqual(
        [],
      );
    } finally {
      ws.cleanup();
    }
  });
});

// ---------------------------------------------------------------------------------------
describe('coalescing missed slots', () => {
  it('exports once at the latest slot and lists the missed slots as skipped', async () => {
    const ws = createWorkspace();
    try {
      const config = ws.config(crmConfig());
      ok(await ws.audex(['run', '--config', config, '--at', AT_20, '--json']));
      const summary = ok(await ws.audex(['run', '--config', config, '--at', '2026-11-23T06:00:00Z', '--json']));
      const skipped = summary.runs.filter((r) => r.status === 'skipped');
      expect(skipped.map((r) => r.logicalTime)).toEqual(['2026-11-21T05:30:00.000Z', '2026-11-22T05:30:00.000Z']);
      for (const r of skipped) {
        expect(r).toMatchObject({ audienceId: 'aud-vip', mode: 'incremental', trigger: 'schedule', files: [] });
        expect(r.runId).toMatch(new RegExp(`^${r.logicalTime.slice(0, 10).replace(/-/g, '')}T053000Z-[0-9a-f]{8}$`));
      }
      const run = onlyRun(summary);
      expect(run).toMatchObject({
        status: 'success',
        logicalTime: '2026-11-23T05:30:00.000Z',
        snapshotId: 'snap-20261121',
      });
      expect(path.basename(run.files[0]!.path)).toBe('Acme_CRM_aud-vip_20261123_053000.csv');
      // Diff against the 20th's baseline: nothing is lost.
      expect(csvRows(run).map((r) => `${r[0]} ${r[4]}`)).toEqual([
        'bob@example.com exited',
        'finn@example.com realized',
        'ivy@example.com exited',
        'june@example.com realized',
      ]);
      expect(ws.files().filter((f) => f.endsWith('.csv'))).toEqual([
        'crm/VIP Customers/Acme_CRM_aud-vip_20261120_053000.csv',
        'crm/VIP Customers/Acme_CRM_aud-vip_20261123_053000.csv',
      ]);
    } finally {
      ws.cleanup();
    }
  });
});
