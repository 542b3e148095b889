// How an output table (k, kind, j0..jn JSON) becomes file content, per format (README "Files, names and the manifest").
// CSV lines are rendered whole in SQL so every dialect option is exact and the JS side
// only joins lines; Parquet columns are cast to the mapping's types. The output table was
// created in row order (ORDER BY profile key, id) and the engine preserves insertion
// order, so plain scans of it come out in that order without sorting again, and its rowid
// is the row's position (parts of a run split over several files take rowid ranges). A
// full selection's rows can also be a view in row order (see select-rows.ts), read whole.
import type { CsvOptions } from '../config/schema.js';
import type { Shape } from './shape.js';
import { ident, literal } from './sql.js';
import { isWhole, normalizeJson, qualificationTimeSql, renderText } from './select-rows.js';

function special(option: '' | '""' | 'null'): string {
  return literal(option);
}

/** SQL rendering one CSV cell from a VARCHAR expression (NULL allowed). */
export function csvCellSql(value: string, csv: CsvOptions): string {
  const esc = csv.escape;
  const delim = csv.delimiter;
  let body: string;
  if (csv.quote === '"') {
    const quoted = `'"' || replace(replace(${value}, ${literal(esc)}, ${literal(esc + esc)}), '"', ${literal(`${esc}"`)}) || '"'`;
    if (csv.quoteAll) body = quoted;
    else {
      // A real string equal to the text written for null or empty (`null`) is quoted, so a
      // reader that tells quoted from unquoted fields can tell them apart.
      const lookalikes = [csv.nullValue, csv.emptyValue]
        .filter((s) => s === 'null')
        .map((s) => `${value} = ${literal(s)}`);
      const needs = [
        ...[delim, '"', esc, '\n', '\r'].map((ch) => `contains(${value}, ${literal(ch)})`),
        ...lookalikes,
      ].join(' OR ');
      body = `CASE WHEN ${needs} THEN ${quoted} ELSE ${value} END`;
    }
  } else {
    // No quoting: the escape character protects itself, the delimiter and line breaks.
    body = [delim, '\n', '\r'].reduce(
      (acc, ch) => `replace(${acc}, ${literal(ch)}, ${literal(esc + ch)})`,
      `replace(${value}, ${literal(esc)}, ${literal(esc + esc)})`,
    );
  }
  return `CASE WHEN ${value} IS NULL THEN ${special(csv.nullValue)} WHEN ${value} = '' THEN ${special(csv.emptyValue)} ELSE ${body} END`;
}

/**
 * The header line: the column names as cells of one column, joined in order. One cell
 * expression, not one per column: for 8 columns, planning a line of constant cells took
 * 5.6 ms, against 1.7 ms for this (README "Start-up of small runs").
 */
export function csvHeaderSql(shape: Shape, csv: CsvOptions): string {
  const names = shape.columns.map((c, i) => `(${i}, ${literal(c.target)})`).join(', ');
  return `SELECT string_agg(${csvCellSql('name', csv)}, ${literal(csv.delimiter)} ORDER BY i) AS line FROM (VALUES ${names}) AS header(i, name)`;
}

function csvLine(values: string[], csv: CsvOptions): string {
  return values.map((v) => csvCellSql(v, csv)).join(` || ${literal(csv.delimiter)} || `);
}

/** The CSV lines of `table` (rows matching `where`, in table order); each cell rendered once. */
export function csvLinesSql(shape: Shape, table: string, csv: CsvOptions, where = ''): string {
  const texts = shape.columns.map((_, i) => `${renderText(`j${i}`)} AS t${i}`);
  const values = shape.columns.map((_, i) => `t${i}`);
  return `SELECT ${csvLine(values, csv)} AS line FROM (SELECT ${texts.join(', ')} FROM ${ident(table)} ${where})`;
}

export function jsonLinesSql(shape: Shape, table: string, where = ''): string {
  const pairs = shape.columns.map((c, i) => `${literal(c.target)}, ${normalizeJson(`j${i}`)}`);
  return `SELECT json_object(${pairs.join(', ')})::VARCHAR AS line FROM ${ident(table)} ${where}`;
}

const PARQUET_TYPES = {
  string: 'VARCHAR',
  int64: 'BIGINT',
  double: 'DOUBLE',
  boolean: 'BOOLEAN',
  timestamp: 'TIMESTAMPTZ',
} as const;

/**
 * The typed Parquet value, or NULL when the value does not convert exactly: int64 takes
 * whole JSON numbers in range (never a string, never rounded), boolean JSON true/false,
 * double finite JSON numbers, timestamp an RFC 3339 text (any case) with a 4-digit year.
 */
function typedValue(shape: Shape, i: number): string {
  const column = shape.columns[i]!;
  const json = `j${i}`;
  const text = renderText(json);
  const numeric = `json_type(${json}) IN ('BIGINT', 'UBIGINT', 'DOUBLE')`;
  switch (column.type) {
    case 'string':
      return text;
    case 'int64':
      // Integers as they are; a double only when whole (as renderText prints it: at most 15 digits).
      return `CASE json_type(${json}) WHEN 'BIGINT' THEN TRY_CAST(${json} AS BIGINT) WHEN 'UBIGINT' THEN TRY_CAST(${json} AS BIGINT)
        WHEN 'DOUBLE' THEN CASE WHEN ${isWhole(json)} THEN TRY_CAST(${json} AS DOUBLE)::BIGINT END END`;
    case 'boolean':
      return `CASE WHEN json_type(${json}) = 'BOOLEAN' THEN ${json}::VARCHAR = 'true' END`;
    case 'double':
      return `CASE WHEN ${numeric} AND isfinite(TRY_CAST(${json} AS DOUBLE)) THEN TRY_CAST(${json} AS DOUBLE) END`;
    case 'timestamp':
      return `CASE WHEN json_type(${json}) = 'VARCHAR' AND regexp_matches(${text}, '^[0-9]{4}-') THEN ${qualificationTimeSql(text)} END`;
  }
}

/** Rows whose mapped values do not convert to their Parquet column type. */
export function parquetTypeErrorsSql(shape: Shape, table: string): string | null {
  const checks = shape.columns
    .map((c, i) => ({ c, i }))
    .filter(({ c }) => c.type !== 'string')
    .map(
      ({
        c,
        i,
      }) => `SELECT k, ${literal(c.source)} AS source, ${literal(c.type)} AS type, ${renderText(`j${i}`)} AS value
       FROM ${ident(table)} WHERE j${i} IS NOT NULL AND ${typedValue(shape, i)} IS NULL`,
    );
  return checks.length ? `${checks.join(' UNION ALL ')} ORDER BY k LIMIT 10` : null;
}

/** Rows first..last (1-based, in table order) of a table; null: every row of a table or view. */
export type RowRange = { first: number; last: number } | null;

function rangeFilter(range: RowRange): string {
  return range ? `WHERE rowid BETWEEN ${range.first - 1} AND ${range.last - 1}` : '';
}

export function parquetCopySql(shape: Shape, table: string, range: RowRange, file: string, gzip: boolean): string {
  const cols = shape.columns.map((c, i) => `${typedValue(shape, i)}::${PARQUET_TYPES[c.type]} AS ${ident(c.target)}`);
  return `COPY (SELECT ${cols.join(', ')} FROM ${ident(table)} ${rangeFilter(range)})
    TO ${literal(file)} (FORMAT parquet, COMPRESSION ${gzip ? 'gzip' : 'snappy'})`;
}

/**
 * Writes the rows of `range` (in table order) of the rendered CSV or JSON lines verbatim,
 * one line and a "\n" each: with no quote and no escape character, DuckDB's CSV writer
 * adds nothing to a one-column value (it is parallel and needs no round trip through
 * JavaScript per line). The delimiter is never looked at for a single column.
 */
export function textLinesCopySql(
  shape: Shape,
  table: string,
  csv: CsvOptions | null,
  range: RowRange,
  file: string,
): string {
  const where = rangeFilter(range);
  const lines = csv ? csvLinesSql(shape, table, csv, where) : jsonLinesSql(shape, table, where);
  // COMPRESSION none: DuckDB would otherwise gzip a file whose name ends in .gz (staged
  // S3 parts keep their key's name), and Node gzips the lines itself.
  return `COPY (${lines}) TO ${literal(file)} (FORMAT csv, HEADER false, QUOTE '', ESCAPE '', DELIMITER ${literal('\u0001')}, COMPRESSION none)`;
}
