// The pieces of an HTTP API run that `audex run` and `audex plan` share: where things are,
// which snapshots a run delivers (oldest first, each diffed against the one before), and
// building one snapshot's diff and messages in the engine. Nothing here sends or commits.
import { createHash } from 'node:crypto';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { readLines } from '../delivery/send-requests.js';
import type { LoadedHttpConfig } from '../config/load.js';
import { messagesPerRequest, type HttpDataflow } from '../config/http-schema.js';
import {
  diffProfiles,
  dropDiff,
  loadBaseline,
  writeMessages,
  type AudienceMeta,
  type DiffCounts,
  type DiffTables,
  type MessageOptions,
} from '../engine/http-diff.js';
import { loadHttpSnapshot, type HttpShape } from '../engine/load-http-snapshot.js';
import { describeBadInput, type PartFile } from '../engine/load-snapshot.js';
import type { BadRecord } from '../engine/scan-lines.js';
import type { Engine } from '../engine/session.js';
import { BadInputError, ConfigError } from '../errors.js';
import { listParts, type SnapshotInfo } from '../snapshots/list-snapshots.js';
import type { LockableStorage, StorageBackend } from '../storage/backend.js';
import { mergeS3Options, openLocation } from '../storage/open-location.js';
import type { HttpCursor } from '../state/http-state.js';
import type { PendingRun } from '../state/records.js';

export interface HttpLocations {
  source: StorageBackend;
  state: LockableStorage;
}

export function openHttpLocations(config: LoadedHttpConfig, stagingDir?: string): HttpLocations {
  const { dataflow, dir } = config;
  const staging = (name: string) => (stagingDir === undefined ? {} : { stagingDir: path.join(stagingDir, name) });
  return {
    source: openLocation(dataflow.source.snapshots, dir, 'source.snapshots', {
      s3: mergeS3Options(dataflow.s3, dataflow.source.s3),
      ...staging('source'),
    }),
    state: openLocation(dataflow.state.path, dir, 'state.path', {
      s3: mergeS3Options(dataflow.s3, dataflow.state.s3),
      ...staging('state'),
    }),
  };
}

export function httpShape(dataflow: HttpDataflow): HttpShape {
  return {
    keyPath: dataflow.profileKey.split('.'),
    attributes: dataflow.mapping.map((m) => m.source.split('.')),
    audiences: dataflow.audiences.map((a) => a.id),
  };
}

/** One label for the run records of an HTTP dataflow: it delivers all its audiences at once. */
export function audienceLabel(dataflow: HttpDataflow): string {
  return dataflow.audiences.map((a) => a.id).join(',');
}

/** A run delivers one snapshot; its id derives from the dataflow and the snapshot, so a retry reuses it. */
export function deriveHttpRunId(dataflowId: string, snapshot: SnapshotInfo): string {
  const hash = createHash('sha256')
    .update(['http', dataflowId, snapshot.snapshotId, snapshot.evaluatedAt.toISOString()].join('\n'))
    .digest('hex');
  const stamp = snapshot.evaluatedAt
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'Z');
  return `${stamp}-${hash.slice(0, 8)}`;
}

export interface HttpPlannedRun {
  runId: string;
  snapshot: SnapshotInfo;
  /** State key of the baseline it diffs against; null: the first run, a backfill. */
  previousBaseline: string | null;
  resumed: boolean;
  reason: string;
}

export interface HttpPlan {
  runs: HttpPlannedRun[];
  /** Why nothing (more) is due. */
  idle: string | null;
  /** A run that cannot go ahead (exit 1): later snapshots wait behind it. */
  problem: string | null;
  /** Pending records of runs already committed (cursor written) whose cleanup was cut short. */
  committed: PendingRun[];
}

/**
 * Which snapshots to deliver now, oldest first: an interrupted run first (same id and
 * snapshot), then every complete snapshot newer than the cursor; the first run ever
 * delivers the latest snapshot only (the historical backfill). Prospect audiences are
 * refused (exit 2); an audience the snapshot does not define stops the chain there.
 */
export function planHttpRuns(
  dataflow: HttpDataflow,
  snapshots: SnapshotInfo[],
  cursor: HttpCursor | null,
  pending: PendingRun[],
  now: Date,
  pinned?: string,
): HttpPlan {
  const plan: HttpPlan = { runs: [], idle: null, problem: null, committed: [] };
  let last = cursor ? new Date(cursor.evaluatedAt).getTime() : null;
  let previous = cursor?.baseline ?? null;
  for (const p of pending) {
    if (
      cursor &&
      (cursor.runId === p.runId || new Date(p.logicalTime).getTime() <= new Date(cursor.evaluatedAt).getTime())
    ) {
      plan.committed.push(p);
      continue;
    }
    const snapshot = snapshots.find((s) => s.snapshotId === p.snapshotId);
    if (!snapshot) {
      plan.problem = `interrupted run ${p.runId} delivers snapshot ${p.snapshotId}, which is gone; it cannot be finished exactly. Restore the snapshot, or delete pending/${p.runId}.json and http/runs/${p.runId}/ in the state location to drop that run`;
      return plan;
    }
    plan.runs.push({
      runId: p.runId,
      snapshot,
      previousBaseline: previous,
      resumed: true,
      reason: `finishing interrupted run ${p.runId}`,
    });
    previous = `http/runs/${p.runId}/baseline.parquet`;
    last = snapshot.evaluatedAt.getTime();
  }
  const complete = snapshots.filter((s) => s.evaluatedAt.getTime() <= now.getTime());
  let next: SnapshotInfo[];
  if (pinned !== undefined) {
    const s = snapshots.find((x) => x.snapshotId === pinned || x.folder === pinned);
    if (!s) {
      plan.problem = `snapshot ${pinned} was not found (or has no _snapshot.json yet)`;
      return plan;
    }
    next = last === null || s.evaluatedAt.getTime() > last ? [s] : [];
  } else if (last === null) next = complete.slice(-1);
  else next = complete.filter((s) => s.evaluatedAt.getTime() > last!);
  for (const snapshot of next) {
    plan.runs.push({
      runId: deriveHttpRunId(dataflow.id, snapshot),
      snapshot,
      previousBaseline: previous,
      resumed: false,
      reason: previous
        ? `new snapshot ${snapshot.snapshotId} evaluated at ${snapshot.evaluatedAt.toISOString()}`
        : `first run: historical backfill from snapshot ${snapshot.snapshotId}`,
    });
    previous = `http/runs/${plan.runs.at(-1)!.runId}/baseline.parquet`;
  }
  if (plan.runs.length === 0)
    plan.idle =
      complete.length === 0
        ? 'no complete snapshot yet'
        : `no snapshot newer than ${cursor?.snapshotId ?? 'the last delivered one'}`;
  for (const [i, run] of plan.runs.entries()) {
    const missing = dataflow.audiences
      .filter((a) => !run.snapshot.audiences.some((s) => s.id === a.id))
      .map((a) => a.id);
    if (missing.length) {
      plan.problem = `audience(s) ${missing.join(', ')} not in snapshot ${run.snapshot.snapshotId} (its audiences: ${run.snapshot.audiences.map((a) => a.id).join(', ') || 'none'}); check audiences: in the config. Later snapshots wait`;
      plan.runs = plan.runs.slice(0, i);
      break;
    }
  }
  return plan;
}

/** Prospect audiences cannot be mapped to an HTTP dataflow (exit 2, before anything is sent). */
export function checkProspects(dataflow: HttpDataflow, snapshots: SnapshotInfo[]): void {
  const problems: string[] = [];
  dataflow.audiences.forEach((a, i) => {
    const prospect = snapshots.find((s) => s.audiences.some((x) => x.id === a.id && x.profileType === 'prospect'));
    if (prospect)
      problems.push(
        `audiences[${i}].id: ${a.id} is a prospect audience (snapshot ${prospect.snapshotId}); prospect audiences cannot be sent to an HTTP API destination, only exported as full files`,
      );
  });
  if (problems.length) throw new ConfigError(problems);
}

/** When each mapped audience was first mapped: kept from the cursor, this run's time for new ones. */
export function mappedAtFor(
  dataflow: HttpDataflow,
  previous: Record<string, number> | undefined,
  evaluatedAt: Date,
): Record<string, number> {
  return Object.fromEntries(dataflow.audiences.map((a) => [a.id, previous?.[a.id] ?? evaluatedAt.getTime()]));
}

const epochMs = (v: number | string | undefined): number | null =>
  v === undefined ? null : typeof v === 'number' ? v : Number.isNaN(Date.parse(v)) ? null : Date.parse(v);

export function messageOptions(
  dataflow: HttpDataflow,
  snapshot: SnapshotInfo,
  mappedAt: Record<string, number>,
): MessageOptions {
  const audiences: AudienceMeta[] = snapshot.audiences.map((a) => ({
    id: a.id,
    name: a.name,
    mergePolicyId: a.mergePolicyId ?? null,
    createdAt: epochMs(a.createdAt),
    updatedAt: epochMs(a.updatedAt),
    mappingCreatedAt: mappedAt[a.id] ?? null,
    mappingUpdatedAt: mappedAt[a.id] ?? null,
  }));
  const d = dataflow.destination;
  return {
    segmentMembership: d.segmentMembership,
    includeSegmentNames: d.includeSegmentNames,
    includeSegmentTimestamps: d.includeSegmentTimestamps,
    evaluatedAt: snapshot.evaluatedAt.toISOString().replace(/\.000Z$/, 'Z'),
    audiences,
    defaultMergePolicy: snapshot.mergePolicyId ?? null,
  };
}

export interface BuiltDiff {
  prefix: string;
  tables: DiffTables;
  counts: DiffCounts;
  badRecords: BadRecord[];
  /** Streams the request bodies, in order (one line each, no newline). */
  requests(onRequest: (body: Buffer) => Promise<void> | void): Promise<{ requests: number; messages: number }>;
}

/**
 * Loads the snapshot (bad records beyond the limit: exit 4, nothing written), the previous
 * baseline (or an empty one) and diffs them into `<prefix>_d`.
 */
export async function buildDiff(
  engine: Engine,
  dataflow: HttpDataflow,
  source: StorageBackend,
  run: HttpPlannedRun,
  baselineTable: string | null,
  fetchBaseline: (key: string) => Promise<string>,
  mappedAt: Record<string, number>,
  options: { scratchDir: string; maxBadRecords: number; prefix: string; progress: (m: string) => void },
): Promise<BuiltDiff> {
  const shape = httpShape(dataflow);
  const parts: PartFile[] = [];
  for (const part of await listParts(source, run.snapshot))
    parts.push({
      path: await source.fetch(part.key, options.scratchDir),
      name: source.describe(part.key),
      kind: part.kind,
    });
  options.progress(`reading snapshot ${run.snapshot.snapshotId} (${parts.length} part(s))`);
  const table = `${options.prefix}_snap`;
  const loaded = await loadHttpSnapshot(engine, shape, parts, { table, scratchDir: options.scratchDir });
  if (loaded.badRecords.length > options.maxBadRecords) {
    throw new BadInputError(
      `${describeBadInput(run.snapshot.snapshotId, audienceLabel(dataflow), loaded.badRecords, options.maxBadRecords)}\nNothing was sent.`,
    );
  }
  let base = baselineTable;
  if (!base) {
    base = `${options.prefix}_base`;
    await loadBaseline(engine, base, run.previousBaseline ? await fetchBaseline(run.previousBaseline) : null);
  }
  const tables: DiffTables = { prefix: options.prefix, snapshot: table, baseline: base };
  const counts = await diffProfiles(engine, shape, tables);
  options.progress(
    `snapshot ${run.snapshot.snapshotId}: ${loaded.profiles} profiles, ${counts.messages} message(s) (entered ${counts.entered}, exited ${counts.exited}, identity ${counts.identity}, attribute ${counts.attribute})`,
  );
  const messagesFile = (part: number) => path.join(options.scratchDir, `${options.prefix}-messages-${part}.ndjson`);
  const perRequest = messagesPerRequest(dataflow.destination);
  const single = dataflow.destination.envelope === 'single';
  return {
    prefix: options.prefix,
    tables,
    counts,
    badRecords: loaded.badRecords,
    async requests(onRequest) {
      // Bodies are put together as bytes: messages never become JS strings.
      let batch: Buffer[] = [];
      let requests = 0;
      let messages = 0;
      const flush = async () => {
        if (!batch.length) return;
        requests += 1;
        await onRequest(
          single ? batch[0]! : Buffer.concat([OPEN, ...batch.flatMap((m, i) => (i ? [COMMA, m] : [m])), CLOSE]),
        );
        batch = [];
      };
      const files = await writeMessages(
        engine,
        shape,
        tables,
        messageOptions(dataflow, run.snapshot, mappedAt),
        messagesFile,
      );
      options.progress(`snapshot ${run.snapshot.snapshotId}: messages built`);
      try {
        for (const file of files) {
          for await (const line of readLines(file)) {
            if (line.length === 0) continue;
            batch.push(line);
            messages += 1;
            if (batch.length >= perRequest) await flush();
          }
          await rm(file, { force: true });
        }
        await flush();
      } finally {
        await Promise.all(files.map((file) => rm(file, { force: true })));
      }
      return { requests, messages };
    },
  };
}

const OPEN = Buffer.from('[');
const COMMA = Buffer.from(',');
const CLOSE = Buffer.from(']');

export async function dropBuilt(engine: Engine, prefix: string): Promise<void> {
  await dropDiff(engine, prefix);
}
