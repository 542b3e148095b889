// Writes one run's rows as files: CSV / NDJSON streamed from DuckDB in chunks (optionally
// gzip, with mtime 0 so bytes repeat), Parquet through DuckDB's COPY. Splits at
// maxRowsPerFile; CSV parts each get the header. Files go to local paths the caller
// chooses (temp names); publishing them under final names is the storage layer's job.
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { once } from 'node:events';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import type { Writable } from 'node:stream';
import type { FormatConfig } from '../config/schema.js';
import { BadInputError } from '../errors.js';
import type { Engine } from '../engine/session.js';
import type { Shape } from '../engine/shape.js';
import { csvHeaderSql, csvLinesSql, jsonLinesSql, parquetCopySql, parquetTypeErrorsSql } from '../engine/render-sql.js';

export interface WrittenPart {
  partNumber: number;
  path: string;
  rows: number;
  bytes: number;
  sha256: string;
}

export type PartPath = (partNumber: number) => Promise<string>;

export async function writeParts(
  engine: Engine,
  shape: Shape,
  table: string,
  format: FormatConfig,
  totalRows: number,
  partPath: PartPath,
): Promise<WrittenPart[]> {
  if (totalRows === 0 && format.emptyExport === 'skip') return [];
  const written =
    format.type === 'parquet'
      ? await writeParquet(engine, shape, table, format, totalRows, partPath)
      : await writeText(engine, shape, table, format, totalRows, partPath);
  return Promise.all(written.map(async (p) => ({ ...p, ...(await describeFile(p.path)) })));
}

type Counted = Pick<WrittenPart, 'partNumber' | 'path' | 'rows'>;

/** Fails (exit 4, naming profiles and fields) when mapped values do not fit their Parquet column type. */
export async function checkParquetTypes(engine: Engine, shape: Shape, table: string): Promise<void> {
  const check = parquetTypeErrorsSql(shape, table);
  if (check) {
    const errors = await engine.all<{ k: string; source: string; type: string; value: string }>(check);
    if (errors.length > 0) {
      const lines = errors.map((e) => `  profile "${e.k}": ${e.source} = ${JSON.stringify(e.value)} is not ${e.type}`);
      throw new BadInputError(
        [`values that do not fit their Parquet column type:`, ...lines, `Fix the data, or change the mapping's "type" for that source (string accepts anything).`].join('\n'),
      );
    }
  }
}

async function writeParquet(engine: Engine, shape: Shape, table: string, format: FormatConfig, total: number, partPath: PartPath): Promise<Counted[]> {
  await checkParquetTypes(engine, shape, table);
  const parts: Counted[] = [];
  const size = format.maxRowsPerFile;
  const count = Math.max(1, Math.ceil(total / size));
  for (let n = 1; n <= count; n++) {
    const path = await partPath(n);
    const first = (n - 1) * size + 1;
    const last = Math.min(n * size, total);
    await engine.run(parquetCopySql(shape, table, first, last, path, format.compression === 'gzip'));
    parts.push({ partNumber: n, path, rows: Math.max(0, last - first + 1) });
  }
  return parts;
}

/** One open part file: an optional gzip stage in front of the file. */
export class TextPart {
  readonly done: Promise<void>;
  private readonly head: Writable;
  rows = 0;

  constructor(readonly partNumber: number, readonly path: string, gzip: boolean) {
    const file = createWriteStream(path);
    if (gzip) {
      const zip = createGzip();
      this.head = zip;
      this.done = pipeline(zip, file);
    } else {
      this.head = file;
      this.done = once(file, 'close').then(() => undefined);
    }
    this.done.catch(() => undefined);
  }

  async write(text: string | Buffer): Promise<void> {
    if (!this.head.write(text)) await once(this.head, 'drain');
  }

  async close(): Promise<void> {
    this.head.end();
    await this.done;
  }
}

async function writeText(engine: Engine, shape: Shape, table: string, format: FormatConfig, total: number, partPath: PartPath): Promise<Counted[]> {
  const csv = format.type === 'csv' ? format.csv : null;
  let header = '';
  if (csv?.header) {
    const [row] = await engine.all<{ line: string }>(csvHeaderSql(shape, csv));
    header = `${row?.line ?? ''}\n`;
  }
  const gzip = format.compression === 'gzip';
  const parts: Counted[] = [];
  let current: TextPart | null = null;
  const open = async () => {
    const n = parts.length + 1;
    current = new TextPart(n, await partPath(n), gzip);
    if (header) await current.write(header);
    return current;
  };
  const close = async (part: TextPart) => {
    await part.close();
    parts.push({ partNumber: part.partNumber, path: part.path, rows: part.rows });
  };
  const sql = csv ? csvLinesSql(shape, table, csv) : jsonLinesSql(shape, table);
  try {
    await engine.streamStrings(sql, async (lines) => {
      let offset = 0;
      while (offset < lines.length) {
        let part: TextPart = current ?? (await open());
        if (part.rows >= format.maxRowsPerFile) {
          await close(part);
          current = null;
          part = await open();
        }
        const take = Math.min(lines.length - offset, format.maxRowsPerFile - part.rows);
        const slice = offset === 0 && take === lines.length ? lines : lines.slice(offset, offset + take);
        await part.write(`${slice.join('\n')}\n`);
        part.rows += take;
        offset += take;
      }
    });
    const last: TextPart = current ?? (await open());
    current = null;
    await close(last);
  } catch (error) {
    const unfinished = current as TextPart | null;
    if (unfinished) await unfinished.close().catch(() => undefined);
    throw error;
  }
  if (total !== parts.reduce((n, p) => n + p.rows, 0)) {
    throw new Error(`internal: wrote ${parts.reduce((n, p) => n + p.rows, 0)} rows, expected ${total}`);
  }
  return parts;
}

export async function describeFile(path: string): Promise<{ bytes: number; sha256: string }> {
  const hash = createHash('sha256');
  await pipeline(createReadStream(path), hash);
  return { bytes: (await stat(path)).size, sha256: hash.digest('hex') };
}
