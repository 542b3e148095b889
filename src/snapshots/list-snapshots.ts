// Snapshot discovery (README "Inputs"): a folder is a snapshot once `_snapshot.json` exists
// (the producer writes it last); folders without it are still being written and ignored.
import * as z from 'zod';
import { BadInputError } from '../errors.js';
import type { StorageBackend } from '../storage/backend.js';
import type { PartFile } from './part-file.js';

const snapshotDescriptor = z.object({
  snapshotId: z.string().min(1),
  evaluatedAt: z.iso.datetime({ offset: true }),
  mergePolicyId: z.string().optional(),
  audiences: z.array(
    z.object({
      id: z.string().min(1),
      name: z.string(),
      profileType: z.enum(['person', 'prospect']).default('person'),
      mergePolicyId: z.string().optional(),
      // Audience metadata the HTTP destination can send (includeSegmentTimestamps): epoch ms or RFC 3339.
      createdAt: z.union([z.number(), z.string()]).optional(),
      updatedAt: z.union([z.number(), z.string()]).optional(),
    }),
  ),
});

export type SnapshotAudience = z.output<typeof snapshotDescriptor>['audiences'][number];

export interface SnapshotInfo {
  /** Folder name under the snapshot root. */
  folder: string;
  snapshotId: string;
  evaluatedAt: Date;
  audiences: SnapshotAudience[];
  /** The snapshot's merge policy (audiences without their own share it). */
  mergePolicyId?: string;
}

export const SNAPSHOT_MARKER = '_snapshot.json';

/** A folder whose `_snapshot.json` cannot be used, with what can still be read of it. */
export interface BrokenSnapshot {
  folder: string;
  message: string;
  snapshotId?: string;
  evaluatedAt?: Date;
}

/**
 * The usable snapshots, oldest first. A folder with a broken `_snapshot.json` (not JSON,
 * not a descriptor, or a `snapshotId` that differs from its folder name) is left out and
 * reported to `broken`; without it, the first one found is an error (exit 4).
 */
export async function listSnapshots(
  source: StorageBackend,
  broken?: (snapshot: BrokenSnapshot) => void,
): Promise<SnapshotInfo[]> {
  const folders = await source.listFolders('');
  const found: SnapshotInfo[] = [];
  const report = (snapshot: BrokenSnapshot) => {
    if (!broken) throw new BadInputError(snapshot.message);
    broken(snapshot);
  };
  for (const folder of folders) {
    const key = `${folder}/${SNAPSHOT_MARKER}`;
    const text = await source.readText(key);
    if (text === null) continue;
    let raw: unknown;
    try {
      raw = JSON.parse(text);
    } catch (error) {
      report({
        folder,
        message: `${source.describe(key)} is not valid JSON (${(error as Error).message}); the producer must write a complete _snapshot.json`,
      });
      continue;
    }
    const readable = (raw ?? {}) as { snapshotId?: unknown; evaluatedAt?: unknown };
    const evaluatedAt =
      typeof readable.evaluatedAt === 'string' && !Number.isNaN(Date.parse(readable.evaluatedAt))
        ? new Date(readable.evaluatedAt)
        : undefined;
    const seen = {
      folder,
      ...(typeof readable.snapshotId === 'string' ? { snapshotId: readable.snapshotId } : {}),
      ...(evaluatedAt ? { evaluatedAt } : {}),
    };
    const parsed = snapshotDescriptor.safeParse(raw);
    if (!parsed.success) {
      const problems = parsed.error.issues.map((i) => `${i.path.join('.') || '(top level)'}: ${i.message}`).join('; ');
      report({ ...seen, message: `${source.describe(key)} is not a valid snapshot descriptor: ${problems}` });
      continue;
    }
    if (parsed.data.snapshotId !== folder) {
      report({
        ...seen,
        message: `${source.describe(key)} says snapshotId ${JSON.stringify(parsed.data.snapshotId)}, which differs from its folder name ${JSON.stringify(folder)}; the producer must name the folder after the snapshot`,
      });
      continue;
    }
    found.push({
      folder,
      snapshotId: parsed.data.snapshotId,
      evaluatedAt: new Date(parsed.data.evaluatedAt),
      audiences: parsed.data.audiences,
      ...(parsed.data.mergePolicyId ? { mergePolicyId: parsed.data.mergePolicyId } : {}),
    });
  }
  return found.sort(
    (a, b) => a.evaluatedAt.getTime() - b.evaluatedAt.getTime() || a.snapshotId.localeCompare(b.snapshotId),
  );
}

/** The latest complete snapshot evaluated at or before `now`, or the pinned one. */
export function pickSnapshot(snapshots: SnapshotInfo[], now: Date, pinned?: string): SnapshotInfo | undefined {
  if (pinned !== undefined) return snapshots.find((s) => s.snapshotId === pinned || s.folder === pinned);
  return snapshots.filter((s) => s.evaluatedAt.getTime() <= now.getTime()).at(-1);
}

const PART_KINDS: [string, PartFile['kind']][] = [
  ['.ndjson', 'ndjson'],
  ['.jsonl', 'ndjson'],
  ['.ndjson.gz', 'ndjson'],
  ['.jsonl.gz', 'ndjson'],
  ['.parquet', 'parquet'],
];

/**
 * The profile part keys of a snapshot, with their kind. A snapshot without one readable
 * part is not an empty snapshot (that has at least one empty part file) but a producer
 * mistake: reading it as empty would make every incremental member exit.
 */
export async function listParts(
  source: StorageBackend,
  snapshot: SnapshotInfo,
): Promise<{ key: string; kind: PartFile['kind'] }[]> {
  const folder = `${snapshot.folder}/profiles`;
  const keys = await source.list(folder);
  const parts = keys.flatMap((key) => {
    const kind = PART_KINDS.find(([ext]) => key.endsWith(ext))?.[1];
    return kind ? [{ key, kind }] : [];
  });
  if (parts.length === 0) {
    const found = keys.map((k) => k.slice(k.lastIndexOf('/') + 1));
    throw new BadInputError(
      `snapshot ${snapshot.snapshotId} has no readable part file in ${source.describe(folder)} (${found.length ? `found: ${found.join(', ')}` : 'the folder is empty or missing'}). ` +
        `Parts are named *${PART_KINDS.map(([ext]) => ext).join(', *')} (lower case); an empty snapshot has at least one empty part file. Nothing was written.`,
    );
  }
  return parts;
}
