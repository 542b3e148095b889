// Checks that every gzip NDJSON part is a whole gzip stream. The engine's NDJSON reader
// neither checks a gzip part's end nor its trailer: a part cut where its text ends on a
// line break (or before its first line) reads as fewer records, or none, without an error,
// and an incremental run would then export the missing profiles as exits. So each .gz part
// is inflated once, off the main thread, while the engine reads it.
import { createReadStream } from 'node:fs';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { BadInputError } from '../errors.js';
import type { PartFile } from './part-file.js';

export async function verifyGzipParts(parts: readonly PartFile[]): Promise<void> {
  await Promise.all(parts.filter((p) => p.kind === 'ndjson' && p.path.endsWith('.gz')).map(verifyGzipPart));
}

async function verifyGzipPart(part: PartFile): Promise<void> {
  const discard = new Writable({ write: (_chunk, _encoding, done) => done() });
  try {
    await pipeline(createReadStream(part.path, { highWaterMark: 1 << 20 }), createGunzip(), discard);
  } catch (error) {
    throw incompleteGzip(error, part.name);
  }
}

/** A zlib error reading part `name` as the bad input it is (exit 4, naming the part); any other error as it is. */
export function incompleteGzip(error: unknown, name: string): unknown {
  if (!String((error as NodeJS.ErrnoException).code ?? '').startsWith('Z_')) return error;
  return new BadInputError(
    `${name} is not a complete gzip file (${(error as Error).message}); the producer must write whole .gz parts (or name plain NDJSON .ndjson). Nothing was written.`,
  );
}
