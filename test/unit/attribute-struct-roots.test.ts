// NDJSON attribute roots read as structs on the first read of both loaders (engine/attribute-roots.ts:
// the file runs' and the HTTP destination's): which roots a struct can describe, and that the snapshot table holds exactly what
// json_extract gives for every value form, also when a record does not fit the structs
// (a root that is not an object, a repeated key), which the load then reads with JSON roots.
import { describe, expect, it } from 'vitest';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Engine } from '../../src/engine/session.js';
import { useScratchEngine } from '../helpers/engine.js';
import { attributeRootColumns } from '../../src/engine/attribute-roots.js';
import { loadSnapshot } from '../../src/engine/load-snapshot.js';
import { loadHttpSnapshot } from '../../src/engine/load-http-snapshot.js';
import type { Shape } from '../../src/engine/shape.js';

let dir: string;
let engine: Engine;
useScratchEngine('audex-struct-roots-', (opened) => {
  ({ dir, engine } = opened);
});

describe('which roots are read as structs', () => {
  const reserved = new Set(['profileId', 'identityMap', 'segmentMembership']);
  const typesOf = (paths: string[][]) =>
    Object.fromEntries(attributeRootColumns(paths, { structsExcept: reserved }).types);
  it.each([
    {
      paths: [
        ['person', 'name', 'firstName'],
        ['person', 'name', 'lastName'],
        ['loyalty', 'tier'],
      ],
      types: {
        person: 'STRUCT("name" STRUCT("firstName" JSON, "lastName" JSON))',
        loyalty: 'STRUCT("tier" JSON)',
      },
    },
    { paths: [['x', `we"ird.na'me`]], types: { x: `STRUCT("we""ird.na'me" JSON)` } },
    // Not describable: the root itself mapped, a mapped value with mapped fields below it,
    // names differing only in case, an empty name, a field the loader types itself.
    { paths: [['bio']], types: { bio: 'JSON' } },
    {
      paths: [
        ['person', 'name'],
        ['person', 'name', 'first'],
      ],
      types: { person: 'JSON' },
    },
    {
      paths: [
        ['person', 'name', 'first'],
        ['person', 'name'],
      ],
      types: { person: 'JSON' },
    },
    {
      paths: [
        ['person', 'Name'],
        ['person', 'name'],
      ],
      types: { person: 'JSON' },
    },
    { paths: [['person', '']], types: { person: 'JSON' } },
    { paths: [['segmentMembership', 'status']], types: { segmentMembership: 'JSON' } },
  ])('$paths.0 …', ({ paths, types }) => {
    expect(typesOf(paths)).toEqual(types);
  });
  it('reads every root as JSON without structsExcept', () => {
    expect(Object.fromEntries(attributeRootColumns([['person', 'name']]).types)).toEqual({ person: 'JSON' });
  });
});

const shape: Shape = {
  keyPath: ['profileId'],
  namespace: null,
  attributes: [
    ['person', 'name', 'firstName'],
    ['person', 'name', 'lastName'],
    ['loyalty', 'tier'],
    ['loyalty', 'points'],
    ['odd', `we"ird.na'me`],
  ],
  columns: [],
  required: [],
  dedup: null,
  statusMapped: false,
  audiences: ['aud-1'],
};

// Every value form an attribute can hold, as text (the engine's JSON writer decides how it prints).
const lines = [
  `{"profileId":"p01","person":{"name":{"firstName":"Ann","lastName":1.50}},"loyalty":{"tier":"gold","points":1e3}}`,
  `{"profileId":"p02","person":{"name":{"firstName":"caf\\u00e9 \\/ ☕","lastName":{"b":2, "a":[1, 2.0, -0]}}},"loyalty":{"tier":null,"points":12345678901234567890}}`,
  `{"profileId":"p03","person":null,"loyalty":{}}`,
  `{"profileId":"p04","loyalty":{"tier":true,"points":-0.0},"odd":{"we\\"ird.na'me":"q"}}`,
  `{"profileId":"p05","person":{"name":{"FirstName":"Case"}},"loyalty":{"tier":"x","Tier":"y"}}`,
  `{"profileId":"p06","person":{"name":{"firstName":"  spaced  ","lastName":[ ]},"extra":{"deep":[1]}},"loyalty":{"points":0.1e-5}}`,
];
const misfits = [
  `{"profileId":"p07","person":"n/a","loyalty":{"tier":"silver"}}`,
  `{"profileId":"p08","person":{"name":[1,2]},"loyalty":{"tier":"a","tier":"b"}}`,
];

/** What json_extract gives for each attribute, straight from the file (no audex SQL). */
async function expected(file: string) {
  return engine.all(
    `SELECT json_extract_string(profileId, '$') AS k,
       nullif(json_extract(person, '$."name"."firstName"'), 'null')::VARCHAR AS a0,
       nullif(json_extract(person, '$."name"."lastName"'), 'null')::VARCHAR AS a1,
       nullif(json_extract(loyalty, '$."tier"'), 'null')::VARCHAR AS a2,
       nullif(json_extract(loyalty, '$."points"'), 'null')::VARCHAR AS a3,
       nullif(json_extract(odd, '$."we\\"ird.na''me"'), 'null')::VARCHAR AS a4
     FROM read_json('${file}', format = 'newline_delimited',
       columns = {profileId: 'JSON', person: 'JSON', loyalty: 'JSON', odd: 'JSON'})
     ORDER BY k`,
  );
}

/**
 * The snapshot table's attributes, and the reads the load tried (the person root's declared
 * type, in order), from the file runs' loader or the HTTP destination's.
 */
async function loaded(file: string, table: string, loader: 'files' | 'http' = 'files') {
  const reads: string[] = [];
  const watched: Engine = {
    ...engine,
    run: (sql) => {
      if (sql.includes('read_json(')) reads.push(/'person': '([^']*)'/.exec(sql)?.[1] ?? '?');
      return engine.run(sql);
    },
  };
  const parts = [{ path: file, name: path.basename(file), kind: 'ndjson' as const }];
  const snapshot =
    loader === 'files'
      ? await loadSnapshot(watched, shape, parts, { table, scratchDir: dir })
      : await loadHttpSnapshot(watched, shape, parts, { table, scratchDir: dir });
  expect(snapshot.badRecords).toEqual([]);
  const rows = await engine.all(
    `SELECT k, a0::VARCHAR AS a0, a1::VARCHAR AS a1, a2::VARCHAR AS a2, a3::VARCHAR AS a3, a4::VARCHAR AS a4 FROM "${table}" ORDER BY k`,
  );
  return { rows, reads };
}

const STRUCT = 'STRUCT("name" STRUCT("firstName" JSON, "lastName" JSON))';

describe('values read through struct roots', () => {
  it('are what json_extract gives, for every value form', async () => {
    const file = path.join(dir, 'fits.ndjson');
    writeFileSync(file, `${lines.join('\n')}\n`);
    const { rows, reads } = await loaded(file, 'fits');
    expect(reads).toEqual([STRUCT]);
    expect(rows).toEqual(await expected(file));
    expect(rows[0]).toEqual({ k: 'p01', a0: '"Ann"', a1: '1.5', a2: '"gold"', a3: '1000.0', a4: null });
    expect(rows[4]).toMatchObject({ a0: null, a2: '"x"' });
  });

  it('are the same when a record does not fit the structs (read with JSON roots instead)', async () => {
    const file = path.join(dir, 'misfits.ndjson');
    writeFileSync(file, `${[...lines, ...misfits].join('\n')}\n`);
    const { rows, reads } = await loaded(file, 'misfits');
    // The struct read fails on p07; the same fast read with JSON roots decides (no scanner).
    expect(reads).toEqual([STRUCT, 'JSON']);
    expect(rows).toEqual(await expected(file));
    // A repeated key in an attribute object is read as the reader reads it: the first one.
    expect(rows.find((r) => r['k'] === 'p08')).toMatchObject({ a0: null, a2: '"a"' });
  });
});

describe("the HTTP destination's loader", () => {
  it('reads the same values through struct roots, and with JSON roots when a record does not fit', async () => {
    const fits = path.join(dir, 'http-fits.ndjson');
    writeFileSync(fits, `${lines.join('\n')}\n`);
    const first = await loaded(fits, 'http_fits', 'http');
    expect(first.reads).toEqual([STRUCT]);
    expect(first.rows).toEqual(await expected(fits));
    const misfit = path.join(dir, 'http-misfits.ndjson');
    writeFileSync(misfit, `${[...lines, ...misfits].join('\n')}\n`);
    const second = await loaded(misfit, 'http_misfits', 'http');
    expect(second.reads).toEqual([STRUCT, 'JSON']);
    expect(second.rows).toEqual(await expected(misfit));
  });
});
