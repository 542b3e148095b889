// Loads one snapshot's profiles into a DuckDB table, reading only what the dataflow needs:
// the key, the one identity namespace, the mapped audiences' memberships and the mapped
// attribute paths. Bad records (SPEC §2.2) are found by SQL on the fast path and located
// exactly (file:line) by the line scanner only when there are any.
//
// Table columns: k, ids (VARCHAR[]), m<i>/s<i>/q<i>/e<i> (entry present, status,
// lastQualificationTime, bad-entry reason per audience in Shape.audiences order), a<j>
// (JSON, per Shape.attributes), _file and _row (where the record came from).
//
// A record bad as a whole is removed and reported. A bad membership entry (e<i>) concerns
// only its audience: that run neither exports nor exits the profile, and counts it.
import path from 'node:path';
import { BadInputError, messageOf } from '../errors.js';
import type { Engine } from './session.js';
import type { Shape } from './shape.js';
import { ident, jsonPath, literal, literalList, fieldChain } from './sql.js';
import { MAX_RECORD_BYTES, QUALIFICATION_TIME_PATTERN, SCALAR_JSON_TYPES, VALID_STATUSES, type RecordRules } from './record-rules.js';
import { ENTRY_ERRORS_FIELD, LINE_FIELD, scanNdjson, type BadRecord } from './scan-lines.js';
import { jsonRootAccess, parquetAccess, type PathAccess } from './parquet-access.js';
import { describeTypeConflict } from './describe-type-conflict.js';
import type { PartFile } from '../snapshots/part-file.js';

/** Re-exported for the engine's callers; the type belongs to the snapshot side. */
export type { PartFile } from '../snapshots/part-file.js';

export interface LoadedSnapshot {
  table: string;
  profiles: number;
  /** Records bad as a whole (skipped for every audience). */
  badRecords: BadRecord[];
  /** Bad membership entries, per audience id. */
  entryErrors: Map<string, BadRecord[]>;
}

export interface LoadOptions {
  table: string;
  scratchDir: string;
}

/** The bad records a run of `audienceId` skips: bad records plus its bad entries. */
export function badRecordsFor(loaded: LoadedSnapshot, audienceId: string): BadRecord[] {
  return [...loaded.badRecords, ...(loaded.entryErrors.get(audienceId) ?? [])];
}

/** The message when a run would skip more bad records than allowed (exit 4, nothing written). */
export function describeBadInput(snapshotId: string, audienceId: string, records: BadRecord[], max: number): string {
  const shown = records.slice(0, 10).map((b) => `  ${b.file}:${b.line}: ${b.reason}`);
  const more = records.length > 10 ? [`  … and ${records.length - 10} more`] : [];
  return [
    `snapshot ${snapshotId} has ${records.length} bad record(s), more than --max-bad-records ${max} (audience ${audienceId}):`,
    ...shown,
    ...more,
    `Fix the input, or rerun with --max-bad-records ${records.length} to skip and count them.`,
  ].join('\n');
}

export async function loadSnapshot(engine: Engine, shape: Shape, parts: PartFile[], options: LoadOptions): Promise<LoadedSnapshot> {
  const ndjson = parts.filter((p) => p.kind === 'ndjson');
  const parquet = parts.filter((p) => p.kind === 'parquet');
  const parquetRead = parquet.length ? await parquetReader(engine, shape, parquet, options.table) : null;
  const create = (json: PartFile[], objectSize: number) => engine.run(createTableSql(shape, options.table, json, parquet, parquetRead, objectSize));

  const scanned: BadRecord[] = [];
  let readable = parts;
  let needScan = false;
  try {
    await create(ndjson, FAST_PATH_OBJECT_SIZE);
    needScan = ndjson.length > 0 && (await countNdjsonProblems(engine, shape, options.table)) > 0;
  } catch (error) {
    if (ndjson.length === 0) throw await unreadableParquet(engine, error, parquet, `${options.table}_parquet_schema`);
    needScan = true;
  }
  if (needScan) {
    const clean: PartFile[] = [];
    const seen = new Map<string, string>();
    const rules: RecordRules = { keyPath: shape.keyPath, namespace: shape.namespace, audiences: shape.audiences, readRoots: readRoots(shape) };
    for (const [i, part] of ndjson.entries()) {
      const out = path.join(options.scratchDir, `clean-${options.table}-${i}.ndjson`);
      scanned.push(...(await scanNdjson(part.path, part.name, out, rules, seen)));
      clean.push({ ...part, path: out });
    }
    readable = parts.map((p) => clean.find((c) => c.name === p.name) ?? p);
    try {
      await create(clean, MAX_RECORD_BYTES);
    } catch (error) {
      // Name the user's parts, not the scanner's copies (whose lines are the records kept).
      const named = clean.reduce((text, c) => text.replaceAll(c.path, `${c.name} (its records kept by the scanner)`), messageOf(error));
      throw unreadable(new Error(named), parts);
    }
  }
  const flagged = await collectSqlProblems(engine, shape, options.table, readable);
  const [row] = await engine.all<{ n: string }>(`SELECT count(*)::VARCHAR AS n FROM ${ident(options.table)}`);
  return { table: options.table, profiles: Number(row?.n ?? 0), badRecords: [...scanned, ...flagged.bad], entryErrors: flagged.entries };
}

function unreadable(error: unknown, parts: PartFile[]): BadInputError {
  const message = error instanceof Error ? error.message.split('\n')[0] : String(error);
  return new BadInputError(
    `cannot read snapshot parts (${parts.map((p) => p.name).join(', ')}): ${message}\nCheck that the parts are NDJSON or Parquet with the fields of SPEC §2.2. Nothing was written.`,
  );
}

/** Parts that disagree on a field's type say so in plain words; other failures as unreadable(). */
async function unreadableParquet(engine: Engine, error: unknown, parts: PartFile[], probe: string): Promise<BadInputError> {
  const conflict = await describeTypeConflict(engine, parts, probe).catch(() => null);
  await engine.run(`DROP TABLE IF EXISTS ${ident(probe)}`);
  return conflict ? new BadInputError(`cannot read snapshot parts: ${conflict}. Nothing was written.`) : unreadable(error, parts);
}

/** Typed access to the paths the dataflow reads, resolved against the parts' unified schema. */
async function parquetReader(engine: Engine, shape: Shape, parts: PartFile[], table: string): Promise<PathAccess> {
  const probe = `${table}_parquet_schema`;
  try {
    await engine.run(`CREATE OR REPLACE TEMP TABLE ${ident(probe)} AS SELECT * FROM read_parquet([${literalList(parts.map((p) => p.path))}], union_by_name = true) LIMIT 0`);
    const rows = await engine.all<{ column_name: string }>(`DESCRIBE ${ident(probe)}`);
    return await parquetAccess(engine, probe, new Set(rows.map((r) => r.column_name)), readPaths(shape));
  } catch (error) {
    throw await unreadableParquet(engine, error, parts, probe);
  } finally {
    await engine.run(`DROP TABLE IF EXISTS ${ident(probe)}`);
  }
}

const NULL_JSON = (expr: string) => `CASE WHEN json_type(${expr}) = 'NULL' THEN NULL ELSE ${expr} END`;

/**
 * The raw columns both readers produce: k, k_type, idj (ids as JSON[]), and per audience
 * m<i> (entry present), s<i>, q<i>; per attribute a<j>, read through `access`: typed
 * Parquet access (parquet-access.ts), or JSON roots for empty snapshots.
 */
function jsonModeColumns(shape: Shape, access: PathAccess): string[] {
  const cols = [`${access.text(shape.keyPath)} AS k`, `json_type(${access.json(shape.keyPath)}) AS k_type`];
  if (shape.namespace !== null) {
    const entries = `json_extract(${access.json(['identityMap', shape.namespace])}, '$[*]')::JSON[]`;
    cols.push(`[json_extract(e, '$.id') FOR e IN ${entries}] AS idj`);
    cols.push(`len(list_filter(${entries}, lambda e: json_type(e) <> 'NULL' AND coalesce(json_type(e, '$.id'), 'NULL') = 'NULL')) > 0 AS id_missing`);
  }
  shape.audiences.forEach((a, i) => {
    const entry = membershipPaths(a);
    cols.push(`coalesce(json_type(${access.json(entry.entry)}) <> 'NULL', FALSE) AS m${i}`);
    cols.push(`${access.text(entry.status)} AS s${i}`);
    cols.push(`${access.text(entry.qtime)} AS q${i}`);
  });
  shape.attributes.forEach((p, j) => cols.push(`${NULL_JSON(access.json(p))} AS a${j}`));
  return cols;
}

function membershipPaths(audience: string): { entry: string[]; status: string[]; qtime: string[] } {
  const entry = ['segmentMembership', 'ups', audience];
  return { entry, status: [...entry, 'status'], qtime: [...entry, 'lastQualificationTime'] };
}

/** Every path jsonModeColumns reads. */
function readPaths(shape: Shape): string[][] {
  const paths = [[...shape.keyPath], ...shape.attributes.map((p) => [...p])];
  if (shape.namespace !== null) paths.push(['identityMap', shape.namespace]);
  for (const a of shape.audiences) paths.push(...Object.values(membershipPaths(a)));
  return paths;
}

/** The same columns over DuckDB's typed NDJSON read (see ndjsonColumnTypes): the fast path. */
function typedModeColumns(shape: Shape): string[] {
  const [keyRoot, ...keyRest] = shape.keyPath as [string, ...string[]];
  const cols = [
    `json_extract_string(${ident(keyRoot)}, ${jsonPath(keyRest)}) AS k`,
    `json_type(${ident(keyRoot)}, ${jsonPath(keyRest)}) AS k_type`,
  ];
  if (shape.namespace !== null) {
    const entries = fieldChain('identityMap', [shape.namespace]);
    cols.push(`[e.id FOR e IN ${entries}] AS idj`);
    cols.push(`len(list_filter(${entries}, lambda e: e IS NOT NULL AND coalesce(json_type(e.id), 'NULL') = 'NULL')) > 0 AS id_missing`);
  }
  shape.audiences.forEach((a, i) => {
    cols.push(`${fieldChain('segmentMembership', ['ups', a])} IS NOT NULL AS m${i}`);
    cols.push(`${fieldChain('segmentMembership', ['ups', a, 'status'])} AS s${i}`);
    cols.push(`${fieldChain('segmentMembership', ['ups', a, 'lastQualificationTime'])} AS q${i}`);
  });
  shape.attributes.forEach((p, j) => cols.push(`${NULL_JSON(`json_extract(${ident(p[0]!)}, ${jsonPath(p.slice(1))})`)} AS a${j}`));
  return cols;
}

/** The top-level fields the typed NDJSON read declares (besides the scanner's own). */
function readRoots(shape: Shape): string[] {
  return [shape.keyPath[0]!, ...shape.attributes.map((p) => p[0]!), ...(shape.namespace !== null ? ['identityMap'] : []), 'segmentMembership'];
}

function ndjsonColumnTypes(shape: Shape): string {
  const roots = new Map<string, string>();
  roots.set(shape.keyPath[0]!, 'JSON');
  for (const p of shape.attributes) roots.set(p[0]!, 'JSON');
  if (shape.namespace !== null) roots.set('identityMap', `STRUCT(${ident(shape.namespace)} STRUCT(id JSON)[])`);
  const entries = shape.audiences.map((a) => `${ident(a)} STRUCT(status VARCHAR, lastQualificationTime VARCHAR)`);
  roots.set('segmentMembership', `STRUCT(ups STRUCT(${entries.join(', ')}))`);
  roots.set(LINE_FIELD, 'BIGINT');
  roots.set(ENTRY_ERRORS_FIELD, 'JSON');
  return `{${[...roots].map(([name, type]) => `${literal(name)}: ${literal(type)}`).join(', ')}}`;
}

/** The whole-record rules of record-rules.ts, as SQL over the raw columns. */
function badRecordSql(shape: Shape): string {
  const checks = [
    `WHEN k IS NULL OR k = '' OR k_type NOT IN ('VARCHAR', 'BIGINT', 'UBIGINT', 'DOUBLE')
       THEN ${literal(`no profile key at "${shape.keyPath.join('.')}" (a non-empty string or number)`)}`,
  ];
  if (shape.namespace !== null) {
    checks.push(
      `WHEN id_missing OR len(list_filter(idj, x -> x IS NOT NULL AND json_type(x) NOT IN (${literalList([...SCALAR_JSON_TYPES, 'NULL'])}))) > 0
         THEN ${literal(`identityMap.${shape.namespace} holds an entry without a scalar "id"`)}`,
    );
  }
  return `CASE ${checks.join('\n      ')} END`;
}

/** The membership-entry rules for audience i; the scanner's stamped reason comes first. */
function entryErrorSql(audience: string, i: number): string {
  const where = `segmentMembership.ups.${audience}`;
  return `coalesce(json_extract_string(_entry_errors, ${jsonPath([audience])}), CASE
      WHEN m${i} AND (s${i} IS NULL OR s${i} NOT IN (${literalList(VALID_STATUSES)}))
        THEN ${literal(`${where}.status is `)} || coalesce(to_json(s${i})::VARCHAR, 'null') || '; expected realized, existing or exited'
      WHEN q${i} IS NOT NULL AND NOT (regexp_full_match(q${i}, ${literal(QUALIFICATION_TIME_PATTERN)}) AND TRY_CAST(substr(q${i}, 1, 10) AS DATE) IS NOT NULL)
        THEN ${literal(`${where}.lastQualificationTime `)} || to_json(q${i})::VARCHAR || ' is not an RFC 3339 time'
    END)`;
}

/**
 * DuckDB's read_json accepts records up to about twice its maximum_object_size (its read
 * buffer). The fast path sets half the limit, so every record over MAX_RECORD_BYTES fails
 * the read and sends the load to the exact scanner, which applies the limit to the byte
 * (a few just under it may go there too). The scanner's clean copy holds no record over
 * the limit and is read with the full setting.
 */
const FAST_PATH_OBJECT_SIZE = MAX_RECORD_BYTES / 2;

/**
 * A numeric key in its normalised form, as JSON.parse gives it: `7`, `7.0` and `"7"` are
 * the same profile (whole doubles print as integers, as renderText does).
 */
const NORMALISED_KEY = `CASE WHEN k_type = 'DOUBLE' AND TRY_CAST(k AS DOUBLE) = trunc(TRY_CAST(k AS DOUBLE)) AND abs(TRY_CAST(k AS DOUBLE)) < 1e15
    THEN TRY_CAST(k AS DOUBLE)::BIGINT::VARCHAR ELSE k END`;

function createTableSql(shape: Shape, table: string, ndjson: PartFile[], parquet: PartFile[], parquetRead: PathAccess | null, objectSize: number): string {
  const selects: string[] = [];
  if (ndjson.length > 0) {
    selects.push(
      `SELECT ${typedModeColumns(shape).join(', ')}, filename AS _file, ${ident(LINE_FIELD)} AS _row, ${ident(ENTRY_ERRORS_FIELD)} AS _entry_errors
       FROM read_json([${literalList(ndjson.map((p) => p.path))}], format = 'newline_delimited', filename = true,
                      maximum_object_size = ${objectSize}, columns = ${ndjsonColumnTypes(shape)})`,
    );
  }
  if (parquet.length > 0 && parquetRead) {
    selects.push(
      `SELECT ${jsonModeColumns(shape, parquetRead).join(', ')}, filename AS _file, file_row_number + 1 AS _row, NULL::JSON AS _entry_errors
       FROM read_parquet([${literalList(parquet.map((p) => p.path))}], union_by_name = true, filename = true, file_row_number = true)`,
    );
  }
  if (selects.length === 0) {
    // A snapshot without parts is valid and empty: same columns, no rows.
    selects.push(`SELECT ${jsonModeColumns(shape, jsonRootAccess(() => 'NULL::JSON')).join(', ')}, NULL::VARCHAR AS _file, NULL::BIGINT AS _row, NULL::JSON AS _entry_errors WHERE FALSE`);
  }
  const ids =
    shape.namespace !== null
      ? `coalesce(list_sort(list_distinct([json_extract_string(x, '$') FOR x IN idj IF x IS NOT NULL AND json_type(x) <> 'NULL' AND json_extract_string(x, '$') <> ''])), []::VARCHAR[]) AS ids,`
      : '';
  // Not TEMP: runs read the snapshot table from connections of their own.
  return `CREATE OR REPLACE TABLE ${ident(table)} AS
    WITH src AS (${selects.join('\nUNION ALL BY NAME\n')})
    SELECT * EXCLUDE (k, k_type, _entry_errors${shape.namespace !== null ? ', idj, id_missing' : ''}), ${NORMALISED_KEY} AS k, ${ids}
      ${shape.audiences.map((a, i) => `${entryErrorSql(a, i)} AS e${i},`).join('\n      ')}
      ${badRecordSql(shape)} AS bad
    FROM src`;
}

/**
 * Problems the exact scanner should look at: bad NDJSON rows and keys repeated with an
 * NDJSON occurrence. (NDJSON rows have no line number on the fast path; Parquet rows do.)
 */
async function countNdjsonProblems(engine: Engine, shape: Shape, table: string): Promise<number> {
  const t = ident(table);
  const flagged = ['bad', ...shape.audiences.map((_, i) => `e${i}`)].map((c) => `${c} IS NOT NULL`).join(' OR ');
  const [row] = await engine.all<{ n: string }>(
    `SELECT ((SELECT count(*) FROM ${t} WHERE (${flagged}) AND _row IS NULL)
           + (SELECT count(*) FROM (SELECT k FROM ${t} GROUP BY k HAVING count(*) > 1 AND bool_or(_row IS NULL))))::VARCHAR AS n`,
  );
  return Number(row?.n ?? 0);
}

/**
 * Marks repeated keys (every occurrence after the first, in part order; only keys that
 * repeat are ranked), reports and removes records bad as a whole, and reports bad entries
 * per audience (those rows stay).
 */
async function collectSqlProblems(
  engine: Engine,
  shape: Shape,
  table: string,
  parts: PartFile[],
): Promise<{ bad: BadRecord[]; entries: Map<string, BadRecord[]> }> {
  const t = ident(table);
  const order = ident(`${table}_parts`);
  await engine.run(
    `CREATE OR REPLACE TEMP TABLE ${order} (path VARCHAR, name VARCHAR, ord INTEGER);
     ${parts.length ? `INSERT INTO ${order} VALUES ${parts.map((p, i) => `(${literal(p.path)}, ${literal(p.name)}, ${i})`).join(', ')};` : ''}
     UPDATE ${t} SET bad = 'duplicate profile key "' || ${t}.k || '" (first at ' || d.first_at || ')'
     FROM (
       SELECT s.rowid AS rid, row_number() OVER w AS n, first_value(coalesce(p.name, s._file) || ':' || coalesce(s._row::VARCHAR, '?')) OVER w AS first_at
       FROM ${t} s LEFT JOIN ${order} p ON p.path = s._file
       WHERE s.bad IS NULL AND s.k IN (SELECT k FROM ${t} WHERE bad IS NULL GROUP BY k HAVING count(*) > 1)
       WINDOW w AS (PARTITION BY s.k ORDER BY p.ord, s._row, s.rowid)) d
     WHERE ${t}.rowid = d.rid AND d.n > 1`,
  );
  const located = (reason: string, where: string) =>
    engine
      .all<{ file: string; row: string | null; reason: string }>(
        `SELECT coalesce(p.name, s._file) AS file, s._row::VARCHAR AS row, ${reason} AS reason
         FROM ${t} s LEFT JOIN ${order} p ON p.path = s._file WHERE ${where} ORDER BY p.ord, s._row`,
      )
      .then((rows) => rows.map((r) => ({ file: r.file, line: Number(r.row ?? 0), reason: r.reason })));
  const bad = await located('s.bad', 's.bad IS NOT NULL');
  if (bad.length > 0) await engine.run(`DELETE FROM ${t} WHERE bad IS NOT NULL`);
  const entries = new Map<string, BadRecord[]>();
  for (const [i, audience] of shape.audiences.entries()) {
    const found = await located(`s.e${i}`, `s.e${i} IS NOT NULL`);
    if (found.length > 0) entries.set(audience, found);
  }
  return { bad, entries };
}
