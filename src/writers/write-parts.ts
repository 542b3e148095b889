// Writes one run's rows as part files, in the dataflow's format (formats.ts: the registry
// of formats), split at maxRowsPerFile, and describes each finished file (bytes, sha256).
// Files go to local paths the caller chooses (temp names); publishing them under final
// names is the storage layer's job.
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { once } from 'node:events';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import type { Writable } from 'node:stream';
import type { FormatConfig } from '../config/schema.js';
import type { RunRows } from '../engine/render-parts.js';
import { formatOf } from './formats.js';

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
  const entry = formatOf(format);
  const write = await entry.open(rows, format, scratchDir);
  const written: Pick<WrittenPart, 'partNumber' | 'path' | 'rows'>[] = [];
  for (const part of entry.split(rows.count, format)) {
    const path = await partPath(part.n);
    await write(part, path);
    written.push({ partNumber: part.n, path, rows: part.rows });
  }
  return Promise.all(written.map(async (p) => ({ ...p, ...(await describeFile(p.path)) })));
}

/** One open part file: an optional gzip stage in front of the file. */
export class TextPart {
  readonly done: Promise<void>;
  private readonly head: Writable;
  rows = 0;

  constructor(
    readonly partNumber: number,
    readonly path: string,
    gzip: boolean,
  ) {
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

export async function describeFile(path: string): Promise<{ bytes: number; sha256: string }> {
  const hash = createHash('sha256');
  await pipeline(createReadStream(path), hash);
  return { bytes: (await stat(path)).size, sha256: hash.digest('hex') };
}
