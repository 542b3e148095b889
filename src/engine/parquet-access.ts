// Typed access into Parquet snapshot columns. Rather than turning whole top-level columns
// into JSON (to_json of a struct holding every attribute or every audience), each path the
// dataflow reads is followed as far as the Parquet schema allows — struct fields and map
// keys, checked by binding a query against an empty table of the parts' unified schema —
// and only the value found there is converted. A path the schema does not describe (a
// field that is missing, or a value that is itself JSON text) falls back to json_extract
// from that point on, so the result is the same as reading the record as JSON.
import type { Engine } from './session.js';
import { ident, jsonPath, literal } from './sql.js';

/** How the loader reads one path: its value as JSON, and as text (strings unquoted). */
export interface PathAccess {
  json(path: readonly string[]): string;
  text(path: readonly string[]): string;
}

/** JSON access over top-level columns given as JSON (`root(name)`). */
export function jsonRootAccess(root: (name: string) => string): PathAccess {
  return {
    json: ([first, ...rest]) => (rest.length ? `json_extract(${root(first!)}, ${jsonPath(rest)})` : root(first!)),
    text: ([first, ...rest]) => `json_extract_string(${root(first!)}, ${jsonPath(rest)})`,
  };
}

interface Resolved {
  expr: string;
  type: string;
  rest: string[];
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
  const typeOf = async (expr: string): Promise<string | null> => {
    try {
      const [row] = await engine.all<{ column_type: string }>(`DESCRIBE SELECT ${expr} AS x FROM ${ident(probeTable)}`);
      return row?.column_type ?? null;
    } catch {
      return null;
    }
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
    resolved.set(keyOf(path), { expr, type, rest: rest.slice(i) });
  }
  const get = (path: readonly string[]): Resolved | null => {
    const found = resolved.get(keyOf(path));
    if (found === undefined) throw new Error(`internal: Parquet path ${path.join('.')} was not resolved`);
    return found;
  };
  const asJson = (r: Resolved) =>
    r.type === 'JSON' ? r.expr : isTimestamp(r.type) ? `to_json(${rfc3339(r)})` : `to_json(${r.expr})`;
  return {
    json(path) {
      const r = get(path);
      if (!r) return 'NULL::JSON';
      return r.rest.length ? `json_extract(${asJson(r)}, ${jsonPath(r.rest)})` : asJson(r);
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
