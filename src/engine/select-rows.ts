// Which profiles one run exports and the rows they become (README "What gets exported"), as SQL over the
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
//   A profile is exported only if it wins every key value it carries. In a diff, members
//   already in the destination (baseline, still active) compete too, and an exit row is
//   not written for an id such a member still holds.
// - rows: one per id of the identity namespace; ordered by profile key, then id.
//
// Names (i: column index in Shape.columns, j: attribute index in Shape.attributes; the
// snapshot table's columns k, ids, s<i>, q<i>, a<j> are explained in load-snapshot.ts):
//
//   baseline table (Selection.baselineTable; the Parquet file of README "State and safety" has the same columns):
//     k, status, qtime, ids   a profile the destination holds as a member: key, status and
//                             lastQualificationTime it was sent with, and its ids (VARCHAR[])
//   candidates (subquery `c`; in a diff built from the join `j` of snapshot `s` and baseline `b`,
//   whose s_status/s_qtime/s_ids and b_status/b_qtime/b_ids are each side's values):
//     k, status, qtime, ids   the profile and the membership values this run uses
//     kind                    'member' | 'exit' | 'retained' | 'unread' (see candidatesSql)
//     a<j>                    attribute values (JSON), only where they can be written or make a retained member's dedup key
//   <output>_valued (alias `v`; a table, or a view for a full run that leaves no baseline: see candidatesInTable),
//   the candidates with
//     ok                      every mandatory field is present
//     j<i>                    column i's value as JSON, transforms applied (identity columns NULL here)
//     lost                    (a table only) the candidate loses a dedup key value, set by an UPDATE
//   <output>_lost (ENUM type; candidates in a view, with dedup): the keys of the candidates that lose a dedup key value
//   <output>_marked (view; candidates in a view): <output>_valued with lost: its k is a value of <output>_lost
//   <output> (alias `x`), the run's rows in file order (a view for a full selection, a table for a diff):
//     k, kind                 the profile and 'member' | 'exit'
//     j<i>                    column i's value as JSON (identity columns: the row's id)
//   inside the queries: key_value (one dedup key value of a profile), id (one id of a profile's ids, a row)
import type { Engine } from './session.js';
import type { Column, Shape } from './shape.js';
import { ident, literal, literalList } from './sql.js';
import { ACTIVE_STATUSES, UNREADABLE } from './record-rules.js';
import { numberedTableOf } from './run-rows.js';
import type { LoadedSnapshot } from './load-snapshot.js';

/**
 * A full selection, or a diff against a baseline table. A full selection's candidates are a
 * view unless `keepCandidates` (the run then writes its next baseline from them).
 */
export type Selection = { kind: 'full'; keepCandidates?: boolean } | { kind: 'diff'; baselineTable: string };

export interface SelectionCounts {
  profilesReceived: number;
  rowsWritten: number;
  excludedMandatory: number;
  excludedDuplicate: number;
  exitsOmitted: number;
  /** Profiles written as exit rows (status `exited`; only when the status is mapped). */
  exitsWritten: number;
}

/**
 * The string form of a JSON value: strings as is, everything else as JSON text. Whole
 * doubles print as integers (1e3 and 1.0 read back as 1000 and 1, as JSON.stringify does),
 * also inside arrays and objects.
 */
export function renderText(json: string): string {
  // A JSON string (the common case) is told by its first character, without parsing it.
  return `CASE WHEN starts_with(${json}::VARCHAR, '"') THEN json_extract_string(${json}, '$') ELSE CASE json_type(${json})
    WHEN 'VARCHAR' THEN json_extract_string(${json}, '$')
    WHEN 'DOUBLE' THEN CASE WHEN ${isWhole(json)} THEN TRY_CAST(${json} AS DOUBLE)::BIGINT::VARCHAR ELSE ${json}::VARCHAR END
    WHEN 'OBJECT' THEN ${wholeNumbersInText(`${json}::VARCHAR`)}
    WHEN 'ARRAY' THEN ${wholeNumbersInText(`${json}::VARCHAR`)}
    ELSE ${json}::VARCHAR END END`;
}

/** The same JSON value with whole doubles as integers, at any depth (JSON-lines output). */
export function normalizeJson(json: string): string {
  return `CASE WHEN starts_with(${json}::VARCHAR, '"') THEN ${json} ELSE CASE json_type(${json})
    WHEN 'DOUBLE' THEN CASE WHEN ${isWhole(json)} THEN to_json(TRY_CAST(${json} AS DOUBLE)::BIGINT) ELSE ${json} END
    WHEN 'OBJECT' THEN ${wholeNumbersInText(`${json}::VARCHAR`)}::JSON
    WHEN 'ARRAY' THEN ${wholeNumbersInText(`${json}::VARCHAR`)}::JSON
    ELSE ${json} END END`;
}

/** A JSON double that is a whole number of at most 15 digits (it prints as an integer). */
export function isWhole(json: string): string {
  return `(TRY_CAST(${json} AS DOUBLE) = trunc(TRY_CAST(${json} AS DOUBLE)) AND abs(TRY_CAST(${json} AS DOUBLE)) < 1e15)`;
}

/**
 * Nested JSON as the engine prints it writes every double with a fraction (1e3 → 1000.0).
 * Strings are matched whole (and kept), so only a number's `.0` is dropped; whole numbers
 * of up to 15 digits, the exact range of the scalar rule. A number is matched with the
 * delimiters around it (the engine's regexes have no lookaround), so two neighbours share
 * one: a second pass takes those the first skipped (they are never next to each other).
 */
function wholeNumbersInText(text: string): string {
  const pass = (t: string) =>
    `regexp_replace(${t}, ${literal('("(?:[^"\\\\]|\\\\.)*")|([:,[]-?[0-9]{1,15})\\.0([,\\]}])')}, '\\1\\2\\3', 'g')`;
  return pass(pass(text));
}

const ACTIVE = `(${literalList(ACTIVE_STATUSES)})`;

/** An RFC 3339 text as TIMESTAMPTZ; the engine's parser wants the `T` and `Z` upper-case. */
export function qualificationTimeSql(text: string): string {
  return `TRY_CAST(upper(${text}) AS TIMESTAMPTZ)`;
}

/**
 * A column's profile-level value as JSON (identity columns are filled in per row later);
 * `raw` skips the transform (mandatory checks look at the value before hashing).
 */
function columnValue(shape: Shape, column: Column, row: string, raw = false): string {
  let value: string;
  switch (column.ref.kind) {
    case 'attribute':
      // The key path always has a value (a vanished member has no attributes left, but its key).
      value = isKeyPath(shape, column)
        ? `coalesce(${row}.a${column.attribute}, to_json(${row}.k))`
        : `${row}.a${column.attribute}`;
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
  if (!column.sha256 || raw) return value;
  return `to_json(sha256(${jsLowerTrim(renderText(value))}))`;
}

function isKeyPath(shape: Shape, column: Column): boolean {
  return column.ref.kind === 'attribute' && column.ref.path.join('.') === shape.keyPath.join('.');
}

/**
 * sha256's normalisation, exactly JavaScript's `text.trim().toLowerCase()`. ASCII text (the
 * common case) takes the fast path: ASCII whitespace trimmed, lower(). Other text is
 * trimmed of every character trim() removes (WhiteSpace and LineTerminator, as an RE2
 * class) and lower-cased where the engine's lower() differs from toLowerCase: a final
 * capital sigma (ς at the end of a word), U+0130 (i + combining dot above), and the
 * letters of recent Unicode versions the engine's tables lack, mapped with the JS
 * engine's own data (test/unit/sha256-normalise.test.ts compares every cased character).
 */
const ASCII_SPACE = ' \t\n\x0b\f\r';
const JS_TRIM_CLASS =
  '[\\t\\n\\x{0B}\\f\\r \\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}\\x{202F}\\x{205F}\\x{3000}\\x{FEFF}]';
/** Code points whose lower case the engine's lower() does not know (Unicode 16 additions). */
const LOWER_GAPS: [number, number][] = [
  [0x1c89, 0x1c89],
  [0xa7c0, 0xa7ff],
  [0x10d50, 0x10d65],
  [0x16ea0, 0x16eb8],
];
function lowerGapTable(): { from: string; to: string } {
  let from = '';
  let to = '';
  for (const [first, last] of LOWER_GAPS) {
    for (let cp = first; cp <= last; cp++) {
      const ch = String.fromCodePoint(cp);
      const lower = ch.toLowerCase();
      if (lower !== ch && [...lower].length === 1) {
        from += ch;
        to += lower;
      }
    }
  }
  return { from, to };
}
export function jsLowerTrim(text: string): string {
  const trimmed = `regexp_replace(${text}, ${literal(`^${JS_TRIM_CLASS}+|${JS_TRIM_CLASS}+$`)}, '', 'g')`;
  const sigma = `regexp_replace(${trimmed}, '(\\pL\\pM*)Σ(\\PL|$)', '\\1ς\\2', 'g')`;
  const { from, to } = lowerGapTable();
  const other = `translate(lower(replace(${sigma}, 'İ', 'i̇')), ${literal(from)}, ${literal(to)})`;
  // A text is ASCII when it has as many bytes as characters.
  return `CASE WHEN strlen(${text}) = length(${text}) THEN lower(trim(${text}, ${literal(ASCII_SPACE)})) ELSE ${other} END`;
}

/**
 * Candidate profiles, each with a kind:
 *   'member'   active (for a diff: and not in the baseline) — exported;
 *   'exit'     diff only: in the baseline, not active now (or gone) — exported when the
 *              status is mapped;
 *   'retained' diff only: in the baseline and still active — already in the destination,
 *              never written again, but still holding its dedup keys and ids;
 *   'unread'   diff only: in the baseline, with an unreadable entry this time — neither
 *              entering nor exiting; it stays in the baseline as it was.
 * A diff joins the snapshot's profiles with an entry for the audience with the baseline
 * once, and looks up the baseline's other profiles (exits) alone. Rows that are not
 * written carry attributes only when dedup ranks them. Exit, unread and retained rows
 * hold the baseline's ids: the ids the destination was sent (identity-only changes are
 * never exported), which the next baseline keeps and an exit row removes.
 */
function candidatesSql(shape: Shape, snapshot: string, audience: number, selection: Selection): string {
  const snap = ident(snapshot);
  const hasIds = shape.namespace !== null;
  const active = `s.s${audience} IN ${ACTIVE}`;
  const snapAttrs = shape.attributes.map((_, j) => `, s.a${j}`).join('');
  if (selection.kind === 'full') {
    return `SELECT s.k, 'member' AS kind, s.s${audience}::VARCHAR AS status, s.q${audience} AS qtime, ${hasIds ? 's.ids' : NO_IDS} AS ids${snapAttrs}
      FROM ${snap} s WHERE ${active}`;
  }
  const kind = `CASE WHEN b.k IS NULL THEN 'member'
      WHEN s.s${audience} = ${literal(UNREADABLE)} THEN 'unread'
      WHEN s.k IS NOT NULL AND ${active} THEN 'retained'
      ELSE 'exit' END`;
  // Profiles with an entry for the audience (active, exited or unreadable; a fraction of the
  // snapshot) are joined with the baseline; baseline profiles without one are exits, and
  // only they look up the rest of the snapshot (for their current attributes, if still there).
  const base = ident(selection.baselineTable);
  const hasEntry = `s${audience} IS NOT NULL`;
  const baseCols = `b.status AS b_status, b.qtime AS b_qtime, ${hasIds ? 'b.ids' : NO_IDS} AS b_ids`;
  const joined = `SELECT ${kind} AS kind, s.k, s.s${audience}::VARCHAR AS s_status, s.q${audience} AS s_qtime,
      ${hasIds ? 's.ids' : NO_IDS} AS s_ids, ${baseCols}${snapAttrs}
    FROM (SELECT * FROM ${snap} WHERE ${hasEntry}) s LEFT JOIN ${base} b ON s.k = b.k
    WHERE b.k IS NOT NULL OR (${active})
    UNION ALL BY NAME
    SELECT 'exit' AS kind, b.k, NULL::VARCHAR AS s_status, NULL::VARCHAR AS s_qtime, ${NO_IDS} AS s_ids, ${baseCols}${snapAttrs}
    FROM ${base} b ANTI JOIN (SELECT k FROM ${snap} WHERE ${hasEntry}) e ON e.k = b.k
      LEFT JOIN ${snap} s ON s.k = b.k`;
  // Rows that are not written carry an attribute only when it makes a retained member's
  // dedup key (a retained member outranks every newcomer, so nothing else of it is compared).
  const keyAttributes = new Set(
    shape.dedup?.kind === 'attributes' ? shape.dedup.columns.map((i) => shape.columns[i]!.attribute) : [],
  );
  const attrs = shape.attributes
    .map(
      (_, j) =>
        `, CASE WHEN j.kind IN ${keyAttributes.has(j) ? `('member', 'exit', 'retained')` : `('member', 'exit')`} THEN j.a${j} END AS a${j}`,
    )
    .join('');
  return `SELECT j.k, j.kind,
      CASE j.kind WHEN 'exit' THEN 'exited' WHEN 'unread' THEN j.b_status ELSE j.s_status END AS status,
      CASE j.kind WHEN 'unread' THEN j.b_qtime ELSE j.s_qtime END AS qtime,
      CASE WHEN j.kind = 'member' THEN j.s_ids ELSE coalesce(j.b_ids, ${NO_IDS}) END AS ids${attrs}
    FROM (${joined}) j`;
}

const NO_IDS = '[]::VARCHAR[]';

function missingSql(shape: Shape, column: Column): string {
  switch (column.ref.kind) {
    case 'identity':
      return 'len(c.ids) = 0';
    case 'status':
      return 'FALSE';
    default: {
      const text = renderText(columnValue(shape, column, 'c', true));
      return `coalesce(${text}, '') = ''`;
    }
  }
}

/** The snapshot a selection reads: its table (or view) and whether its rows are in key order. */
export type SnapshotRows = Pick<LoadedSnapshot, 'table' | 'keysInOrder'>;

/**
 * Creates `output` (k, kind 'member' | 'exit', j0..jn: JSON values in mapping order; a
 * view for a full selection, a table for a diff) and returns the run's counts. Leaves the
 * marked candidates for baselineSql; the caller drops what selectionObjects names.
 */
export async function selectRows(
  engine: Engine,
  shape: Shape,
  snapshot: SnapshotRows,
  audience: number,
  selection: Selection,
  output: string,
): Promise<SelectionCounts> {
  const { valued, lost, marked: markingView } = namesOf(output);
  const inTable = candidatesInTable(selection);
  const candidates = valuedSql(shape, snapshot.table, audience, selection);
  if (inTable) {
    // Members that lose a dedup key are marked in place: the rows keep their order.
    await engine.run(`CREATE OR REPLACE TABLE ${ident(valued)} AS SELECT *, FALSE AS lost FROM (${candidates})`);
    if (shape.dedup)
      await engine.run(`UPDATE ${ident(valued)} SET lost = TRUE WHERE k IN (${losersSql(shape, selection, valued)})`);
  } else {
    // A view cannot be updated: the few members that lose a dedup key become the values of
    // an ENUM type, and a candidate is marked by a cast to it, a lookup per row that keeps
    // the rows in order (a join with a table of them does not).
    await engine.run(`CREATE OR REPLACE VIEW ${ident(valued)} AS ${candidates}`);
    if (shape.dedup)
      await engine.run(`CREATE OR REPLACE TYPE ${ident(lost)} AS ENUM (${losersSql(shape, selection, valued)})`);
    const isLost = shape.dedup ? `TRY_CAST(v.k AS ${ident(lost)}) IS NOT NULL` : 'FALSE';
    await engine.run(
      `CREATE OR REPLACE VIEW ${ident(markingView)} AS SELECT v.*, ${isLost} AS lost FROM ${ident(valued)} v`,
    );
  }
  const marked = markedOf(output, selection);
  if (selection.kind === 'diff') await engine.run(diffRowsSql(shape, marked, output));
  else {
    // Rows go out ordered by profile key, then id. A full selection's rows are a view on its
    // candidates, read once by the file writer. Candidates from a snapshot in key order keep
    // it through the filters and the id explosion, since the engine preserves insertion order
    // (session.ts) and each profile's ids are sorted at load, so the view skips the sort;
    // otherwise it sorts.
    const presorted = await snapshot.keysInOrder(engine);
    await engine.run(fullRowsSql(shape, marked, output, !presorted));
  }
  return countSelection(engine, shape, selection, marked, output);
}

/**
 * Whether the candidates are a table. A full selection's are a view on the snapshot: the file
 * writer computes their values as it reads them, and no table of millions of candidates is
 * written and read back. A diff's come from a join with the baseline and a backfill's are
 * read once more for the next baseline: reading them again from a snapshot table larger
 * than the engine's memory costs more than the table (10M backfill 76.8 s against 72.1 s).
 */
function candidatesInTable(selection: Selection): boolean {
  return selection.kind === 'diff' || selection.keepCandidates === true;
}

/** The candidates with their `lost` mark: the table itself, or the view that marks a view's. */
function markedOf(output: string, selection: Selection): string {
  const { valued, marked } = namesOf(output);
  return candidatesInTable(selection) ? valued : marked;
}

/** The objects a selection into `output` makes besides it (see the table of names at the top). */
function namesOf(output: string): { valued: string; lost: string; marked: string } {
  return { valued: `${output}_valued`, lost: `${output}_lost`, marked: `${output}_marked` };
}

/** The candidates with their profile-level values and whether they have every mandatory field. */
function valuedSql(shape: Shape, snapshot: string, audience: number, selection: Selection): string {
  const cols = shape.columns;
  const mandatory = shape.required.map((i) => missingSql(shape, cols[i]!));
  const profileValues = cols.map((c, i) =>
    c.ref.kind === 'identity' ? `NULL::JSON AS j${i}` : `${columnValue(shape, c, 'c')} AS j${i}`,
  );
  return `SELECT c.k, c.kind, c.status, c.qtime, c.ids,
      ${mandatory.length ? `NOT (${mandatory.join(' OR ')})` : 'TRUE'} AS ok,
      ${profileValues.join(', ')}
    FROM (${candidatesSql(shape, snapshot, audience, selection)}) c`;
}

/** The profile keys that lose a dedup key value (shape.dedup is set). */
function losersSql(shape: Shape, selection: Selection, valued: string): string {
  const dedup = shape.dedup!;
  const otherCols = shape.columns
    .map((c, i) => ({ c, i }))
    .filter(({ c, i }) => c.ref.kind !== 'identity' && !(dedup.kind === 'attributes' && dedup.columns.includes(i)));
  const tieBreak = otherCols.map(({ i }) => `, ${renderText(`c.j${i}`)} ASC NULLS LAST`).join('');
  const keyValue =
    dedup.kind === 'identity'
      ? 'unnest(v.ids)::VARCHAR'
      : `to_json([${dedup.columns.map((i) => renderText(`v.j${i}`)).join(', ')}])::VARCHAR`;
  // Only key values held by more than one profile need the (costly) ranking. A retained
  // member keeps what it holds: the destination already has it under that value. So only
  // values a newcomer holds are contested (in a diff, a few among the retained members').
  const diff = selection.kind === 'diff';
  const holders = `FROM ${ident(valued)} v WHERE (v.kind = 'member' AND v.ok) OR v.kind = 'retained'`;
  // Repeated values are first found by their hash: grouping millions of 8-byte hashes is
  // far cheaper than grouping the texts. A hash shared by chance only lets a value through
  // to the exact ranking of the few that pass, whose partitions by the value itself decide
  // (a value held once has no loser). Those few carry what the ranking compares, so the
  // candidates are read twice in all.
  const carried = otherCols.map(({ i }) => `, v.j${i}`).join('');
  return `WITH repeated AS (SELECT h FROM (SELECT hash(${keyValue}) AS h, v.kind ${holders}) GROUP BY h HAVING count(*) > 1${diff ? ` AND bool_or(kind = 'member')` : ''}),
    keyed AS (SELECT * FROM (SELECT ${keyValue} AS key_value, v.k, v.kind, v.qtime${carried} ${holders})
      WHERE hash(key_value) IN (SELECT h FROM repeated))
    SELECT DISTINCT k FROM (
      SELECT c.k, row_number() OVER (PARTITION BY c.key_value ORDER BY c.kind = 'retained' DESC, ${qualificationTimeSql('c.qtime')} DESC NULLS LAST${tieBreak}, c.k ASC) AS r
        ${diff ? `, bool_or(c.kind = 'member') OVER (PARTITION BY c.key_value) AS newcomer` : ''}
      FROM keyed c)
    WHERE r > 1${diff ? ' AND newcomer' : ''}`;
}

/** The written row's values: the profile's, and the identity column's value of this row's id. */
function rowValues(shape: Shape): string {
  const idColumn = shape.columns.findIndex((c) => c.ref.kind === 'identity');
  return shape.columns
    .map((c, i) => (i === idColumn ? `${columnValue(shape, c, 'x')} AS j${i}` : `x.j${i}`))
    .join(', ');
}

/** A candidate exported as a member: a newcomer with every mandatory field that lost no dedup key. */
const EXPORTED_MEMBER = `kind = 'member' AND ok AND NOT lost`;

/** One row per id of each candidate in `from` (one row without an id when it has none). */
const explodeSql = (from: string) =>
  `SELECT r.*, unnest(CASE WHEN len(r.ids) = 0 THEN [NULL::VARCHAR] ELSE r.ids END) AS id FROM ${from} r`;

/** A diff's rows: entering members and (when the status is mapped) exits, sorted. */
function diffRowsSql(shape: Shape, marked: string, output: string): string {
  const v = ident(marked);
  return `CREATE OR REPLACE TABLE ${ident(output)} AS
    WITH kept AS (
      SELECT v.* FROM ${v} v
      WHERE (${EXPORTED_MEMBER})
         OR (kind = 'exit' AND ${shape.statusMapped ? 'TRUE' : 'FALSE'})),
    exploded AS (${explodeSql('kept')}),
    -- An exit must not remove an id that a member the destination keeps still holds.
    exit_ids AS (SELECT DISTINCT id FROM exploded WHERE kind = 'exit' AND id IS NOT NULL),
    held AS (
      SELECT id FROM exploded WHERE kind = 'member' AND id IN (SELECT id FROM exit_ids)
      UNION SELECT id FROM (SELECT unnest(ids) AS id FROM ${v} WHERE kind = 'retained') WHERE id IN (SELECT id FROM exit_ids))
    SELECT x.k, x.kind, ${rowValues(shape)}
    FROM exploded x
    WHERE NOT (x.kind = 'exit' AND x.id IS NOT NULL AND x.id IN (SELECT id FROM held))
    ORDER BY x.k, x.id`;
}

/** A full selection's rows (a view): members only (no exit, so no id held back), a filter and the id explosion. */
function fullRowsSql(shape: Shape, marked: string, output: string, sorted: boolean): string {
  return `CREATE OR REPLACE VIEW ${ident(output)} AS
    SELECT x.k, x.kind, ${rowValues(shape)}
    FROM (${explodeSql(`(SELECT * FROM ${ident(marked)} WHERE ${EXPORTED_MEMBER})`)}) x
    ${sorted ? 'ORDER BY x.k, x.id' : ''}`;
}

async function countSelection(
  engine: Engine,
  shape: Shape,
  selection: Selection,
  marked: string,
  output: string,
): Promise<SelectionCounts> {
  const out = ident(output);
  // A full selection writes every exported member (at least one row each: one without an
  // id when it has none) and nothing else, so its profiles are counted on the candidates,
  // without a distinct count over millions of rows. A diff may hold back exit rows.
  const full = selection.kind === 'full';
  const exported = full ? `count(*) FILTER (WHERE ${EXPORTED_MEMBER})` : `(SELECT count(DISTINCT k) FROM ${out})`;
  const exitsWritten = full ? '0' : `(SELECT count(DISTINCT k) FROM ${out} WHERE kind = 'exit')`;
  // A full selection's rows (a view): one per id of each exported member, one without an id.
  const rows = full
    ? `coalesce(sum(CASE WHEN len(ids) = 0 THEN 1 ELSE len(ids) END) FILTER (WHERE ${EXPORTED_MEMBER}), 0)`
    : `(SELECT count(*) FROM ${out})`;
  const [row] = await engine.all<Record<string, string>>(`SELECT
      count(*) FILTER (WHERE kind IN ('member', 'exit'))::VARCHAR AS received,
      count(*) FILTER (WHERE kind = 'member' AND NOT ok)::VARCHAR AS mandatory,
      count(*) FILTER (WHERE kind = 'exit')::VARCHAR AS exits,
      ${rows}::VARCHAR AS rows,
      ${exported}::VARCHAR AS exported,
      ${exitsWritten}::VARCHAR AS exits_written
    FROM ${ident(marked)}`);
  const received = Number(row?.['received'] ?? 0);
  const excludedMandatory = Number(row?.['mandatory'] ?? 0);
  const exitsOmitted = shape.statusMapped ? 0 : Number(row?.['exits'] ?? 0);
  return {
    profilesReceived: received,
    rowsWritten: Number(row?.['rows'] ?? 0),
    excludedMandatory,
    // Members that lost a dedup key, and exits whose every id is still held by a kept member.
    excludedDuplicate: received - excludedMandatory - exitsOmitted - Number(row?.['exported'] ?? 0),
    exitsOmitted,
    exitsWritten: Number(row?.['exits_written'] ?? 0),
  };
}

/**
 * The membership baseline after a run (README "State and safety"): the profiles exported as members — this
 * run's members, plus the previous baseline's members that are still active (or whose
 * entry is unreadable this time, kept as they were). Exits leave it. Read from the
 * candidates selectRows left, so the snapshot is not joined with the baseline again: the
 * members exported are the candidates both row queries keep as members (each gets a row).
 */
export function baselineSql(output: string, selection: Selection): string {
  return `SELECT k, status, qtime, ids FROM ${ident(markedOf(output, selection))}
    WHERE kind IN ('retained', 'unread') OR (${EXPORTED_MEMBER})
    ORDER BY k`;
}

/**
 * What selectRows(…, output) creates, for the caller to drop: a full selection's rows are a
 * view (and a numbered copy of it when a run is split over several files), a diff's a table.
 */
export function selectionObjects(
  output: string,
  selection: Selection,
): { views: string[]; tables: string[]; types: string[] } {
  const { valued, lost, marked } = namesOf(output);
  const candidates = candidatesInTable(selection)
    ? { views: [], tables: [valued], types: [] }
    : { views: [marked, valued], tables: [], types: [lost] };
  const rows =
    selection.kind === 'full'
      ? { views: [output], tables: [numberedTableOf(output)] }
      : { views: [], tables: [output] };
  return {
    views: [...rows.views, ...candidates.views],
    tables: [...rows.tables, ...candidates.tables],
    types: candidates.types,
  };
}

/** Active members per audience (index order of Shape.audiences), excluding bad entries. */
export function activeMembersSql(shape: Shape, snapshot: string): string {
  const counts = shape.audiences.map((_, i) => `count(*) FILTER (WHERE s${i} IN ${ACTIVE})::VARCHAR AS m${i}`);
  return `SELECT ${counts.join(', ')} FROM ${ident(snapshot)}`;
}
