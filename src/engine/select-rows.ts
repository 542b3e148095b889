// Which profiles one run exports and the rows they become (SPEC §3–4), as SQL over the
// snapshot table (see load-snapshot.ts) and, for incremental runs, the baseline table.
//
// Rules kept here:
// - full: active members (realized / existing). incremental: enters (active now, not in
//   the baseline) and exits (in the baseline, not active now; vanished profiles too).
// - mandatory fields and dedup apply to members; exit rows are never excluded by them
//   (a vanished profile has no attributes left) and carry the baseline's ids when the
//   snapshot has none, so the consumer can still remove them.
// - dedup: per key value the profile with the latest lastQualificationTime wins; ties go
//   to the smaller tuple of the other columns as strings, then the smaller profile key.
//   A profile is exported only if it wins every key value it carries.
// - rows: one per id of the identity namespace; ordered by profile key, then id.
import type { Engine } from './session.js';
import type { Column, Shape } from './shape.js';
import { ident, literalList } from './sql.js';
import { ACTIVE_STATUSES } from './record-rules.js';

export type Selection =
  | { kind: 'full' }
  | { kind: 'diff'; baselineTable: string };

export interface SelectionCounts {
  profilesReceived: number;
  rowsWritten: number;
  excludedMandatory: number;
  excludedDuplicate: number;
  exitsOmitted: number;
}

/** The string form of a JSON value: strings as is, everything else as JSON text. */
export function renderText(json: string): string {
  return `CASE WHEN ${json} IS NULL THEN NULL WHEN json_type(${json}) = 'VARCHAR' THEN ${json} ->> '$' ELSE ${json}::VARCHAR END`;
}

const ACTIVE = `(${literalList(ACTIVE_STATUSES)})`;

/** A column's profile-level value as JSON (identity columns are filled in per row later). */
function columnValue(column: Column, row: string): string {
  let value: string;
  switch (column.ref.kind) {
    case 'attribute':
      value = `${row}.a${column.attribute}`;
      break;
    case 'status':
      value = `to_json(${row}.status)`;
      break;
    case 'qualificationTime':
      value = `to_json(${row}.qtime)`;
      break;
    case 'identity':
      value = `to_json(${row}.id)`;
      break;
  }
  if (!column.sha256) return value;
  return `to_json(sha256(lower(trim(${renderText(value)}))))`;
}

function candidatesSql(shape: Shape, snapshot: string, audience: number, selection: Selection): string {
  const attrs = shape.attributes.map((_, j) => `s.a${j}`).join(', ');
  const attrList = attrs ? `, ${attrs}` : '';
  const ids = shape.namespace !== null ? 's.ids' : '[]::VARCHAR[]';
  const members = `SELECT s.k, s.s${audience} AS status, s.q${audience} AS qtime, ${ids} AS ids${attrList}, 'member' AS kind
    FROM ${ident(snapshot)} s WHERE s.s${audience} IN ${ACTIVE}`;
  if (selection.kind === 'full') return members;
  const base = ident(selection.baselineTable);
  const exitIds = shape.namespace !== null ? `CASE WHEN len(s.ids) > 0 THEN s.ids ELSE b.ids END` : '[]::VARCHAR[]';
  return `SELECT m.* FROM (${members}) m ANTI JOIN ${base} b ON b.k = m.k
    UNION ALL
    SELECT b.k, 'exited' AS status, s.q${audience} AS qtime, ${exitIds} AS ids${attrList}, 'exit' AS kind
    FROM ${base} b LEFT JOIN ${ident(snapshot)} s ON s.k = b.k
    WHERE s.k IS NULL OR s.s${audience} IS NULL OR s.s${audience} NOT IN ${ACTIVE}`;
}

function missingSql(shape: Shape, column: Column): string {
  switch (column.ref.kind) {
    case 'identity':
      return 'len(c.ids) = 0';
    case 'status':
      return 'FALSE';
    default: {
      const text = renderText(columnValue(column, 'c'));
      return `coalesce(${text}, '') = ''`;
    }
  }
}

/**
 * Creates table `output` with columns ord, k and j0..jn (JSON values in mapping order) and
 * returns the run's counts.
 */
export async function selectRows(
  engine: Engine,
  shape: Shape,
  snapshot: string,
  audience: number,
  selection: Selection,
  output: string,
): Promise<SelectionCounts> {
  const cols = shape.columns;
  const mandatory = shape.required.map((i) => missingSql(shape, cols[i]!));
  const profileValues = cols.map((c, i) => (c.ref.kind === 'identity' ? `NULL::JSON AS j${i}` : `${columnValue(c, 'c')} AS j${i}`));
  const dedup = shape.dedup;
  const otherCols = cols
    .map((c, i) => ({ c, i }))
    .filter(({ c, i }) => c.ref.kind !== 'identity' && !(dedup?.kind === 'attributes' && dedup.columns.includes(i)));
  const tieBreak = otherCols.map(({ i }) => `${renderText(`v.j${i}`)} ASC NULLS LAST`);
  let keyValues = '';
  if (dedup?.kind === 'identity') keyValues = `SELECT v.k, unnest(v.ids)::VARCHAR AS key_value, v.* EXCLUDE (k) FROM valued v WHERE v.kind = 'member' AND v.ok`;
  if (dedup?.kind === 'attributes') {
    const parts = dedup.columns.map((i) => renderText(`v.j${i}`));
    keyValues = `SELECT v.k, to_json([${parts.join(', ')}])::VARCHAR AS key_value, v.* EXCLUDE (k) FROM valued v WHERE v.kind = 'member' AND v.ok`;
  }
  const winners = dedup
    ? `ranked AS (
         SELECT k, row_number() OVER (PARTITION BY key_value ORDER BY TRY_CAST(qtime AS TIMESTAMPTZ) DESC NULLS LAST${
           tieBreak.length ? `, ${tieBreak.join(', ')}` : ''
         }, k ASC) AS r
         FROM (${keyValues}) v),
       losers AS (SELECT DISTINCT k FROM ranked WHERE r > 1),`
    : `losers AS (SELECT NULL::VARCHAR AS k WHERE FALSE),`;
  const exitsWritten = shape.statusMapped ? 'TRUE' : 'FALSE';
  const idColumn = cols.findIndex((c) => c.ref.kind === 'identity');
  const finalValues = cols.map((c, i) => (i === idColumn ? `${columnValue(c, 'x')} AS j${i}` : `x.j${i}`));
  const sql = `CREATE OR REPLACE TEMP TABLE ${ident(output)} AS
    WITH candidates AS (${candidatesSql(shape, snapshot, audience, selection)}),
    valued AS (
      SELECT c.k, c.kind, c.status, c.qtime, c.ids,
        ${mandatory.length ? `NOT (${mandatory.join(' OR ')})` : 'TRUE'} AS ok,
        ${profileValues.join(', ')}
      FROM candidates c),
    ${winners}
    kept AS (
      SELECT v.* FROM valued v
      WHERE (v.kind = 'member' AND v.ok AND v.k NOT IN (SELECT k FROM losers))
         OR (v.kind = 'exit' AND ${exitsWritten})),
    exploded AS (
      SELECT kept.*, unnest(CASE WHEN len(kept.ids) = 0 THEN [NULL::VARCHAR] ELSE kept.ids END) AS id FROM kept)
    SELECT row_number() OVER (ORDER BY x.k, x.id) AS ord, x.k, ${finalValues.join(', ')}
    FROM exploded x
    ORDER BY x.k, x.id`;
  await engine.run(sql);
  // Counts come from the same candidate set, recomputed cheaply from the table just built.
  const countSql = `WITH candidates AS (${candidatesSql(shape, snapshot, audience, selection)}),
    valued AS (SELECT c.k, c.kind, ${mandatory.length ? `NOT (${mandatory.join(' OR ')})` : 'TRUE'} AS ok FROM (
      SELECT c.*, ${profileValues.join(', ')} FROM candidates c) c)
    SELECT
      count(*)::VARCHAR AS received,
      count(*) FILTER (WHERE kind = 'member' AND NOT ok)::VARCHAR AS mandatory,
      count(*) FILTER (WHERE kind = 'exit')::VARCHAR AS exits,
      (SELECT count(*) FROM ${ident(output)})::VARCHAR AS rows,
      (SELECT count(DISTINCT k) FROM ${ident(output)})::VARCHAR AS exported
    FROM valued`;
  const [row] = await engine.all<Record<string, string>>(countSql);
  const received = Number(row?.['received'] ?? 0);
  const excludedMandatory = Number(row?.['mandatory'] ?? 0);
  const exits = Number(row?.['exits'] ?? 0);
  const exported = Number(row?.['exported'] ?? 0);
  const exitsOmitted = shape.statusMapped ? 0 : exits;
  return {
    profilesReceived: received,
    rowsWritten: Number(row?.['rows'] ?? 0),
    excludedMandatory,
    excludedDuplicate: received - excludedMandatory - exitsOmitted - exported,
    exitsOmitted,
  };
}

/** The membership baseline after a run: every active member now, with its ids. */
export function baselineSql(shape: Shape, snapshot: string, audience: number): string {
  const ids = shape.namespace !== null ? 'ids' : '[]::VARCHAR[]';
  return `SELECT k, s${audience} AS status, q${audience} AS qtime, ${ids} AS ids FROM ${ident(snapshot)} WHERE s${audience} IN ${ACTIVE} ORDER BY k`;
}

export const EMPTY_BASELINE_SQL = `SELECT NULL::VARCHAR AS k, NULL::VARCHAR AS status, NULL::VARCHAR AS qtime, []::VARCHAR[] AS ids WHERE FALSE`;
