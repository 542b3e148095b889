// One read of a snapshot for several dataflows (README "Several dataflows in one invocation": several dataflows in one
// invocation). Dataflows that judge whole records the same way (the same profile key
// path and identity namespace) share one load of the union of what they read: every
// audience's memberships and every attribute path any of them maps. Each dataflow then
// gets a view of that table under its own column names (s<i>/q<i> in its
// Shape.audiences order, a<j> in its Shape.attributes order), so selectRows and the
// writers see exactly what a load of that dataflow alone would give: the same profiles,
// the same bad records (whole-record rules and duplicate keys depend only on the key
// path and namespace), and the bad entries of its own audiences only.
// Dataflows with another key path or namespace get a load of their own.
import type { Engine } from './session.js';
import type { Shape } from './shape.js';
import { loadSnapshot, type LoadedSnapshot, type LoadOptions, type PartFile } from './load-snapshot.js';
import { ident } from './sql.js';

/**
 * Loads one snapshot once per group of compatible shapes and returns, for each shape (in
 * the order given), a LoadedSnapshot whose `table` is a view named `<options.table>_<i>`
 * equal to what `loadSnapshot(engine, shapes[i], parts, …)` would load.
 */
export async function loadSnapshotForDataflows(
  engine: Engine,
  shapes: readonly Shape[],
  parts: PartFile[],
  options: LoadOptions,
): Promise<LoadedSnapshot[]> {
  const groups = new Map<string, number[]>();
  shapes.forEach((shape, i) => {
    const key = JSON.stringify([shape.keyPath, shape.namespace]);
    groups.set(key, [...(groups.get(key) ?? []), i]);
  });
  const results = new Array<LoadedSnapshot>(shapes.length);
  let g = 0;
  for (const members of groups.values()) {
    const union = unionShape(members.map((i) => shapes[i]!));
    const loaded = await loadSnapshot(engine, union, parts, { ...options, table: `${options.table}_g${g++}` });
    for (const i of members) {
      const shape = shapes[i]!;
      const view = `${options.table}_${i}`;
      await engine.run(
        `CREATE OR REPLACE VIEW ${ident(view)} AS SELECT ${viewColumns(union, shape).join(', ')} FROM ${ident(loaded.table)}`,
      );
      results[i] = {
        table: view,
        profiles: loaded.profiles,
        badRecords: loaded.badRecords,
        entryErrors: new Map([...loaded.entryErrors].filter(([audience]) => shape.audiences.includes(audience))),
        keysInOrder: loaded.keysInOrder,
      };
    }
  }
  return results;
}

/** What a group reads: its shared key and namespace, every audience and attribute path any of its dataflows maps. */
function unionShape(shapes: Shape[]): Shape {
  const first = shapes[0]!;
  const audiences = [...new Set(shapes.flatMap((s) => s.audiences))];
  const attributes = new Map<string, string[]>();
  for (const s of shapes) for (const p of s.attributes) attributes.set(JSON.stringify(p), p);
  return {
    keyPath: first.keyPath,
    namespace: first.namespace,
    attributes: [...attributes.values()],
    audiences,
    columns: [],
    required: [],
    dedup: null,
    statusMapped: false,
  };
}

/** The loaded table's columns under the names one dataflow's own load gives them. */
function viewColumns(union: Shape, shape: Shape): string[] {
  const cols = ['k', ...(shape.namespace !== null ? ['ids'] : [])];
  shape.audiences.forEach((audience, i) => {
    const u = union.audiences.indexOf(audience);
    for (const c of ['s', 'q']) cols.push(`${ident(`${c}${u}`)} AS ${ident(`${c}${i}`)}`);
  });
  const attributeIndex = union.attributes.map((p) => JSON.stringify(p));
  shape.attributes.forEach((p, j) =>
    cols.push(`${ident(`a${attributeIndex.indexOf(JSON.stringify(p))}`)} AS ${ident(`a${j}`)}`),
  );
  return cols;
}
