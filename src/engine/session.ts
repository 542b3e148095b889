// One DuckDB instance per invocation. Memory is bounded by `memory_limit` and spills go
// to a folder the run owns, so large snapshots do not grow the process without bound.
import type * as DuckDB from '@duckdb/node-api';

export interface EngineOptions {
  /** Folder for DuckDB spill files (owned and removed by the run). */
  tempDirectory: string;
  /** DuckDB memory_limit, e.g. '1GB'. */
  memoryLimit?: string;
  threads?: number;
}

export interface Engine {
  /** Another connection to the same database: shared tables, its own TEMP tables. */
  connect(): Promise<Engine>;
  run(sql: string): Promise<void>;
  all<T = Record<string, unknown>>(sql: string): Promise<T[]>;
  /** Streams the first column of a query's rows as strings, chunk by chunk. */
  streamStrings(sql: string, onChunk: (values: string[]) => Promise<void> | void): Promise<void>;
  /** Closes every connection and the database. */
  close(): void;
}

export async function openEngine(options: EngineOptions): Promise<Engine> {
  const config: Record<string, string> = {
    temp_directory: options.tempDirectory,
    memory_limit: options.memoryLimit ?? '1GB',
    preserve_insertion_order: 'true',
    enable_external_access: 'true',
    // The database is in memory, with nothing to checkpoint to, yet the engine checkpoints it
    // after any commit that changed more than checkpoint_threshold (16MB by default): it went
    // over every table, which at 10M profiles held a run's DROP for 12 s and cost the full
    // run 14% of its wall time (README "Performance", "What the engine does"). A threshold
    // no run reaches turns that off.
    checkpoint_threshold: '1TB',
  };
  if (options.threads) config['threads'] = String(options.threads);
  // Loaded on first use: the engine's native library takes a fifth of a second to load, which
  // commands that never open an engine (status, runs, validate, a refused config) skip. In
  // the bundle (scripts/bundle.js) this is a chunk of its own, one file instead of 180; its
  // default export is the package's exports object, in the bundle as from Node.
  const { DuckDBInstance } = (await import('@duckdb/node-api')).default;
  const instance = await DuckDBInstance.create(':memory:', config);
  const connections: DuckDB.DuckDBConnection[] = [];
  const wrap = async (): Promise<Engine> => {
    const connection = await instance.connect();
    connections.push(connection);
    return engineOn(connection, wrap, () => {
      for (const c of connections) c.closeSync();
      instance.closeSync();
    });
  };
  return wrap();
}

function engineOn(connection: DuckDB.DuckDBConnection, connect: () => Promise<Engine>, close: () => void): Engine {
  return {
    connect,
    async run(sql) {
      await connection.run(sql);
    },
    async all<T>(sql: string) {
      const reader = await connection.runAndReadAll(sql);
      return reader.getRowObjectsJson() as T[];
    },
    async streamStrings(sql, onChunk) {
      const result = await connection.stream(sql);
      for (;;) {
        const chunk = await result.fetchChunk();
        if (!chunk || chunk.rowCount === 0) break;
        const vector = chunk.getColumnVector(0);
        const values = new Array<string>(chunk.rowCount);
        for (let i = 0; i < chunk.rowCount; i++) values[i] = String(vector.getItem(i));
        await onChunk(values);
      }
    },
    close,
  };
}

/** Whether the engine has moved data out of memory (its spill files hold something): it is short of memory. */
export async function hasSpilled(engine: Engine): Promise<boolean> {
  const [row] = await engine.all<{ n: number }>(
    'SELECT count(*)::INTEGER AS n FROM duckdb_temporary_files() WHERE size > 0',
  );
  return (row?.n ?? 0) > 0;
}
