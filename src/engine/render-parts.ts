// The engine's one entry for writers/: everything a writer needs to turn a run's rows (or a
// dataset's batches) into part files, with the SQL built here in engine/. Writers import
// from this module only (eslint.config.js), so the engine's tables and SQL stay its own.
import type { CsvOptions } from '../config/schema.js';
import { RunRows } from './run-rows.js';
import { csvHeaderSql, parquetCopySql, parquetTypeErrorsSql, textLinesCopySql } from './render-sql.js';

export type { RunRows } from './run-rows.js';
export type { Engine } from './session.js';
// Dataset exports (writers/write-dataset-parts.ts): batch copies and line reading.
export {
  dropTableSql,
  firstLine,
  parquetJsonLinesSql,
  parquetPartSql,
  parquetSource,
  rowRangeSql,
  rowsTableSql,
  type CopyFormat,
  type ReadBatches,
  type ScannedBatchFile,
} from './copy-batches.js';
export { forEachLine } from './scan-lines.js';
export { isBlankLine } from './scan-records.js';

/** The CSV header line (without its line break) in the dialect's quoting. */
export async function renderCsvHeader(rows: RunRows, csv: CsvOptions): Promise<string> {
  const { engine, shape } = RunRows.locate(rows);
  const [row] = await engine.all<{ line: string }>(csvHeaderSql(shape, csv));
  return row?.line ?? '';
}

/** Writes rows first..last (1-based) as CSV lines (`csv` given) or JSON lines, one "\n" each, uncompressed. */
export async function copyTextLines(
  rows: RunRows,
  csv: CsvOptions | null,
  firstRow: number,
  lastRow: number,
  file: string,
): Promise<void> {
  const { engine, shape } = RunRows.locate(rows);
  const { table, range } = await RunRows.rangeOf(rows, firstRow, lastRow);
  await engine.run(textLinesCopySql(shape, table, csv, range, file));
}

/** Writes rows first..last (1-based) as one Parquet file with the mapping's column types. */
export async function copyParquetPart(
  rows: RunRows,
  firstRow: number,
  lastRow: number,
  file: string,
  gzip: boolean,
): Promise<void> {
  const { engine, shape } = RunRows.locate(rows);
  const { table, range } = await RunRows.rangeOf(rows, firstRow, lastRow);
  await engine.run(parquetCopySql(shape, table, range, file, gzip));
}

export interface ParquetTypeError {
  /** The profile key. */
  k: string;
  source: string;
  type: string;
  value: string;
}

/** The first rows (at most 10) whose mapped values do not convert to their Parquet column type. */
export async function findParquetTypeErrors(rows: RunRows): Promise<ParquetTypeError[]> {
  const { engine, shape, table } = RunRows.locate(rows);
  const check = parquetTypeErrorsSql(shape, table);
  return check ? await engine.all<ParquetTypeError>(check) : [];
}
