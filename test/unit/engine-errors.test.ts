// Errors of audex's own SQL are internal errors (exit 1, "please report"), never bad input:
// the classifier against real engine errors, and a load whose query is deliberately broken.
import { describe, expect, it } from 'vitest';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Engine } from '../../src/engine/session.js';
import { useScratchEngine } from '../helpers/engine.js';
import { isAudexSqlError } from '../../src/engine/engine-errors.js';
import { loadSnapshot } from '../../src/engine/load-snapshot.js';
import type { Shape } from '../../src/engine/shape.js';
import { BadInputError, InternalError } from '../../src/errors.js';

let dir: string;
let engine: Engine;
useScratchEngine('audex-engine-errors-', (opened) => {
  ({ dir, engine } = opened);
  writeFileSync(path.join(dir, 'broken.ndjson'), '{"a":1}\n{"a":\n');
  writeFileSync(path.join(dir, 'text.ndjson'), '{"a":"x"}\n');
  writeFileSync(path.join(dir, 'not.parquet'), 'not parquet at all');
});

const failureOf = (sql: string) =>
  engine.run(sql.replaceAll('DIR', dir)).then(
    () => null,
    (e: unknown) => e,
  );

describe('isAudexSqlError', () => {
  it.each([
    ['a column that does not exist (Binder Error)', `SELECT nope FROM (SELECT 1 AS a)`],
    ['a syntax error (Parser Error)', `SELEC 1`],
    ['a table that does not exist (Catalog Error)', `SELECT * FROM no_such_table`],
    ['a function that does not exist (Catalog Error)', `SELECT no_such_function(1)`],
  ])('%s is audex’s', async (_what, sql) => {
    expect(isAudexSqlError(await failureOf(sql))).toBe(true);
  });

  it.each([
    [
      'malformed NDJSON',
      `SELECT * FROM read_json(['DIR/broken.ndjson'], format = 'newline_delimited', columns = {'a': 'JSON'})`,
    ],
    [
      'a value the typed read cannot take',
      `SELECT * FROM read_json(['DIR/text.ndjson'], format = 'newline_delimited', columns = {'a': 'BIGINT'})`,
    ],
    ['a part that is not Parquet', `SELECT * FROM read_parquet(['DIR/not.parquet'])`],
    ['a part that is gone', `SELECT * FROM read_parquet(['DIR/gone.parquet'])`],
    ['a conversion', `SELECT 'x'::INTEGER`],
  ])('%s is the input’s', async (_what, sql) => {
    const error = await failureOf(sql);
    expect(error).toBeInstanceOf(Error);
    expect(isAudexSqlError(error)).toBe(false);
  });

  it('an error thrown by audex’s own code (no engine error kind) is audex’s', () => {
    expect(isAudexSqlError(new TypeError("Cannot read properties of undefined (reading 'path')"))).toBe(true);
  });
});

describe('loadSnapshot', () => {
  const shape: Shape = {
    keyPath: ['profileId'],
    namespace: null,
    attributes: [],
    columns: [],
    required: [],
    dedup: null,
    statusMapped: false,
    audiences: ['aud-1'],
  };
  const part = () => {
    const file = path.join(dir, 'part.ndjson');
    writeFileSync(
      file,
      `${JSON.stringify({ profileId: 'p1', segmentMembership: { ups: { 'aud-1': { status: 'realized' } } } })}\n`,
    );
    return [{ path: file, name: 'profiles/part.ndjson', kind: 'ndjson' as const }];
  };
  /** The real engine, with the load query broken the way a bug in its builder would break it. */
  const breaking = (from: string, to: string): Engine => ({
    ...engine,
    run: (sql) => engine.run(sql.replace(from, to)),
  });

  it.each([
    [
      'a column the query does not have',
      'AS entry_errors\n    FROM checked',
      'AS entry_errors\n    FROM checked WHERE no_such_column',
    ],
    ['a syntax error', 'WITH src AS', 'WITH src AS AS'],
  ])('whose query has %s fails as an internal error, not as unreadable parts', async (_what, from, to) => {
    const error = await loadSnapshot(breaking(from, to), shape, part(), { table: 'snap_broken', scratchDir: dir }).then(
      () => null,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(InternalError);
    expect((error as InternalError).exitCode).toBe(1);
    expect((error as Error).message).toMatch(/load snapshot parts profiles\/part\.ndjson: (Binder|Parser) Error/);
    expect((error as Error).message).toContain('This is a bug in audex, please report it');
    expect((error as Error).message).not.toContain('Check that the parts are NDJSON or Parquet');
  });

  it('with a part that is not Parquet fails as bad input (exit 4)', async () => {
    const error = await loadSnapshot(
      engine,
      shape,
      [{ path: path.join(dir, 'not.parquet'), name: 'profiles/not.parquet', kind: 'parquet' }],
      { table: 'snap_bad', scratchDir: dir },
    ).then(
      () => null,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(BadInputError);
    expect((error as Error).message).toContain('cannot read snapshot parts (profiles/not.parquet)');
  });
});
