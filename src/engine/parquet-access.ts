// Typed access into Parquet snapshot columns. Rather than turning whole top-level columns
// into JSON (to_json of a struct holding every attribute or every audience), each path the
// dataflow reads is followed as far as the Parquet schema allows — struct fields and map
// keys, checked by binding a query against an empty table of the parts' unified schema —
// and only the value found there is converted. A path the schema does not describe (a
// field that is missing, or a value that is itself JSON text) falls back to json_extract
// from that point on, so the result is the same as reading the record as JSON.
import type { Engine } from './session.js';
import { ident, jsonPath, literal } from './sql.js';

/**
 * How the loader reads one path: its value as JSON, as JSON with JSON null as SQL NULL
 * (`value`), as text (strings unquoted), and whether it holds a value (not absent, not
 * null). `textIds` gives a list of identity entries whose `id` the schema types as text
 * as is (a typed list of structs), or null when the path is read as JSON.
 */
export interface PathAccess {
  json(path: readonly string[]): string;
  value(path: readonly string[]): string;
  text(path: readonly string[]): string;
  present(path: readonly string[]): string;
  textIds(path: readonly string[]): string | null;
}

const presentJson = (json: string) => `coalesce(json_type(${json}) <> 'NULL', FALSE)`;
const valueJson = (json: string) => `CASE WHEN json_type(${json}) = 'NULL' THEN NULL ELSE ${json} END`;

/** JSON access over top-level columns given as JSON (`root(name)`). */
export function jsonRootAccess(root: (name: string) => string): PathAccess {
  const json = ([first, ...rest]: readonly string[]) =>
    rest.length ? `json_extract(${root(first!)}, ${jsonPath(rest)})` : root(first!);
  return {
    json,
    value: (path) => valueJson(json(path)),
    text: ([first, ...rest]) => `json_extract_string(${root(first!)}, ${jsonPath(rest)})`,
    present: (path) => presentJson(json(path)),
    textIds: () => null,
  };
}

interface Resolved {
  expr: string;
  type: string;
  rest: string[];
  /** For a typed list: the type of its elements' `id` field, if they have one. */
  idType?: string | null;
}

/**
 * Resolves every path against the parts' schema (`probeTable`: an empty table with the
 * unified columns) and returns an accessor for the SELECT over read_parquet.
 */
export async function parquetAccess(
  engine: Engine,
  probeTable: string,
  columns: Set<string>,
  paths: readonly (readonly string[])[],
): Promise<PathAccess> {
  // Paths share their prefixes (segmentMembership.ups for every audience): each expression is bound once.
  const types = new Map<string, Promise<string | null>>();
  const typeOf = (expr: string): Promise<string | null> => {
    let type = types.get(expr);
    if (!type) {
      type = engine.all<{ column_type: string }>(`DESCRIBE SELECT ${expr} AS x FROM ${ident(probeTable)}`).then(
        ([row]) => row?.column_type ?? null,
        () => null,
      );
      types.set(expr, type);
    }
    return type;
  };
  const keyOf = (path: readonly string[]) => JSON.stringify(path);
  const resolved = new Map<string, Resolved | null>();
  for (const path of paths) {
    const [first, ...rest] = path as [string, ...string[]];
    if (resolved.has(keyOf(path))) continue;
    if (!columns.has(first)) {
      resolved.set(keyOf(path), null);
      continue;
    }
    let expr = ident(first);
    let type = (await typeOf(expr)) ?? 'JSON';
    let i = 0;
    for (; i < rest.length && type !== 'JSON'; i++) {
      const segment = rest[i]!;
      const next = type.startsWith('STRUCT(')
        ? `${expr}.${ident(segment)}`
        : type.startsWith('MAP(')
          ? `${expr}[${literal(segment)}]`
          : null;
      const nextType = next === null ? null : await typeOf(next);
      if (next === null || nextType === null) break;
      expr = next;
      type = nextType;
    }
    const idType = i === rest.length && type.endsWith('[]') ? await typeOf(`${expr}[1].id`) : null;
    resolved.set(keyOf(path), { expr, type, rest: rest.slice(i), idType });
  }
  // Typed values (every resolved path whose rest is empty, except JSON text) are never JSON null.
  const typed = (r: Resolved | null): r is Resolved => r !== null && r.rest.length === 0 && r.type !== 'JSON';
  const get = (path: readonly string[]): Resolved | null => {
    const found = resolved.get(keyOf(path));
    if (found === undefined) throw new Error(`internal: Parquet path ${path.join('.')} was not resolved`);
    return found;
  };
  const asJson = (r: Resolved) =>
    r.type === 'JSON' ? r.expr : isTimestamp(r.type) ? `to_json(${rfc3339(r)})` : `to_json(${r.expr})`;
  const json = (path: readonly string[]) => {
    const r = get(path);
    if (!r) return 'NULL::JSON';
    return r.rest.length ? `json_extract(${asJson(r)}, ${jsonPath(r.rest)})` : asJson(r);
  };
  return {
    json,
    // A value the schema types (a membership entry's struct, an attribute) is there when it
    // is not NULL: no need to turn it into JSON to ask.
    value: (path) => {
      const r = get(path);
      return typed(r) ? asJson(r) : valueJson(json(path));
    },
    present(path) {
      const r = get(path);
      return typed(r) ? `(${r.expr} IS NOT NULL)` : presentJson(json(path));
    },
    textIds(path) {
      const r = get(path);
      return typed(r) && r.idType === 'VARCHAR' ? r.expr : null;
    },
    text(path) {
      const r = get(path);
      if (!r) return 'NULL::VARCHAR';
      if (r.rest.length === 0 && r.type === 'VARCHAR') return r.expr;
      if (r.rest.length === 0 && isTimestamp(r.type)) return rfc3339(r);
      return `json_extract_string(${asJson(r)}, ${jsonPath(r.rest)})`;
    },
  };
}

const isTimestamp = (type: string) => type.startsWith('TIMESTAMP');

/**
 * A Parquet timestamp as the RFC 3339 text a JSON snapshot would carry (UTC, `Z`,
 * fractional seconds only when there are any); a timestamp without a zone is taken as UTC.
 */
function rfc3339(r: Resolved): string {
  const utc = r.type === 'TIMESTAMP WITH TIME ZONE' ? `timezone('UTC', ${r.expr})` : `${r.expr}::TIMESTAMP`;
  return `CASE WHEN microsecond(${utc}) % 1000000 = 0 THEN strftime(${utc}, '%Y-%m-%dT%H:%M:%SZ') ELSE strftime(${utc}, '%Y-%m-%dT%H:%M:%S.%fZ') END`;
}
