// How the loaders read mapped attributes from NDJSON. Two ways, giving the same values:
//   - JSON roots: each top-level field (root) is read as JSON and parsed once more for all its
//     mapped paths: one json_extract with a list of paths, then split into one column per
//     attribute. Always right, whatever the record holds.
//   - Struct roots (`structsExcept`, the fast path of load-snapshot.ts): a root whose mapped
//     paths are object fields is declared to the reader as a STRUCT of those fields with
//     JSON leaves, so the reader takes the values out while it parses the record and nothing
//     parses the root's text again (at 1M profiles, json_extract of two roots was a third of
//     the load's time). A record whose root or a field on a mapped path is not an object,
//     or repeats a key in one of those objects, fails that read; the load then reads the
//     parts again with JSON roots. The leaves are the same JSON text json_extract gives
//     (numbers, strings, objects as DuckDB writes them).
// A JSON null is no value. Columns a<j> follow the order of `attributes`; the list columns
// `_root_<r>` are excluded once split.
import { isAudexSqlError } from './engine-errors.js';
import { ENTRY_ERRORS_FIELD, LINE_FIELD } from './scan-lines.js';
import { fieldChain, ident, jsonPath } from './sql.js';

export interface AttributeRootColumns {
  /** Expressions for the read's SELECT: a<j> for a root with one path or a struct root, `_root_<r>` lists otherwise. */
  extract: string[];
  /** Expressions over the read that split the lists into a<j>. */
  split: string[];
  /** The list columns to exclude once split. */
  exclude: string[];
  /** The type the reader declares for each root: a STRUCT with JSON leaves, or JSON. */
  types: Map<string, string>;
}

export interface AttributeRootOptions {
  /**
   * Read roots as structs where their paths allow, except these (top-level fields the loader
   * declares with types of its own). Without it every root is read as JSON.
   */
  structsExcept?: ReadonlySet<string>;
}

export function attributeRootColumns(
  attributes: readonly (readonly string[])[],
  options: AttributeRootOptions = {},
): AttributeRootColumns {
  const byRoot = new Map<string, number[]>();
  attributes.forEach((p, j) => byRoot.set(p[0]!, [...(byRoot.get(p[0]!) ?? []), j]));
  const columns: AttributeRootColumns = { extract: [], split: [], exclude: [], types: new Map() };
  [...byRoot].forEach(([root, indexes], r) => {
    const rests = indexes.map((j) => attributes[j]!.slice(1));
    const struct = options.structsExcept && !options.structsExcept.has(root) ? structType(rests) : null;
    columns.types.set(root, struct ?? 'JSON');
    if (struct) {
      indexes.forEach((j, n) => columns.extract.push(`nullif(${fieldChain(ident(root), rests[n]!)}, 'null') AS a${j}`));
      return;
    }
    const paths = rests.map(jsonPath);
    if (indexes.length === 1) {
      columns.extract.push(`nullif(json_extract(${ident(root)}, ${paths[0]}), 'null') AS a${indexes[0]}`);
      return;
    }
    const list = ident(`_root_${r}`);
    columns.extract.push(`json_extract(${ident(root)}, [${paths.join(', ')}]) AS ${list}`);
    columns.exclude.push(list);
    indexes.forEach((j, n) => columns.split.push(`nullif(${list}[${n + 1}], 'null') AS a${j}`));
  });
  return columns;
}

/**
 * The attribute columns of a loader's first, fast NDJSON read: every root a struct where its
 * paths allow, except the top-level fields the loaders declare with types of their own (the
 * key's root, identityMap, segmentMembership, the scanner's fields).
 */
export function fastAttributeRoots(attributes: readonly (readonly string[])[], keyRoot: string): AttributeRootColumns {
  return attributeRootColumns(attributes, {
    structsExcept: new Set([keyRoot, 'identityMap', 'segmentMembership', LINE_FIELD, ENTRY_ERRORS_FIELD]),
  });
}

/**
 * A loader's first NDJSON read: `read(true)` with struct roots where the attributes allow;
 * when that fails for its input (a record that does not fit the structs), `read(false)`, the
 * same read with JSON roots, decides. A query audex built wrong is not read again.
 */
export async function readStructsThenJson(
  attributes: readonly (readonly string[])[],
  keyRoot: string,
  read: (structs: boolean) => Promise<void>,
): Promise<void> {
  const structs = [...fastAttributeRoots(attributes, keyRoot).types.values()].some((type) => type !== 'JSON');
  if (!structs) return read(false);
  try {
    await read(true);
  } catch (error) {
    if (isAudexSqlError(error)) throw error;
    await read(false);
  }
}

interface FieldNode {
  leaf: boolean;
  fields: Map<string, FieldNode>;
}

/**
 * The STRUCT type whose JSON leaves are `paths` (each below the root), or null where a struct
 * cannot say it: the root itself mapped, an empty field name, a mapped value that also has
 * mapped fields below it, or two fields of one object whose names differ only in case (the
 * engine's struct field names do not tell them apart).
 */
function structType(paths: readonly (readonly string[])[]): string | null {
  const top: FieldNode = { leaf: false, fields: new Map() };
  for (const path of paths) {
    if (path.length === 0) return null;
    let node = top;
    for (const name of path) {
      if (name === '' || node.leaf) return null;
      let next = node.fields.get(name);
      if (!next) {
        const folded = name.toLowerCase();
        if ([...node.fields.keys()].some((other) => other.toLowerCase() === folded)) return null;
        next = { leaf: false, fields: new Map() };
        node.fields.set(name, next);
      }
      node = next;
    }
    if (node.fields.size > 0) return null;
    node.leaf = true;
  }
  const render = (node: FieldNode): string =>
    `STRUCT(${[...node.fields].map(([name, child]) => `${ident(name)} ${child.leaf ? 'JSON' : render(child)}`).join(', ')})`;
  return render(top);
}
