// The per-profile diff of the HTTP API destination (README "Send to an HTTP endpoint": what triggers a message, a message), as SQL over the
// snapshot table (load-http-snapshot.ts) and the baseline (the previous run's, or empty).
//
// Baseline, one row per profile active in at least one mapped audience:
//   k, act (mapped audiences it is active in), idj (its whole identityMap as JSON text: the
//   identity set to compare with, and the identityMap of the exit message of a member that
//   vanishes), idr (hash of idj), ah (hash of the mapped attributes, numbers normalised).
// The snapshot table carries the same act, idr, ah and idj per profile (profileColumns).
//
// Triggers, per profile: entered (an audience in act now, not before), exited (before, not
// now; a vanished member too), identity (active now and before, and the set of namespace +
// id pairs changed: compared only where idr differs), attribute (active now and before, ah
// changed). realized ↔ existing is not a change; unmapped audiences never trigger. A newly
// mapped audience is in no baseline row, so its members all enter: the backfill of that
// audience alone.
//
// Cost: the diff joins only the narrow columns (k, act, idr, ah) of the snapshot and the
// baseline and keeps the profiles that changed (`<prefix>_d`); identities are parsed only
// where idr differs; the wide columns (memberships, attributes, identityMap) are read for
// the changed profiles alone, when their messages are built. Messages are JSON text, in
// profile key order, written to a file by the engine: they never sit in Node's memory all
// at once. Unreadable (skipped) profiles are in neither side of the diff: no message, and
// their baseline rows are carried over as they were.
import { ACTIVE_STATUSES } from './record-rules.js';
import type { Engine } from './session.js';
import type { HttpShape } from './load-http-snapshot.js';
import { ident, literal, literalList } from './sql.js';

export interface AudienceMeta {
  id: string;
  name: string;
  mergePolicyId: string | null;
  createdAt: number | null;
  updatedAt: number | null;
  /** Mapped audiences only: when the dataflow first mapped it (epoch ms). */
  mappingCreatedAt: number | null;
  mappingUpdatedAt: number | null;
}

export interface MessageOptions {
  segmentMembership: 'mergePolicy' | 'all' | 'mapped';
  includeSegmentNames: boolean;
  includeSegmentTimestamps: boolean;
  /** The snapshot's evaluatedAt (RFC 3339): lastQualificationTime of synthesized exits. */
  evaluatedAt: string;
  /** Every audience the snapshot describes, plus the mapped ones. */
  audiences: AudienceMeta[];
  /** The snapshot's merge policy: that of audiences without their own. */
  defaultMergePolicy: string | null;
}

/** The tables of one diff: the snapshot (with `<snapshot>_skip`), the baseline, and `<prefix>_d`. */
export interface DiffTables {
  prefix: string;
  snapshot: string;
  baseline: string;
}

export interface DiffCounts {
  entered: number;
  exited: number;
  identity: number;
  attribute: number;
  messages: number;
  baselineSize: number;
}

/** The baseline columns; an empty one for the first run. */
export function emptyBaselineSql(table: string): string {
  return `CREATE OR REPLACE TABLE ${ident(table)} (k VARCHAR, act VARCHAR[], idr UBIGINT, ah UBIGINT, idj VARCHAR)`;
}

export function loadBaselineSql(table: string, parquetPath: string): string {
  return `CREATE OR REPLACE TABLE ${ident(table)} AS SELECT k, act, idr, ah, idj FROM read_parquet(${literal(parquetPath)})`;
}

const ACTIVE = `(${literalList(ACTIVE_STATUSES)})`;

/** A JSON value with numbers in one form (1, 1.0 and 1e0 compare equal). */
function normalised(json: string): string {
  return `CASE WHEN json_type(${json}) IN ('BIGINT', 'UBIGINT', 'DOUBLE', 'HUGEINT') THEN TRY_CAST(${json} AS DOUBLE)::VARCHAR ELSE ${json}::VARCHAR END`;
}

const list = (items: string[]) => `[${items.join(', ')}]::VARCHAR[]`;

/** The identityMap type, for reading an identityMap's JSON text as a set of pairs. */
const IDMAP_TYPE = 'MAP(VARCHAR, STRUCT(id VARCHAR)[])';

/** The identityMap column `idmap` of the snapshot read as JSON text (idj). */
export const IDENTITY_JSON = "coalesce(to_json(idmap)::VARCHAR, '{}')";

/** A hash of the identities (JSON text) as a set of namespace + id pairs (order and repeats ignored). */
function pairsHash(idj: string): string {
  const map = `${idj}::JSON::${IDMAP_TYPE}`;
  return `hash(coalesce(list_sort(list_distinct(flatten(list_transform(coalesce(map_entries(${map}), []),
      lambda e: list_transform(list_filter(coalesce(e.value, []), lambda x: x.id IS NOT NULL), lambda x: e.key || chr(0) || x.id))))), []::VARCHAR[]))`;
}

/** The ids of `ids` for which `test(id)` holds, as a list (built per audience: no lambda per row). */
function pick(ids: string[], test: (id: string) => string): string {
  return ids.length
    ? `list_distinct(${list(ids.map((a) => `CASE WHEN ${test(literal(a))} THEN ${literal(a)} END`))})`
    : '[]::VARCHAR[]';
}

/**
 * The per-profile values the diff compares, over a row with ups, idj and a<j>: act (the
 * mapped audiences it is active in), idr (hash of idj) and ah (hash of the mapped
 * attributes). Stored hashes are MD5-based (stable across engine versions); JSON text
 * holds no raw control character, so chr(1) separates values and chr(2) stands for an
 * absent one.
 */
export function profileColumns(shape: HttpShape): string {
  const act = pick(shape.audiences, (a) => `ups[${a}].status IN ${ACTIVE}`);
  const ah = `md5_number_upper(concat_ws(chr(1), ${[...shape.attributes.map((_, j) => `coalesce(${normalised(`a${j}`)}, chr(2))`), "''"].join(', ')}))`;
  return `${act} AS act, md5_number_upper(idj) AS idr, ${ah} AS ah`;
}

const CHANGED = '(len(entered) > 0 OR len(exited) > 0 OR t_id OR t_attr)';

/**
 * Builds `<prefix>_d`: one narrow row per profile that may have changed (pk, present, act,
 * prev, entered, exited, t_id, t_attr), from the hashes alone; then, for the few whose idr
 * differs, compares the identities as sets of pairs (a reordering alone is not a change).
 */
export async function diffProfiles(engine: Engine, shape: HttpShape, tables: DiffTables): Promise<DiffCounts> {
  const mapped = list(shape.audiences.map((a) => literal(a)));
  const snap = ident(tables.snapshot);
  const base = ident(tables.baseline);
  const skip = `(SELECT k FROM ${ident(`${tables.snapshot}_skip`)})`;
  const d = ident(`${tables.prefix}_d`);
  await engine.run(`CREATE OR REPLACE TABLE ${d} AS
    WITH joined AS (
      SELECT coalesce(c.k, b.k) AS pk, c.k IS NOT NULL AS present, coalesce(c.act, []::VARCHAR[]) AS act, b.act AS bact,
        c.act IS NOT DISTINCT FROM b.act AS same_act, c.idr IS DISTINCT FROM b.idr AS id_differs, c.ah IS DISTINCT FROM b.ah AS ah_differs
      FROM (SELECT k, act, idr, ah FROM ${snap} WHERE k NOT IN ${skip}) c
      FULL JOIN (SELECT k, act, idr, ah FROM ${base} WHERE k NOT IN ${skip}) b ON c.k = b.k
      WHERE len(c.act) > 0 OR b.k IS NOT NULL
    ), maybe AS (
      -- Most profiles have the same memberships and hashes as before: they go no further.
      SELECT pk, present, act, CASE WHEN same_act THEN act ELSE list_intersect(coalesce(bact, []::VARCHAR[]), ${mapped}) END AS prev, same_act, id_differs, ah_differs
      FROM joined WHERE NOT same_act OR id_differs OR ah_differs
    ), flagged AS (
      SELECT pk, present, act, prev,
        CASE WHEN same_act THEN []::VARCHAR[] ELSE ${pick(shape.audiences, (a) => `list_contains(act, ${a}) AND NOT list_contains(prev, ${a})`)} END AS entered,
        CASE WHEN same_act THEN []::VARCHAR[] ELSE ${pick(shape.audiences, (a) => `list_contains(prev, ${a}) AND NOT list_contains(act, ${a})`)} END AS exited,
        len(act) > 0 AND len(prev) > 0 AND id_differs AS t_id, len(act) > 0 AND len(prev) > 0 AND ah_differs AS t_attr
      FROM maybe
    )
    SELECT * FROM flagged WHERE ${CHANGED}`);
  // t_id so far means "idr differs": settle it on the identities as sets.
  await engine.run(`UPDATE ${d} SET t_id = x.changed
    FROM (SELECT s.k, ${pairsHash('s.idj')} IS DISTINCT FROM ${pairsHash('b.idj')} AS changed
          FROM ${snap} s JOIN ${base} b ON s.k = b.k WHERE s.k IN (SELECT pk FROM ${d} WHERE t_id)) x
    WHERE ${d}.pk = x.k AND ${d}.t_id`);
  const [c] = await engine.all<Record<string, string>>(`SELECT
      count(*) FILTER (WHERE len(entered) > 0)::VARCHAR AS entered,
      count(*) FILTER (WHERE len(exited) > 0)::VARCHAR AS exited,
      count(*) FILTER (WHERE t_id)::VARCHAR AS identity,
      count(*) FILTER (WHERE t_attr)::VARCHAR AS attribute,
      count(*) FILTER (WHERE ${CHANGED})::VARCHAR AS messages,
      (SELECT count(*) FROM (${nextBaselineSql(tables)}))::VARCHAR AS baseline
    FROM ${d}`);
  return {
    entered: Number(c?.['entered'] ?? 0),
    exited: Number(c?.['exited'] ?? 0),
    identity: Number(c?.['identity'] ?? 0),
    attribute: Number(c?.['attribute'] ?? 0),
    messages: Number(c?.['messages'] ?? 0),
    baselineSize: Number(c?.['baseline'] ?? 0),
  };
}

/** The next baseline: active profiles now, and unreadable ones as they were. */
export function nextBaselineSql(tables: DiffTables): string {
  const skip = `(SELECT k FROM ${ident(`${tables.snapshot}_skip`)})`;
  return `SELECT k, act, idr, ah, idj FROM ${ident(tables.snapshot)} WHERE len(act) > 0 AND k NOT IN ${skip}
    UNION ALL SELECT k, act, idr, ah, idj FROM ${ident(tables.baseline)} WHERE k IN ${skip}`;
}

interface Node {
  name: string;
  children: Node[];
  attribute?: number;
}

/** The mapped attribute paths as a tree, in mapping order. */
function attributeTree(paths: string[][]): Node[] {
  const roots: Node[] = [];
  paths.forEach((p, j) => {
    let level = roots;
    p.forEach((segment, depth) => {
      let node = level.find((n) => n.name === segment);
      if (!node) {
        node = { name: segment, children: [] };
        level.push(node);
      }
      if (depth === p.length - 1) node.attribute = j;
      level = node.children;
    });
  });
  return roots;
}

/** A nested object fragment (`"a":{...}`) present only when some leaf under it is. */
function fragment(node: Node): string {
  const key = literal(`${JSON.stringify(node.name)}:`);
  if (node.attribute !== undefined)
    return `CASE WHEN a${node.attribute} IS NOT NULL THEN ${key} || a${node.attribute}::VARCHAR END`;
  const inner = `concat_ws(',', ${node.children.map(fragment).join(', ')})`;
  return `CASE WHEN ${inner} <> '' THEN ${key} || '{' || ${inner} || '}' END`;
}

/** `CASE <expr> WHEN 'id' THEN value ... END` over a fixed table of audience values (NULL elsewhere). */
function caseOf(expr: string, entries: [string, string][]): string {
  return entries.length
    ? `CASE ${expr} ${entries.map(([k, v]) => `WHEN ${literal(k)} THEN ${v}`).join(' ')} END`
    : 'NULL';
}

const idList = (ids: string[]) => `[${ids.map((a) => literal(a)).join(', ')}]::VARCHAR[]`;

/**
 * Under `segmentMembership: mergePolicy`, the audience ids whose entries a profile's message
 * carries besides the mapped ones: those sharing the merge policy of a mapped audience it
 * is in (or just left). Policies are fixed per snapshot, so this is a few list tests per
 * row, not a lookup per entry.
 */
function mergePolicyAllowed(shape: HttpShape, o: MessageOptions): { allowed: string; unknownAllowed: string } {
  const policyOf = (id: string) => o.audiences.find((a) => a.id === id)?.mergePolicyId ?? o.defaultMergePolicy ?? '';
  const policies = [...new Set([...shape.audiences.map(policyOf)])];
  const inAny = (ids: string[]) => `list_has_any(list_concat(act, exited), ${idList(ids)})`;
  const parts = policies.map((p) => {
    const mappedWith = shape.audiences.filter((a) => policyOf(a) === p);
    const sharing = o.audiences.filter((a) => policyOf(a.id) === p).map((a) => a.id);
    return `CASE WHEN ${inAny(mappedWith)} THEN ${idList(sharing)} ELSE []::VARCHAR[] END`;
  });
  // Audiences the snapshot does not describe have the snapshot's policy.
  const defaultMapped = shape.audiences.filter((a) => policyOf(a) === (o.defaultMergePolicy ?? ''));
  return {
    allowed: parts.length ? `flatten([${parts.join(', ')}])` : '[]::VARCHAR[]',
    unknownAllowed: defaultMapped.length ? inAny(defaultMapped) : 'FALSE',
  };
}

/** The segmentMembership.ups object as JSON text (over the columns of messagesSql's `m`). */
function upsJson(shape: HttpShape, o: MessageOptions): string {
  const mapped = idList(shape.audiences);
  const known = idList(o.audiences.map((a) => a.id));
  const entries = 'coalesce(map_entries(ups), [])';
  let kept: string;
  if (o.segmentMembership === 'all') kept = entries;
  else if (o.segmentMembership === 'mapped')
    kept = `list_filter(${entries}, lambda e: list_contains(${mapped}, e.key))`;
  else
    kept = `list_filter(${entries}, lambda e: list_contains(allowed, e.key) OR (unknown_allowed AND NOT list_contains(${known}, e.key)))`;
  // A mapped audience left with no entry in the snapshot (dropped, or the profile vanished)
  // is sent as exited at the snapshot's time. (An audience left with an entry has status exited.)
  const exitEntry = (a: string) =>
    `{'key': ${a}, 'value': {'lastQualificationTime': ${literal(o.evaluatedAt)}, 'status': 'exited'}}`;
  const synthesized = shape.audiences.length
    ? `CASE WHEN len(exited) = 0 THEN [] ELSE list_filter([${shape.audiences.map((a) => `CASE WHEN list_contains(exited, ${literal(a)}) AND ups[${literal(a)}] IS NULL THEN ${exitEntry(literal(a))} END`).join(', ')}], lambda x: x IS NOT NULL) END`
    : '[]';
  const all = `list_sort(list_concat(${kept}, ${synthesized}))`;
  const extras: [string, (a: AudienceMeta) => number | string | null][] = [];
  if (o.includeSegmentTimestamps) {
    extras.push(
      ['createdAt', (a) => a.createdAt],
      ['updatedAt', (a) => a.updatedAt],
      ['mappingCreatedAt', (a) => a.mappingCreatedAt],
      ['mappingUpdatedAt', (a) => a.mappingUpdatedAt],
    );
  }
  if (o.includeSegmentNames) extras.push(['name', (a) => a.name]);
  let json: string;
  if (extras.length === 0) json = `to_json(map_from_entries(${all}))::VARCHAR`;
  else {
    const values = extras.map(([name, value]) => {
      const cases = o.audiences.flatMap((a) => {
        const v = value(a);
        return v === null ? [] : [[a.id, typeof v === 'number' ? `${v}::BIGINT` : literal(v)] as [string, string]];
      });
      const type = name === 'name' ? 'VARCHAR' : 'BIGINT';
      return `${literal(name)}: ${cases.length ? `${caseOf('e.key', cases)}::${type}` : `NULL::${type}`}`;
    });
    json = `to_json(map_from_entries(list_transform(${all}, lambda e: {'key': e.key, 'value': {'lastQualificationTime': e.value.lastQualificationTime, 'status': e.value.status, ${values.join(', ')}}})))::VARCHAR`;
    for (const [name] of extras) json = `replace(${json}, ${literal(`,"${name}":null`)}, '')`;
  }
  // A missing lastQualificationTime is left out rather than sent as null.
  return `replace(${json}, '"lastQualificationTime":null,', '')`;
}

/**
 * One message per changed profile, as JSON text, in profile key order. Only the changed
 * profiles' wide columns are read: the snapshot's for those present, the baseline's
 * identityMap for those that vanished. The rows are sorted before their messages are put
 * together (a projection keeps the order): the sort then holds the columns, not the
 * longer message text (at 1M profiles ~100 MB less peak memory).
 */
export function messagesSql(
  shape: HttpShape,
  tables: DiffTables,
  options: MessageOptions,
  range: KeyRange = {},
): string {
  const attrs = shape.attributes.length
    ? `nullif(concat_ws(',', ${attributeTree(shape.attributes).map(fragment).join(', ')}), '')`
    : 'NULL';
  const policy = mergePolicyAllowed(shape, options);
  const allowed = `list_concat(${idList(shape.audiences)}, ${policy.allowed})`;
  const d = ident(`${tables.prefix}_d`);
  const wide = shape.attributes.map((_, j) => `a${j}`);
  const within = (key: string) =>
    [
      ...(range.from !== undefined ? [`${key} >= ${literal(range.from)}`] : []),
      ...(range.to !== undefined ? [`${key} < ${literal(range.to)}`] : []),
    ]
      .map((c) => ` AND ${c}`)
      .join('');
  const changed = `SELECT pk, act, exited FROM ${d} WHERE ${CHANGED}${within('pk')}`;
  const rows = `SELECT c.pk, c.act, c.exited, s.ups, ${[...wide.map((a) => `s.${a}`), 's.idj'].join(', ')}
      FROM (${changed} AND present) c JOIN (SELECT * FROM ${ident(tables.snapshot)} WHERE TRUE${within('k')}) s ON s.k = c.pk
    UNION ALL
    SELECT c.pk, c.act, c.exited, NULL AS ups, ${[...wide.map((a) => `NULL AS ${a}`), "coalesce(b.idj, '{}') AS idj"].join(', ')}
      FROM (${changed} AND NOT present) c JOIN ${ident(tables.baseline)} b ON b.k = c.pk`;
  return `SELECT '{' || concat_ws(',', ${attrs}, '"segmentMembership":{"ups":' || ${upsJson(shape, options)} || '}', '"identityMap":' || idj) || '}' AS msg
    FROM (SELECT *, ${options.segmentMembership === 'mergePolicy' ? `${allowed} AS allowed, ${policy.unknownAllowed} AS unknown_allowed` : 'NULL AS allowed'}
          FROM (${rows}) ORDER BY pk) m`;
}

/** Profile keys from `from` (inclusive) to `to` (exclusive); a missing bound is open. */
export interface KeyRange {
  from?: string;
  to?: string;
}

/** Messages built and sorted per range: the engine's sort holds at most this many at once. */
export const MESSAGES_PER_RANGE = 100_000;

/** Consecutive key ranges of at most `size` messages each, covering every message in key order. */
export async function messageRanges(
  engine: Engine,
  tables: DiffTables,
  size = MESSAGES_PER_RANGE,
): Promise<KeyRange[]> {
  const rows = await engine.all<{
    pk: string;
  }>(`SELECT pk FROM (SELECT pk, row_number() OVER (ORDER BY pk) AS n FROM ${ident(`${tables.prefix}_d`)} WHERE ${CHANGED})
    WHERE n > 1 AND (n - 1) % ${Math.max(1, Math.floor(size))} = 0 ORDER BY pk`);
  const bounds = rows.map((r) => r.pk);
  return [undefined, ...bounds].map((from, i) => ({
    ...(from === undefined ? {} : { from }),
    ...(i < bounds.length ? { to: bounds[i]! } : {}),
  }));
}

/** Drops the working tables of one diff (`<prefix>_snap`, `_snap_skip`, `_base`, `_d`). */
export async function dropDiff(engine: Engine, prefix: string): Promise<void> {
  await engine.run(
    ['_snap', '_snap_skip', '_base', '_d'].map((s) => `DROP TABLE IF EXISTS ${ident(prefix + s)};`).join(' '),
  );
}

/** Writes the next baseline (see nextBaselineSql) to a Parquet file. */
export async function writeNextBaseline(engine: Engine, tables: DiffTables, file: string): Promise<void> {
  await engine.run(`COPY (${nextBaselineSql(tables)}) TO ${literal(file)} (FORMAT parquet, COMPRESSION zstd)`);
}

/** Keeps the next baseline as a table (for `plan`, which chains runs without writing). */
export async function keepNextBaseline(engine: Engine, tables: DiffTables, table: string): Promise<void> {
  await engine.run(`CREATE OR REPLACE TABLE ${ident(table)} AS ${nextBaselineSql(tables)}`);
}

export async function loadBaseline(engine: Engine, table: string, parquetPath: string | null): Promise<void> {
  await engine.run(parquetPath ? loadBaselineSql(table, parquetPath) : emptyBaselineSql(table));
}

/** The first n messages, in order (for `plan --show-messages`). */
export async function firstMessages(
  engine: Engine,
  shape: HttpShape,
  tables: DiffTables,
  options: MessageOptions,
  n: number,
): Promise<string[]> {
  const rows = await engine.all<{ msg: string }>(
    `${messagesSql(shape, tables, options)} LIMIT ${Math.max(0, Math.floor(n))}`,
  );
  return rows.map((r) => r.msg);
}

/**
 * Writes the messages (messagesSql) to local files, one JSON text a line, in order: a file
 * per key range (messageRanges), so a 1M-profile backfill never sorts all its messages at
 * once. The engine writes each in one pass, so Node never pulls messages one chunk at a
 * time. JSON text holds no raw control character, so a single-column CSV with no quoting
 * and a control-character delimiter is exactly one message a line.
 */
export async function writeMessages(
  engine: Engine,
  shape: HttpShape,
  tables: DiffTables,
  options: MessageOptions,
  file: (part: number) => string,
): Promise<string[]> {
  const files: string[] = [];
  for (const [i, range] of (await messageRanges(engine, tables)).entries()) {
    files.push(file(i));
    await engine.run(
      `COPY (${messagesSql(shape, tables, options, range)}) TO ${literal(file(i))} (FORMAT csv, HEADER false, QUOTE '', ESCAPE '', DELIMITER '\x01')`,
    );
  }
  return files;
}
