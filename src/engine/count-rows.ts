// Row counts of Parquet files the engine did not write in this process (a kept baseline
// chosen by `audex reset --to`).
import type { Engine } from './session.js';
import { literal } from './sql.js';

export async function countParquetRows(engine: Engine, file: string): Promise<number> {
  const [row] = await engine.all<{ n: string | number }>(`SELECT count(*) AS n FROM read_parquet(${literal(file)})`);
  return Number(row?.n ?? 0);
}
