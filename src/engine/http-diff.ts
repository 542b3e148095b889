// The per-profile diff of the HTTP API destination (SPEC §11.1–11.2), as SQL over the
// snapshot table (load-http-snapshot.ts) and the baseline (the previous run's, or empty).
//
// Baseline, one row per profile active in at least one mapped audience:
//   k, act (mapped audiences it is active in), idh (hash of the sorted set of namespace+id
//   pairs over every namespace), ah (hash of the mapped attributes, numbers normalised),
//   idj (its identityMap as JSON text, for the exit message of a member that vanishes).
//
// Triggers, per profile: entered (an audience in act now, not before), exited (before, not
// now; a vanished member too), identity (active now and before, idh changed), attribute
// (active now and before, ah changed). realized ↔ existing is not a change; unmapped
// audiences never trigger. A newly mapped audience is in no baseline row, so its members
// all enter: the backfill of that audience alone. Messages are built here as JSON text,
// ordered by profile key, and streamed out: they never sit in memory all at once.
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
  return `CREATE OR REPLACE TABLE ${ident(table)} (k VARCHAR, act VARCHAR[], idh VARCHAR, ah VARCHAR, idj VARCHAR)`;
}

export function loadBaselineSql(table: string, parquetPath: string): string {
  return `CREATE OR REPLACE TABLE ${ident(table)} AS SELECT k, act, idh, ah, idj FROM read_parquet(${literal(parquetPath)})`;
}

const ACTIVE = `(${literalList(ACTIVE_STATUSES)})`;

/** A JSON value with numbers in one form (1, 1.0 and 1e0 compare equal). */
function normalised(json: string): string {
  return `CASE WHEN json_type(${json}) IN ('BIGINT', 'UBIGINT', 'DOUBLE', 'HUGEINT') THEN TRY_CAST(${json} AS DOUBLE)::VARCHAR ELSE ${json}::VARCHAR END`;
}

const list = (items: string[]) => `[${items.join(', ')}]::VARCHAR[]`;

/**
 * Builds `<prefix>_d`: one row per profile that is active in a mapped audience now or was
 * in the baseline, with its triggers; skipped (unreadable) profiles keep their baseline.
 */
export async function diffProfiles(engine: Engine, shape: HttpShape, snapshot: string, baseline: string, prefix: string): Promise<DiffCounts> {
  const mapped = shape.audiences.map((a) => literal(a));
  const act = `list_filter(${list(shape.audiences.map((a) => `CASE WHEN s.ups[${literal(a)}].status IN ${ACTIVE} THEN ${literal(a)} END`))}, lambda x: x IS NOT NULL)`;
  const pairs = `list_sort(list_distinct(flatten(list_transform(coalesce(map_entries(s.idmap), []), lambda e: list_transform(list_filter(coalesce(e.value, []), lambda x: x.id IS NOT NULL), lambda x: e.key || chr(0) || x.id)))))`;
  const attrs = shape.attributes.length ? `to_json(${list(shape.attributes.map((_, j) => normalised(`s.a${j}`)))})::VARCHAR` : `'[]'`;
  const d = ident(`${prefix}_d`);
  await engine.run(`CREATE OR REPLACE TABLE ${d} AS
    WITH cur AS (
      SELECT s.*, ${act} AS act, md5(to_json(coalesce(${pairs}, []))::VARCHAR) AS idh, md5(${attrs}) AS ah
      FROM ${ident(snapshot)} s
    ), joined AS (
      SELECT coalesce(c.k, b.k) AS pk, c.k IS NOT NULL AS present, c.* EXCLUDE (k, act, idh, ah),
        coalesce(c.act, []::VARCHAR[]) AS act, c.idh, c.ah,
        list_filter(coalesce(b.act, []::VARCHAR[]), lambda x: list_contains([${mapped.join(', ')}]::VARCHAR[], x)) AS prev,
        b.k IS NOT NULL AS known, b.idh AS bidh, b.ah AS bah, b.idj AS bidj, b.act AS bact
      FROM cur c FULL JOIN ${ident(baseline)} b ON c.k = b.k
      WHERE (len(c.act) > 0 OR b.k IS NOT NULL)
    )
    SELECT *, list_filter(act, lambda x: NOT list_contains(prev, x)) AS entered,
      list_filter(prev, lambda x: NOT list_contains(act, x)) AS exited,
      len(act) > 0 AND len(prev) > 0 AND idh IS DISTINCT FROM bidh AS t_id,
      len(act) > 0 AND len(prev) > 0 AND ah IS DISTINCT FROM bah AS t_attr,
      pk IN (SELECT k FROM ${ident(`${snapshot}_skip`)}) AS skipped
    FROM joined`);
  const [c] = await engine.all<Record<string, string>>(`SELECT
      count(*) FILTER (WHERE NOT skipped AND len(entered) > 0)::VARCHAR AS entered,
      count(*) FILTER (WHERE NOT skipped AND len(exited) > 0)::VARCHAR AS exited,
      count(*) FILTER (WHERE NOT skipped AND t_id)::VARCHAR AS identity,
      count(*) FILTER (WHERE NOT skipped AND t_attr)::VARCHAR AS attribute,
      count(*) FILTER (WHERE NOT skipped AND (len(entered) > 0 OR len(exited) > 0 OR t_id OR t_attr))::VARCHAR AS messages,
      count(*) FILTER (WHERE (skipped AND known) OR (NOT skipped AND len(act) > 0))::VARCHAR AS baseline
    FROM ${d}`);
  return {
    entered: Number(c?.['entered'] ?? 0), exited: Number(c?.['exited'] ?? 0), identity: Number(c?.['identity'] ?? 0),
    attribute: Number(c?.['attribute'] ?? 0), messages: Number(c?.['messages'] ?? 0), baselineSize: Number(c?.['baseline'] ?? 0),
  };
}

/** The next baseline: active profiles now, and unreadable ones as they were. */
export function nextBaselineSql(prefix: string): string {
  return `SELECT pk AS k, CASE WHEN skipped THEN bact ELSE act END AS act, CASE WHEN skipped THEN bidh ELSE idh END AS idh,
      CASE WHEN skipped THEN bah ELSE ah END AS ah, CASE WHEN skipped THEN bidj ELSE ${identityMapJson('idmap')} END AS idj
    FROM ${ident(`${prefix}_d`)} WHERE (skipped AND known) OR (NOT skipped AND len(act) > 0) ORDER BY pk`;
}

/** The whole identityMap as JSON text: every namespace, `{ "id" }` per entry. */
function identityMapJson(column: string): string {
  return `'{' || array_to_string(list_transform(coalesce(map_entries(${column}), []), lambda e: to_json(e.key)::VARCHAR || ':[' ||
      array_to_string(list_transform(list_filter(coalesce(e.value, []), lambda x: x.id IS NOT NULL), lambda x: '{"id":' || to_json(x.id)::VARCHAR || '}'), ',') || ']'), ',') || '}'`;
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
  if (node.attribute !== undefined) return `CASE WHEN a${node.attribute} IS NOT NULL THEN ${key} || a${node.attribute}::VARCHAR END`;
  const inner = `concat_ws(',', ${node.children.map(fragment).join(', ')})`;
  return `CASE WHEN ${inner} <> '' THEN ${key} || '{' || ${inner} || '}' END`;
}

/** `CASE <expr> WHEN 'id' THEN value ... END` over a fixed table of audience values (NULL elsewhere). */
function caseOf(expr: string, entries: [string, string][]): string {
  return entries.length ? `CASE ${expr} ${entries.map(([k, v]) => `WHEN ${literal(k)} THEN ${v}`).join(' ')} END` : 'NULL';
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
  let keep: string;
  if (o.segmentMembership === 'all') keep = 'TRUE';
  else if (o.segmentMembership === 'mapped') keep = `list_contains(${mapped}, e.key)`;
  else keep = `list_contains(${mapped}, e.key) OR list_contains(allowed, e.key) OR (unknown_allowed AND NOT list_contains(${known}, e.key))`;
  const synthesized = `list_transform(list_filter(exited, lambda a: NOT list_contains(coalesce(map_keys(ups), []::VARCHAR[]), a)),
      lambda a: {'key': a, 'value': {'status': 'exited', 'lastQualificationTime': ${literal(o.evaluatedAt)}}})`;
  // A mapped audience the profile just left is sent as exited, whatever the snapshot's entry says.
  const fromSnapshot = `list_transform(list_filter(${entries}, lambda e: ${keep}), lambda e: CASE WHEN list_contains(exited, e.key) AND e.value.status <> 'exited'
      THEN {'key': e.key, 'value': {'status': 'exited', 'lastQualificationTime': ${literal(o.evaluatedAt)}}} ELSE {'key': e.key, 'value': {'status': e.value.status, 'lastQualificationTime': e.value.lastQualificationTime}} END)`;
  const fields: string[] = [
    `CASE WHEN e.value.lastQualificationTime IS NOT NULL THEN '"lastQualificationTime":' || to_json(e.value.lastQualificationTime)::VARCHAR END`,
    `'"status":' || to_json(e.value.status)::VARCHAR`,
  ];
  const field = (name: string, pick: (a: AudienceMeta) => number | string | null) =>
    caseOf('e.key', o.audiences.flatMap((a) => {
      const v = pick(a);
      return v === null ? [] : [[a.id, literal(`"${name}":${JSON.stringify(v)}`)] as [string, string]];
    }));
  if (o.includeSegmentTimestamps) {
    fields.push(
      field('createdAt', (a) => a.createdAt),
      field('updatedAt', (a) => a.updatedAt),
      field('mappingCreatedAt', (a) => a.mappingCreatedAt),
      field('mappingUpdatedAt', (a) => a.mappingUpdatedAt),
    );
  }
  if (o.includeSegmentNames) fields.push(field('name', (a) => a.name));
  return `'{' || array_to_string(list_transform(list_sort(list_concat(${fromSnapshot}, ${synthesized})),
      lambda e: to_json(e.key)::VARCHAR || ':{' || concat_ws(',', ${fields.join(', ')}) || '}'), ',') || '}'`;
}

/** One message per changed profile, as JSON text, ordered by profile key (first column). */
export function messagesSql(shape: HttpShape, prefix: string, options: MessageOptions): string {
  const attrs = shape.attributes.length ? `nullif(concat_ws(',', ${attributeTree(shape.attributes).map(fragment).join(', ')}), '')` : 'NULL';
  const identity = `CASE WHEN present THEN ${identityMapJson('idmap')} ELSE coalesce(bidj, '{}') END`;
  const policy = mergePolicyAllowed(shape, options);
  return `SELECT '{' || concat_ws(',', ${attrs}, '"segmentMembership":{"ups":' || ${upsJson(shape, options)} || '}', '"identityMap":' || ${identity}) || '}' AS msg
    FROM (SELECT *, ${options.segmentMembership === 'mergePolicy' ? `${policy.allowed} AS allowed, ${policy.unknownAllowed} AS unknown_allowed` : 'NULL AS allowed'}
          FROM ${ident(`${prefix}_d`)}
          WHERE NOT skipped AND (len(entered) > 0 OR len(exited) > 0 OR t_id OR t_attr)) m
    ORDER BY pk`;
}

/** Drops the working tables of one diff (`<prefix>_snap`, `_snap_skip`, `_base`, `_d`). */
export async function dropDiff(engine: Engine, prefix: string): Promise<void> {
  await engine.run(['_snap', '_snap_skip', '_base', '_d'].map((s) => `DROP TABLE IF EXISTS ${ident(prefix + s)};`).join(' '));
}

/** Writes the next baseline (see nextBaselineSql) to a Parquet file. */
export async function writeNextBaseline(engine: Engine, prefix: string, file: string): Promise<void> {
  await engine.run(`COPY (${nextBaselineSql(prefix)}) TO ${literal(file)} (FORMAT parquet, COMPRESSION zstd)`);
}

/** Keeps the next baseline as a table (for `plan`, which chains runs without writing). */
export async function keepNextBaseline(engine: Engine, prefix: string, table: string): Promise<void> {
  await engine.run(`CREATE OR REPLACE TABLE ${ident(table)} AS ${nextBaselineSql(prefix)}`);
}

export async function loadBaseline(engine: Engine, table: string, parquetPath: string | null): Promise<void> {
  await engine.run(parquetPath ? loadBaselineSql(table, parquetPath) : emptyBaselineSql(table));
}

/** The first n messages, in order (for `plan --show-messages`). */
export async function firstMessages(engine: Engine, shape: HttpShape, prefix: string, options: MessageOptions, n: number): Promise<string[]> {
  const rows = await engine.all<{ msg: string }>(`${messagesSql(shape, prefix, options)} LIMIT ${Math.max(0, Math.floor(n))}`);
  return rows.map((r) => r.msg);
}
