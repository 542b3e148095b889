// The file formats of audience exports, one entry each (README "Files, names and the manifest"): how a part is named
// (extension), how it is stored (content type), what is checked before anything is
// written, how rows split into parts, and how a part is written. Adding a format to the
// config's `format.type` is one entry here; the compiler names the one missing. The SQL
// that renders rows stays in engine/ (render-parts.ts is the writers' one door to it).
//
//   csv, json  DuckDB's COPY writes each part's rendered lines (CSV in the dialect of
//              README "Files, names and the manifest", or JSON objects), in row order; Node prepends the CSV header and
//              gzips (mtime 0, so bytes repeat). No line passes through JavaScript alone.
//   parquet    DuckDB's COPY, columns cast to the mapping's types, after a check that
//              every value converts (exit 4 naming the profiles, before any part).
import { createReadStream, createWriteStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import type { FormatConfig } from '../config/schema.js';
import { BadInputError } from '../errors.js';
import {
  copyParquetPart,
  copyTextLines,
  findParquetTypeErrors,
  renderCsvHeader,
  type RunRows,
} from '../engine/render-parts.js';

export type FormatType = FormatConfig['type'];
export type Compression = FormatConfig['compression'];

/** Rows first..last (1-based, inclusive; last < first for an empty part) of part n. */
export interface PartRange {
  n: number;
  first: number;
  last: number;
  rows: number;
}

/** Writes one part of a run's rows into a local file. */
export type PartWriter = (part: PartRange, file: string) => Promise<void>;

export interface Format {
  /** The file name extension, by compression (README "Files, names and the manifest"). */
  extension: Record<Compression, string>;
  /** The Content-Type a part is stored with (S3), by compression. */
  contentType: Record<Compression, string>;
  /** Fails (BadInputError) when the rows cannot be written in this format; `audex plan` shows such a run as failing. */
  check(rows: RunRows): Promise<void>;
  /** The parts `total` rows make (at least one, maybe empty). */
  split(total: number, format: FormatConfig): PartRange[];
  /** Prepares a run's writing (after check) and returns the writer of its parts; `scratchDir` is the run's own folder. */
  open(rows: RunRows, format: FormatConfig, scratchDir: string): Promise<PartWriter>;
}

const noCheck = async (): Promise<void> => undefined;

export const FORMATS: Record<FormatType, Format> = {
  csv: {
    extension: { none: '.csv', gzip: '.csv.gz' },
    contentType: { none: 'text/csv', gzip: 'application/gzip' },
    check: noCheck,
    split: splitByRows,
    open: (rows, format, scratchDir) => openTextWriter(rows, format, format.csv, scratchDir),
  },
  json: {
    extension: { none: '.json', gzip: '.json.gz' },
    contentType: { none: 'application/json', gzip: 'application/gzip' },
    check: noCheck,
    split: splitByRows,
    open: (rows, format, scratchDir) => openTextWriter(rows, format, null, scratchDir),
  },
  parquet: {
    // Spark/Hadoop convention: the codec goes before `.parquet` so readers still recognise
    // the file as Parquet (it is not a gzip stream).
    extension: { none: '.parquet', gzip: '.gz.parquet' },
    contentType: { none: 'application/octet-stream', gzip: 'application/octet-stream' },
    check: checkParquetTypes,
    split: splitByRows,
    open: async (rows, format) => {
      await checkParquetTypes(rows);
      return (part, file) => copyParquetPart(rows, part.first, part.last, file, format.compression === 'gzip');
    },
  },
};

/** The registry entry of a dataflow's format. */
export function formatOf(format: Pick<FormatConfig, 'type'>): Format {
  return FORMATS[format.type];
}

/** How many files a run of `rows` rows writes (none for an empty run with emptyExport: skip). */
export function countParts(format: FormatConfig, rows: number): number {
  return rows === 0 && format.emptyExport === 'skip' ? 0 : formatOf(format).split(rows, format).length;
}

/** At most maxRowsPerFile rows a part, and one part (maybe empty) at least. */
function splitByRows(total: number, format: FormatConfig): PartRange[] {
  const size = format.maxRowsPerFile;
  const count = Math.max(1, Math.ceil(total / size));
  return Array.from({ length: count }, (_, i) => {
    const first = i * size + 1;
    const last = Math.min((i + 1) * size, total);
    return { n: i + 1, first, last, rows: Math.max(0, last - first + 1) };
  });
}

/** Fails (exit 4, naming profiles and fields) when mapped values do not fit their Parquet column type. */
async function checkParquetTypes(rows: RunRows): Promise<void> {
  const errors = await findParquetTypeErrors(rows);
  if (errors.length > 0) {
    const lines = errors.map((e) => `  profile "${e.k}": ${e.source} = ${JSON.stringify(e.value)} is not ${e.type}`);
    throw new BadInputError(
      [
        `values that do not fit their Parquet column type:`,
        ...lines,
        `Fix the data, or change the mapping's "type" for that source (string accepts anything).`,
      ].join('\n'),
    );
  }
}

/**
 * CSV (`csv` given) or JSON lines: DuckDB writes a part's rendered lines to a scratch file
 * (COPY, in row order), and Node prepends the header and gzips it into the part (the same
 * zlib stream as ever, so the bytes do not change); a plain part without a header is
 * written by the COPY directly.
 */
async function openTextWriter(
  rows: RunRows,
  format: FormatConfig,
  csv: FormatConfig['csv'] | null,
  scratchDir: string,
): Promise<PartWriter> {
  const header = csv?.header ? `${await renderCsvHeader(rows, csv)}\n` : '';
  const gzip = format.compression === 'gzip';
  return async (part, path) => {
    if (!gzip && !header && part.rows > 0) {
      await copyTextLines(rows, csv, part.first, part.last, path);
      return;
    }
    const lines = join(scratchDir, `lines-${basename(path)}`);
    try {
      if (part.rows > 0) await copyTextLines(rows, csv, part.first, part.last, lines);
      async function* content(): AsyncGenerator<Buffer> {
        if (header) yield Buffer.from(header);
        if (part.rows > 0) yield* createReadStream(lines) as AsyncIterable<Buffer>;
      }
      if (gzip) await pipeline(content, createGzip(), createWriteStream(path));
      else await pipeline(content, createWriteStream(path));
    } finally {
      await rm(lines, { force: true });
    }
  };
}
