// Defects found by using audex end to end as a demanding data engineer would (issue
// "Exact data at the destination"), each pinned through the real CLI on tiny snapshots.
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { DuckDBInstance } from '@duckdb/node-api';
import path from 'node:path';
import { stateKeys } from '../../src/state/state-keys.js';
import {
  addSnapshot,
  crmConfig,
  prof,
  readCsv,
  readJsonLines,
  readParquet,
  runCli,
  trackWorkspaces,
  vip,
  type CliResult,
  type JsonSummary,
  type Workspace,
} from '../helpers/harness.js';

const workspace = trackWorkspaces();

/** A workspace without the fixture snapshots: each test writes its own. */
function emptyWorkspace(): Workspace {
  const ws = workspace();
  rmSync(ws.snapshots, { recursive: true, force: true });
  mkdirSync(ws.snapshots, { recursive: true });
  return ws;
}

const DAY = (d: number) => `2026-11-${String(d).padStart(2, '0')}`;
const EVAL = (d: number) => `${DAY(d)}T00:00:00Z`;
const AT = (d: number) => `${DAY(d)}T06:00:00Z`;
const snap = (ws: Workspace, d: number, lines: (string | object)[], partName?: string) =>
  addSnapshot(ws.snapshots, `snap-${d}`, EVAL(d), lines, undefined, partName);

function ok(result: CliResult): JsonSummary {
  expect(result.code, `exit ${result.code}\nstdout:\n${result.stdout}\nstderr:\n${result.stderr}`).toBe(0);
  return result.json();
}

function theRun(summary: JsonSummary, audienceId = 'aud-vip'): JsonSummary['runs'][number] {
  const runs = summary.runs.filter((r) => r.audienceId === audienceId && r.status !== 'skipped');
  expect(runs, JSON.stringify(summary, null, 2)).toHaveLength(1);
  return runs[0]!;
}

/** Rows of a run's only CSV file, header dropped. */
function rowsOf(summary: JsonSummary, audienceId?: string): string[][] {
  const run = theRun(summary, audienceId);
  expect(run.files).toHaveLength(1);
  return readCsv(run.files[0]!.path).slice(1);
}

const email = (id: string) => ({ identityMap: { email: [{ id }] } });
const KEYED = [
  { source: 'profileId', target: 'profileId' },
  { source: 'identityMap.email', target: 'email' },
  { source: 'segmentMembership.status', target: 'status' },
];

// ---------------------------------------------------------------------------------------
describe('data at the destination (items 1–3)', () => {
  it('1: an exit row identifies the member: the key column carries the key in CSV, JSON and Parquet; 7 and 7.0 are one profile', async () => {
    const ws = emptyWorkspace();
    snap(ws, 20, [prof('p-1'), prof('x', { profileId: 7, ...email('seven@x') })]);
    const formats = ['csv', 'json', 'parquet'] as const;
    const configs = formats.map((type) =>
      ws.config(
        crmConfig({
          id: `f-${type}`,
          destination: { path: `./out/${type}` },
          format: { type, compression: 'none' },
          mapping: KEYED,
          mandatory: [],
        }),
        `${type}.yaml`,
      ),
    );
    for (const config of configs) ok(await ws.audex(['run', '--config', config, '--at', AT(20), '--json']));
    // p-1 vanished; 7 is written 7.0 now and is still the same member.
    snap(ws, 21, [JSON.stringify(prof('x', email('seven@x'))).replace('"profileId":"x"', '"profileId":7.0')]);
    const results = await Promise.all(
      configs.map((config) => ws.audex(['run', '--config', config, '--at', AT(21), '--json'])),
    );
    const [csv, json, parquet] = results.map((r) => theRun(ok(r)));
    for (const run of [csv!, json!, parquet!])
      expect(run.counts).toMatchObject({ profilesReceived: 1, rowsWritten: 1 });
    expect(readCsv(csv!.files[0]!.path)).toEqual([
      ['profileId', 'email', 'status'],
      ['p-1', 'p-1@example.com', 'exited'],
    ]);
    expect(readJsonLines(json!.files[0]!.path)).toEqual([
      { profileId: 'p-1', email: 'p-1@example.com', status: 'exited' },
    ]);
    expect((await readParquet(parquet!.files[0]!.path)).rows).toEqual([
      { profileId: 'p-1', email: 'p-1@example.com', status: 'exited' },
    ]);
  });

  it('2: exit rows carry the ids the destination was sent, not ids changed since (identity-only changes are never exported)', async () => {
    const ws = emptyWorkspace();
    const config = ws.config(crmConfig({ mapping: KEYED, mandatory: [] }));
    const two = { identityMap: { email: [{ id: 'a@x' }, { id: 'b@x' }] } };
    snap(ws, 20, [prof('p-1', email('old@x')), prof('p-2', two)]);
    expect(rowsOf(ok(await ws.audex(['run', '--config', config, '--at', AT(20), '--json'])))).toEqual([
      ['p-1', 'old@x', 'realized'],
      ['p-2', 'a@x', 'realized'],
      ['p-2', 'b@x', 'realized'],
    ]);
    // Identity-only changes: not exported.
    snap(ws, 21, [prof('p-1', email('new@x')), prof('p-2', email('a@x'))]);
    expect(theRun(ok(await ws.audex(['run', '--config', config, '--at', AT(21), '--json']))).counts.rowsWritten).toBe(
      0,
    );
    // p-1 vanishes, p-2 exits: the destination must remove old@x, a@x and b@x.
    snap(ws, 22, [
      prof('p-2', { ...email('a@x'), ...vip({ status: 'exited', lastQualificationTime: '2026-11-22T00:00:00Z' }) }),
    ]);
    expect(rowsOf(ok(await ws.audex(['run', '--config', config, '--at', AT(22), '--json'])))).toEqual([
      ['p-1', 'old@x', 'exited'],
      ['p-2', 'a@x', 'exited'],
      ['p-2', 'b@x', 'exited'],
    ]);
  });

  it('3: a newcomer cannot take a dedup key a retained member holds; it is exported once the holder leaves (full exports: latest qualification wins)', async () => {
    const ws = emptyWorkspace();
    const config = ws.config(crmConfig({ mapping: KEYED, mandatory: [] }));
    const later = vip({ status: 'realized', lastQualificationTime: '2026-11-21T11:00:00Z' });
    snap(ws, 20, [prof('p-1', email('shared@x'))]);
    ok(await ws.audex(['run', '--config', config, '--at', AT(20), '--json']));
    snap(ws, 21, [prof('p-1', email('shared@x')), prof('p-2', { ...email('shared@x'), ...later })]);
    const second = theRun(ok(await ws.audex(['run', '--config', config, '--at', AT(21), '--json'])));
    expect(second.counts).toMatchObject({ profilesReceived: 1, rowsWritten: 0, excludedDuplicate: 1 });
    // A full export of the same snapshot keeps the latest-qualification rule: p-2.
    expect(
      rowsOf(ok(await ws.audex(['export-now', '--config', config, '--audience', 'aud-vip', '--at', AT(21), '--json']))),
    ).toEqual([['p-2', 'shared@x', 'realized']]);
    // The holder leaves: the newcomer is exported now.
    snap(ws, 22, [
      prof('p-1', { ...email('shared@x'), ...vip({ status: 'exited' }) }),
      prof('p-2', { ...email('shared@x'), ...later }),
    ]);
    const third = ok(await ws.audex(['run', '--config', config, '--at', AT(22), '--json']));
    expect(rowsOf(third)).toEqual([['p-2', 'shared@x', 'realized']]);
  });
});

describe('4: a snapshot with no readable part file', () => {
  it('is exit 4 naming the folder and the files found, nothing written; an empty part file is an empty snapshot', async () => {
    const ws = emptyWorkspace();
    const config = ws.config(crmConfig({ mapping: KEYED, mandatory: [] }));
    snap(ws, 20, [prof('p-1')]);
    ok(await ws.audex(['run', '--config', config, '--at', AT(20), '--json']));
    const before = ws.files('out', true);
    const folder = path.join(ws.snapshots, 'snap-21');
    mkdirSync(folder);
    writeFileSync(
      path.join(folder, '_snapshot.json'),
      JSON.stringify({ snapshotId: 'snap-21', evaluatedAt: EVAL(21), audiences: [{ id: 'aud-vip', name: 'VIP' }] }),
    );
    const missing = await ws.audex(['run', '--config', config, '--at', AT(21)]);
    expect(missing.code, missing.stderr).toBe(4);
    expect(missing.stderr).toContain(
      `snapshot snap-21 has no readable part file in ${path.join(folder, 'profiles')} (the folder is empty or missing)`,
    );
    mkdirSync(path.join(folder, 'profiles'));
    writeFileSync(path.join(folder, 'profiles', 'part-0.json'), `${JSON.stringify(prof('p-1'))}\n`);
    writeFileSync(path.join(folder, 'profiles', 'part-1.NDJSON'), `${JSON.stringify(prof('p-1'))}\n`);
    const unrecognised = await ws.audex(['run', '--config', config, '--at', AT(21)]);
    expect(unrecognised.code, unrecognised.stderr).toBe(4);
    expect(unrecognised.stderr).toContain('(found: part-0.json, part-1.NDJSON)');
    expect(ws.files('out', true).filter((f) => !f.includes(`/${stateKeys.historyPrefix}/`))).toEqual(
      before.filter((f) => !f.includes(`/${stateKeys.historyPrefix}/`)),
    );
    writeFileSync(path.join(folder, 'profiles', 'part-00000.ndjson'), '');
    expect(rowsOf(ok(await ws.audex(['run', '--config', config, '--at', AT(21), '--json'])))).toEqual([
      ['p-1', 'p-1@example.com', 'exited'],
    ]);
  });
});

describe('5: a run that fails on its input does not block its audience', () => {
  const parquet = (extra: Record<string, unknown> = {}) =>
    crmConfig({
      format: { type: 'parquet', compression: 'none', ...extra },
      mapping: [...KEYED, { source: 'loyalty.points', target: 'points', type: 'int64' }],
      mandatory: [],
    });
  const badPoints = prof('p-2', { loyalty: { tier: 'gold', points: 'abc' } });
  const addFixed = (ws: Workspace) =>
    addSnapshot(ws.snapshots, 'snap-20b', '2026-11-20T01:00:00Z', [prof('p-1'), prof('p-2')]);

  it('is recorded failed, leaves nothing pending, and the next run plans afresh with the newest snapshot; plan says it would fail', async () => {
    const ws = emptyWorkspace();
    const config = ws.config(parquet());
    snap(ws, 20, [prof('p-1'), badPoints]);
    const failed = await ws.audex(['run', '--config', config, '--at', AT(20), '--json']);
    expect(failed.code, failed.stderr).toBe(4);
    expect(theRun(failed.json())).toMatchObject({ status: 'failed', snapshotId: 'snap-20' });
    expect(theRun(failed.json()).error).toContain('the next `audex run` plans afresh');
    const status = JSON.parse((await ws.audex(['status', '--config', config, '--at', AT(20), '--json'])).stdout) as {
      audiences: { pendingRun: string | null }[];
    };
    expect(status.audiences[0]!.pendingRun).toBeNull();
    const plan = await ws.audex(['plan', '--config', config, '--at', AT(20)]);
    expect(plan.stdout).toContain('would fail');
    expect(plan.stdout).not.toContain('would write');
    addFixed(ws);
    const fixed = theRun(ok(await ws.audex(['run', '--config', config, '--at', AT(20), '--json'])));
    expect(fixed).toMatchObject({ status: 'success', snapshotId: 'snap-20b' });
    expect(fixed.counts.rowsWritten).toBe(2);
  });

  it('a failed export-now never blocks the scheduled runs', async () => {
    const ws = emptyWorkspace();
    const config = ws.config(parquet());
    snap(ws, 20, [prof('p-1'), badPoints]);
    expect((await ws.audex(['export-now', '--config', config, '--audience', 'aud-vip', '--at', AT(20)])).code).toBe(4);
    addFixed(ws);
    const summary = ok(await ws.audex(['run', '--config', config, '--at', AT(20), '--json']));
    expect(summary.runs.map((r) => [r.trigger, r.status])).toEqual([['schedule', 'success']]);
  });

  it('files an abandoned run left under final names without a manifest are removed', async () => {
    const ws = emptyWorkspace();
    const config = ws.config(parquet({ maxRowsPerFile: 1 }));
    snap(ws, 20, [prof('p-1'), prof('p-2')]);
    const killed = await ws.audex(['run', '--config', config, '--at', AT(20)], { AUDEX_CRASH_AT: 'after-part' });
    expect(killed.code).toBeNull();
    expect(ws.files().filter((f) => !f.endsWith('.audex-tmp'))).toEqual([
      'crm/VIP Customers/Acme_CRM_aud-vip_20261120_053000.parquet',
    ]);
    // The same run now fails on its input (a producer rewrote the part in place).
    snap(ws, 20, [prof('p-1'), badPoints]);
    const failed = await ws.audex(['run', '--config', config, '--at', AT(20)]);
    expect(failed.code, failed.stderr).toBe(4);
    expect(ws.files()).toEqual([]);
    expect(ws.files('out', true).filter((f) => f.includes('pending/'))).toEqual([]);
  });
});

describe('8: bad membership entries of one audience fail only that audience', () => {
  it('the other audiences run; the invocation exits 4; a record bad as a whole still stops every audience', async () => {
    const ws = emptyWorkspace();
    const audiences = [
      { id: 'aud-vip', name: 'VIP' },
      { id: 'aud-new', name: 'New' },
    ];
    const daily = { frequency: 'daily', startTime: '05:30', startDate: '2026-11-01' };
    const config = ws.config(
      crmConfig({
        mapping: KEYED,
        mandatory: [],
        audiences: [
          { id: 'aud-vip', mode: 'incremental', schedule: daily },
          { id: 'aud-new', mode: 'full', schedule: daily },
        ],
      }),
    );
    const badNew = prof('p-2', {
      segmentMembership: { ups: { 'aud-vip': { status: 'realized' }, 'aud-new': { status: 'weird' } } },
    });
    addSnapshot(ws.snapshots, 'snap-20', EVAL(20), [prof('p-1'), badNew], audiences);
    const result = await ws.audex(['run', '--config', config, '--at', AT(20), '--json']);
    expect(result.code, result.stderr).toBe(4);
    const summary = result.json();
    expect(theRun(summary, 'aud-vip')).toMatchObject({ status: 'success', counts: { rowsWritten: 2 } });
    expect(theRun(summary, 'aud-new').status).toBe('failed');
    expect(theRun(summary, 'aud-new').error).toContain('segmentMembership.ups.aud-new.status is "weird"');
    expect(rowsOf(summary, 'aud-vip')).toEqual([
      ['p-1', 'p-1@example.com', 'realized'],
      ['p-2', 'p-2@example.com', 'realized'],
    ]);

    addSnapshot(ws.snapshots, 'snap-21', EVAL(21), [prof('p-1'), 'not json'], audiences);
    const whole = await ws.audex(['run', '--config', config, '--at', AT(21), '--json']);
    expect(whole.code).toBe(4);
    expect(whole.stderr).toContain('part-00000.ndjson:2: not valid JSON');
    expect(ws.files().filter((f) => f.includes('20261121'))).toEqual([]);
  });
});

const sha = (text: string) => createHash('sha256').update(text).digest('hex');

describe('values (items 6, 7, 15, 17)', () => {
  it('6: lower-case t/z RFC 3339 is a time for dedup and timestamp columns; a 5-digit year is refused', async () => {
    const ws = emptyWorkspace();
    const mapping = [
      ...KEYED,
      { source: 'segmentMembership.lastQualificationTime', target: 'qualified', type: 'timestamp' },
    ];
    const config = ws.config(crmConfig({ mapping, mandatory: [], format: { type: 'parquet', compression: 'none' } }));
    snap(ws, 20, [
      prof('p-1', {
        ...email('shared@x'),
        ...vip({ status: 'realized', lastQualificationTime: '2026-11-19T10:00:00Z' }),
      }),
      prof('p-2', {
        ...email('shared@x'),
        ...vip({ status: 'realized', lastQualificationTime: '2026-11-19t11:00:00z' }),
      }),
    ]);
    const run = theRun(ok(await ws.audex(['run', '--config', config, '--at', AT(20), '--json'])));
    const rows = (await readParquet(run.files[0]!.path)).rows.map((r) => ({
      ...r,
      qualified: (r['qualified'] as Date).toISOString(),
    }));
    expect(rows).toEqual([
      { profileId: 'p-2', email: 'shared@x', status: 'realized', qualified: '2026-11-19T11:00:00.000Z' },
    ]);

    const far = ws.config(
      crmConfig({
        id: 'far',
        mandatory: [],
        format: { type: 'parquet', compression: 'none' },
        mapping: [...KEYED, { source: 'since', target: 'since', type: 'timestamp' }],
      }),
      'far.yaml',
    );
    snap(ws, 21, [prof('p-1', { since: '10000-01-01T00:00:00Z' })]);
    const refused = await ws.audex(['run', '--config', far, '--at', AT(21), '--json']);
    expect(refused.code, refused.stderr).toBe(4);
    expect(theRun(refused.json()).error).toContain('since = "10000-01-01T00:00:00Z" is not timestamp');
  });

  it('7: sha256 trims what String.prototype.trim trims and lowercases as toLowerCase does', async () => {
    const ws = emptyWorkspace();
    const values = [
      '\tTab@x\n',
      '\u00a0Nbsp@X\u3000\r',
      'İSTANBUL@X',
      'ΟΔΟΣ@X',
      'ΣΑΣ Σ@X',
      '\u1c89\u{10d50}Ꟛ@X',
      'plain@x',
    ];
    const config = ws.config(
      crmConfig({
        mandatory: [],
        format: { type: 'csv', compression: 'none' },
        mapping: [
          { source: 'profileId', target: 'id' },
          { source: 'personalEmail.address', target: 'hash', transform: 'sha256' },
        ],
        audiences: [
          {
            id: 'aud-vip',
            mode: 'full',
            schedule: { frequency: 'daily', startTime: '05:30', startDate: '2026-11-01' },
          },
        ],
      }),
    );
    snap(
      ws,
      20,
      values.map((address, i) => prof(`p-${i}`, { personalEmail: { address } })),
    );
    expect(rowsOf(ok(await ws.audex(['run', '--config', config, '--at', AT(20), '--json'])))).toEqual(
      values.map((v, i) => [`p-${i}`, sha(v.trim().toLowerCase())]),
    );
  });

  it('15: whole numbers are written without a fraction in JSON lines, CSV and Parquet strings, also nested', async () => {
    const ws = emptyWorkspace();
    const mapping = [
      { source: 'profileId', target: 'id' },
      { source: 'loyalty.points', target: 'points' },
      { source: 'loyalty.balance', target: 'balance' },
      { source: 'nums', target: 'nums' },
    ];
    const full = [
      { id: 'aud-vip', mode: 'full', schedule: { frequency: 'daily', startTime: '05:30', startDate: '2026-11-01' } },
    ];
    const configs = (['json', 'csv', 'parquet'] as const).map((type) =>
      ws.config(
        crmConfig({
          id: `n-${type}`,
          destination: { path: `./out/${type}` },
          mapping,
          mandatory: [],
          audiences: full,
          format: { type, compression: 'none' },
        }),
        `${type}.yaml`,
      ),
    );
    snap(ws, 20, [
      '{"profileId":"p-1","loyalty":{"points":1e3,"balance":1.0},"nums":[1.0,2.0,3.0,{"a":4.0,"b":"5.0"},2.5],"segmentMembership":{"ups":{"aud-vip":{"status":"realized"}}}}',
    ]);
    const [json, csv, parquet] = (
      await Promise.all(configs.map((c) => ws.audex(['run', '--config', c, '--at', AT(20), '--json'])))
    ).map((r) => theRun(ok(r)));
    expect(readFileSync(json!.files[0]!.path, 'utf8')).toBe(
      '{"id":"p-1","points":1000,"balance":1,"nums":[1,2,3,{"a":4,"b":"5.0"},2.5]}\n',
    );
    expect(readCsv(csv!.files[0]!.path)[1]).toEqual(['p-1', '1000', '1', '[1,2,3,{"a":4,"b":"5.0"},2.5]']);
    expect((await readParquet(parquet!.files[0]!.path)).rows).toEqual([
      { id: 'p-1', points: '1000', balance: '1', nums: '[1,2,3,{"a":4,"b":"5.0"},2.5]' },
    ]);
  });

  it('17: typed Parquet columns refuse strings for numbers and booleans, and numbers that overflow a double', async () => {
    const ws = emptyWorkspace();
    const mapping = [
      { source: 'profileId', target: 'id' },
      { source: 'loyalty.points', target: 'points', type: 'int64' },
      { source: 'optIn', target: 'optIn', type: 'boolean' },
      { source: 'loyalty.balance', target: 'balance', type: 'double' },
    ];
    const config = ws.config(crmConfig({ mapping, mandatory: [], format: { type: 'parquet', compression: 'none' } }));
    snap(ws, 20, [
      '{"profileId":"p-1","loyalty":{"points":"12","balance":1},"optIn":true,"segmentMembership":{"ups":{"aud-vip":{"status":"realized"}}}}',
      '{"profileId":"p-2","loyalty":{"points":12,"balance":1e400},"optIn":"true","segmentMembership":{"ups":{"aud-vip":{"status":"realized"}}}}',
      '{"profileId":"p-3","loyalty":{"points":12.0,"balance":2},"optIn":false,"segmentMembership":{"ups":{"aud-vip":{"status":"realized"}}}}',
    ]);
    const result = await ws.audex(['run', '--config', config, '--at', AT(20), '--json']);
    expect(result.code, result.stderr).toBe(4);
    const error = theRun(result.json()).error!;
    expect(error).toContain('profile "p-1": loyalty.points = "12" is not int64');
    expect(error).toContain('profile "p-2": optIn = "true" is not boolean');
    expect(error).toContain('profile "p-2": loyalty.balance = "1e400" is not double');
    expect(error).not.toContain('p-3');
  });

  it('17: an identity entry without an id is a bad record, like one with a non-scalar id', async () => {
    const ws = emptyWorkspace();
    const config = ws.config(crmConfig({ mapping: KEYED, mandatory: [] }));
    snap(ws, 20, [
      prof('p-1'),
      prof('p-2', { identityMap: { email: [{ foo: 1 }] } }),
      prof('p-3', { identityMap: { email: [{ id: 'p3@x' }, { id: null }] } }),
    ]);
    const result = await ws.audex(['run', '--config', config, '--at', AT(20), '--max-bad-records', '2', '--json']);
    const run = theRun(ok(result));
    expect(run.counts).toMatchObject({ badRecords: 2, rowsWritten: 1 });
    expect(result.stderr).toContain('part-00000.ndjson:2: identityMap.email holds an entry without a scalar "id"');
    expect(result.stderr).toContain('part-00000.ndjson:3: identityMap.email holds an entry without a scalar "id"');
  });
});

describe('clear errors for unreadable input (items 9, 10)', () => {
  it('9: a truncated or non-gzip .ndjson.gz part is exit 4 naming the part and "not a complete gzip file"', async () => {
    const ws = emptyWorkspace();
    const config = ws.config(crmConfig({ mapping: KEYED, mandatory: [] }));
    const whole = gzipSync(Buffer.from(`${JSON.stringify(prof('p-1'))}\n${JSON.stringify(prof('p-2'))}\n`));
    snap(ws, 20, [prof('p-0')]);
    const part = path.join(ws.snapshots, 'snap-20', 'profiles', 'part-00001.ndjson.gz');
    for (const bytes of [whole.subarray(0, whole.length - 12), Buffer.from(`${JSON.stringify(prof('p-1'))}\n`)]) {
      writeFileSync(part, bytes);
      const result = await ws.audex(['run', '--config', config, '--at', AT(20), '--json']);
      expect(result.code, result.stderr).toBe(4);
      expect(result.stderr).toContain(`${part} is not a complete gzip file`);
      expect(result.stderr).not.toContain('bug');
      expect(ws.files()).toEqual([]);
    }
  });

  it('10: a repeated key or a lone surrogate escape is a bad record at its real file:line, skippable', async () => {
    const ws = emptyWorkspace();
    const config = ws.config(
      crmConfig({ mapping: [...KEYED, { source: 'person.name.firstName', target: 'first' }], mandatory: [] }),
    );
    const line = (id: string, inner: string) =>
      `{"profileId":"${id}",${inner}"identityMap":{"email":[{"id":"${id}@x"}]},"segmentMembership":{"ups":{"aud-vip":{"status":"realized"}}}}`;
    snap(ws, 20, [
      line('p-1', ''),
      line('p-2', '"profileId":"p-2b",'),
      line('p-3', '"person":{"name":{"firstName":"\\ud800"}},'),
      // A repeated key the reader does not turn into a struct is read (the first value).
      line('p-4', '"person":{"name":{"firstName":"A","firstName":"B"}},'),
      '{"profileId":"p-5","segmentMembership":{"ups":{"aud-vip":{"status":"realized","status":"exited"}}},"identityMap":{"email":[{"id":"p-5@x"}]}}',
    ]);
    const part = path.join(ws.snapshots, 'snap-20', 'profiles', 'part-00000.ndjson');
    const stopped = await ws.audex(['run', '--config', config, '--at', AT(20)]);
    expect(stopped.code, stopped.stderr).toBe(4);
    expect(stopped.stderr).toContain(`${part}:2: the record has the key "profileId" twice`);
    expect(stopped.stderr).toContain(`${part}:3: person.name.firstName holds a lone UTF-16 surrogate escape`);
    expect(stopped.stderr).toContain(`${part}:5: segmentMembership.ups.aud-vip has the key "status" twice`);
    expect(stopped.stderr).not.toContain('clean-');
    const skipped = theRun(
      ok(await ws.audex(['run', '--config', config, '--at', AT(20), '--max-bad-records', '3', '--json'])),
    );
    expect(skipped.counts.badRecords).toBe(3);
    expect(readCsv(skipped.files[0]!.path).slice(1)).toEqual([
      ['p-1', 'p-1@x', 'realized', ''],
      ['p-4', 'p-4@x', 'realized', 'A'],
    ]);
  });
});

describe('11: broken snapshot descriptors', () => {
  it('one in a folder no run uses is a warning; a snapshotId that differs from its folder fails the run that would use it', async () => {
    const ws = emptyWorkspace();
    const config = ws.config(crmConfig({ mapping: KEYED, mandatory: [] }));
    snap(ws, 20, [prof('p-1')]);
    mkdirSync(path.join(ws.snapshots, 'old-broken'));
    writeFileSync(path.join(ws.snapshots, 'old-broken', '_snapshot.json'), '{"snapshotId":');
    const warned = await ws.audex(['run', '--config', config, '--at', AT(20), '--json']);
    expect(theRun(ok(warned)).status).toBe('success');
    expect(warned.stderr).toContain(
      `warning: snapshot folder old-broken is skipped: ${path.join(ws.snapshots, 'old-broken', '_snapshot.json')} is not valid JSON`,
    );
    addSnapshot(ws.snapshots, 'snap-21', EVAL(21), [prof('p-1')]);
    writeFileSync(
      path.join(ws.snapshots, 'snap-21', '_snapshot.json'),
      JSON.stringify({ snapshotId: 'snap-21x', evaluatedAt: EVAL(21), audiences: [{ id: 'aud-vip', name: 'VIP' }] }),
    );
    const mismatch = await ws.audex(['run', '--config', config, '--at', AT(21)]);
    expect(mismatch.code, mismatch.stderr).toBe(4);
    expect(mismatch.stderr).toContain('says snapshotId "snap-21x", which differs from its folder name "snap-21"');
    expect(ws.files().filter((f) => f.includes('20261121'))).toEqual([]);
  });
});

describe('usage and --json (items 13, 14)', () => {
  it('13: --memory-limit lots, runs --since notatime and runs --limit 0 are bad usage (exit 2) naming the flag, even when nothing is due', async () => {
    const ws = emptyWorkspace();
    const config = ws.config(crmConfig());
    snap(ws, 20, [prof('p-1')]);
    const memory = await ws.audex([
      'run',
      '--config',
      config,
      '--at',
      '2026-10-01T00:00:00Z',
      '--memory-limit',
      'lots',
    ]);
    expect(memory.code, memory.stderr).toBe(2);
    expect(memory.stderr).toContain('--memory-limit lots: expected a size such as 512MB');
    const since = await ws.audex(['runs', '--config', config, '--since', 'notatime']);
    expect(since.code).toBe(2);
    expect(since.stderr).toContain('--since notatime: not an ISO 8601 time');
    const limit = await ws.audex(['runs', '--config', config, '--limit', '0']);
    expect(limit.code).toBe(2);
    expect(limit.stderr).toContain('--limit 0: expected a whole number, 1 or more');
  });

  it('14: --json prints exactly one object on every outcome: bad input, an invalid config, a bad option, validate errors', async () => {
    const ws = emptyWorkspace();
    const config = ws.config(crmConfig());
    snap(ws, 20, [prof('p-1'), 'not json']);
    const bad = await ws.audex(['run', '--config', config, '--at', AT(20), '--json']);
    expect(bad.code).toBe(4);
    expect(JSON.parse(bad.stdout)).toEqual({
      dataflowId: 'acme-crm',
      at: '2026-11-20T06:00:00.000Z',
      runs: [],
      error: { exitCode: 4, message: expect.stringContaining('not valid JSON') },
    });
    const invalid = ws.config({ ...crmConfig(), colour: 'red' }, 'invalid.yaml');
    const commands = ['run', 'plan', 'status', 'runs', 'validate'];
    const results = await Promise.all(commands.map((command) => ws.audex([command, '--config', invalid, '--json'])));
    results.forEach((result, i) => {
      expect(result.code, `${commands[i]}: ${result.stderr}`).toBe(2);
      expect(JSON.parse(result.stdout), commands[i]).toMatchObject({
        error: { exitCode: 2, message: expect.stringContaining('colour') },
      });
    });
    const option = await ws.audex(['run', '--config', config, '--json', '--bogus']);
    expect(option.code).toBe(2);
    expect(JSON.parse(option.stdout)).toMatchObject({ error: { exitCode: 2 } });
    const validate = await ws.audex(['validate', '--config', config, '--snapshot', 'snap-20', '--json']);
    expect(validate.code).toBe(4);
    expect(JSON.parse(validate.stdout)).toMatchObject({
      valid: false,
      dataflowId: 'acme-crm',
      error: { exitCode: 4, message: expect.stringContaining('1 bad record(s)') },
    });
  });
});

describe('validate (items 18, 19, 21)', () => {
  const every6 = { frequency: 'every6Hours', startTime: '02:00', startDate: '2026-11-01' };
  it("18: warns when names are coarser than a schedule, when export-now can take a run's name, and of a pattern with no date letter", async () => {
    const ws = emptyWorkspace();
    snap(ws, 20, [prof('p-1')]);
    const config = ws.config(
      crmConfig({
        fileName: '%SEGMENT_ID%_%DATETIME(YYYYMMdd)%_%DATETIME(foo)%',
        audiences: [{ id: 'aud-vip', mode: 'incremental', schedule: every6 }],
      }),
    );
    const result = await ws.audex(['validate', '--config', config, '--json']);
    expect(result.code, result.stderr).toBe(0);
    const warnings = (JSON.parse(result.stdout) as { warnings: string[] }).warnings;
    expect(warnings).toEqual(
      expect.arrayContaining([
        expect.stringContaining(
          'do not write the hour of the run time, but audiences[0] (aud-vip) runs every6Hours: each such run overwrites the file of an earlier run',
        ),
        expect.stringContaining(
          'do not write the hour, minute, second of the run time, so an export-now run can get the name of a scheduled run',
        ),
        expect.stringContaining('%DATETIME(foo)% holds no date/time letter'),
      ]),
    );
    const fine = await ws.audex([
      'validate',
      '--config',
      ws.config(crmConfig({ audiences: [{ id: 'aud-vip', mode: 'incremental', schedule: every6 }] }), 'fine.yaml'),
      '--json',
    ]);
    expect((JSON.parse(fine.stdout) as { warnings: string[] }).warnings).toEqual([]);
  });

  it("19: without --snapshot it reads the latest snapshot's metadata: an incremental prospect audience and an audience it does not define are config errors", async () => {
    const ws = emptyWorkspace();
    const config = ws.config(
      crmConfig({
        audiences: [
          { id: 'aud-vip', mode: 'incremental', schedule: every6 },
          { id: 'aud-gone', mode: 'full', schedule: every6 },
        ],
      }),
    );
    const none = await ws.audex(['validate', '--config', config]);
    expect(none.code, none.stderr).toBe(0);
    expect(none.stdout).toContain('no complete snapshot under');
    addSnapshot(
      ws.snapshots,
      'snap-20',
      EVAL(20),
      [prof('p-1')],
      [{ id: 'aud-vip', name: 'VIP', profileType: 'prospect' }],
    );
    const result = await ws.audex(['validate', '--config', config]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('audiences[0].mode: aud-vip is a prospect audience');
    expect(result.stderr).toContain('audiences[1].id: aud-gone is not in snapshot snap-20');
  });

  it('21: validate --snapshot and --max-bad-records progress end a long list of bad records with "… and N more"', async () => {
    const ws = emptyWorkspace();
    const config = ws.config(crmConfig());
    snap(ws, 20, [prof('p-1'), ...Array.from({ length: 12 }, () => 'not json')]);
    const validate = await ws.audex(['validate', '--config', config, '--snapshot', 'snap-20']);
    expect(validate.code).toBe(4);
    expect(validate.stdout).toContain('… and 2 more');
    const run = await ws.audex(['run', '--config', config, '--at', AT(20), '--max-bad-records', '12']);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stderr).toContain('skipping 12 bad record(s)');
    expect(run.stderr).toContain('… and 2 more');
  });
});

describe('21: small ones', () => {
  it('manifest sinkPath is relative to the destination; an export-now repeating an interrupted one is one run', async () => {
    const ws = emptyWorkspace();
    const config = ws.config(crmConfig());
    snap(ws, 20, [prof('p-1')]);
    const at = '2026-11-20T08:00:00Z';
    const killed = await ws.audex(['export-now', '--config', config, '--audience', 'aud-vip', '--at', at], {
      AUDEX_CRASH_AT: 'after-pending',
    });
    expect(killed.code).toBeNull();
    const again = ok(await ws.audex(['export-now', '--config', config, '--audience', 'aud-vip', '--at', at, '--json']));
    expect(again.runs.map((r) => [r.trigger, r.status])).toEqual([['exportNow', 'success']]);
    const folder = path.join(ws.out, 'crm', 'VIP Customers');
    const manifest = readdirSync(folder).find((f) => f.startsWith('manifest-'))!;
    const body = JSON.parse(readFileSync(path.join(folder, manifest), 'utf8')) as {
      exportResults: { sinkPath: string }[];
    };
    expect(body.exportResults.map((r) => r.sinkPath)).toEqual(['crm/VIP Customers']);
  });
});

describe('formats (items 16, 20)', () => {
  it('16: Parquet targets that differ only in case are a config error (exit 2), before anything is written', async () => {
    const ws = emptyWorkspace();
    snap(ws, 20, [prof('p-1')]);
    const config = ws.config(
      crmConfig({
        mandatory: [],
        format: { type: 'parquet', compression: 'none' },
        mapping: [
          { source: 'loyalty.tier', target: 'id key' },
          { source: 'loyalty.points', target: 'ID KEY' },
        ],
      }),
    );
    const result = await ws.audex(['run', '--config', config, '--at', AT(20)]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(`target "ID KEY" differs from mapping[0]'s only in case`);
    expect(ws.files('out', true)).toEqual([]);
  });

  it('20: with nullValue null, a real string "null" is quoted and a missing value is not', async () => {
    const ws = emptyWorkspace();
    snap(ws, 20, [prof('p-1', { person: { name: { firstName: 'null' } } }), prof('p-2', { person: {} })]);
    const config = ws.config(
      crmConfig({
        mandatory: [],
        format: { type: 'csv', compression: 'none', csv: { nullValue: 'null' } },
        mapping: [
          { source: 'profileId', target: 'id' },
          { source: 'person.name.firstName', target: 'first' },
        ],
      }),
    );
    const run = theRun(ok(await ws.audex(['run', '--config', config, '--at', AT(20), '--json'])));
    expect(readFileSync(run.files[0]!.path, 'utf8')).toBe('id,first\np-1,"null"\np-2,null\n');
  });
});

// Full and read-only disks need a file system of their own: a private mount namespace
// (unshare -m, as root) mounts a tiny or read-only tmpfs for the audex process only.
const canMount = (() => {
  const probe = spawnSync('unshare', ['-m', 'sh', '-c', 'mount -t tmpfs -o size=16k tmpfs /mnt'], { stdio: 'ignore' });
  return probe.status === 0;
})();

function audexOnMount(ws: Workspace, mountPoint: string, options: string, args: string[]): Promise<CliResult> {
  const quote = (s: string) => `'${s.replaceAll("'", "'\\''")}'`;
  const wrap = (argv: string[]) => [
    'unshare',
    '-m',
    'sh',
    '-c',
    `mount -t tmpfs -o ${options} tmpfs ${quote(mountPoint)} && exec ${argv.map(quote).join(' ')}`,
  ];
  return runCli(args, { cwd: ws.dir, wrap });
}

describe.skipIf(!canMount)('12: storage errors name the location and say what is wrong', () => {
  it('a full disk is exit 3 naming the destination folder; a read-only one says read-only (EROFS), not ENOENT', async () => {
    const ws = emptyWorkspace();
    const mountPoint = path.join(ws.dir, 'mnt');
    mkdirSync(mountPoint);
    snap(ws, 20, [prof('p-1', { person: { name: { firstName: 'x'.repeat(100_000) } } })]);
    const config = ws.config(
      crmConfig({
        destination: { path: './mnt/out' },
        state: { path: './state' },
        mandatory: [],
        mapping: [...KEYED, { source: 'person.name.firstName', target: 'first' }],
      }),
    );
    const full = await audexOnMount(ws, mountPoint, 'size=64k', ['run', '--config', config, '--at', AT(20), '--json']);
    expect(full.code, full.stderr).toBe(3);
    const error = theRun(full.json()).error!;
    expect(error).toContain(`cannot write ${path.join(mountPoint, 'out', 'crm', 'VIP Customers')}: ENOSPC`);
    expect(error).toContain('free some disk space there');
    const readOnly = await audexOnMount(ws, mountPoint, 'ro,size=64k', ['run', '--config', config, '--at', AT(20)]);
    expect(readOnly.code, readOnly.stderr).toBe(3);
    expect(readOnly.stderr).toContain('EROFS: read-only file system');
    expect(readOnly.stderr).toContain('mount it read-write or point the config at a writable location');
  });
});

describe('17: Parquet parts that disagree on a field type', () => {
  it('say which field, which parts and what each holds (a struct, a map), exit 4', async () => {
    const ws = emptyWorkspace();
    const config = ws.config(crmConfig({ mapping: KEYED, mandatory: [] }));
    snap(ws, 20, [prof('p-0')]);
    const dir = path.join(ws.snapshots, 'snap-20', 'profiles');
    rmSync(path.join(dir, 'part-00000.ndjson'));
    const db = await DuckDBInstance.create(':memory:');
    const c = await db.connect();
    const entry = `{'aud-vip': {'status': 'realized'}}`;
    await c.run(
      `COPY (SELECT 'p-1' AS profileId, {'email': [{'id': 'a@x'}]} AS identityMap, {'ups': ${entry}} AS segmentMembership) TO '${path.join(dir, 'part-0.parquet')}' (FORMAT parquet)`,
    );
    await c.run(
      `COPY (SELECT 'p-2' AS profileId, {'email': [{'id': 'b@x'}]} AS identityMap, {'ups': MAP ${entry}} AS segmentMembership) TO '${path.join(dir, 'part-1.parquet')}' (FORMAT parquet)`,
    );
    c.closeSync();
    db.closeSync();
    const result = await ws.audex(['run', '--config', config, '--at', AT(20)]);
    expect(result.code, result.stderr).toBe(4);
    expect(result.stderr).toContain(`the Parquet parts disagree on the type of segmentMembership.ups: it is a struct`);
    expect(result.stderr).toContain(`in ${path.join(dir, 'part-0.parquet')} but a map`);
    expect(result.stderr).not.toContain('Binder Error');
  });
});
