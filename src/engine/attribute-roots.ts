// How the loaders read mapped attributes from NDJSON: each top-level field (root) is parsed
// once for all its mapped paths — one json_extract with a list of paths, then split into
// one column per attribute. A JSON null is no value. Columns a<j> follow the order of
// `attributes`; the list columns `_root_<r>` are excluded once split.
import { ident, jsonPath } from './sql.js';

export interface AttributeRootColumns {
  /** Expressions for the read's SELECT: a<j> for a root with one path, `_root_<r>` lists otherwise. */
  extract: string[];
  /** Expressions over the read that split the lists into a<j>. */
  split: string[];
  /** The list columns to exclude once split. */
  exclude: string[];
}

export function attributeRootColumns(attributes: readonly (readonly string[])[]): AttributeRootColumns {
  const byRoot = new Map<string, number[]>();
  attributes.forEach((p, j) => byRoot.set(p[0]!, [...(byRoot.get(p[0]!) ?? []), j]));
  const columns: AttributeRootColumns = { extract: [], split: [], exclude: [] };
  [...byRoot].forEach(([root, indexes], r) => {
    const paths = indexes.map((j) => jsonPath(attributes[j]!.slice(1)));
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
