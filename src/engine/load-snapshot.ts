// Loads one snapshot's profiles into a DuckDB table, reading only what the dataflow needs:
// the key, the one identity namespace, the mapped audiences' memberships and the mapped
// attribute paths. Bad records (SPEC §2.2) are found by SQL on the fast path and located
// exactly (file:line) by the line scanner only when there are any.
//
// Table columns: k, ids (VARCHAR[]), s<i>/q<i> (status, lastQualificationTime per audience
// in Shape.audiences order), a<j> (JSON, per Shape.attributes), _file, _row.
import path from 'node:path';
import { BadInputError } from '../errors.js';
import type { Engine } from './session.js';
import type { Shape } from './shape.js';
import { ident, jsonPath, literal, literalList, fieldChain } from './sql.js';
import { MAX_RECORD_BYTES, QUALIFICATION_TIME_PATTERN, VALID_STATUSES, type RecordRules } from './record-rules.js';
import { scanNdjson, type BadRecord } from './scan-lines.js';

export interface PartFile {
  /** Local path DuckDB reads. */
  path: string;
  /** Name used in messages (the key or path the user knows). */
  name: string;
  kind: 'ndjson' | 'parquet';
}

export interface LoadedSnapshot {
  table: string;
  profiles: number;
  badRecords: BadRecord[];
}

export interface LoadOptions {
  table: string;
  maxBadRecords: number;
  scratchDir: string;
  snapshotId: string;
}

export async function loadSnapshot(engine: Engine, shape: Shape, parts: PartFile[], options: LoadOptions): Promise<LoadedSnapshot> {
  const ndjson = parts.filter((p) => p.kind === 'ndjson');
  const parquet = parts.filter((p) => p.kind === 'parquet');
  const parquetColumns = parquet.length ? await describeParquet(engine, parquet) : new Set<string>();
  const create = (json: PartFile[]) => engine.run(createTableSql(shape, options.table, json, parquet, parquetColumns));

  let scanned: BadRecord[] = [];
  let needScan = false;
  try {
    await create(ndjson);
    needScan = ndjson.length > 0 && (await countProblems(engine, options.table)) > 0;
  } catch (error) {
    if (ndjson.length === 0) throw unreadable(error, parquet);
    needScan = true;
  }
  if (needScan) {
    const clean: PartFile[] = [];
    const seen = new Map<string, string>();
    const rules: RecordRules = { keyPath: shape.keyPath, namespace: shape.namespace, audiences: shape.audiences };
    for (const [i, part] of ndjson.entries()) {
      const out = path.join(options.scratchDir, `clean-${options.table}-${i}.ndjson`);
      scanned.push(...(await scanNdjson(part.path, part.name, out, rules, seen)));
      clean.push({ ...part, path: out });
    }
    try {
      await create(clean);
    } catch (error) {
      throw unreadable(error, parts);
    }
  }
  const flagged = await collectSqlProblems(engine, options.table, parts);
  const badRecords = [...scanned, ...flagged];
  if (badRecords.length > options.maxBadRecords) {
    const shown = badRecords.slice(0, 10).map((b) => `  ${b.file}:${b.line}: ${b.reason}`);
    const more = badRecords.length > 10 ? [`  … and ${badRecords.length - 10} more`] : [];
    throw new BadInputError(
      [
        `snapshot ${options.snapshotId} has ${badRecords.length} bad record(s), more than --max-bad-records ${options.maxBadRecords}:`,
        ...shown,
        ...more,
        `Fix the input, or rerun with --max-bad-records ${badRecords.length} to skip and count them. Nothing was written.`,
      ].join('\n'),
    );
  }
  const [row] = await engine.all<{ n: string }>(`SELECT count(*)::VARCHAR AS n FROM ${ident(options.table)}`);
  return { table: options.table, profiles: Number(row?.n ?? 0), badRecords };
}

function unreadable(error: unknown, parts: PartFile[]): BadInputError {
  const message = error instanceof Error ? error.message.split('\n')[0] : String(error);
  return new BadInputError(
    `cannot read snapshot parts (${parts.map((p) => p.name).join(', ')}): ${message}\nCheck that the parts are NDJSON or Parquet with the fields of SPEC §2.2. Nothing was written.`,
  );
}

async function describeParquet(engine: Engine, parts: PartFile[]): Promise<Set<string>> {
  try {
    const rows = await engine.all<{ column_name: string }>(`DESCRIBE SELECT * FROM read_parquet([${literalList(parts.map((p) => p.path))}], union_by_name = true)`);
    return new Set(rows.map((r) => r.column_name));
  } catch (error) {
    throw unreadable(error, parts);
  }
}

const NULL_JSON = (expr: string) => `CASE WHEN json_type(${expr}) = 'NULL' THEN NULL ELSE ${expr} END`;

/** Expressions over a relation whose nested roots are JSON (Parquet, via to_json). */
function jsonModeColumns(shape: Shape, root: (name: string) => string): string[] {
  const [keyRoot, ...keyRest] = shape.keyPath as [string, ...string[]];
  const cols = [
    `json_extract_string(${root(keyRoot)}, ${jsonPath(keyRest)}) AS k`,
    `json_type(${root(keyRoot)}, ${jsonPath(keyRest)}) AS k_type`,
  ];
  if (shape.namespace !== null) {
    cols.push(`json_extract_string(${root('identityMap')}, ${literal(`$."${shape.namespace}"[*].id`)})::VARCHAR[] AS ids`);
  }
  shape.audiences.forEach((a, i) => {
    cols.push(`json_extract_string(${root('segmentMembership')}, ${jsonPath(['ups', a, 'status'])}) AS s${i}`);
    cols.push(`json_extract_string(${root('segmentMembership')}, ${jsonPath(['ups', a, 'lastQualificationTime'])}) AS q${i}`);
  });
  shape.attributes.forEach((p, j) => cols.push(`${NULL_JSON(`json_extract(${root(p[0]!)}, ${jsonPath(p.slice(1))})`)} AS a${j}`));
  return cols;
}

/** Expressions over DuckDB's typed NDJSON read (see ndjsonColumnTypes). */
function typedModeColumns(shape: Shape): string[] {
  const [keyRoot, ...keyRest] = shape.keyPath as [string, ...string[]];
  const cols = [
    `json_extract_string(${ident(keyRoot)}, ${jsonPath(keyRest)}) AS k`,
    `json_type(${ident(keyRoot)}, ${jsonPath(keyRest)}) AS k_type`,
  ];
  if (shape.namespace !== null) cols.push(`[e.id FOR e IN ${fieldChain('identityMap', [shape.namespace])}] AS ids`);
  shape.audiences.forEach((a, i) => {
    cols.push(`${fieldChain('segmentMembership', ['ups', a, 'status'])} AS s${i}`);
    cols.push(`${fieldChain('segmentMembership', ['ups', a, 'lastQualificationTime'])} AS q${i}`);
  });
  shape.attributes.forEach((p, j) => cols.push(`${NULL_JSON(`json_extract(${ident(p[0]!)}, ${jsonPath(p.slice(1))})`)} AS a${j}`));
  return cols;
}

function ndjsonColumnTypes(shape: Shape): string {
  const roots = new Map<string, string>();
  roots.set(shape.keyPath[0]!, 'JSON');
  for (const p of shape.attributes) roots.set(p[0]!, 'JSON');
  if (shape.namespace !== null) roots.set('identityMap', `STRUCT(${ident(shape.namespace)} STRUCT(id VARCHAR)[])`);
  if (shape.audiences.length > 0) {
    const entries = shape.audiences.map((a) => `${ident(a)} STRUCT(status VARCHAR, lastQualificationTime VARCHAR)`);
    roots.set('segmentMembership', `STRUCT(ups STRUCT(${entries.join(', ')}))`);
  }
  return `{${[...roots].map(([name, type]) => `${literal(name)}: ${literal(type)}`).join(', ')}}`;
}

function createTableSql(shape: Shape, table: string, ndjson: PartFile[], parquet: PartFile[], parquetColumns: Set<string>): string {
  const selects: string[] = [];
  if (ndjson.length > 0) {
    selects.push(
      `SELECT ${typedModeColumns(shape).join(', ')}, filename AS _file, NULL::BIGINT AS _row
       FROM read_json([${literalList(ndjson.map((p) => p.path))}], format = 'newline_delimited', filename = true,
                      maximum_object_size = ${MAX_RECORD_BYTES}, columns = ${ndjsonColumnTypes(shape)})`,
    );
  }
  if (parquet.length > 0) {
    const root = (name: string) => (parquetColumns.has(name) ? `to_json(${ident(name)})` : 'NULL::JSON');
    selects.push(
      `SELECT ${jsonModeColumns(shape, root).join(', ')}, filename AS _file, file_row_number + 1 AS _row
       FROM read_parquet([${literalList(parquet.map((p) => p.path))}], union_by_name = true, filename = true, file_row_number = true)`,
    );
  }
  if (selects.length === 0) {
    // A snapshot without parts is valid and empty: same columns, no rows.
    selects.push(`SELECT ${jsonModeColumns(shape, () => 'NULL::JSON').join(', ')}, NULL::VARCHAR AS _file, NULL::BIGINT AS _row WHERE FALSE`);
  }
  const checks = shape.audiences.flatMap((a, i) => [
    `WHEN s${i} IS NOT NULL AND s${i} NOT IN (${literalList(VALID_STATUSES)}) THEN ${literal(`segmentMembership.ups.${a}.status is `)} || to_json(s${i})::VARCHAR || '; expected realized, existing or exited'`,
    `WHEN s${i} IS NULL AND q${i} IS NOT NULL THEN ${literal(`segmentMembership.ups.${a}.status is null; expected realized, existing or exited`)}`,
    `WHEN q${i} IS NOT NULL AND NOT regexp_full_match(q${i}, ${literal(QUALIFICATION_TIME_PATTERN)}) THEN ${literal(`segmentMembership.ups.${a}.lastQualificationTime `)} || to_json(q${i})::VARCHAR || ' is not an RFC 3339 time'`,
  ]);
  const idsClean = shape.namespace !== null ? `coalesce(list_sort(list_distinct(list_filter(ids, x -> x IS NOT NULL AND x <> ''))), []::VARCHAR[]) AS ids,` : '';
  return `CREATE OR REPLACE TEMP TABLE ${ident(table)} AS
    WITH src AS (${selects.join('\nUNION ALL BY NAME\n')})
    SELECT * REPLACE (${idsClean.replace(/,$/, '') || 'k AS k'}),
      CASE
        WHEN k IS NULL OR k = '' OR k_type NOT IN ('VARCHAR', 'BIGINT', 'UBIGINT', 'DOUBLE')
          THEN ${literal(`no profile key at "${shape.keyPath.join('.')}" (a non-empty string or number)`)}
        ${checks.join('\n        ')}
      END AS bad
    FROM src`;
}

async function countProblems(engine: Engine, table: string): Promise<number> {
  const [row] = await engine.all<{ n: string }>(
    `SELECT ((SELECT count(*) FROM ${ident(table)} WHERE bad IS NOT NULL) + (SELECT count(*) - count(DISTINCT k) FROM ${ident(table)}))::VARCHAR AS n`,
  );
  return Number(row?.n ?? 0);
}

/** Marks duplicates (second and later occurrences), reports and removes flagged rows. */
async function collectSqlProblems(engine: Engine, table: string, parts: PartFile[]): Promise<BadRecord[]> {
  const t = ident(table);
  await engine.run(
    `UPDATE ${t} SET bad = 'duplicate profile key "' || k || '"'
     FROM (SELECT rowid AS rid, row_number() OVER (PARTITION BY k ORDER BY _file, _row, rowid) AS n FROM ${t} WHERE bad IS NULL) d
     WHERE ${t}.rowid = d.rid AND d.n > 1`,
  );
  const rows = await engine.all<{ file: string; row: string | null; bad: string }>(
    `SELECT _file AS file, _row::VARCHAR AS row, bad FROM ${t} WHERE bad IS NOT NULL ORDER BY _file, _row`,
  );
  if (rows.length === 0) return [];
  await engine.run(`DELETE FROM ${t} WHERE bad IS NOT NULL`);
  const nameOf = new Map(parts.map((p) => [p.path, p.name]));
  return rows.map((r) => ({ file: nameOf.get(r.file) ?? r.file, line: Number(r.row ?? 0), reason: r.bad }));
}
