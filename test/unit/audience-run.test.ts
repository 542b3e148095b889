// The engine's run-level API (engine/audience-run.ts) against an in-memory DuckDB: a full
// run, its next baseline written to a file and kept in the engine, and the next snapshot's
// diff against either gives the same counts and rows; dropping runs leaves no table behind.
import { describe, expect, it } from 'vitest';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Engine } from '../../src/engine/session.js';
import { useScratchEngine } from '../helpers/engine.js';
import { loadSnapshot } from '../../src/engine/load-snapshot.js';
import {
  dropRun,
  keepNextBaseline,
  selectRun,
  writeNextBaseline,
  type SelectedRun,
} from '../../src/engine/audience-run.js';
import { copyTextLines } from '../../src/engine/render-parts.js';
import type { Shape } from '../../src/engine/shape.js';

let dir: string;
let engine: Engine;
useScratchEngine('audex-audience-run-', (opened) => {
  ({ dir, engine } = opened);
});

const audience = 'aud-1';
const shape: Shape = {
  keyPath: ['profileId'],
  namespace: null,
  attributes: [['name']],
  columns: [
    {
      target: 'name',
      source: 'name',
      ref: { kind: 'attribute', path: ['name'] },
      type: 'string',
      sha256: false,
      attribute: 0,
    },
    { target: 'status', source: 'segmentMembership.status', ref: { kind: 'status' }, type: 'string', sha256: false },
  ],
  required: [],
  dedup: null,
  statusMapped: true,
  audiences: [audience],
};
const member = (id: string, status: string) => ({
  profileId: id,
  name: `n-${id}`,
  segmentMembership: { ups: { [audience]: { status, lastQualificationTime: '2026-11-19T10:00:00Z' } } },
});

async function load(name: string, records: object[]) {
  const file = path.join(dir, `${name}.ndjson`);
  writeFileSync(file, records.map((r) => JSON.stringify(r)).join('\n') + '\n');
  return loadSnapshot(engine, shape, [{ path: file, name: `${name}.ndjson`, kind: 'ndjson' }], {
    table: `snap_${name}`,
    scratchDir: dir,
  });
}

async function linesOf(run: SelectedRun): Promise<string> {
  const file = path.join(dir, `lines-${Math.random()}.json`);
  await copyTextLines(run.rows, null, 1, run.rows.count, file);
  return readFileSync(file, 'utf8');
}

const tables = async () =>
  (await engine.all<{ t: string }>(`SELECT table_name AS t FROM duckdb_tables() ORDER BY t`)).map((r) => r.t);
const views = async () =>
  (await engine.all<{ v: string }>(`SELECT view_name AS v FROM duckdb_views() WHERE NOT internal ORDER BY v`)).map(
    (r) => r.v,
  );

describe('selectRun, next baselines and dropRun', () => {
  it('diffs the same against a baseline file and a kept baseline, and drops every table of a run', async () => {
    const before = await load('day1', [member('p1', 'realized'), member('p2', 'existing'), member('p3', 'exited')]);
    const after = await load('day2', [member('p2', 'existing'), member('p3', 'realized'), member('p4', 'realized')]);
    const snapshotTables = await tables();

    const full = await selectRun(engine, shape, before, audience, undefined, { nextBaseline: true });
    expect(full.counts).toMatchObject({ profilesReceived: 2, rowsWritten: 2, exitsWritten: 0, badRecords: 0 });
    const file = path.join(dir, 'baseline.parquet');
    expect(await writeNextBaseline(full, file)).toBe(2);
    // Candidates kept in a table for the baseline or read through a view: the same rows and baseline.
    const viewed = await selectRun(engine, shape, before, audience);
    expect(viewed.counts).toEqual(full.counts);
    expect(await linesOf(viewed)).toBe(await linesOf(full));
    const viewedFile = path.join(dir, 'baseline-viewed.parquet');
    await writeNextBaseline(viewed, viewedFile);
    expect(readFileSync(viewedFile)).toEqual(readFileSync(file));
    await dropRun(viewed);
    const kept = await keepNextBaseline(full);
    await dropRun(full);

    const fromFile = await selectRun(engine, shape, after, audience, { file });
    const fromKept = await selectRun(engine, shape, after, audience, kept);
    // Enters p3 and p4, exit p1 (gone: no attributes left); p2 stays in the destination.
    expect(fromFile.counts).toEqual({
      profilesReceived: 3,
      rowsWritten: 3,
      excludedMandatory: 0,
      excludedDuplicate: 0,
      exitsOmitted: 0,
      exitsWritten: 1,
      badRecords: 0,
    });
    expect(fromKept.counts).toEqual(fromFile.counts);
    const lines = await linesOf(fromFile);
    expect(lines).toBe(
      '{"name":null,"status":"exited"}\n{"name":"n-p3","status":"realized"}\n{"name":"n-p4","status":"realized"}\n',
    );
    expect(await linesOf(fromKept)).toBe(lines);
    await dropRun(fromFile);
    await dropRun(fromKept);
    // Only the snapshots and the kept baseline (it lives as long as the engine) are left.
    expect((await tables()).filter((t) => !snapshotTables.includes(t))).toHaveLength(1);
    expect(await views()).toEqual([]);
  });

  it('a diff exits a member whose entry is gone with its current attributes, a vanished one without, and keeps an unreadable one', async () => {
    const before = await load(
      'exits1',
      ['p1', 'p2', 'p3', 'p4'].map((id) => member(id, 'realized')),
    );
    const full = await selectRun(engine, shape, before, audience);
    const file = path.join(dir, 'exits-baseline.parquet');
    expect(await writeNextBaseline(full, file)).toBe(4);
    await dropRun(full);
    const after = await load('exits2', [
      { profileId: 'p1', name: 'n-p1-now', segmentMembership: { ups: {} } },
      { ...member('p3', 'bogus'), name: 'n-p3-now' },
      { ...member('p4', 'exited'), name: 'n-p4-now' },
      member('p5', 'existing'),
    ]);
    const diff = await selectRun(engine, shape, after, audience, { file });
    expect(diff.counts).toMatchObject({ profilesReceived: 4, rowsWritten: 4, exitsWritten: 3, badRecords: 1 });
    expect(await linesOf(diff)).toBe(
      [
        '{"name":"n-p1-now","status":"exited"}',
        '{"name":null,"status":"exited"}',
        '{"name":"n-p4-now","status":"exited"}',
        '{"name":"n-p5","status":"existing"}',
        '',
      ].join('\n'),
    );
    // The next baseline: p3 as it was (its entry is unreadable this time) and the newcomer p5.
    const next = path.join(dir, 'exits-next.parquet');
    expect(await writeNextBaseline(diff, next)).toBe(2);
    expect(await engine.all(`SELECT k, status FROM read_parquet('${next}') ORDER BY k`)).toEqual([
      { k: 'p3', status: 'realized' },
      { k: 'p5', status: 'existing' },
    ]);
    await dropRun(diff);
  });

  it('a selection that fails leaves no table behind', async () => {
    const loaded = await load('day3', [member('p1', 'realized')]);
    const known = await tables();
    await expect(
      selectRun(engine, shape, loaded, audience, { file: path.join(dir, 'missing.parquet') }),
    ).rejects.toThrow(/missing\.parquet/);
    expect(await tables()).toEqual(known);
  });

  it('a full selection with dedup leaves out the losers and keeps key order over many row groups', async () => {
    // 400k profiles, so that the engine scans several row groups on several threads; every
    // 1000th shares its email with the next one, qualified later, and loses it.
    const n = 400_000;
    const key = (i: number) => `p${String(i).padStart(6, '0')}`;
    const email = (i: number) => (i % 1000 === 1 ? `e${i - 1}@x` : `e${i}@x`);
    const deduped: Shape = {
      ...shape,
      namespace: 'email',
      columns: [
        {
          target: 'email',
          source: 'identityMap.email',
          ref: { kind: 'identity', namespace: 'email' },
          type: 'string',
          sha256: false,
        },
        shape.columns[0]!,
      ],
      required: [0],
      dedup: { kind: 'identity' },
      statusMapped: false,
    };
    const file = path.join(dir, 'many.ndjson');
    const lines: string[] = [];
    for (let i = 0; i < n; i++) {
      const qtime = i % 1000 === 1 ? '2026-11-19T11:00:00Z' : '2026-11-19T10:00:00Z';
      lines.push(
        JSON.stringify({
          profileId: key(i),
          name: `n${i}`,
          identityMap: { email: [{ id: email(i) }] },
          segmentMembership: { ups: { [audience]: { status: 'realized', lastQualificationTime: qtime } } },
        }),
      );
    }
    writeFileSync(file, lines.join('\n') + '\n');
    const loaded = await loadSnapshot(engine, deduped, [{ path: file, name: 'many.ndjson', kind: 'ndjson' }], {
      table: 'snap_many',
      scratchDir: dir,
    });
    const run = await selectRun(engine, deduped, loaded, audience);
    expect(run.counts).toMatchObject({ profilesReceived: n, excludedDuplicate: n / 1000, rowsWritten: n - n / 1000 });
    const expected: string[] = [];
    for (let i = 0; i < n; i++) if (i % 1000 !== 0) expected.push(`{"email":"${email(i)}","name":"n${i}"}`);
    expect((await linesOf(run)) === expected.join('\n') + '\n').toBe(true);
    await dropRun(run);
    expect(await views()).toEqual([]);
    const types = await engine.all(
      `SELECT type_name FROM duckdb_types() WHERE NOT internal AND type_name LIKE 'audience_run%'`,
    );
    expect(types).toEqual([]);
  });

  it('a full selection writes rows in key order, from a snapshot in key order and from one that is not', async () => {
    const ids = ['p10', 'p02', 'p31', 'p07', 'p20', 'p01'];
    const sorted = [...ids]
      .sort()
      .map((id) => `{"name":"n-${id}","status":"realized"}\n`)
      .join('');
    for (const [name, order] of [
      ['ordered', [...ids].sort()],
      ['shuffled', ids],
    ] as const) {
      const run = await selectRun(
        engine,
        shape,
        await load(
          name,
          order.map((id) => member(id, 'realized')),
        ),
        audience,
      );
      expect(await linesOf(run), name).toBe(sorted);
      await dropRun(run);
    }
  });
});
