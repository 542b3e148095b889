// Loads one snapshot for the HTTP API destination (README "Send to an HTTP endpoint"): unlike the file loader, it
// keeps the whole identityMap (every namespace) and the whole segmentMembership.ups map
// (unmapped audiences' entries go into messages too), plus the mapped attribute paths.
//
// Table columns: k (profile key), idj (the identityMap as JSON text, `{ "id" }` per entry),
// ups MAP(VARCHAR, STRUCT(lastQualificationTime VARCHAR, status VARCHAR)), a<j> (JSON, per
// mapped attribute in mapping order), and the per-profile values the diff
// compares (http-diff.ts profileColumns): act, idr, ah. They are computed here, in the
// read's own pass, so the diff joins narrow rows and touches the wide ones only for the
// profiles that changed.
//
// A bad record (no key, invalid JSON, a malformed entry of a mapped audience, a repeated
// key) is left out and reported (file:line). Its key, when it has one, is kept in
// `<table>_skip`: the diff then carries that profile's baseline over unchanged, so a
// record that could not be read never looks like a member that left.
import path from 'node:path';
import { BadInputError } from '../errors.js';
import { verifyGzipParts } from '../snapshots/verify-gzip-parts.js';
import { attributeRootColumns, fastAttributeRoots, readStructsThenJson } from './attribute-roots.js';
import type { PartFile } from './load-snapshot.js';
import { VALID_STATUSES, SCALAR_JSON_TYPES } from './record-rules.js';
import { ENTRY_ERRORS_FIELD, LINE_FIELD, scanNdjson, type BadRecord } from './scan-lines.js';
import type { Engine } from './session.js';
import { ident, jsonPath, literal, literalList } from './sql.js';
import { IDENTITY_JSON, profileColumns } from './http-diff.js';

export interface HttpShape {
  keyPath: string[];
  /** Mapped attribute paths, in mapping order. */
  attributes: string[][];
  /** Mapped audience ids. */
  audiences: string[];
}

export interface LoadedHttpSnapshot {
  table: string;
  profiles: number;
  badRecords: BadRecord[];
}

const IDMAP_TYPE = 'MAP(VARCHAR, STRUCT(id VARCHAR)[])';
// lastQualificationTime first: messages carry entries in this field order (seed 003).
const UPS_TYPE = 'MAP(VARCHAR, STRUCT(lastQualificationTime VARCHAR, status VARCHAR))';

/** The NDJSON read; with `structs`, attribute roots are read as structs where their paths allow (attribute-roots.ts). */
function ndjsonSelect(shape: HttpShape, files: string[], structs: boolean): string {
  const attributes = structs
    ? fastAttributeRoots(shape.attributes, shape.keyPath[0]!)
    : attributeRootColumns(shape.attributes);
  const roots = new Map<string, string>();
  roots.set(shape.keyPath[0]!, 'JSON');
  for (const [root, type] of attributes.types) roots.set(root, type);
  roots.set('identityMap', IDMAP_TYPE);
  roots.set('segmentMembership', `STRUCT(ups ${UPS_TYPE})`);
  roots.set(LINE_FIELD, 'BIGINT');
  roots.set(ENTRY_ERRORS_FIELD, 'JSON');
  const columns = `{${[...roots].map(([n, t]) => `${literal(n)}: ${literal(t)}`).join(', ')}}`;
  const [keyRoot, ...keyRest] = shape.keyPath as [string, ...string[]];
  // Each attribute root is parsed once: its paths extracted together, then split (a JSON
  // null is no value, as in the Parquet read).
  const extract = attributes.extract.map((c) => `, ${c}`).join('');
  const split = attributes.split.map((c) => `, ${c}`).join('');
  const exclude = attributes.exclude.length ? ` EXCLUDE (${attributes.exclude.join(', ')})` : '';
  return `SELECT *${exclude}${split} FROM (SELECT json_extract_string(${ident(keyRoot)}, ${jsonPath(keyRest)}) AS k, json_type(${ident(keyRoot)}, ${jsonPath(keyRest)}) AS k_type,
      "identityMap" AS idmap, "segmentMembership".ups AS ups${extract},
      filename AS _file, ${ident(LINE_FIELD)} AS _row, ${ident(ENTRY_ERRORS_FIELD)}::VARCHAR AS _entry_errors
    FROM read_json([${literalList(files)}], format = 'newline_delimited', filename = true, maximum_object_size = 67108864, columns = ${columns}))`;
}

const nullJson = (expr: string) => `CASE WHEN json_type(${expr}) = 'NULL' THEN NULL ELSE ${expr} END`;

/**
 * Parquet parts: every root read through JSON, then typed like the NDJSON read. Struct
 * columns (a writer's schema) name every namespace and audience, with NULL where a record
 * has none: those entries are dropped, and timestamps are given back as RFC 3339 text.
 */
function parquetSelect(shape: HttpShape, files: string[], columns: Set<string>): string {
  const root = (name: string) => (columns.has(name) ? `to_json(${ident(name)})` : 'NULL::JSON');
  const at = (p: string[]) => (p.length > 1 ? `json_extract(${root(p[0]!)}, ${jsonPath(p.slice(1))})` : root(p[0]!));
  const attrs = shape.attributes.map((p, j) => `, ${nullJson(at(p))} AS a${j}`).join('');
  const present = (map: string) => `list_filter(map_entries(${map}), lambda e: e.value IS NOT NULL)`;
  const rfc3339 = (t: string) =>
    `regexp_replace(${t}, ${literal(String.raw`^(\d{4}-\d\d-\d\d) (\d\d:\d\d:\d\d(\.\d+)?)$`)}, ${literal(String.raw`\1T\2Z`)})`;
  const idmap = `map_from_entries(${present(`${root('identityMap')}::${IDMAP_TYPE}`)})`;
  const ups = `map_from_entries(list_transform(${present(`json_extract(${root('segmentMembership')}, '$.ups')::${UPS_TYPE}`)},
      lambda e: {'key': e.key, 'value': {'lastQualificationTime': ${rfc3339('e.value.lastQualificationTime')}, 'status': e.value.status}}))`;
  return `SELECT json_extract_string(${at(shape.keyPath)}, '$') AS k, json_type(${at(shape.keyPath)}) AS k_type,
      ${idmap} AS idmap, ${ups} AS ups${attrs},
      filename AS _file, file_row_number + 1 AS _row, NULL::VARCHAR AS _entry_errors
    FROM read_parquet([${literalList(files)}], union_by_name = true, filename = true, file_row_number = true)`;
}

function emptySelect(shape: HttpShape): string {
  const attrs = shape.attributes.map((_, j) => `, NULL::JSON AS a${j}`).join('');
  return `SELECT NULL::VARCHAR AS k, NULL::VARCHAR AS k_type, NULL::${IDMAP_TYPE} AS idmap, NULL::${UPS_TYPE} AS ups${attrs},
    NULL::VARCHAR AS _file, NULL::BIGINT AS _row, NULL::VARCHAR AS _entry_errors WHERE FALSE`;
}

/** Why a record is bad as a whole for this destination (NULL when it is fine). */
function badSql(shape: HttpShape): string {
  const statuses = shape.audiences.map(
    (
      a,
    ) => `WHEN ups[${literal(a)}] IS NOT NULL AND coalesce(ups[${literal(a)}].status, '') NOT IN (${literalList(VALID_STATUSES)})
      THEN ${literal(`segmentMembership.ups.${a}.status is `)} || coalesce(to_json(ups[${literal(a)}].status)::VARCHAR, 'null') || '; expected realized, existing or exited'`,
  );
  return `CASE WHEN k IS NULL OR k = '' OR k_type NOT IN (${literalList(SCALAR_JSON_TYPES.filter((t) => t !== 'BOOLEAN'))})
      THEN ${literal(`no profile key at "${shape.keyPath.join('.')}" (a non-empty string or number)`)}
    WHEN _entry_errors IS NOT NULL THEN 'bad membership entry: ' || _entry_errors
    ${statuses.join('\n    ')} END`;
}

export async function loadHttpSnapshot(
  engine: Engine,
  shape: HttpShape,
  parts: PartFile[],
  options: { table: string; scratchDir: string },
): Promise<LoadedHttpSnapshot> {
  const t = ident(options.table);
  const ndjson = parts.filter((p) => p.kind === 'ndjson');
  const parquet = parts.filter((p) => p.kind === 'parquet');
  let parquetColumns = new Set<string>();
  if (parquet.length) {
    const rows = await engine
      .all<{ column_name: string }>(
        `DESCRIBE SELECT * FROM read_parquet([${literalList(parquet.map((p) => p.path))}], union_by_name = true)`,
      )
      .catch((e: unknown) => {
        throw unreadable(e, parquet);
      });
    parquetColumns = new Set(rows.map((r) => r.column_name));
  }
  const create = async (json: string[], structs = false) => {
    const selects = [
      ...(json.length ? [ndjsonSelect(shape, json, structs)] : []),
      ...(parquet.length
        ? [
            parquetSelect(
              shape,
              parquet.map((p) => p.path),
              parquetColumns,
            ),
          ]
        : []),
    ];
    await engine.run(`CREATE OR REPLACE TABLE ${t} AS WITH src AS (${selects.length ? selects.join('\nUNION ALL BY NAME\n') : emptySelect(shape)}),
      typed AS (SELECT * EXCLUDE (k_type, _entry_errors, idmap), ${IDENTITY_JSON} AS idj, ${badSql(shape)} AS bad FROM src)
      SELECT *, ${profileColumns(shape)} FROM typed`);
  };
  // Checked while the engine reads (its reader does not see a gzip part cut short).
  const whole = verifyGzipParts(ndjson);
  whole.catch(() => undefined);
  const scanned: BadRecord[] = [];
  let names = new Map(parts.map((p) => [p.path, p.name]));
  let needScan = false;
  try {
    // Attribute roots as structs first; a record that does not fit them fails that read, and
    // the same read with JSON roots decides, before anything goes to the scanner.
    const files = ndjson.map((p) => p.path);
    await (files.length === 0
      ? create(files)
      : readStructsThenJson(shape.attributes, shape.keyPath[0]!, (structs) => create(files, structs)));
    if (ndjson.length) {
      const [row] = await engine.all<{ n: string }>(
        `SELECT ((SELECT count(*) FROM ${t} WHERE bad IS NOT NULL AND _row IS NULL)
               + (SELECT count(*) FROM (SELECT k FROM ${t} GROUP BY k HAVING count(*) > 1 AND bool_or(_row IS NULL))))::VARCHAR AS n`,
      );
      needScan = Number(row?.n ?? 0) > 0;
    }
  } catch (error) {
    if (!ndjson.length) throw unreadable(error, parts);
    needScan = true;
  }
  await whole;
  if (needScan) {
    // The exact scanner names each bad line and writes a clean, line-stamped copy.
    const seen = new Map<string, string>();
    const clean: string[] = [];
    for (const [i, part] of ndjson.entries()) {
      const out = path.join(options.scratchDir, `http-clean-${options.table}-${i}.ndjson`);
      scanned.push(
        ...(await scanNdjson(
          part.path,
          part.name,
          out,
          { keyPath: shape.keyPath, namespace: null, audiences: shape.audiences },
          seen,
        )),
      );
      clean.push(out);
      names.set(out, part.name);
    }
    try {
      await create(clean);
    } catch (error) {
      throw unreadable(error, parts);
    }
  }
  names = new Map([...names]);
  // Repeated keys (Parquet, or NDJSON across both kinds): the first occurrence wins.
  await engine.run(
    `UPDATE ${t} SET bad = 'duplicate profile key "' || ${t}.k || '"'
     FROM (SELECT rowid AS rid, row_number() OVER (PARTITION BY k ORDER BY _file, _row, rowid) AS n FROM ${t}
           WHERE bad IS NULL AND k IN (SELECT k FROM ${t} WHERE bad IS NULL GROUP BY k HAVING count(*) > 1)) d
     WHERE ${t}.rowid = d.rid AND d.n > 1`,
  );
  const bad = await engine.all<{ file: string; row: string | null; reason: string }>(
    `SELECT _file AS file, _row::VARCHAR AS row, bad AS reason FROM ${t} WHERE bad IS NOT NULL ORDER BY _file, _row`,
  );
  // Where a record came from matters only for reporting it: the columns go (a quarter of
  // the table's memory at 1M profiles; dropping a column does not rewrite the others).
  await engine.run(
    `CREATE OR REPLACE TABLE ${ident(`${options.table}_skip`)} AS SELECT DISTINCT k FROM ${t} WHERE bad IS NOT NULL AND k IS NOT NULL AND k <> '' AND bad NOT LIKE 'duplicate profile key%';
     DELETE FROM ${t} WHERE bad IS NOT NULL;
     ALTER TABLE ${t} DROP COLUMN _file; ALTER TABLE ${t} DROP COLUMN _row; ALTER TABLE ${t} DROP COLUMN bad`,
  );
  const [count] = await engine.all<{ n: string }>(`SELECT count(*)::VARCHAR AS n FROM ${t}`);
  return {
    table: options.table,
    profiles: Number(count?.n ?? 0),
    badRecords: [
      ...scanned,
      ...bad.map((b) => ({ file: names.get(b.file) ?? b.file, line: Number(b.row ?? 0), reason: b.reason })),
    ],
  };
}

function unreadable(error: unknown, parts: PartFile[]): BadInputError {
  const message = error instanceof Error ? error.message.split('\n')[0] : String(error);
  return new BadInputError(
    `cannot read snapshot parts (${parts.map((p) => p.name).join(', ')}): ${message}\nCheck that the parts are NDJSON or Parquet with the fields README "Inputs" lists. Nothing was sent.`,
  );
}
