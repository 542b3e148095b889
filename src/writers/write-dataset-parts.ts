// Writes a dataset export run's parts (README "Export datasets") into local files the caller chooses
// (staged names); publishing them is the storage layer's job.
//
//   NDJSON → JSON      the lines are copied as they are, byte for byte, one record a line
//                      (streamed, never re-serialised: DuckDB would reorder and retype);
//                      blank lines and bad lines are left out, `\r\n` becomes `\n`.
//   Parquet → JSON     DuckDB's to_json of each row, with the Parquet types.
//   any → Parquet      DuckDB COPYs the records with the input's own types; a part the
//                      engine converted while reading (readBatchFiles) is moved into place.
//
// Parts split at maxRowsPerFile, in input order; gzip output carries no timestamp.
import { copyFile, rename, rm } from 'node:fs/promises';
import { BadInputError } from '../errors.js';
import {
  dropTableSql,
  firstLine,
  forEachLine,
  isBlankLine,
  parquetJsonLinesSql,
  parquetPartSql,
  parquetSource,
  rowRangeSql,
  rowsTableSql,
  type CopyFormat,
  type Engine,
  type ReadBatches,
  type ScannedBatchFile,
} from '../engine/render-parts.js';
import { describeFile, TextPart, type WrittenPart } from './write-parts.js';

const CR = 0x0d;

export type PartPathOf = (partNumber: number) => Promise<string>;

/**
 * Writes the records of `files` (already scanned) into parts of at most maxRowsPerFile
 * records, in input order; no records, no part. Files go to local paths the caller
 * chooses (staged names); publishing them is the storage layer's job.
 */
export async function writeDatasetParts(
  engine: Engine,
  input: ReadBatches,
  format: CopyFormat,
  partPath: PartPathOf,
  scratchDir: string,
): Promise<WrittenPart[]> {
  const { files, prepared } = input;
  const total = prepared?.rows ?? files.reduce((n, f) => n + (f.records ?? 0), 0);
  if (total === 0) return [];
  const usable = prepared && total <= format.maxRowsPerFile;
  const written = usable
    ? [{ partNumber: 1, path: await moveFile(prepared.path, await partPath(1)), rows: total }]
    : format.type === 'json'
      ? await writeJsonParts(engine, files, format, partPath)
      : await writeParquetParts(engine, files, format, total, partPath, scratchDir);
  const sum = written.reduce((n, p) => n + p.rows, 0);
  if (sum !== total) throw new Error(`internal: wrote ${sum} records, expected ${total}`);
  return Promise.all(written.map(async (p) => ({ ...p, ...(await describeFile(p.path)) })));
}

type Counted = Pick<WrittenPart, 'partNumber' | 'path' | 'rows'>;

/** Lines into parts: a new part every maxRowsPerFile lines, writes batched into ≥ 64 KiB. */
class PartSink {
  private current: TextPart | null = null;
  private buffered: (Buffer | string)[] = [];
  private bufferedBytes = 0;
  private bufferedRows = 0;
  readonly parts: Counted[] = [];

  constructor(
    private readonly format: CopyFormat,
    private readonly partPath: PartPathOf,
  ) {}

  async add(line: Buffer | string): Promise<void> {
    if (!this.current || this.current.rows + this.bufferedRows >= this.format.maxRowsPerFile) await this.rotate();
    this.buffered.push(line, '\n');
    this.bufferedBytes += line.length + 1;
    this.bufferedRows += 1;
    if (this.bufferedBytes >= 1 << 16) await this.flush();
  }

  private async flush(): Promise<void> {
    if (!this.current || this.buffered.length === 0) return;
    const chunk = Buffer.concat(this.buffered.map((b) => (typeof b === 'string' ? Buffer.from(b) : b)));
    this.current.rows += this.bufferedRows;
    this.buffered = [];
    this.bufferedBytes = 0;
    this.bufferedRows = 0;
    await this.current.write(chunk);
  }

  private async rotate(): Promise<void> {
    await this.closeCurrent();
    const n = this.parts.length + 1;
    this.current = new TextPart(n, await this.partPath(n), this.format.compression === 'gzip');
  }

  private async closeCurrent(): Promise<void> {
    const part = this.current;
    if (!part) return;
    await this.flush();
    this.current = null;
    await part.close();
    this.parts.push({ partNumber: part.partNumber, path: part.path, rows: part.rows });
  }

  async finish(): Promise<Counted[]> {
    await this.closeCurrent();
    return this.parts;
  }

  async abort(): Promise<void> {
    await this.current?.close().catch(() => undefined);
    this.current = null;
  }
}

async function writeJsonParts(
  engine: Engine,
  files: ScannedBatchFile[],
  format: CopyFormat,
  partPath: PartPathOf,
): Promise<Counted[]> {
  const sink = new PartSink(format, partPath);
  try {
    for (const file of files) {
      if (file.records === 0) continue;
      if (file.kind === 'parquet') {
        await engine.streamStrings(parquetJsonLinesSql(file), async (lines) => {
          for (const l of lines) await sink.add(l);
        });
        continue;
      }
      let line = 0;
      await forEachLine(file.path, async (bytes, length) => {
        line += 1;
        if (file.badLines.has(line) || isBlankLine(bytes, length)) return;
        // Only the line ending is dropped; the record's bytes are kept as they are.
        await sink.add(bytes[bytes.length - 1] === CR ? bytes.subarray(0, bytes.length - 1) : bytes);
      });
    }
    return await sink.finish();
  } catch (error) {
    await sink.abort();
    throw error;
  }
}

let tableCounter = 0;

async function writeParquetParts(
  engine: Engine,
  files: ScannedBatchFile[],
  format: CopyFormat,
  total: number,
  partPath: PartPathOf,
  scratchDir: string,
): Promise<Counted[]> {
  const source = await parquetSource(
    engine,
    files.filter((f) => f.records !== 0),
    scratchDir,
  );
  const copy = async (select: string, n: number) => {
    const file = await partPath(n);
    const [row] = await engine.all<{ Count: string | number }>(
      parquetPartSql(select, file, format.compression === 'gzip'),
    );
    return { partNumber: n, path: file, rows: Number(row?.Count ?? 0) };
  };
  try {
    if (total <= format.maxRowsPerFile) return [await copy(`SELECT * FROM ${source}`, 1)];
    // Parts take row ranges of one table, so every part has the same columns and types.
    const table = `dataset_rows_${++tableCounter}`;
    await engine.run(rowsTableSql(table, source));
    try {
      const parts: Counted[] = [];
      const size = format.maxRowsPerFile;
      for (let n = 1; (n - 1) * size < total; n++) {
        parts.push(await copy(rowRangeSql(table, (n - 1) * size, Math.min(n * size, total) - 1), n));
      }
      return parts;
    } finally {
      await engine.run(dropTableSql(table));
    }
  } catch (error) {
    if (error instanceof BadInputError) throw error;
    throw new BadInputError(
      `cannot convert the batch files (${files.map((f) => f.name).join(', ')}) to Parquet: ${firstLine(error)}. Check that the records of one dataset keep compatible field types. Nothing was committed.`,
    );
  }
}

async function moveFile(from: string, to: string): Promise<string> {
  try {
    await rename(from, to);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EXDEV') throw error;
    await copyFile(from, to);
    await rm(from, { force: true });
  }
  return to;
}
