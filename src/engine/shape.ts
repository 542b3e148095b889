// The export shape of a dataflow: what the engine reads from a snapshot and which columns
// it writes, derived once from the validated config. Pure.
import type { Dataflow } from '../config/schema.js';
import { defaultTargetName, parseSourcePath, type SourceRef } from '../config/sources.js';

export type ColumnType = 'string' | 'int64' | 'double' | 'boolean' | 'timestamp';

export interface Column {
  target: string;
  source: string;
  ref: SourceRef;
  type: ColumnType;
  sha256: boolean;
  /** For attribute columns: index into Shape.attributes. */
  attribute?: number;
}

export type Dedup = { kind: 'identity' } | { kind: 'attributes'; columns: number[] } | null;

export interface Shape {
  keyPath: string[];
  namespace: string | null;
  /** Distinct attribute paths read from the snapshot (mapped attributes). */
  attributes: string[][];
  columns: Column[];
  /** Indexes of columns that must be present (mandatory fields and dedup keys). */
  required: number[];
  dedup: Dedup;
  statusMapped: boolean;
  /** Audience ids whose memberships are read. */
  audiences: string[];
}

export function buildShape(dataflow: Dataflow): Shape {
  const attributes: string[][] = [];
  const attributeIndex = new Map<string, number>();
  let namespace: string | null = null;
  const columns: Column[] = dataflow.mapping.map((m) => {
    const ref = parseSourcePath(m.source);
    if (typeof ref === 'string') throw new Error(ref); // the schema rejected this already
    const column: Column = {
      target: m.target ?? defaultTargetName(m.source),
      source: m.source,
      ref,
      type: m.type,
      sha256: m.transform === 'sha256',
    };
    if (ref.kind === 'attribute') {
      const key = ref.path.join('.');
      let index = attributeIndex.get(key);
      if (index === undefined) {
        index = attributes.length;
        attributes.push(ref.path);
        attributeIndex.set(key, index);
      }
      column.attribute = index;
    }
    if (ref.kind === 'identity') namespace = ref.namespace;
    return column;
  });
  const columnOf = (source: string) => columns.findIndex((c) => c.source === source);
  const required = new Set<number>(dataflow.mandatory.map(columnOf));
  let dedup: Dedup = null;
  if (namespace !== null) {
    dedup = { kind: 'identity' };
    columns.forEach((c, i) => c.ref.kind === 'identity' && required.add(i));
  } else if (dataflow.dedupKeys.length > 0) {
    const keyColumns = dataflow.dedupKeys.map(columnOf);
    dedup = { kind: 'attributes', columns: keyColumns };
    keyColumns.forEach((i) => required.add(i));
  }
  return {
    keyPath: dataflow.profileKey.split('.'),
    namespace,
    attributes,
    columns,
    required: [...required].filter((i) => i >= 0).sort((a, b) => a - b),
    dedup,
    statusMapped: columns.some((c) => c.ref.kind === 'status'),
    audiences: dataflow.audiences.map((a) => a.id),
  };
}
