// One part file of a snapshot, fetched to local disk: what the snapshot side hands the engine.

export interface PartFile {
  /** Local path DuckDB reads. */
  path: string;
  /** Name used in messages (the key or path the user knows). */
  name: string;
  kind: 'ndjson' | 'parquet';
}
