// A Parquet snapshot whose schema types the identity entries, attributes and membership
// entries is read without a detour through JSON (engine/parquet-access.ts: present, value,
// textIds); the snapshot table must hold exactly what the same records give as NDJSON,
// edge cases included: a null identity entry, an entry without an id, an empty id, a
// missing namespace, a null attribute, an absent membership entry.
import { describe, expect, it } from 'vitest';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Engine } from '../../src/engine/session.js';
import { useScratchEngine } from '../helpers/engine.js';
import { loadSnapshot } from '../../src/engine/load-snapshot.js';
import type { Shape } from '../../src/engine/shape.js';

let dir: string;
let engine: Engine;
useScratchEngine('audex-parquet-access-', (opened) => {
  ({ dir, engine } = opened);
});

const shape: Shape = {
  keyPath: ['profileId'],
  namespace: 'email',
  attributes: [['name'], ['points']],
  columns: [],
  required: [],
  dedup: null,
  statusMapped: true,
  audiences: ['aud-1'],
};
const entry = { status: 'realized', lastQualificationTime: '2026-11-19T10:00:00Z' };
const records = [
  {
    profileId: 'p1',
    identityMap: { email: [{ id: 'b@x' }, { id: 'a@x' }] },
    name: 'Ann',
    points: 3,
    segmentMembership: { ups: { 'aud-1': entry } },
  },
  { profileId: 'p2', identityMap: { email: [{ id: null }] }, name: 'Bob', points: 1, segmentMembership: { ups: {} } },
  {
    profileId: 'p3',
    identityMap: { email: [null, { id: 'c@x' }] },
    name: null,
    points: null,
    segmentMembership: { ups: { 'aud-1': entry } },
  },
  {
    profileId: 'p4',
    identityMap: { email: [{ id: '' }] },
    name: 'Dee',
    points: 0,
    segmentMembership: { ups: { 'aud-1': null } },
  },
  { profileId: 'p5', identityMap: { email: [] }, name: 'Eve', points: 5, segmentMembership: { ups: {} } },
  { profileId: 'p6', identityMap: {}, name: 'Fay', points: 6, segmentMembership: { ups: { 'aud-1': entry } } },
];

async function snapshotRows(table: string) {
  return engine.all(
    `SELECT k, ids, s0::VARCHAR AS s0, q0, a0::VARCHAR AS a0, a1::VARCHAR AS a1 FROM "${table}" ORDER BY k`,
  );
}

describe('typed Parquet access', () => {
  it('loads the same snapshot table and bad records from Parquet as from NDJSON', async () => {
    const ndjson = path.join(dir, 'part.ndjson');
    writeFileSync(ndjson, records.map((r) => JSON.stringify(r)).join('\n') + '\n');
    const parquet = path.join(dir, 'part.parquet');
    // The same records, typed by the engine's JSON reader and written as Parquet.
    const columns = `{profileId: 'VARCHAR', identityMap: 'STRUCT(email STRUCT(id VARCHAR)[])', name: 'VARCHAR', points: 'BIGINT',
      segmentMembership: 'STRUCT(ups STRUCT("aud-1" STRUCT(status VARCHAR, lastQualificationTime VARCHAR)))'}`;
    await engine.run(
      `COPY (SELECT * FROM read_json('${ndjson}', format = 'newline_delimited', columns = ${columns})) TO '${parquet}' (FORMAT parquet)`,
    );
    const fromJson = await loadSnapshot(engine, shape, [{ path: ndjson, name: 'part.ndjson', kind: 'ndjson' }], {
      table: 'from_ndjson',
      scratchDir: dir,
    });
    const fromParquet = await loadSnapshot(engine, shape, [{ path: parquet, name: 'part.parquet', kind: 'parquet' }], {
      table: 'from_parquet',
      scratchDir: dir,
    });
    const reasons = (l: typeof fromJson) => l.badRecords.map((b) => [b.line, b.reason]);
    expect(reasons(fromJson)).toEqual([[2, 'identityMap.email holds an entry without a scalar "id"']]);
    expect(reasons(fromParquet)).toEqual(reasons(fromJson));
    const rows = await snapshotRows('from_ndjson');
    expect(rows.map((r) => r['k'])).toEqual(['p1', 'p3', 'p4', 'p5', 'p6']);
    expect(rows[0]).toMatchObject({ ids: ['a@x', 'b@x'], s0: 'realized', a0: '"Ann"', a1: '3' });
    expect(rows[1]).toMatchObject({ ids: ['c@x'], a0: null, a1: null });
    expect(rows[2]).toMatchObject({ ids: [], s0: null });
    expect(await snapshotRows('from_parquet')).toEqual(rows);
  });
});
