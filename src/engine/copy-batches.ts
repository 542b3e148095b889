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
import { once } from 'node:events';
import { BadInputError } from '../errors.js';
import { describeFile, TextPart, type WrittenPart } from '../writers/write-parts.js';
import { MAX_RECORD_BYTES } from './record-rules.js';
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
  records: number;
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

const utf8 = new TextDecoder('utf-8', { fatal: true });
const CR = 0x0d;

/** A line that carries no record: empty, or only white space. */
function isBlank(bytes: Buffer, length: number): boolean {
  if (length === 0) return true;
  if (length > 64) return false;
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i]!;
    if (b !== 0x20 && b !== 0x09 && b !== CR) return false;
  }
  return true;
}

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
  const bad: BadRecord[] = [];
  const badLines = new Set<number>();
  let line = 0;
  let records = 0;
  const fail = (reason: string) => {
    bad.push({ file: file.name, line, reason });
    badLines.add(line);
  };
  try {
    await forEachLine(file.path, (bytes, length) => {
      line += 1;
      if (isBlank(bytes, length)) return;
      if (length > MAX_RECORD_BYTES) return fail(`the record is longer than ${MAX_RECORD_BYTES / 1024 / 1024} MiB`);
      let text: string;
      try {
        text = utf8.decode(bytes);
      } catch {
        return fail('the line is not valid UTF-8');
      }
      let value: unknown;
      try {
        value = JSON.parse(text);
      } catch (error) {
        return fail(`not valid JSON (${(error as Error).message})`);
      }
      if (value === null || typeof value !== 'object' || Array.isArray(value)) return fail('the line is not a JSON object');
      records += 1;
    });
  } catch (error) {
    throw new BadInputError(`cannot read ${file.name}: ${firstLine(error)}. Check that the part is complete (and valid gzip when it ends in .gz). Nothing was written.`);
  }
  return { scanned: { ...file, records, badLines }, bad };
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
export async function copyBatchFiles(engine: Engine, files: ScannedBatchFile[], format: CopyFormat, partPath: PartPathOf, scratchDir: string): Promise<WrittenPart[]> {
  const total = files.reduce((n, f) => n + f.records, 0);
  if (total === 0) return [];
  const written = format.type === 'json' ? await copyToJson(engine, files, format, partPath) : await copyToParquet(engine, files, format, total, partPath, scratchDir);
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
        if (file.badLines.has(line) || isBlank(bytes, length)) return;
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
  const source = await parquetSource(engine, files.filter((f) => f.records > 0), scratchDir);
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
