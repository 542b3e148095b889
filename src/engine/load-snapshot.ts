// Loads one snapshot's profiles into a DuckDB table, reading only what the dataflow needs:
// the key, the one identity namespace, the mapped audiences' memberships and the mapped
// attribute paths. Bad records (README "Inputs") are found by SQL on the fast path and located
// exactly (file:line) by the line scanner only when there are any.
//
// Names in the engine tables this module makes (i: index in Shape.audiences, j: index in
// Shape.attributes; the short names keep the generated SQL readable at 20+ audiences):
//
//   snapshot table (LoadOptions.table), one row per profile record kept:
//     k          VARCHAR    the profile key (value at Shape.keyPath), numbers normalised: 7, 7.0 and "7" are one key
//     ids        VARCHAR[]  the ids of the identity namespace, distinct, sorted, no empty ones (only with a namespace)
//     s<i>       ENUM       audience i's entry: realized | existing | exited, or `unreadable` when the entry is bad
//                           (that run neither exports nor exits the profile, and counts it); NULL: no entry.
//                           One byte a row, where the status text took sixteen (the table stays small enough
//                           for the engine's memory limit at millions of profiles)
//     q<i>       VARCHAR    audience i's entry: lastQualificationTime as written
//     entry_errors VARCHAR[] why each audience's entry is bad, in Shape.audiences order (NULL: every entry is good)
//     a<j>       JSON       the value at attribute path j (NULL when absent or JSON null)
//     bad        VARCHAR    why the whole record is bad, or a repeated key (NULL: good); such rows are reported and deleted
//     _file      VARCHAR    the part file the record came from (local path; <table>_parts maps it to the part's name);
//                           NULL on the NDJSON fast path (a problem there sends the load to the scanner)
//     _row       BIGINT     its line (NDJSON read by the scanner) or row (Parquet), 1-based; NULL on the NDJSON fast path
//   only inside the load query (the `src` CTE, from either reader):
//     k_type     the JSON type of the key (a key must be a string or a number)
//     m<i>       audience i has a membership entry in the record (for e<i>)
//     s<i>       the entry's status as the record says it (before it becomes the ENUM above)
//     e<i>       why audience i's entry is bad (NULL: it is good), gathered into entry_errors
//     idv        the namespace's ids as text, before the checks that make `ids`
//     id_missing an identity entry has no scalar "id"
//     _root_<r>  the values of several attribute paths under the r-th mapped top-level field, in one parse (split into a<j>; attribute-roots.ts)
//     _entry_errors  reasons the line scanner stamped on a record's entries, per audience id (JSON object)
//   <table>_parts (TEMP): path, name, ord — each part's local path, its name for messages, its place in part order
//   <table>_parquet_schema (TEMP, dropped): an empty table with the Parquet parts' unified columns, to resolve paths
//
// A record bad as a whole is removed and reported. A bad membership entry (`unreadable`) concerns
// only its audience: that run neither exports nor exits the profile, and counts it.
import path from 'node:path';
import { BadInputError, messageOf, type AudexError } from '../errors.js';
import { internalSqlError, isAudexSqlError } from './engine-errors.js';
import type { Engine } from './session.js';
import type { Shape } from './shape.js';
import { ident, jsonPath, literal, literalList, fieldChain } from './sql.js';
import {
  MAX_RECORD_BYTES,
  UNREADABLE,
  QUALIFICATION_TIME_PATTERN,
  SCALAR_JSON_TYPES,
  VALID_STATUSES,
  type RecordRules,
} from './record-rules.js';
import { ENTRY_ERRORS_FIELD, LINE_FIELD, scanNdjson, type BadRecord } from './scan-lines.js';
import { jsonRootAccess, parquetAccess, type PathAccess } from './parquet-access.js';
import { describeTypeConflict } from './describe-type-conflict.js';
import {
  attributeRootColumns,
  fastAttributeRoots,
  readStructsThenJson,
  type AttributeRootColumns,
} from './attribute-roots.js';
import type { PartFile } from '../snapshots/part-file.js';
import { verifyGzipParts } from '../snapshots/verify-gzip-parts.js';

/** Re-exported for the engine's callers; the type belongs to the snapshot side. */
export type { PartFile } from '../snapshots/part-file.js';

export interface LoadedSnapshot {
  table: string;
  profiles: number;
  /** Records bad as a whole (skipped for every audience). */
  badRecords: BadRecord[];
  /** Bad membership entries, per audience id. */
  entryErrors: Map<string, BadRecord[]>;
  /**
   * Whether the table's rows, in table order, have non-decreasing profile keys (a full
   * selection's rows then need no sort). Checked once, on the first run's connection that asks.
   */
  keysInOrder: (engine: Engine) => Promise<boolean>;
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

export async function loadSnapshot(
  engine: Engine,
  shape: Shape,
  parts: PartFile[],
  options: LoadOptions,
): Promise<LoadedSnapshot> {
  const ndjson = parts.filter((p) => p.kind === 'ndjson');
  const parquet = parts.filter((p) => p.kind === 'parquet');
  const parquetRead = parquet.length ? await parquetReader(engine, shape, parquet, options.table) : null;
  const create = (json: PartFile[], objectSize: number, how: NdjsonRead) =>
    engine.run(createTableSql(shape, options.table, json, parquet, parquetRead, objectSize, how));
  // The fast path reads attribute roots as structs where it can; a record that does not fit
  // them (a root that is not an object, a repeated key in one) fails that read, and the same
  // fast read with JSON roots decides, before anything goes to the scanner.
  const fast = () =>
    ndjson.length === 0
      ? create(ndjson, FAST_PATH_OBJECT_SIZE, 'fast')
      : readStructsThenJson(shape.attributes, shape.keyPath[0]!, (structs) =>
          create(ndjson, FAST_PATH_OBJECT_SIZE, structs ? 'structs' : 'fast'),
        );

  // Checked while the engine reads (its reader does not see a gzip part cut short).
  const whole = verifyGzipParts(ndjson);
  whole.catch(() => undefined);
  const scanned: BadRecord[] = [];
  let readable = parts;
  let needScan = false;
  let problems: ProblemCounts | null = null;
  const probe = `${options.table}_parquet_schema`;
  try {
    await fast();
    problems = await countProblems(engine, options.table);
    needScan = ndjson.length > 0 && problems.unlocated > 0;
  } catch (error) {
    // The exact scanner can fix records, not a query that does not bind.
    if (ndjson.length === 0 || isAudexSqlError(error))
      throw await unreadableParquet(engine, error, parquet, probe, parts);
    needScan = true;
  }
  await whole;
  if (needScan) {
    const clean: PartFile[] = [];
    const seen = new Map<string, string>();
    const rules: RecordRules = {
      keyPath: shape.keyPath,
      namespace: shape.namespace,
      audiences: shape.audiences,
      readRoots: readRoots(shape),
    };
    for (const [i, part] of ndjson.entries()) {
      const out = path.join(options.scratchDir, `clean-${options.table}-${i}.ndjson`);
      scanned.push(...(await scanNdjson(part.path, part.name, out, rules, seen)));
      clean.push({ ...part, path: out });
    }
    readable = parts.map((p) => clean.find((c) => c.name === p.name) ?? p);
    try {
      await create(clean, MAX_RECORD_BYTES, 'scanned');
    } catch (error) {
      if (isAudexSqlError(error)) throw await unreadableParquet(engine, error, parquet, probe, parts);
      // Name the user's parts, not the scanner's copies (whose lines are the records kept).
      const named = clean.reduce(
        (text, c) => text.replaceAll(c.path, `${c.name} (its records kept by the scanner)`),
        messageOf(error),
      );
      throw unreadable(new Error(named), parts);
    }
  }
  if (needScan) problems = await countProblems(engine, options.table);
  const flagged = await collectSqlProblems(engine, shape, options.table, readable, problems!);
  // Problems are reported: the diagnostic columns are dropped, so runs scan (and the engine
  // keeps in memory or spills) only what they select from.
  await engine.run(DIAGNOSTIC_COLUMNS.map((c) => `ALTER TABLE ${ident(options.table)} DROP COLUMN ${c}`).join(';\n'));
  const [row] = await engine.all<{ n: string }>(`SELECT count(*)::VARCHAR AS n FROM ${ident(options.table)}`);
  let inOrder: Promise<boolean> | undefined;
  return {
    table: options.table,
    profiles: Number(row?.n ?? 0),
    badRecords: [...scanned, ...flagged.bad],
    entryErrors: flagged.entries,
    keysInOrder: (on) => (inOrder ??= tableInKeyOrder(on, options.table)),
  };
}

/** Whether the table's rows, in table order, have non-decreasing profile keys. */
async function tableInKeyOrder(engine: Engine, table: string): Promise<boolean> {
  const [row] = await engine.all<{ n: string }>(
    `SELECT count(*)::VARCHAR AS n FROM (SELECT k, lag(k) OVER (ORDER BY rowid) AS previous FROM ${ident(table)}) WHERE previous > k`,
  );
  return Number(row?.n ?? 0) === 0;
}

function unreadable(error: unknown, parts: PartFile[]): BadInputError {
  const message = error instanceof Error ? error.message.split('\n')[0] : String(error);
  return new BadInputError(
    `cannot read snapshot parts (${parts.map((p) => p.name).join(', ')}): ${message}\nCheck that the parts are NDJSON or Parquet with the fields README "Inputs" lists. Nothing was written.`,
  );
}

/**
 * Parquet parts that disagree on a field's type say so in plain words (the engine reports
 * that as a binder error); otherwise audex's own SQL failing is an internal error, and any
 * other failure is unreadable input (unreadable()).
 */
async function unreadableParquet(
  engine: Engine,
  error: unknown,
  parquet: PartFile[],
  probe: string,
  parts: PartFile[] = parquet,
): Promise<AudexError> {
  const conflict = parquet.length ? await describeTypeConflict(engine, parquet, probe).catch(() => null) : null;
  await engine.run(`DROP TABLE IF EXISTS ${ident(probe)}`);
  if (conflict) return new BadInputError(`cannot read snapshot parts: ${conflict}. Nothing was written.`);
  if (isAudexSqlError(error))
    return internalSqlError(`load snapshot parts ${parts.map((p) => p.name).join(', ')}`, error);
  return unreadable(error, parts);
}

/** Typed access to the paths the dataflow reads, resolved against the parts' unified schema. */
async function parquetReader(engine: Engine, shape: Shape, parts: PartFile[], table: string): Promise<PathAccess> {
  const probe = `${table}_parquet_schema`;
  try {
    await engine.run(
      `CREATE OR REPLACE TEMP TABLE ${ident(probe)} AS SELECT * FROM read_parquet([${literalList(parts.map((p) => p.path))}], union_by_name = true) LIMIT 0`,
    );
    const rows = await engine.all<{ column_name: string }>(`DESCRIBE ${ident(probe)}`);
    return await parquetAccess(engine, probe, new Set(rows.map((r) => r.column_name)), readPaths(shape));
  } catch (error) {
    throw await unreadableParquet(engine, error, parts, probe);
  } finally {
    await engine.run(`DROP TABLE IF EXISTS ${ident(probe)}`);
  }
}

/**
 * The raw columns both readers produce: k, k_type, idv (ids as text), id_missing (an entry
 * without a scalar id), and per audience
 * m<i> (entry present), s<i>, q<i>; per attribute a<j>, read through `access`: typed
 * Parquet access (parquet-access.ts), or JSON roots for empty snapshots.
 */
function jsonModeColumns(shape: Shape, access: PathAccess): string[] {
  const cols = [`${access.text(shape.keyPath)} AS k`, `json_type(${access.json(shape.keyPath)}) AS k_type`];
  if (shape.namespace !== null) {
    const path = ['identityMap', shape.namespace];
    const typedIds = access.textIds(path);
    if (typedIds !== null) cols.push(...idColumns(typedIds, 'FALSE'));
    else {
      const entries = `json_extract(${access.json(path)}, '$[*]')::JSON[]`;
      const scalar = `coalesce(json_type(e, '$.id'), 'NULL') IN (${literalList(SCALAR_JSON_TYPES)})`;
      cols.push(`[json_extract_string(e, '$.id') FOR e IN ${entries}] AS idv`);
      cols.push(`len(list_filter(${entries}, lambda e: json_type(e) <> 'NULL' AND NOT ${scalar})) > 0 AS id_missing`);
    }
  }
  shape.audiences.forEach((a, i) => {
    const entry = membershipPaths(a);
    cols.push(`${access.present(entry.entry)} AS m${i}`);
    cols.push(`${access.text(entry.status)} AS s${i}`);
    cols.push(`${access.text(entry.qtime)} AS q${i}`);
  });
  shape.attributes.forEach((p, j) => cols.push(`${access.value(p)} AS a${j}`));
  return cols;
}

/**
 * idv and id_missing over a typed list of identity entries whose `id` is text (`entries`):
 * a NULL entry is skipped, an entry without an id is missing one, and an id for which
 * `notScalar` holds (SQL over e.id) is not a scalar.
 */
function idColumns(entries: string, notScalar: string): string[] {
  return [
    `[e.id FOR e IN ${entries}] AS idv`,
    `len(list_filter(${entries}, lambda e: e IS NOT NULL AND (e.id IS NULL OR ${notScalar}))) > 0 AS id_missing`,
  ];
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

/**
 * The same columns over DuckDB's typed NDJSON read (see ndjsonColumnTypes): the fast path.
 * Identity ids are read as text (the reader gives a scalar its JSON text, as
 * json_extract_string does); an object or array id reads as its JSON text too, so on the
 * fast path (`scanned` false) an id that starts like one is flagged and sends the load to
 * the exact scanner, whose clean copy holds scalar ids only. Each attribute root's paths are
 * extracted in one parse.
 */
function typedModeColumns(shape: Shape, scanned: boolean, attributes: AttributeRootColumns): string[] {
  const [keyRoot, ...keyRest] = shape.keyPath as [string, ...string[]];
  const cols = [
    `json_extract_string(${ident(keyRoot)}, ${jsonPath(keyRest)}) AS k`,
    `json_type(${ident(keyRoot)}, ${jsonPath(keyRest)}) AS k_type`,
  ];
  if (shape.namespace !== null) {
    const notScalar = scanned ? 'FALSE' : `(starts_with(e.id, '{') OR starts_with(e.id, '['))`;
    cols.push(...idColumns(fieldChain('identityMap', [shape.namespace]), notScalar));
  }
  shape.audiences.forEach((a, i) => {
    cols.push(`${fieldChain('segmentMembership', ['ups', a])} IS NOT NULL AS m${i}`);
    cols.push(`${fieldChain('segmentMembership', ['ups', a, 'status'])} AS s${i}`);
    cols.push(`${fieldChain('segmentMembership', ['ups', a, 'lastQualificationTime'])} AS q${i}`);
  });
  cols.push(...attributes.extract);
  return cols;
}

/**
 * How NDJSON parts are read: `structs`, the fast path with attribute roots read as structs
 * where their paths allow; `fast`, the fast path with JSON roots; `scanned`, the exact
 * scanner's clean copies (JSON roots, with file and line).
 */
type NdjsonRead = 'structs' | 'fast' | 'scanned';

/** The top-level fields the typed NDJSON read declares (besides the scanner's own). */
function readRoots(shape: Shape): string[] {
  return [
    shape.keyPath[0]!,
    ...shape.attributes.map((p) => p[0]!),
    ...(shape.namespace !== null ? ['identityMap'] : []),
    'segmentMembership',
  ];
}

function ndjsonColumnTypes(shape: Shape, attributes: AttributeRootColumns): string {
  const roots = new Map<string, string>();
  roots.set(shape.keyPath[0]!, 'JSON');
  for (const [root, type] of attributes.types) roots.set(root, type);
  if (shape.namespace !== null) roots.set('identityMap', `STRUCT(${ident(shape.namespace)} STRUCT(id VARCHAR)[])`);
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
      `WHEN id_missing
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

function createTableSql(
  shape: Shape,
  table: string,
  ndjson: PartFile[],
  parquet: PartFile[],
  parquetRead: PathAccess | null,
  objectSize: number,
  how: NdjsonRead,
): string {
  const selects: string[] = [];
  if (ndjson.length > 0) {
    // With `structs`, attribute roots are read as structs where their paths allow (attribute-roots.ts).
    const scanned = how === 'scanned';
    const roots =
      how === 'structs'
        ? fastAttributeRoots(shape.attributes, shape.keyPath[0]!)
        : attributeRootColumns(shape.attributes);
    // On the fast path an NDJSON row is never located by SQL (a problem sends the load to the
    // scanner, whose copies are read with their file and line), so it keeps no file name.
    const file = scanned ? 'filename' : 'NULL::VARCHAR';
    const read = `SELECT ${typedModeColumns(shape, scanned, roots).join(', ')}, ${file} AS _file, ${ident(LINE_FIELD)} AS _row, ${ident(ENTRY_ERRORS_FIELD)} AS _entry_errors
       FROM read_json([${literalList(ndjson.map((p) => p.path))}], format = 'newline_delimited', filename = ${scanned},
                      maximum_object_size = ${objectSize}, columns = ${ndjsonColumnTypes(shape, roots)})`;
    selects.push(
      roots.split.length
        ? `SELECT * EXCLUDE (${roots.exclude.join(', ')}), ${roots.split.join(', ')} FROM (${read})`
        : read,
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
    selects.push(
      `SELECT ${jsonModeColumns(
        shape,
        jsonRootAccess(() => 'NULL::JSON'),
      ).join(', ')}, NULL::VARCHAR AS _file, NULL::BIGINT AS _row, NULL::JSON AS _entry_errors WHERE FALSE`,
    );
  }
  // Sorted, distinct, non-empty ids; one id (the common case) needs no list functions.
  const ids =
    shape.namespace !== null
      ? `CASE WHEN idv IS NULL OR len(idv) = 0 THEN []::VARCHAR[]
          WHEN len(idv) = 1 THEN CASE WHEN idv[1] <> '' THEN idv ELSE []::VARCHAR[] END
          ELSE coalesce(list_sort(list_distinct(list_filter(idv, x -> x <> ''))), []::VARCHAR[]) END AS ids,`
      : '';
  const audiences = shape.audiences.map((_, i) => i);
  const raw = audiences.flatMap((i) => [`m${i}`, `s${i}`, `e${i}`]);
  const statuses = audiences.map(
    (i) => `CASE WHEN e${i} IS NULL THEN s${i} ELSE 'unreadable' END::${STATUS_TYPE} AS s${i}`,
  );
  const entryErrors = audiences.length
    ? `CASE WHEN ${audiences.map((i) => `e${i} IS NOT NULL`).join(' OR ')} THEN [${audiences.map((i) => `e${i}`).join(', ')}] END`
    : 'NULL::VARCHAR[]';
  // Not TEMP: runs read the snapshot table from connections of their own.
  return `CREATE OR REPLACE TABLE ${ident(table)} AS
    WITH src AS (${selects.join('\nUNION ALL BY NAME\n')}),
    checked AS (SELECT *, ${[...audiences.map((i) => `${entryErrorSql(shape.audiences[i]!, i)} AS e${i}`), `${badRecordSql(shape)} AS bad`].join(',\n      ')} FROM src)
    SELECT * EXCLUDE (k, k_type, _entry_errors${shape.namespace !== null ? ', idv, id_missing' : ''}${raw.map((c) => `, ${c}`).join('')}), ${NORMALISED_KEY} AS k, ${ids}
      ${statuses.map((c) => `${c},`).join('\n      ')}
      ${entryErrors} AS entry_errors
    FROM checked`;
}

/** Columns of the snapshot table only the load reads (to find and report problems). */
const DIAGNOSTIC_COLUMNS = ['_file', '_row', 'bad', 'entry_errors'];

/** The type of the snapshot table's s<i>: a good entry's status, or `unreadable` for a bad one. */
const STATUS_TYPE = `ENUM(${literalList([...VALID_STATUSES, UNREADABLE])})`;

interface ProblemCounts {
  /** Rows flagged (bad, or a bad entry) or keys repeated, where an NDJSON row is involved (no line number on the fast path). */
  unlocated: number;
  /** Rows flagged bad or with a bad entry. */
  flagged: number;
  /** Keys held by more than one record. */
  repeatedKeys: number;
}

/**
 * What the exact scanner should look at (bad NDJSON rows and keys repeated with an NDJSON
 * occurrence: those rows have no line number on the fast path; Parquet rows do), and
 * whether there is anything to report at all. One grouping of the keys.
 */
async function countProblems(engine: Engine, table: string): Promise<ProblemCounts> {
  const t = ident(table);
  const flags = `bad IS NOT NULL OR entry_errors IS NOT NULL`;
  const [row] = await engine.all<{ unlocated: string; flagged: string; repeated: string; repeated_unlocated: string }>(
    `SELECT (SELECT count(*) FROM ${t} WHERE (${flags}) AND _row IS NULL)::VARCHAR AS unlocated,
            (SELECT count(*) FROM ${t} WHERE ${flags})::VARCHAR AS flagged,
            count(*)::VARCHAR AS repeated, count(*) FILTER (WHERE unlocated)::VARCHAR AS repeated_unlocated
     FROM (SELECT bool_or(_row IS NULL) AS unlocated FROM ${t} WHERE bad IS NULL GROUP BY k HAVING count(*) > 1)`,
  );
  return {
    unlocated: Number(row?.unlocated ?? 0) + Number(row?.repeated_unlocated ?? 0),
    flagged: Number(row?.flagged ?? 0),
    repeatedKeys: Number(row?.repeated ?? 0),
  };
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
  counts: ProblemCounts,
): Promise<{ bad: BadRecord[]; entries: Map<string, BadRecord[]> }> {
  const entries = new Map<string, BadRecord[]>();
  if (counts.flagged === 0 && counts.repeatedKeys === 0) return { bad: [], entries };
  const t = ident(table);
  const order = ident(`${table}_parts`);
  await engine.run(
    `CREATE OR REPLACE TEMP TABLE ${order} (path VARCHAR, name VARCHAR, ord INTEGER);
     ${parts.length ? `INSERT INTO ${order} VALUES ${parts.map((p, i) => `(${literal(p.path)}, ${literal(p.name)}, ${i})`).join(', ')};` : ''}`,
  );
  if (counts.repeatedKeys > 0) {
    await engine.run(
      `UPDATE ${t} SET bad = 'duplicate profile key "' || ${t}.k || '" (first at ' || d.first_at || ')'
       FROM (
         SELECT s.rowid AS rid, row_number() OVER w AS n, first_value(coalesce(p.name, s._file) || ':' || coalesce(s._row::VARCHAR, '?')) OVER w AS first_at
         FROM ${t} s LEFT JOIN ${order} p ON p.path = s._file
         WHERE s.bad IS NULL AND s.k IN (SELECT k FROM ${t} WHERE bad IS NULL GROUP BY k HAVING count(*) > 1)
         WINDOW w AS (PARTITION BY s.k ORDER BY p.ord, s._row, s.rowid)) d
       WHERE ${t}.rowid = d.rid AND d.n > 1`,
    );
  }
  // Every flagged row once, in part and line order; split per reason column below.
  const rows = await engine.all<Record<string, string | null>>(
    `SELECT coalesce(p.name, s._file) AS file, s._row::VARCHAR AS row, s.bad${shape.audiences.map((_, i) => `, s.entry_errors[${i + 1}] AS e${i}`).join('')}
     FROM ${t} s LEFT JOIN ${order} p ON p.path = s._file WHERE s.bad IS NOT NULL OR s.entry_errors IS NOT NULL ORDER BY p.ord, s._row`,
  );
  // A record bad as a whole is reported once, as bad (and removed), not again for its entries.
  const located = (column: string) =>
    rows
      .filter((r) => r[column] !== null && (column === 'bad' || r['bad'] === null))
      .map((r) => ({ file: r['file']!, line: Number(r['row'] ?? 0), reason: r[column]! }));
  const bad = located('bad');
  if (bad.length > 0) await engine.run(`DELETE FROM ${t} WHERE bad IS NOT NULL`);
  for (const [i, audience] of shape.audiences.entries()) {
    const found = located(`e${i}`);
    if (found.length > 0) entries.set(audience, found);
  }
  return { bad, entries };
}
