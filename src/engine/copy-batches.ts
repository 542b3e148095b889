// Copies dataset batch files into export parts (SPEC §12).
//
//   NDJSON → JSON      the lines are copied as they are, byte for byte, one record a line
//                      (streamed, never re-serialised: DuckDB would reorder and retype);
//                      blank lines and bad lines are left out, `\r\n` becomes `\n`.
//   Parquet → JSON     DuckDB's to_json of each row, with the Parquet types.
//   any → Parquet      DuckDB reads the inputs with their own types (read_json's detection
//                      over every file, or the Parquet schema) and COPYs them out.
//
// Before anything is written every input is scanned (scanBatchFile): NDJSON lines that
// are not a JSON object are bad records (file:line), and Parquet parts whose schemas
// conflict are found (findSchemaConflicts), so a run stops before its first write.
// Parts split at maxRowsPerFile, in input order; gzip output carries no timestamp.
import path from 'node:path';
import { createWriteStream } from 'node:fs';
import { copyFile, rename, rm, stat } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { once } from 'node:events';
import { BadInputError } from '../errors.js';
import { describeFile, TextPart, type WrittenPart } from '../writers/write-parts.js';
import { isBlankLine, scanRecordLines, type RecordScan } from './scan-records.js';
import { forEachLine, type BadRecord } from './scan-lines.js';
import type { Engine } from './session.js';
import { ident, literal, literalList } from './sql.js';

export interface BatchFile {
  /** Local path the engine reads. */
  path: string;
  /** Name used in messages (the key or path the user knows). */
  name: string;
  kind: 'ndjson' | 'parquet';
  /** The batch it belongs to (conversions keep batches in order). */
  batchId: string;
}

export interface ScannedBatchFile extends BatchFile {
  /** Its records; null when the engine read the run's files as a whole (readBatchFiles). */
  records: number | null;
  /** 1-based line numbers of bad records (NDJSON). */
  badLines: Set<number>;
  /** Parquet: the part's columns and their types. */
  columns?: { name: string; type: string }[];
}

export interface CopyFormat {
  type: 'json' | 'parquet';
  compression: 'none' | 'gzip';
  maxRowsPerFile: number;
}

const CR = 0x0d;

/** Reads one input once: its record count, and its bad lines (NDJSON) or its schema (Parquet). */
export async function scanBatchFile(engine: Engine, file: BatchFile): Promise<{ scanned: ScannedBatchFile; bad: BadRecord[] }> {
  if (file.kind === 'parquet') {
    try {
      const columns = (await engine.all<{ column_name: string; column_type: string }>(`DESCRIBE SELECT * FROM read_parquet(${literal(file.path)})`)).map((c) => ({ name: c.column_name, type: c.column_type }));
      const [row] = await engine.all<{ n: string }>(`SELECT count(*)::VARCHAR AS n FROM read_parquet(${literal(file.path)})`);
      return { scanned: { ...file, records: Number(row?.n ?? 0), badLines: new Set(), columns }, bad: [] };
    } catch (error) {
      throw new BadInputError(`cannot read the Parquet part ${file.name}: ${firstLine(error)}. Check that the producer wrote a complete Parquet file. Nothing was written.`);
    }
  }
  try {
    const { records, bad } = await scanRecordLines(file.path, file.name);
    return { scanned: { ...file, records, badLines: new Set(bad.map((b) => b.line)) }, bad };
  } catch (error) {
    throw unreadableNdjson(file, error);
  }
}

const unreadableNdjson = (file: BatchFile, error: unknown) =>
  new BadInputError(`cannot read ${file.name}: ${firstLine(error)}. Check that the part is complete (and valid gzip when it ends in .gz). Nothing was written.`);

/** Files this big in all are scanned on worker threads, one file per thread at a time. */
const PARALLEL_SCAN_BYTES = 16 * 1024 * 1024;

/**
 * scanBatchFile for every file, in order. NDJSON scanning is JSON.parse bound, so larger
 * inputs are spread over worker threads (one per core, at most 4).
 */
export async function scanBatchFiles(engine: Engine, files: BatchFile[]): Promise<{ scanned: ScannedBatchFile; bad: BadRecord[] }[]> {
  const ndjson = files.filter((f) => f.kind === 'ndjson');
  const bytes = (await Promise.all(ndjson.map((f) => stat(f.path).then((s) => s.size)))).reduce((a, b) => a + b, 0);
  const threads = Math.min(4, availableParallelism(), ndjson.length);
  if (threads < 2 || bytes < PARALLEL_SCAN_BYTES) {
    const out = [];
    for (const file of files) out.push(await scanBatchFile(engine, file));
    return out;
  }
  const scans = await scanInWorkers(ndjson, threads);
  const out = [];
  for (const file of files) {
    if (file.kind === 'parquet') {
      out.push(await scanBatchFile(engine, file));
      continue;
    }
    const scan = scans.get(file)!;
    if ('error' in scan) throw unreadableNdjson(file, new Error(scan.error));
    out.push({ scanned: { ...file, records: scan.records, badLines: new Set(scan.bad.map((b) => b.line)) }, bad: scan.bad });
  }
  return out;
}

async function scanInWorkers(files: BatchFile[], threads: number): Promise<Map<BatchFile, RecordScan | { error: string }>> {
  const results = new Map<BatchFile, RecordScan | { error: string }>();
  let next = 0;
  const url = new URL('./scan-records-worker.js', import.meta.url);
  const work = async () => {
    const worker = new Worker(url);
    try {
      while (next < files.length) {
        const file = files[next++]!;
        results.set(
          file,
          await new Promise<RecordScan | { error: string }>((resolve, reject) => {
            const done = () => {
              worker.off('message', onMessage);
              worker.off('error', onError);
            };
            const onMessage = (m: { result?: RecordScan; error?: string }) => {
              done();
              resolve(m.result ?? { error: m.error ?? 'the scan worker gave no result' });
            };
            const onError = (error: Error) => {
              done();
              reject(error);
            };
            worker.on('message', onMessage);
            worker.on('error', onError);
            worker.postMessage({ id: 0, file: file.path, name: file.name });
          }),
        );
      }
    } finally {
      await worker.terminate();
    }
  };
  await Promise.all(Array.from({ length: threads }, work));
  return results;
}

/** Columns that two Parquet parts give different types, naming the parts. */
export function findSchemaConflicts(files: ScannedBatchFile[]): string[] {
  const seen = new Map<string, { type: string; file: string }>();
  const conflicts: string[] = [];
  for (const file of files) {
    for (const column of file.columns ?? []) {
      const first = seen.get(column.name);
      if (!first) seen.set(column.name, { type: column.type, file: file.name });
      else if (first.type !== column.type) conflicts.push(`column "${column.name}" is ${first.type} in ${first.file} but ${column.type} in ${file.name}`);
    }
  }
  return conflicts;
}

export type PartPathOf = (partNumber: number) => Promise<string>;

/**
 * Writes the records of `files` (already scanned) into parts of at most maxRowsPerFile
 * records, in input order; no records, no part. Files go to local paths the caller
 * chooses (staged names); publishing them is the storage layer's job.
 */
export async function copyBatchFiles(
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
      ? await copyToJson(engine, files, format, partPath)
      : await copyToParquet(engine, files, format, total, partPath, scratchDir);
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

async function copyToJson(engine: Engine, files: ScannedBatchFile[], format: CopyFormat, partPath: PartPathOf): Promise<Counted[]> {
  const sink = new PartSink(format, partPath);
  try {
    for (const file of files) {
      if (file.records === 0) continue;
      if (file.kind === 'parquet') {
        // A struct built from the part's own column list: a row alias could collide with a column name.
        const row = `{${(file.columns ?? []).map((c) => `${literal(c.name)}: ${ident(c.name)}`).join(', ')}}`;
        await engine.streamStrings(`SELECT to_json(${row})::VARCHAR FROM read_parquet(${literal(file.path)})`, async (lines) => {
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

async function copyToParquet(engine: Engine, files: ScannedBatchFile[], format: CopyFormat, total: number, partPath: PartPathOf, scratchDir: string): Promise<Counted[]> {
  const source = await parquetSource(engine, files.filter((f) => f.records !== 0), scratchDir);
  const codec = format.compression === 'gzip' ? 'gzip' : 'snappy';
  const copy = async (select: string, n: number) => {
    const file = await partPath(n);
    const [row] = await engine.all<{ Count: string | number }>(`COPY (${select}) TO ${literal(file)} (FORMAT parquet, COMPRESSION ${codec})`);
    return { partNumber: n, path: file, rows: Number(row?.Count ?? 0) };
  };
  try {
    if (total <= format.maxRowsPerFile) return [await copy(`SELECT * FROM ${source}`, 1)];
    // Parts take row ranges of one table, so every part has the same columns and types.
    const table = `dataset_rows_${++tableCounter}`;
    await engine.run(`CREATE OR REPLACE TABLE ${ident(table)} AS SELECT * FROM ${source}`);
    try {
      const parts: Counted[] = [];
      const size = format.maxRowsPerFile;
      for (let n = 1; (n - 1) * size < total; n++) {
        parts.push(await copy(`SELECT * FROM ${ident(table)} WHERE rowid BETWEEN ${(n - 1) * size} AND ${Math.min(n * size, total) - 1}`, n));
      }
      return parts;
    } finally {
      await engine.run(`DROP TABLE IF EXISTS ${ident(table)}`);
    }
  } catch (error) {
    if (error instanceof BadInputError) throw error;
    throw new BadInputError(
      `cannot convert the batch files (${files.map((f) => f.name).join(', ')}) to Parquet: ${firstLine(error)}. Check that the records of one dataset keep compatible field types. Nothing was committed.`,
    );
  }
}

/** A whole export written ahead as its one Parquet part (see readBatchFiles). */
export interface PreparedPart {
  path: string;
  rows: number;
}

/** A run's inputs, read: what copyBatchFiles copies. */
export interface ReadBatches {
  files: ScannedBatchFile[];
  /** Bad records, skipped. */
  bad: BadRecord[];
  records: number;
  /** The export's one Parquet part, converted while reading (mode "convert"). */
  prepared: PreparedPart | null;
}

/**
 * Reads a run's inputs before anything is written. JSON output: every NDJSON line is
 * checked as strict JSON (scanBatchFiles), as the lines are then copied as they are.
 * Parquet output from NDJSON: DuckDB's reader is the check, and in mode "convert" it
 * writes the export's Parquet part right away to `out` (the conversion is the costly part
 * of the export; copyBatchFiles then only moves it into place when it fits one part), in
 * mode "count" it only counts. Only when DuckDB refuses the input are the lines scanned,
 * to name each bad one by file:line; the export then converts the other lines.
 */
export async function readBatchFiles(engine: Engine, files: BatchFile[], format: CopyFormat, mode: 'convert' | 'count', out: string): Promise<ReadBatches> {
  if (format.type === 'parquet' && files.length > 0 && files.every((f) => f.kind === 'ndjson')) {
    const source = `read_json([${literalList(files.map((f) => f.path))}], ${NDJSON_READ})`;
    const codec = format.compression === 'gzip' ? 'gzip' : 'snappy';
    try {
      const sql = mode === 'convert' ? `COPY (SELECT * FROM ${source}) TO ${literal(out)} (FORMAT parquet, COMPRESSION ${codec})` : `SELECT count(*) AS Count FROM ${source}`;
      const [row] = await engine.all<{ Count: string | number }>(sql);
      const records = Number(row?.Count ?? 0);
      return { files: files.map((f) => ({ ...f, records: null, badLines: new Set<number>() })), bad: [], records, prepared: mode === 'convert' ? { path: out, rows: records } : null };
    } catch {
      // Refused: the scan below names the bad lines.
    }
  }
  const scans = await scanBatchFiles(engine, files);
  return { files: scans.map((s) => s.scanned), bad: scans.flatMap((s) => s.bad), records: scans.reduce((n, s) => n + (s.scanned.records ?? 0), 0), prepared: null };
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

const NDJSON_READ = "format = 'newline_delimited', records = true, union_by_name = true, maximum_object_size = 67108864";

/**
 * The relation of every record in input order. NDJSON only: one read_json over every
 * file, so types are detected over all of them. With Parquet parts, each batch's NDJSON
 * files are first converted to a Parquet file of their own, then everything is read with
 * read_parquet (union by name: a column one part lacks is null there).
 */
async function parquetSource(engine: Engine, files: ScannedBatchFile[], scratchDir: string): Promise<string> {
  const readable: string[] = [];
  for (const [i, file] of files.entries()) readable.push(file.badLines.size ? await writeCleanCopy(file, path.join(scratchDir, `clean-${i}.ndjson`)) : file.path);
  if (files.every((f) => f.kind === 'ndjson')) return `read_json([${literalList(readable)}], ${NDJSON_READ})`;
  const inputs: string[] = [];
  let group: string[] = [];
  const convert = async () => {
    if (group.length === 0) return;
    const out = path.join(scratchDir, `converted-${inputs.length}.parquet`);
    await engine.run(`COPY (SELECT * FROM read_json([${literalList(group)}], ${NDJSON_READ})) TO ${literal(out)} (FORMAT parquet)`);
    inputs.push(out);
    group = [];
  };
  for (const [i, file] of files.entries()) {
    if (file.kind === 'parquet') {
      await convert();
      inputs.push(readable[i]!);
    } else {
      if (group.length && files[i - 1]?.batchId !== file.batchId) await convert();
      group.push(readable[i]!);
    }
  }
  await convert();
  return `read_parquet([${literalList(inputs)}], union_by_name = true)`;
}

/** The file without its bad lines, for DuckDB's reader (which stops at the first bad line). */
async function writeCleanCopy(file: ScannedBatchFile, out: string): Promise<string> {
  const stream = createWriteStream(out);
  let line = 0;
  await forEachLine(file.path, async (bytes) => {
    line += 1;
    if (file.badLines.has(line)) return;
    if (!stream.write(Buffer.concat([bytes, Buffer.from('\n')]))) await once(stream, 'drain');
  });
  stream.end();
  await once(stream, 'close');
  return out;
}

function firstLine(error: unknown): string {
  return (error instanceof Error ? error.message : String(error)).split('\n')[0]!;
}
