// The engine's SQL builders against an in-memory DuckDB, with audience ids, attribute
// paths, targets and table names that hold quotes: every value from a config or a
// snapshot reaches SQL through ident()/literal()/jsonPath(), so removing their escaping
// breaks these (a syntax error, or a wrong value read back).
import { describe, expect, it } from 'vitest';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Engine } from '../../src/engine/session.js';
import { useScratchEngine } from '../helpers/engine.js';
import { fieldChain, ident, jsonPath, literal } from '../../src/engine/sql.js';
import { loadSnapshot } from '../../src/engine/load-snapshot.js';
import { selectRows } from '../../src/engine/select-rows.js';
import { RunRows } from '../../src/engine/run-rows.js';
import { csvCellSql, csvHeaderSql, textLinesCopySql } from '../../src/engine/render-sql.js';
import type { Shape } from '../../src/engine/shape.js';

const NAMES = [`aud'"x`, `we"ird.na'me`, `it''s`, `back\\slash`, `semi;colon -- not a comment`, `plain`];

let dir: string;
let engine: Engine;
useScratchEngine('audex-engine-sql-', (opened) => {
  ({ dir, engine } = opened);
});

describe('quoting helpers (sql.ts)', () => {
  it.each(NAMES)('literal, ident, jsonPath and fieldChain carry %s through unchanged', async (name) => {
    const [row] = await engine.all<Record<string, string>>(
      `SELECT ${literal(name)} AS lit, ${literal(name)} AS ${ident(name)},
         json_extract_string(${literal(JSON.stringify({ [name]: { [name]: 'deep' } }))}, ${jsonPath([name, name])}) AS path,
         ${fieldChain(`{${literal(name)}: {${literal(name)}: 'field'}}`, [name, name])} AS chain`,
    );
    expect(row).toEqual({ lit: name, [name]: name, path: 'deep', chain: 'field' });
  });
});

describe('CSV cells (render-sql.ts)', () => {
  const dialect = {
    delimiter: ',',
    quote: '"',
    escape: '\\',
    header: true,
    quoteAll: false,
    nullValue: '',
    emptyValue: '',
  } as const;
  it.each([
    ['plain', 'plain'],
    [`aud'"x`, `"aud'\\"x"`],
    ['back\\slash', '"back\\\\slash"'],
    ['a,b', '"a,b"'],
    ['line\nbreak', '"line\nbreak"'],
    [`we"ird.na'me`, `"we\\"ird.na'me"`],
  ])('%j is written as %j', async (value, expected) => {
    const [row] = await engine.all<{ cell: string }>(`SELECT ${csvCellSql(literal(value), dialect as never)} AS cell`);
    expect(row?.cell).toBe(expected);
  });

  it.each([
    [',', `email,"a,b","we\\"ird.na'me",plain,"line\nbreak",x\ty`],
    ['\t', `email\ta,b\t"we\\"ird.na'me"\tplain\t"line\nbreak"\t"x\ty"`],
  ])('the header line with delimiter %j: every name a cell, in order', async (delimiter, expected) => {
    const targets = ['email', 'a,b', `we"ird.na'me`, 'plain', 'line\nbreak', 'x\ty'];
    const shape = { columns: targets.map((target) => ({ target })) } as unknown as Shape;
    const [row] = await engine.all<{ line: string }>(csvHeaderSql(shape, { ...dialect, delimiter } as never));
    expect(row?.line).toBe(expected);
  });
});

describe('load, select and COPY a snapshot whose names hold quotes', () => {
  const audience = `aud'"x`;
  const attribute = ['we"ird', "na'me"];
  const shape: Shape = {
    keyPath: ['profileId'],
    namespace: null,
    attributes: [attribute],
    columns: [
      {
        target: `t'"x`,
        source: attribute.join('.'),
        ref: { kind: 'attribute', path: attribute },
        type: 'string',
        sha256: false,
        attribute: 0,
      },
    ],
    required: [],
    dedup: null,
    statusMapped: false,
    audiences: [audience],
  };
  const records = [
    {
      profileId: 'p-1',
      [attribute[0]!]: { [attribute[1]!]: `v'1"` },
      segmentMembership: { ups: { [audience]: { status: 'realized', lastQualificationTime: '2026-11-19T10:00:00Z' } } },
    },
    {
      profileId: 'p-2',
      [attribute[0]!]: { [attribute[1]!]: 'v2' },
      segmentMembership: { ups: { [audience]: { status: 'existing', lastQualificationTime: '2026-11-19T10:00:00Z' } } },
    },
    { profileId: 'p-3', segmentMembership: { ups: { [audience]: { status: `bo'"gus` } } } },
    {
      profileId: 'p-4',
      [attribute[0]!]: { [attribute[1]!]: 'v4' },
      segmentMembership: { ups: { [audience]: { status: 'exited' } } },
    },
  ];

  it('reads the quoted paths, names the bad entry with its audience, and writes the members in key order', async () => {
    const file = path.join(dir, `part'"0.ndjson`);
    writeFileSync(file, records.map((r) => JSON.stringify(r)).join('\n') + '\n');
    const table = `snap'"t`;
    const loaded = await loadSnapshot(
      engine,
      shape,
      [{ path: file, name: `profiles/part'"0.ndjson`, kind: 'ndjson' }],
      { table, scratchDir: dir },
    );
    expect(loaded.profiles).toBe(4);
    expect(loaded.badRecords).toEqual([]);
    expect(loaded.entryErrors.get(audience)).toEqual([
      {
        file: `profiles/part'"0.ndjson`,
        line: 3,
        reason: `segmentMembership.ups.${audience}.status is "bo'\\"gus"; expected realized, existing or exited`,
      },
    ]);

    const output = `out'"x`;
    const counts = await selectRows(engine, shape, loaded, 0, { kind: 'full' }, output);
    expect(counts).toMatchObject({
      profilesReceived: 2,
      rowsWritten: 2,
      excludedMandatory: 0,
      excludedDuplicate: 0,
      exitsWritten: 0,
    });

    const csv = {
      delimiter: ';',
      quote: '"',
      escape: '\\',
      header: false,
      quoteAll: false,
      nullValue: '',
      emptyValue: '',
    };
    const target = path.join(dir, `lines'"x.csv`);
    // A full selection's rows are a view, read whole; a part of them comes from a numbered copy.
    const rows = new RunRows(engine, shape, output, counts.rowsWritten, true);
    const all = await RunRows.rangeOf(rows, 1, 2);
    expect(all.range).toBeNull();
    await engine.run(textLinesCopySql(shape, all.table, csv as never, all.range, target));
    expect(readFileSync(target, 'utf8')).toBe(`"v'1\\""\nv2\n`);
    const second = await RunRows.rangeOf(rows, 2, 2);
    expect(second).toEqual({ table: `${output}_numbered`, range: { first: 2, last: 2 } });
    await engine.run(textLinesCopySql(shape, second.table, null, second.range, target));
    expect(readFileSync(target, 'utf8')).toBe(`{"t'\\"x":"v2"}\n`);
  });
});
