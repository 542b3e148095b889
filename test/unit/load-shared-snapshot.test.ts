// loadSnapshotForDataflows: one read of a snapshot for several dataflows gives each of
// them exactly what a load of its own gives (rows, bad records, bad entries, selection).
import { describe, expect, it } from 'vitest';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Engine } from '../../src/engine/session.js';
import { useScratchEngine } from '../helpers/engine.js';
import { loadSnapshot, type PartFile } from '../../src/engine/load-snapshot.js';
import { loadSnapshotForDataflows } from '../../src/engine/load-shared-snapshot.js';
import { selectRows } from '../../src/engine/select-rows.js';
import { ident } from '../../src/engine/sql.js';
import type { Column, Shape } from '../../src/engine/shape.js';

const attr = (p: string[], attribute: number, target: string): Column => ({
  target,
  source: p.join('.'),
  ref: { kind: 'attribute', path: p },
  type: 'string',
  sha256: false,
  attribute,
});
const shape = (audiences: string[], attributes: string[][], namespace: string | null = null): Shape => ({
  keyPath: ['profileId'],
  namespace,
  attributes,
  audiences,
  dedup: namespace ? { kind: 'identity' } : null,
  statusMapped: false,
  required: [],
  columns: [
    ...attributes.map((p, j) => attr(p, j, p.join('_'))),
    ...(namespace
      ? [
          {
            target: 'id',
            source: `identityMap.${namespace}`,
            ref: { kind: 'identity', namespace } as const,
            type: 'string' as const,
            sha256: false,
          },
        ]
      : []),
  ],
});
const SHAPES = [
  shape(['aud-1', 'aud-2'], [['loyalty', 'tier']]),
  shape(
    ['aud-3', 'aud-2'],
    [
      ['person', 'name'],
      ['loyalty', 'tier'],
    ],
  ),
  shape(['aud-1'], [['loyalty', 'tier']], 'email'),
];
const member = (status: string) => ({ status, lastQualificationTime: '2026-11-19T10:00:00Z' });
const RECORDS = [
  {
    profileId: 'p-1',
    loyalty: { tier: 'gold' },
    person: { name: 'Ann' },
    identityMap: { email: [{ id: 'a@x' }] },
    segmentMembership: {
      ups: { 'aud-1': member('realized'), 'aud-2': member('existing'), 'aud-3': member('realized') },
    },
  },
  { loyalty: { tier: 'no key' }, segmentMembership: { ups: { 'aud-1': member('realized') } } },
  {
    profileId: 'p-2',
    loyalty: { tier: 'silver' },
    identityMap: { email: [{ name: 'no id' }] },
    segmentMembership: { ups: { 'aud-1': { status: 'bogus' }, 'aud-3': member('realized') } },
  },
  { profileId: 'p-1', loyalty: { tier: 'again' }, segmentMembership: { ups: { 'aud-2': member('realized') } } },
  {
    profileId: 'p-3',
    person: { name: 'Cy' },
    identityMap: { email: [{ id: 'c@x' }] },
    segmentMembership: { ups: { 'aud-2': member('realized'), 'aud-3': member('exited') } },
  },
];

let dir: string;
let engine: Engine;
let parts: PartFile[];
useScratchEngine('audex-shared-load-', (opened) => {
  ({ dir, engine } = opened);
  const file = path.join(dir, 'part-0.ndjson');
  writeFileSync(file, RECORDS.map((r) => JSON.stringify(r)).join('\n') + '\n');
  parts = [{ path: file, name: 'profiles/part-0.ndjson', kind: 'ndjson' }];
});

describe('loadSnapshotForDataflows', () => {
  it('gives every dataflow the rows, bad records, bad entries and selection of a load of its own', async () => {
    const shared = await loadSnapshotForDataflows(engine, SHAPES, parts, { table: 'shared', scratchDir: dir });
    // Two of the three shapes share a read: only the identity namespace sets the third apart.
    const [tables] = await engine.all<{ n: string }>(
      `SELECT count(*)::VARCHAR AS n FROM duckdb_tables() WHERE regexp_full_match(table_name, 'shared_g[0-9]+')`,
    );
    expect(tables?.n).toBe('2');
    for (const [i, s] of SHAPES.entries()) {
      const alone = await loadSnapshot(engine, s, parts, { table: `alone_${i}`, scratchDir: dir });
      const view = shared[i]!;
      expect({ profiles: view.profiles, bad: view.badRecords, entries: [...view.entryErrors] }).toEqual({
        profiles: alone.profiles,
        bad: alone.badRecords,
        entries: [...alone.entryErrors],
      });
      const columns = (await engine.all<{ column_name: string }>(`DESCRIBE ${ident(view.table)}`))
        .filter((c) => c.column_name !== '_file')
        .map((c) => ident(c.column_name))
        .join(', ');
      // (_file is the scanner's scratch copy, named after the table; bad records name the user's part.)
      const rows = (t: string) => engine.all(`SELECT ${columns} FROM ${ident(t)} ORDER BY k`);
      expect(await rows(view.table)).toEqual(await rows(alone.table));
      for (const a of s.audiences.keys()) {
        const viaView = await selectRows(engine, s, view, a, { kind: 'full' }, `out_view_${i}_${a}`);
        const viaAlone = await selectRows(engine, s, alone, a, { kind: 'full' }, `out_alone_${i}_${a}`);
        expect(viaView).toEqual(viaAlone);
        const out = (t: string) => engine.all(`SELECT * FROM ${ident(t)}`);
        expect(await out(`out_view_${i}_${a}`)).toEqual(await out(`out_alone_${i}_${a}`));
      }
    }
    // The shapes see different problems: aud-1's bad entry only where aud-1 is mapped; where
    // the namespace is read, p-2 (an email without an id) is bad as a whole instead.
    expect(shared.map((l) => [l.badRecords.length, [...l.entryErrors.keys()]])).toEqual([
      [2, ['aud-1']],
      [2, []],
      [3, []],
    ]);
  });
});
