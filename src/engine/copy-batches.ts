// Reads dataset batch files for an export (README "Export datasets"), and the SQL that copies them
// (writers/write-dataset-parts.ts writes the parts).
//
// Before anything is written every input is read once (readBatchFiles): NDJSON lines
// that are not a JSON object are bad records (file:line), Parquet parts whose schemas
// conflict are found (findSchemaConflicts), so a run stops before its first write. For
// Parquet output DuckDB's reader is the check and converts the records as it reads.
import path from 'node:path';
import { createWriteStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { once } from 'node:events';
import { BadInputError } from '../errors.js';
import { scanRecordLines, type RecordScan } from './scan-records.js';
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

/** Reads one input once: its record count, and its bad lines (NDJSON) or its schema (Parquet). */
export async function scanBatchFile(
  engine: Engine,
  file: BatchFile,
): Promise<{ scanned: ScannedBatchFile; bad: BadRecord[] }> {
  if (file.kind === 'parquet') {
    try {
      const columns = (
        await engine.all<{ column_name: string; column_type: string }>(
          `DESCRIBE SELECT * FROM read_parquet(${literal(file.path)})`,
        )
      ).map((c) => ({ name: c.column_name, type: c.column_type }));
      const [row] = await engine.all<{ n: string }>(
        `SELECT count(*)::VARCHAR AS n FROM read_parquet(${literal(file.path)})`,
      );
      return { scanned: { ...file, records: Number(row?.n ?? 0), badLines: new Set(), columns }, bad: [] };
    } catch (error) {
      throw new BadInputError(
        `cannot read the Parquet part ${file.name}: ${firstLine(error)}. Check that the producer wrote a complete Parquet file. Nothing was written.`,
      );
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
  new BadInputError(
    `cannot read ${file.name}: ${firstLine(error)}. Check that the part is complete (and valid gzip when it ends in .gz). Nothing was written.`,
  );

/** Files this big in all are scanned on worker threads, one file per thread at a time. */
const PARALLEL_SCAN_BYTES = 16 * 1024 * 1024;

/**
 * scanBatchFile for every file, in order. NDJSON scanning is JSON.parse bound, so larger
 * inputs are spread over worker threads (one per core, at most 4).
 */
export async function scanBatchFiles(
  engine: Engine,
  files: BatchFile[],
): Promise<{ scanned: ScannedBatchFile; bad: BadRecord[] }[]> {
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
    out.push({
      scanned: { ...file, records: scan.records, badLines: new Set(scan.bad.map((b) => b.line)) },
      bad: scan.bad,
    });
  }
  return out;
}

async function scanInWorkers(
  files: BatchFile[],
  threads: number,
): Promise<Map<BatchFile, RecordScan | { error: string }>> {
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
      else if (first.type !== column.type)
        conflicts.push(`column "${column.name}" is ${first.type} in ${first.file} but ${column.type} in ${file.name}`);
    }
  }
  return conflicts;
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
export async function readBatchFiles(
  engine: Engine,
  files: BatchFile[],
  format: CopyFormat,
  mode: 'convert' | 'count',
  out: string,
): Promise<ReadBatches> {
  if (format.type === 'parquet' && files.length > 0 && files.every((f) => f.kind === 'ndjson')) {
    const source = `read_json([${literalList(files.map((f) => f.path))}], ${NDJSON_READ})`;
    const codec = format.compression === 'gzip' ? 'gzip' : 'snappy';
    try {
      const sql =
        mode === 'convert'
          ? `COPY (SELECT * FROM ${source}) TO ${literal(out)} (FORMAT parquet, COMPRESSION ${codec})`
          : `SELECT count(*) AS Count FROM ${source}`;
      const [row] = await engine.all<{ Count: string | number }>(sql);
      const records = Number(row?.Count ?? 0);
      return {
        files: files.map((f) => ({ ...f, records: null, badLines: new Set<number>() })),
        bad: [],
        records,
        prepared: mode === 'convert' ? { path: out, rows: records } : null,
      };
    } catch {
      // Refused: the scan below names the bad lines.
    }
  }
  const scans = await scanBatchFiles(engine, files);
  return {
    files: scans.map((s) => s.scanned),
    bad: scans.flatMap((s) => s.bad),
    records: scans.reduce((n, s) => n + (s.scanned.records ?? 0), 0),
    prepared: null,
  };
}

const NDJSON_READ =
  "format = 'newline_delimited', records = true, union_by_name = true, maximum_object_size = 67108864";

/**
 * The relation of every record in input order. NDJSON only: one read_json over every
 * file, so types are detected over all of them. With Parquet parts, each batch's NDJSON
 * files are first converted to a Parquet file of their own, then everything is read with
 * read_parquet (union by name: a column one part lacks is null there).
 */
export async function parquetSource(engine: Engine, files: ScannedBatchFile[], scratchDir: string): Promise<string> {
  const readable: string[] = [];
  for (const [i, file] of files.entries())
    readable.push(
      file.badLines.size ? await writeCleanCopy(file, path.join(scratchDir, `clean-${i}.ndjson`)) : file.path,
    );
  if (files.every((f) => f.kind === 'ndjson')) return `read_json([${literalList(readable)}], ${NDJSON_READ})`;
  const inputs: string[] = [];
  let group: string[] = [];
  const convert = async () => {
    if (group.length === 0) return;
    const out = path.join(scratchDir, `converted-${inputs.length}.parquet`);
    await engine.run(
      `COPY (SELECT * FROM read_json([${literalList(group)}], ${NDJSON_READ})) TO ${literal(out)} (FORMAT parquet)`,
    );
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

export function firstLine(error: unknown): string {
  return (error instanceof Error ? error.message : String(error)).split('\n')[0]!;
}

/** One Parquet part: `select` copied to `file`, gzip or snappy. The COPY answers { Count }. */
export function parquetPartSql(select: string, file: string, gzip: boolean): string {
  return `COPY (${select}) TO ${literal(file)} (FORMAT parquet, COMPRESSION ${gzip ? 'gzip' : 'snappy'})`;
}

/** Each row of a Parquet part as one JSON line, by its own column list (a row alias could collide with a column name). */
export function parquetJsonLinesSql(file: ScannedBatchFile): string {
  const row = `{${(file.columns ?? []).map((c) => `${literal(c.name)}: ${ident(c.name)}`).join(', ')}}`;
  return `SELECT to_json(${row})::VARCHAR FROM read_parquet(${literal(file.path)})`;
}

/** The rows of `source` as a table, so parts can take row ranges of one relation (the same columns and types in every part). */
export function rowsTableSql(table: string, source: string): string {
  return `CREATE OR REPLACE TABLE ${ident(table)} AS SELECT * FROM ${source}`;
}

export function dropTableSql(table: string): string {
  return `DROP TABLE IF EXISTS ${ident(table)}`;
}

/** Rows first..last (0-based, inclusive) of a table made by rowsTableSql, in order. */
export function rowRangeSql(table: string, first: number, last: number): string {
  return `SELECT * FROM ${ident(table)} WHERE rowid BETWEEN ${first} AND ${last}`;
}
