// Dataset exports end to end (README "Export datasets"): a dataflow with `datasets:` exports complete
// batches (`_batch.json` written last) incrementally into
// <destination>/<folderPath>/<datasetId>/exportTime=<YYYYMMDDHHmm>/part-<nnnnn>-<hash>-c000<ext>.
// Every file is produced by the real CLI and read back with independent readers
// (zlib, JSON.parse, hyparquet).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { DuckDBInstance } from '@duckdb/node-api';
import {
  readParquet,
  readText,
  trackWorkspaces,
  type CliResult,
  type JsonSummary,
  type Workspace,
} from '../helpers/harness.js';
import { addBatch, batchLines, datasetConfig, expectedPartName, orderLine, DATAFLOW_ID } from '../helpers/datasets.js';
import { startGpg, type Gpg } from '../helpers/gpg.js';

const workspace = trackWorkspaces();
type Run = JsonSummary['runs'][number] & { datasetId?: string; batchIds?: string[]; note?: string };

const DS = 'ds-orders';
const T1 = '2026-11-20T07:00:00Z'; // every6Hours from 00:00 → slot 06:00
const T2 = '2026-11-20T13:00:00Z'; // slot 12:00
const T3 = '2026-11-20T19:00:00Z'; // slot 18:00

function setup(overrides: Record<string, unknown> = {}): { ws: Workspace; root: string; config: string } {
  const ws = workspace();
  const root = path.join(ws.dir, 'datasets');
  return { ws, root, config: ws.config(datasetConfig(overrides)) };
}

async function run(
  ws: Workspace,
  config: string,
  at: string,
  extra: string[] = [],
): Promise<{ result: CliResult; runs: Run[] }> {
  const result = await ws.audex(['run', '--config', config, '--at', at, '--json', '--quiet', ...extra]);
  return { result, runs: result.json().runs as Run[] };
}

async function runOk(ws: Workspace, config: string, at: string, extra: string[] = []): Promise<Run[]> {
  const { result, runs } = await run(ws, config, at, extra);
  expect(result.code, `${result.stderr}\n${result.stdout}`).toBe(0);
  return runs;
}

const folderOf = (exportTime: string, ds = DS) => `aep/${ds}/exportTime=${exportTime}`;
/** Records (parsed) of every data file in an export folder, in part order. */
const recordsIn = (ws: Workspace, folder: string) =>
  ws
    .files()
    .filter((f) => f.startsWith(`${folder}/part-`))
    .flatMap((f) =>
      readText(path.join(ws.out, f))
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as { orderId: string }),
    );
const idsIn = (ws: Workspace, folder: string) => recordsIn(ws, folder).map((r) => r.orderId);
const manifestOf = (ws: Workspace, folder: string) => {
  const name = ws.files().find((f) => f.startsWith(`${folder}/manifest-`));
  return name
    ? (JSON.parse(readFileSync(path.join(ws.out, name), 'utf8')) as {
        batches: string[];
        exportResults: { name: string; rows: number; sha256: string }[];
        flowRunId: string;
      })
    : null;
};

async function writeParquetFile(file: string, sql: string): Promise<void> {
  const db = await DuckDBInstance.create(':memory:');
  const c = await db.connect();
  try {
    await c.run(`COPY (${sql}) TO '${file}' (FORMAT parquet)`);
  } finally {
    c.closeSync();
    db.closeSync();
  }
}

describe.concurrent('incremental dataset exports', () => {
  it('the first run is a backfill of every complete batch; a folder without _batch.json is ignored', async () => {
    const { ws, root, config } = setup();
    addBatch(root, DS, 'b-001', '2026-11-19T10:00:00Z', { 'part-00000.ndjson': batchLines('b1', 2) });
    addBatch(root, DS, 'b-002', '2026-11-20T01:00:00Z', {
      'part-00000.ndjson': batchLines('b2', 1),
      'part-00001.ndjson': batchLines('b2', 1, 2),
    });
    addBatch(root, DS, 'b-003', '2026-11-20T02:00:00Z', { 'part-00000.ndjson': batchLines('b3', 3) }, false);
    const runs = await runOk(ws, config, T1);
    expect(runs.map((r) => [r.status, r.logicalTime, r.batchIds])).toEqual([
      ['success', '2026-11-20T06:00:00.000Z', ['b-001', 'b-002']],
    ]);
    expect(idsIn(ws, folderOf('202611200600'))).toEqual(['b1-1', 'b1-2', 'b2-1', 'b2-2']);
    expect(runs[0]!.counts['rowsWritten']).toBe(4);
    expect(ws.files()).toEqual([
      `${folderOf('202611200600')}/manifest-${DATAFLOW_ID}-${runs[0]!.runId}.json`,
      `${folderOf('202611200600')}/${expectedPartName(DS, '202611200600', 0, '.json')}`,
    ]);
    expect(manifestOf(ws, folderOf('202611200600'))!.batches).toEqual(['b-001', 'b-002']);
  });

  it('later runs export only the batches added since; a late batch with an older committedAt is exported once', async () => {
    const { ws, root, config } = setup();
    addBatch(root, DS, 'b-001', '2026-11-20T01:00:00Z', { 'part-00000.ndjson': batchLines('b1', 2) });
    await runOk(ws, config, T1);
    addBatch(root, DS, 'b-002', '2026-11-20T08:00:00Z', { 'part-00000.ndjson': batchLines('b2', 2) });
    // Arrives after the 06:00 export, but says it was committed before it.
    addBatch(root, DS, 'b-late', '2026-11-20T05:00:00Z', { 'part-00000.ndjson': batchLines('late', 1) });
    const second = await runOk(ws, config, T2);
    expect(second[0]!.batchIds).toEqual(['b-late', 'b-002']);
    expect(idsIn(ws, folderOf('202611201200'))).toEqual(['late-1', 'b2-1', 'b2-2']);
    addBatch(root, DS, 'b-003', '2026-11-20T14:00:00Z', { 'part-00000.ndjson': batchLines('b3', 1) });
    const third = await runOk(ws, config, T3);
    expect(third[0]!.batchIds).toEqual(['b-003']);
    expect(idsIn(ws, folderOf('202611201800'))).toEqual(['b3-1']);
    // Each batch in exactly one export folder.
    const all = ['202611200600', '202611201200', '202611201800'].flatMap((t) => idsIn(ws, folderOf(t)));
    expect(all.sort()).toEqual(['b1-1', 'b1-2', 'b2-1', 'b2-2', 'b3-1', 'late-1']);
  });

  it('state.keepHistoryDays removes older history records after the runs, as for audiences', async () => {
    const { ws, root, config } = setup({ state: { keepHistoryDays: 1 } });
    const keepAll = ws.config(datasetConfig(), 'keep-all.yaml');
    addBatch(root, DS, 'b-001', '2026-11-20T01:00:00Z', { 'part-00000.ndjson': batchLines('b1', 1) });
    await runOk(ws, keepAll, T1);
    addBatch(root, DS, 'b-002', '2026-11-20T08:00:00Z', { 'part-00000.ndjson': batchLines('b2', 1) });
    await runOk(ws, keepAll, T2);
    const history = async () =>
      ((await ws.audex(['runs', '--config', config, '--json'])).json().runs as Run[]).map((r) => r.logicalTime);
    expect(await history()).toEqual(['2026-11-20T12:00:00.000Z', '2026-11-20T06:00:00.000Z']);
    // A day later (slot 2026-11-21T12:00), one day back from --at reaches 2026-11-20T13:00:
    // the two runs of the 20th go; this run's record and the slots it skipped (from 18:00 on
    // the 20th) stay.
    addBatch(root, DS, 'b-003', '2026-11-21T08:00:00Z', { 'part-00000.ndjson': batchLines('b3', 1) });
    const result = await ws.audex(['run', '--config', config, '--at', '2026-11-21T13:00:00Z']);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stderr).toContain('removed 2 history record(s) older than 1 day(s)');
    expect(await history()).toEqual([
      '2026-11-21T12:00:00.000Z',
      '2026-11-21T06:00:00.000Z',
      '2026-11-21T00:00:00.000Z',
      '2026-11-20T18:00:00.000Z',
    ]);
  });

  it('the temporary file of a lock that a killed run left is removed by the next run', async () => {
    const { ws, root, config } = setup();
    addBatch(root, DS, 'b-001', '2026-11-19T10:00:00Z', { 'part-00000.ndjson': batchLines('b1', 2) });
    const stateDir = path.join(ws.out, '_audex', DATAFLOW_ID);
    mkdirSync(stateDir, { recursive: true });
    const left = path.join(stateDir, '.lock.json.0b7c1d2e-1111-4222-8333-944455556666.audex-tmp');
    writeFileSync(left, '{"pid":1');
    await runOk(ws, config, T1);
    expect(existsSync(left)).toBe(false);
  });

  it("a batch committed after the run's now waits for the next run (replays with --at see what was there then)", async () => {
    const { ws, root, config } = setup();
    addBatch(root, DS, 'b-001', '2026-11-20T01:00:00Z', { 'part-00000.ndjson': batchLines('b1', 1) });
    addBatch(root, DS, 'b-future', '2026-11-20T09:00:00Z', { 'part-00000.ndjson': batchLines('f', 1) });
    expect((await runOk(ws, config, T1))[0]!.batchIds).toEqual(['b-001']);
    expect((await runOk(ws, config, T2))[0]!.batchIds).toEqual(['b-future']);
  });

  it('a slot with no new batch writes no data file: only its manifest, or nothing with manifests off', async () => {
    const { ws, root, config } = setup();
    addBatch(root, DS, 'b-001', '2026-11-20T01:00:00Z', { 'part-00000.ndjson': batchLines('b1', 1) });
    await runOk(ws, config, T1);
    const empty = await runOk(ws, config, T2);
    expect(empty.map((r) => [r.status, r.counts['rowsWritten'], r.files])).toEqual([['success', 0, []]]);
    expect(ws.files().filter((f) => f.startsWith(folderOf('202611201200')))).toEqual([
      `${folderOf('202611201200')}/manifest-${DATAFLOW_ID}-${empty[0]!.runId}.json`,
    ]);
    expect(manifestOf(ws, folderOf('202611201200'))).toMatchObject({ batches: [], exportResults: [] });

    const off = setup({ format: { type: 'json', manifest: false } });
    addBatch(off.root, DS, 'b-001', '2026-11-20T01:00:00Z', { 'part-00000.ndjson': batchLines('b1', 1) });
    await runOk(off.ws, off.config, T1);
    expect((await runOk(off.ws, off.config, T2))[0]!.status).toBe('success');
    expect(off.ws.files().filter((f) => f.includes('exportTime=202611201200'))).toEqual([]);
  });

  it('missed slots are coalesced into the latest due slot and recorded as skipped', async () => {
    const { ws, root, config } = setup();
    addBatch(root, DS, 'b-001', '2026-11-20T01:00:00Z', { 'part-00000.ndjson': batchLines('b1', 1) });
    await runOk(ws, config, T1);
    addBatch(root, DS, 'b-002', '2026-11-20T08:00:00Z', { 'part-00000.ndjson': batchLines('b2', 1) });
    addBatch(root, DS, 'b-003', '2026-11-21T02:00:00Z', { 'part-00000.ndjson': batchLines('b3', 1) });
    const runs = await runOk(ws, config, '2026-11-21T07:00:00Z');
    expect(runs.map((r) => [r.status, r.logicalTime])).toEqual([
      ['skipped', '2026-11-20T12:00:00.000Z'],
      ['skipped', '2026-11-20T18:00:00.000Z'],
      ['skipped', '2026-11-21T00:00:00.000Z'],
      ['success', '2026-11-21T06:00:00.000Z'],
    ]);
    expect(runs[3]!.batchIds).toEqual(['b-002', 'b-003']);
    expect(
      ws
        .files()
        .filter((f) => f.includes('exportTime='))
        .map((f) => f.split('/')[2]),
    ).toEqual([
      'exportTime=202611200600',
      'exportTime=202611200600',
      'exportTime=202611210600',
      'exportTime=202611210600',
    ]);
    const history = await ws.audex(['runs', '--config', config, '--json', '--status', 'skipped']);
    expect((JSON.parse(history.stdout) as { runs: Run[] }).runs.map((r) => r.logicalTime)).toHaveLength(3);
  });
});

describe.concurrent('files and names', () => {
  it('maxRowsPerFile splits into parts named part-<nnnnn>-<hash>-c000, identical across a retried run', async () => {
    const { ws, root, config } = setup({
      format: { type: 'json', compression: 'gzip', maxRowsPerFile: 2, manifest: true },
    });
    addBatch(root, DS, 'b-001', '2026-11-20T01:00:00Z', { 'part-00000.ndjson': batchLines('b1', 3) });
    addBatch(root, DS, 'b-002', '2026-11-20T02:00:00Z', { 'part-00000.ndjson.gz': gzipSync(batchLines('b2', 2)) });
    const first = await runOk(ws, config, T1);
    const folder = folderOf('202611200600');
    const names = [0, 1, 2].map((i) => `${folder}/${expectedPartName(DS, '202611200600', i, '.json.gz')}`);
    expect(ws.files().filter((f) => f.includes('/part-'))).toEqual(names);
    expect(names.map((n) => readText(path.join(ws.out, n)).split('\n').filter(Boolean).length)).toEqual([2, 2, 1]);
    expect(first[0]!.files.map((f) => f.rows)).toEqual([2, 2, 1]);
    const manifest = manifestOf(ws, folder)!;
    expect(manifest.exportResults.map((r) => [r.name, r.rows])).toEqual(
      names.map((n, i) => [path.posix.basename(n), [2, 2, 1][i]]),
    );
    const bytes = Object.fromEntries(ws.files().map((f) => [f, readFileSync(path.join(ws.out, f)).toString('base64')]));

    // The same slot run again from scratch (state and files gone): the same names and bytes.
    rmSync(ws.out, { recursive: true, force: true });
    const again = await runOk(ws, config, T1);
    expect(again[0]!.runId).toBe(first[0]!.runId);
    expect(
      Object.fromEntries(ws.files().map((f) => [f, readFileSync(path.join(ws.out, f)).toString('base64')])),
    ).toEqual(bytes);
  });

  it('NDJSON records are written to JSON exactly as they are, one a line', async () => {
    const { ws, root, config } = setup();
    const lines = [
      '{"z":1,"a":{"y":[1,2.50,1e3]},"s":"caf\\u00e9 ☕"}',
      '  {"spaced" : true ,"n":null}  ',
      '{"orderId":"o-1"}\r',
    ];
    addBatch(root, DS, 'b-001', '2026-11-20T01:00:00Z', { 'part-00000.ndjson': `${lines.join('\n')}\n\n` });
    await runOk(ws, config, T1);
    const file = path.join(ws.out, folderOf('202611200600'), expectedPartName(DS, '202611200600', 0, '.json'));
    expect(readFileSync(file, 'utf8')).toBe(`${lines[0]}\n${lines[1]}\n{"orderId":"o-1"}\n`);
  });

  it('above 16 MB of NDJSON the lines are checked on worker threads (the built CLI ships the worker): same bytes, bad lines named', async () => {
    const { ws, root, config } = setup();
    // Two parts of ~9 MB each: one scan per worker thread (src/engine/copy-batches.ts).
    const first = batchLines('w1', 100_000);
    const second = `${batchLines('w2', 50_000)}{"broken": \n${batchLines('w2', 50_000, 50_001)}`;
    expect(Buffer.byteLength(first) + Buffer.byteLength(second)).toBeGreaterThan(16 * 1024 * 1024);
    addBatch(root, DS, 'b-001', '2026-11-20T01:00:00Z', { 'part-00000.ndjson': first, 'part-00001.ndjson': second });
    const refused = await ws.audex(['run', '--config', config, '--at', T1, '--quiet']);
    expect(refused.code, refused.stderr).toBe(4);
    expect(refused.stderr).toContain(`${path.join(root, DS, 'b-001', 'part-00001.ndjson')}:50001: not valid JSON`);
    const runs = await runOk(ws, config, T1, ['--max-bad-records', '1']);
    expect(runs[0]!.counts).toMatchObject({ rowsWritten: 200_000, badRecords: 1 });
    const file = path.join(ws.out, folderOf('202611200600'), expectedPartName(DS, '202611200600', 0, '.json'));
    expect(readFileSync(file, 'utf8')).toBe(first + second.replace('{"broken": \n', ''));
  });

  it('JSON becomes Parquet with the types of the input; Parquet becomes JSON and Parquet with its own', async () => {
    const { ws, root, config } = setup({ format: { type: 'parquet', compression: 'none' } });
    addBatch(root, DS, 'b-001', '2026-11-20T01:00:00Z', { 'part-00000.ndjson': batchLines('b1', 2) });
    await runOk(ws, config, T1);
    const file = path.join(ws.out, folderOf('202611200600'), expectedPartName(DS, '202611200600', 0, '.parquet'));
    const { rows, columns, codecs } = await readParquet(file);
    expect(codecs).toEqual(['SNAPPY']);
    expect(columns.filter((c) => c.type).map((c) => [c.name, c.type])).toEqual([
      ['orderId', 'BYTE_ARRAY'],
      ['total', 'DOUBLE'],
      ['paid', 'BOOLEAN'],
      ['sku', 'BYTE_ARRAY'],
      ['qty', 'INT64'],
    ]);
    expect(rows).toEqual([
      { orderId: 'b1-1', total: 1.5, paid: false, items: [{ sku: 's1', qty: 1n }] },
      { orderId: 'b1-2', total: 3, paid: true, items: [{ sku: 's2', qty: 2n }] },
    ]);

    // Parquet input (a timestamp, a decimal-free double, a nested struct) to JSON.
    const pq = setup({ format: { type: 'json', compression: 'gzip' } });
    const dir = path.join(pq.root, DS, 'b-pq');
    addBatch(pq.root, DS, 'b-pq', '2026-11-20T01:00:00Z', {}, false);
    await writeParquetFile(
      path.join(dir, 'part-00000.parquet'),
      `SELECT 7::BIGINT AS n, 'x' AS s, {'k': true} AS st, TIMESTAMP '2026-11-20 01:02:03' AS t`,
    );
    writeFileSync(
      path.join(dir, '_batch.json'),
      JSON.stringify({ batchId: 'b-pq', committedAt: '2026-11-20T01:00:00Z' }),
    );
    await runOk(pq.ws, pq.config, T1);
    const json = readText(
      path.join(pq.ws.out, folderOf('202611200600'), expectedPartName(DS, '202611200600', 0, '.json.gz')),
    );
    expect(
      json
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as unknown),
    ).toEqual([{ n: 7, s: 'x', st: { k: true }, t: '2026-11-20 01:02:03' }]);

    // The same Parquet batch to Parquet keeps its column types.
    const toParquet = pq.ws.config(
      datasetConfig({ id: 'acme-pq', folderPath: 'pq', format: { type: 'parquet', compression: 'gzip' } }),
      'pq.yaml',
    );
    await runOk(pq.ws, toParquet, T1);
    const back = await readParquet(
      path.join(
        pq.ws.out,
        'pq',
        DS,
        'exportTime=202611200600',
        expectedPartName(DS, '202611200600', 0, '.gz.parquet', 'acme-pq'),
      ),
    );
    expect(back.columns.filter((c) => c.type).map((c) => [c.name, c.type])).toEqual([
      ['n', 'INT64'],
      ['s', 'BYTE_ARRAY'],
      ['k', 'BOOLEAN'],
      ['t', 'INT64'],
    ]);
    expect(back.rows.map((r) => [r['n'], r['s'], r['st']])).toEqual([[7n, 'x', { k: true }]]);
  });

  it('every format × compression reads back with an independent reader', async () => {
    const formats = [
      { type: 'json', compression: 'none', ext: '.json' },
      { type: 'json', compression: 'gzip', ext: '.json.gz' },
      { type: 'parquet', compression: 'none', ext: '.parquet', codec: 'SNAPPY' },
      { type: 'parquet', compression: 'gzip', ext: '.gz.parquet', codec: 'GZIP' },
    ];
    const ws = workspace();
    const root = path.join(ws.dir, 'datasets');
    addBatch(root, DS, 'b-001', '2026-11-20T01:00:00Z', { 'part-00000.ndjson': batchLines('b1', 3) });
    // Four dataflows (own ids, folders and state) over the same input, side by side.
    await Promise.all(
      formats.map(async (f) => {
        const id = `acme-${f.type}-${f.compression}`;
        const config = ws.config(
          datasetConfig({ id, folderPath: id, format: { type: f.type, compression: f.compression } }),
          `${id}.yaml`,
        );
        await runOk(ws, config, T1);
        const file = path.join(
          ws.out,
          id,
          DS,
          'exportTime=202611200600',
          expectedPartName(DS, '202611200600', 0, f.ext, id),
        );
        let ids: unknown[];
        if (f.type === 'json') {
          const raw = readFileSync(file);
          expect(raw[0] === 0x1f && raw[1] === 0x8b, `${f.ext} is gzip`).toBe(f.compression === 'gzip');
          ids = readText(file)
            .split('\n')
            .filter(Boolean)
            .map((l) => (JSON.parse(l) as { orderId: string }).orderId);
          expect(readText(file)).toBe(batchLines('b1', 3));
        } else {
          const { rows, codecs } = await readParquet(file);
          expect(codecs).toEqual([f.codec]);
          ids = rows.map((r) => r['orderId']);
          // The same slot exported again from scratch gives the same Parquet bytes.
          const first = readFileSync(file);
          for (const dir of [id, `_audex/${id}`]) rmSync(path.join(ws.out, dir), { recursive: true, force: true });
          await runOk(ws, config, T1);
          expect(readFileSync(file).equals(first), `${f.ext} is byte-identical when the run is repeated`).toBe(true);
        }
        expect(ids, f.ext).toEqual(['b1-1', 'b1-2', 'b1-3']);
      }),
    );
  });
});

describe.concurrent('bad input', () => {
  it('Parquet parts with conflicting schemas exit 4 naming the parts, and write nothing', async () => {
    const { ws, root, config } = setup({ format: { type: 'parquet' } });
    for (const [batch, type] of [
      ['b-001', 'BIGINT'],
      ['b-002', 'VARCHAR'],
    ] as const) {
      addBatch(root, DS, batch, '2026-11-20T01:00:00Z', {}, false);
      await writeParquetFile(path.join(root, DS, batch, 'part-00000.parquet'), `SELECT 1::${type} AS amount`);
      writeFileSync(
        path.join(root, DS, batch, '_batch.json'),
        JSON.stringify({ batchId: batch, committedAt: '2026-11-20T01:00:00Z' }),
      );
    }
    const result = await ws.audex(['run', '--config', config, '--at', T1, '--quiet']);
    expect(result.code).toBe(4);
    expect(result.stderr).toContain(
      `column "amount" is BIGINT in ${path.join(root, DS, 'b-001', 'part-00000.parquet')} but VARCHAR in ${path.join(root, DS, 'b-002', 'part-00000.parquet')}`,
    );
    expect(ws.files('out', true)).toEqual([]);
  });

  it('bad lines are named by file:line; beyond --max-bad-records exit 4 and nothing is written, within it they are skipped and counted', async () => {
    const { ws, root, config } = setup({ format: { type: 'parquet', compression: 'gzip' } });
    addBatch(root, DS, 'b-001', '2026-11-20T01:00:00Z', {
      'part-00000.ndjson': `${orderLine('b1', 1)}\n{"broken": \n[1,2]\n${orderLine('b1', 2)}\n`,
    });
    const part = path.join(root, DS, 'b-001', 'part-00000.ndjson');
    const refused = await ws.audex(['run', '--config', config, '--at', T1, '--quiet', '--max-bad-records', '1']);
    expect(refused.code).toBe(4);
    expect(refused.stderr).toContain(`${part}:2: not valid JSON`);
    expect(refused.stderr).toContain(`${part}:3: the line is not a JSON object`);
    expect(refused.stderr).toContain('--max-bad-records 2');
    expect(ws.files('out', true).filter((f) => !f.startsWith('_audex/lock'))).toEqual([]);

    const runs = await runOk(ws, config, T1, ['--max-bad-records', '2']);
    expect(runs[0]!.counts).toMatchObject({ rowsWritten: 2, badRecords: 2 });
    const { rows } = await readParquet(
      path.join(ws.out, folderOf('202611200600'), expectedPartName(DS, '202611200600', 0, '.gz.parquet')),
    );
    expect(rows.map((r) => r['orderId'])).toEqual(['b1-1', 'b1-2']);
  });

  it('a dataset whose export fails does not stop the next one; the failed one is exported by a later run once fixed', async () => {
    const { ws, root, config } = setup({
      format: { type: 'parquet' },
      datasets: ['ds-a', 'ds-b'].map((id) => ({
        id,
        schedule: { frequency: 'every6Hours', startTime: '00:00', startDate: '2026-11-20' },
      })),
    });
    // Valid JSON, but a key twice: DuckDB's reader cannot convert it to a Parquet row.
    addBatch(root, 'ds-a', 'a-001', '2026-11-20T01:00:00Z', { 'part-00000.ndjson': '{"k":1,"k":2}\n' });
    addBatch(root, 'ds-b', 'b-001', '2026-11-20T01:00:00Z', { 'part-00000.ndjson': batchLines('b', 2) });
    const { result, runs } = await run(ws, config, T1);
    expect(result.code).toBe(4);
    expect(runs.map((r) => [r.audienceId, r.status])).toEqual([
      ['ds-a', 'failed'],
      ['ds-b', 'success'],
    ]);
    expect(runs[0]!.error).toContain(path.join(root, 'ds-a', 'a-001', 'part-00000.ndjson'));
    expect(ws.files().filter((f) => f.includes('/part-'))).toEqual([
      `aep/ds-b/exportTime=202611200600/${expectedPartName('ds-b', '202611200600', 0, '.parquet')}`,
    ]);
    writeFileSync(path.join(root, 'ds-a', 'a-001', 'part-00000.ndjson'), '{"k":2}\n');
    const retried = await runOk(ws, config, T1);
    expect(retried.map((r) => [r.audienceId, r.status, r.batchIds])).toEqual([['ds-a', 'success', ['a-001']]]);
  });

  it('a dataset folder not created yet is an empty export; a missing datasets root is exit 3 naming it', async () => {
    const { ws, root, config } = setup();
    mkdirSync(root, { recursive: true });
    const runs = await runOk(ws, config, T1);
    expect(runs.map((r) => [r.status, r.batchIds, r.files])).toEqual([['success', [], []]]);
    rmSync(root, { recursive: true });
    const missing = await ws.audex(['run', '--config', config, '--at', T2, '--quiet']);
    expect(missing.code).toBe(3);
    expect(missing.stderr).toContain(`${root} does not exist; check the path in the config`);
  });

  it('an invalid _batch.json exits 4 naming it', async () => {
    const { ws, root, config } = setup();
    addBatch(root, DS, 'b-001', '2026-11-20T01:00:00Z', { 'part-00000.ndjson': batchLines('b1', 1) }, false);
    writeFileSync(path.join(root, DS, 'b-001', '_batch.json'), '{"batchId":"b-001"}');
    const result = await ws.audex(['run', '--config', config, '--at', T1, '--quiet']);
    expect(result.code).toBe(4);
    expect(result.stderr).toContain(
      `${path.join(root, DS, 'b-001', '_batch.json')} is not a valid batch descriptor: committedAt`,
    );
  });
});

describe.concurrent('config and commands', () => {
  it('config errors are all reported at once with exit 2', async () => {
    const ws = workspace();
    const config = ws.config(
      datasetConfig({
        timezone: 'Europe/Berlin',
        audiences: [{ id: 'aud-vip', mode: 'full', schedule: { frequency: 'daily' } }],
        format: { type: 'csv', csv: { delimiter: ';' }, emptyExport: 'skip' },
        mapping: [{ source: 'a' }],
        mandatory: ['a'],
        dedupKeys: ['a'],
        fileName: '%SEGMENT_ID%',
        datasets: [
          {
            id: 'ds-a',
            mode: 'incremental',
            schedule: { frequency: 'weekly', trigger: 'afterEvaluation', startDate: '2026-11-20' },
          },
          { id: 'ds-b', schedule: { frequency: 'once', startDate: '2026-11-20' } },
        ],
      }),
    );
    const result = await ws.audex(['run', '--config', config, '--at', T1]);
    expect(result.code).toBe(2);
    const problems = result.stderr.split('\n').filter((l) => /^\s*- /.test(l));
    for (const expected of [
      /timezone: dataset exports are scheduled in UTC/,
      /audiences: a dataflow exports either audiences or datasets/,
      /format\.type: datasets are exported as json or parquet/,
      /format\.csv: /,
      /format\.emptyExport: /,
      /mapping: /,
      /mandatory: /,
      /dedupKeys: /,
      /fileName: /,
      /datasets\[0\]\.mode: /,
      /datasets\[0\]\.schedule\.trigger: /,
      /datasets\[0\]\.schedule\.frequency: dataset exports run daily, every3Hours/,
      /datasets\[1\]\.schedule\.frequency: /,
    ]) {
      expect(
        problems.some((l) => expected.test(l)),
        `${expected}\n${problems.join('\n')}`,
      ).toBe(true);
    }
    expect(problems).toHaveLength(13);
    expect(existsSync(path.join(ws.dir, 'out'))).toBe(false);
  });

  it('plan, status, runs and validate work on a dataset dataflow', async () => {
    const { ws, root, config } = setup();
    addBatch(root, DS, 'b-001', '2026-11-20T01:00:00Z', { 'part-00000.ndjson': batchLines('b1', 3) });
    addBatch(root, DS, 'b-002', '2026-11-20T02:00:00Z', { 'part-00000.ndjson': batchLines('b2', 1) }, false);
    const validate = await ws.audex(['validate', '--config', config, '--json']);
    expect(validate.code).toBe(0);
    expect(JSON.parse(validate.stdout)).toMatchObject({
      valid: true,
      kind: 'datasets',
      datasets: [{ id: DS, batches: 1, parts: 1 }],
    });
    const plan = await ws.audex(['plan', '--config', config, '--at', T1, '--json']);
    expect(plan.code).toBe(0);
    const report = JSON.parse(plan.stdout) as {
      runs: { datasetId: string; batches: string[]; records: number; files: string[] }[];
    };
    expect(report.runs.map((r) => [r.datasetId, r.batches, r.records])).toEqual([[DS, ['b-001'], 3]]);
    expect(report.runs[0]!.files[0]).toBe(
      path.join(ws.out, folderOf('202611200600'), expectedPartName(DS, '202611200600', 0, '.json')),
    );
    expect(ws.files('out', true)).toEqual([]);

    const [done] = await runOk(ws, config, T1);
    const status = await ws.audex(['status', '--config', config, '--at', T1, '--json']);
    expect(JSON.parse(status.stdout)).toMatchObject({
      datasets: [
        {
          datasetId: DS,
          lastSuccess: { runId: done!.runId, records: 3, files: 1 },
          nextSlot: '2026-11-20T12:00:00.000Z',
          exportedBatches: 1,
          pendingRun: null,
        },
      ],
    });
    const runs = await ws.audex(['runs', '--config', config, '--json']);
    expect((JSON.parse(runs.stdout) as { runs: Run[] }).runs.map((r) => [r.audienceId, r.status, r.batchIds])).toEqual([
      [DS, 'success', ['b-001']],
    ]);
    const exportNow = await ws.audex(['export-now', '--config', config, '--audience', DS]);
    expect(exportNow.code).toBe(2);
    expect(exportNow.stderr).toContain('exports datasets; export-now is for audiences');
  });

  it('schema --datasets prints the JSON Schema of a dataset dataflow', async () => {
    const ws = workspace();
    const result = await ws.audex(['schema', '--datasets']);
    expect(result.code).toBe(0);
    const schema = JSON.parse(result.stdout) as {
      properties: Record<string, { properties?: Record<string, unknown> }>;
    };
    expect(Object.keys(schema.properties)).toEqual(
      expect.arrayContaining(['source', 'destination', 'format', 'folderPath', 'datasets']),
    );
    expect(Object.keys(schema.properties)).not.toContain('mapping');
    expect(Object.keys(schema.properties['format']!.properties ?? {})).toEqual([
      'type',
      'compression',
      'maxRowsPerFile',
      'manifest',
      'encryption',
    ]);
  });

  it('init --datasets writes a starter that validates and runs', async () => {
    const ws = workspace();
    const init = await ws.audex(['init', '--datasets', '--dir', 'starter']);
    expect(init.code, init.stderr).toBe(0);
    const config = path.join(ws.dir, 'starter', 'audex.yaml');
    expect((await ws.audex(['validate', '--config', config])).code).toBe(0);
    const result = await ws.audex(['run', '--config', config, '--at', '2026-01-01T07:00:00Z', '--json', '--quiet']);
    expect(result.code, result.stderr).toBe(0);
    expect(result.json().runs.map((r) => [r.status, r.counts['rowsWritten']])).toEqual([['success', 2]]);
  });
});

describe('encrypted dataset exports (README "Encrypted files")', () => {
  let gpg: Gpg;
  beforeAll(() => {
    gpg = startGpg();
  });
  afterAll(() => gpg?.stop());

  it('every part is <name>.gpg and gpg --decrypt gives back the unencrypted export byte for byte; the manifest lists the encrypted bytes', async () => {
    const ws = workspace();
    const root = path.join(ws.dir, 'datasets');
    addBatch(root, DS, 'b-001', '2026-11-20T01:00:00Z', { 'part-00000.ndjson': batchLines('b1', 3) });
    gpg.writeKey(ws.dir, 'recipient.asc', gpg.ecc.publicKey);
    const format = { type: 'json', compression: 'gzip', maxRowsPerFile: 2 };
    const plain = ws.config(datasetConfig({ id: 'acme-plain', folderPath: 'plain', format }), 'plain.yaml');
    const sealed = ws.config(
      datasetConfig({
        id: 'acme-sealed',
        folderPath: 'sealed',
        format: { ...format, encryption: { type: 'pgp', publicKey: { file: 'recipient.asc' } } },
      }),
      'sealed.yaml',
    );
    await runOk(ws, plain, T1);
    const [run] = await runOk(ws, sealed, T1);
    const names = [0, 1].map((i) => expectedPartName(DS, '202611200600', i, '.json.gz.gpg', 'acme-sealed'));
    const folder = `sealed/${DS}/exportTime=202611200600`;
    expect(ws.files().filter((f) => f.startsWith(`${folder}/part-`))).toEqual(names.map((n) => `${folder}/${n}`));
    names.forEach((n, i) => {
      const decrypted = gpg.decrypt(path.join(ws.out, folder, n));
      expect(
        decrypted.equals(
          readFileSync(
            path.join(
              ws.out,
              'plain',
              DS,
              'exportTime=202611200600',
              expectedPartName(DS, '202611200600', i, '.json.gz', 'acme-plain'),
            ),
          ),
        ),
      ).toBe(true);
    });
    const manifest = JSON.parse(
      readFileSync(
        path.join(
          ws.out,
          ws.files().find((f) => f.startsWith(`${folder}/manifest-`))!,
        ),
        'utf8',
      ),
    ) as { exportResults: { name: string; size: number }[] };
    expect(manifest.exportResults.map((r) => [r.name, r.size])).toEqual(
      names.map((n) => [n, readFileSync(path.join(ws.out, folder, n)).length]),
    );
    expect(run!.files.map((f) => path.basename(f.path))).toEqual(names);
  });
});
