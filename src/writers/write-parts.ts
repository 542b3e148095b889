// Writes one run's rows as files: CSV / NDJSON lines rendered by DuckDB's COPY (optionally
// gzipped by Node, with mtime 0 so bytes repeat), Parquet through DuckDB's COPY. Splits at
// maxRowsPerFile; CSV parts each get the header. Files go to local paths the caller
// chooses (temp names); publishing them under final names is the storage layer's job.
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { rm, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { once } from 'node:events';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import type { Writable } from 'node:stream';
import type { FormatConfig } from '../config/schema.js';
import { BadInputError } from '../errors.js';
import { copyParquetPart, copyTextLines, findParquetTypeErrors, renderCsvHeader, type RunRows } from '../engine/render-parts.js';

export interface WrittenPart {
  partNumber: number;
  path: string;
  rows: number;
  bytes: number;
  sha256: string;
}

export type PartPath = (partNumber: number) => Promise<string>;

export async function writeParts(
  rows: RunRows,
  format: FormatConfig,
  partPath: PartPath,
  /** A folder the run owns, for the rendered lines before they are gzipped. */
  scratchDir: string,
): Promise<WrittenPart[]> {
  if (rows.count === 0 && format.emptyExport === 'skip') return [];
  const written =
    format.type === 'parquet'
      ? await writeParquet(rows, format, partPath)
      : await writeText(rows, format, partPath, scratchDir);
  return Promise.all(written.map(async (p) => ({ ...p, ...(await describeFile(p.path)) })));
}

type Counted = Pick<WrittenPart, 'partNumber' | 'path' | 'rows'>;

/** Fails (exit 4, naming profiles and fields) when mapped values do not fit their Parquet column type. */
export async function checkParquetTypes(rows: RunRows): Promise<void> {
  const errors = await findParquetTypeErrors(rows);
  if (errors.length > 0) {
    const lines = errors.map((e) => `  profile "${e.k}": ${e.source} = ${JSON.stringify(e.value)} is not ${e.type}`);
    throw new BadInputError(
      [`values that do not fit their Parquet column type:`, ...lines, `Fix the data, or change the mapping's "type" for that source (string accepts anything).`].join('\n'),
    );
  }
}

async function writeParquet(source: RunRows, format: FormatConfig, partPath: PartPath): Promise<Counted[]> {
  await checkParquetTypes(source);
  const parts: Counted[] = [];
  for (const { n, first, last, rows } of partRanges(source.count, format.maxRowsPerFile)) {
    const path = await partPath(n);
    await copyParquetPart(source, first, last, path, format.compression === 'gzip');
    parts.push({ partNumber: n, path, rows });
  }
  return parts;
}

/** Rows first..last (1-based) of each part: at most `size` a part, and one part (maybe empty) at least. */
function partRanges(total: number, size: number): { n: number; first: number; last: number; rows: number }[] {
  const count = Math.max(1, Math.ceil(total / size));
  return Array.from({ length: count }, (_, i) => {
    const first = i * size + 1;
    const last = Math.min((i + 1) * size, total);
    return { n: i + 1, first, last, rows: Math.max(0, last - first + 1) };
  });
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

/**
 * CSV / JSON lines: DuckDB writes each part's rendered lines to a scratch file (COPY, in
 * row order), and Node prepends the header and gzips it (the same zlib stream as ever, so
 * the bytes do not change) into the part. No line passes through JavaScript on its own.
 */
async function writeText(source: RunRows, format: FormatConfig, partPath: PartPath, scratchDir: string): Promise<Counted[]> {
  const csv = format.type === 'csv' ? format.csv : null;
  const header = csv?.header ? `${await renderCsvHeader(source, csv)}\n` : '';
  const gzip = format.compression === 'gzip';
  const parts: Counted[] = [];
  for (const { n, first, last, rows } of partRanges(source.count, format.maxRowsPerFile)) {
    const path = await partPath(n);
    if (!gzip && !header && rows > 0) {
      await copyTextLines(source, csv, first, last, path);
    } else {
      const lines = join(scratchDir, `lines-${basename(path)}`);
      try {
        if (rows > 0) await copyTextLines(source, csv, first, last, lines);
        async function* content(): AsyncGenerator<Buffer> {
          if (header) yield Buffer.from(header);
          if (rows > 0) yield* createReadStream(lines) as AsyncIterable<Buffer>;
        }
        if (gzip) await pipeline(content, createGzip(), createWriteStream(path));
        else await pipeline(content, createWriteStream(path));
      } finally {
        await rm(lines, { force: true });
      }
    }
    parts.push({ partNumber: n, path, rows });
  }
  return parts;
}

export async function describeFile(path: string): Promise<{ bytes: number; sha256: string }> {
  const hash = createHash('sha256');
  await pipeline(createReadStream(path), hash);
  return { bytes: (await stat(path)).size, sha256: hash.digest('hex') };
}
