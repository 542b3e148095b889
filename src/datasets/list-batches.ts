// Batch discovery (README "Export datasets"): `<root>/<datasetId>/<batchId>/_batch.json` is written last by
// the producer, so a batch folder is complete once it has one; folders without it are
// still being written and ignored. A batch's data are its `part-*` files (NDJSON,
// optionally gzip, or Parquet), in name order.
import path from 'node:path';
import * as z from 'zod';
import { BadInputError, StorageError } from '../errors.js';
import type { StorageBackend } from '../storage/backend.js';

const batchDescriptor = z.object({
  batchId: z.string().min(1),
  committedAt: z.iso.datetime({ offset: true }),
});

export type BatchPartKind = 'ndjson' | 'parquet';

export interface BatchPart {
  key: string;
  kind: BatchPartKind;
}

export interface BatchInfo {
  datasetId: string;
  /** Folder name under the dataset folder. */
  folder: string;
  batchId: string;
  committedAt: Date;
  parts: BatchPart[];
}

export const BATCH_MARKER = '_batch.json';

const PART_KINDS: [string, BatchPartKind][] = [
  ['.ndjson', 'ndjson'],
  ['.jsonl', 'ndjson'],
  ['.json', 'ndjson'],
  ['.ndjson.gz', 'ndjson'],
  ['.jsonl.gz', 'ndjson'],
  ['.json.gz', 'ndjson'],
  ['.parquet', 'parquet'],
];

/** The complete batches of one dataset, oldest committedAt first (then by batch id). */
export async function listBatches(source: StorageBackend, datasetId: string): Promise<BatchInfo[]> {
  let folders: string[];
  try {
    folders = await source.listFolders(datasetId);
  } catch (error) {
    // A dataset folder the producer has not created yet holds no batch, as on S3 (where
    // there are no folders, only keys); a missing datasets root stays an error (exit 3).
    if (error instanceof StorageError && !(await source.listFolders('')).includes(datasetId)) return [];
    throw error;
  }
  const found: BatchInfo[] = [];
  const byId = new Map<string, string>();
  for (const folder of folders) {
    const key = `${datasetId}/${folder}/${BATCH_MARKER}`;
    const text = await source.readText(key);
    if (text === null) continue;
    let raw: unknown;
    try {
      raw = JSON.parse(text);
    } catch (error) {
      throw new BadInputError(
        `${source.describe(key)} is not valid JSON (${(error as Error).message}); the producer must write a complete _batch.json ({ "batchId", "committedAt" })`,
      );
    }
    const parsed = batchDescriptor.safeParse(raw);
    if (!parsed.success) {
      const problems = parsed.error.issues.map((i) => `${i.path.join('.') || '(top level)'}: ${i.message}`).join('; ');
      throw new BadInputError(
        `${source.describe(key)} is not a valid batch descriptor: ${problems}; expected { "batchId", "committedAt" (RFC 3339) }`,
      );
    }
    const { batchId, committedAt } = parsed.data;
    const other = byId.get(batchId);
    if (other !== undefined) {
      throw new BadInputError(
        `batch id ${batchId} of dataset ${datasetId} is claimed by two folders (${other} and ${folder}); each batch must have its own id. Nothing was written`,
      );
    }
    byId.set(batchId, folder);
    const parts = (await source.list(`${datasetId}/${folder}`)).flatMap((k): BatchPart[] => {
      const name = path.posix.basename(k);
      if (!name.startsWith('part-') || path.posix.dirname(k) !== `${datasetId}/${folder}`) return [];
      const kind = PART_KINDS.find(([ext]) => name.endsWith(ext))?.[1];
      return kind ? [{ key: k, kind }] : [];
    });
    found.push({ datasetId, folder, batchId, committedAt: new Date(committedAt), parts });
  }
  return found.sort((a, b) => a.committedAt.getTime() - b.committedAt.getTime() || a.batchId.localeCompare(b.batchId));
}
