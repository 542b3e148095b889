// The read-only steps every command shares: open the locations, list snapshots, read the
// state, plan, and load the snapshots a plan needs. Nothing here writes.
import path from 'node:path';
import type { AnyLoadedConfig, LoadedConfig } from '../config/load.js';
import {
  badRecordsFor,
  describeBadInput,
  loadSnapshot,
  type LoadedSnapshot,
  type PartFile,
} from '../engine/load-snapshot.js';
import type { Engine } from '../engine/session.js';
import type { Shape } from '../engine/shape.js';
import { BadInputError, ConfigError } from '../errors.js';
import { planExportNow, planScheduledRuns, type Plan, type PlannedRun } from '../plan/plan-runs.js';
import {
  listParts,
  listSnapshots,
  pickSnapshot,
  type BrokenSnapshot,
  type SnapshotInfo,
} from '../snapshots/list-snapshots.js';
import type { LockableStorage, StorageBackend } from '../storage/backend.js';
import { defaultStateLocation, mergeS3Options, openLocation } from '../storage/open-location.js';
import type { Cursor, PendingRun } from '../state/records.js';
import { StateStore } from '../state/state-store.js';

export interface Locations {
  source: StorageBackend;
  destination: StorageBackend;
  /** Also holds the dataflow lock. */
  state: LockableStorage;
}

/**
 * Opens source, destination and state: each a local folder or s3://bucket/prefix, in any
 * combination. An S3 location uses the top-level `s3` block overridden field by field by
 * its own; the default state location (inside the destination) also inherits the
 * destination's. `stagingDir`, when given, is a folder the caller owns and removes, used
 * for outputs staged before upload (default: a per-process temp folder).
 */
export function openLocations(config: Exclude<AnyLoadedConfig, { kind: 'http' }>, stagingDir?: string): Locations {
  const { dataflow, dir } = config;
  const top = dataflow.s3;
  const staging = (name: string) => (stagingDir === undefined ? {} : { stagingDir: path.join(stagingDir, name) });
  const statePath = dataflow.state?.path;
  const [sourcePath, sourceKey] =
    config.kind === 'datasets'
      ? [config.dataflow.source.datasets, 'source.datasets']
      : [config.dataflow.source.snapshots, 'source.snapshots'];
  return {
    source: openLocation(sourcePath, dir, sourceKey, {
      s3: mergeS3Options(top, dataflow.source.s3),
      ...staging('source'),
    }),
    destination: openLocation(dataflow.destination.path, dir, 'destination.path', {
      s3: mergeS3Options(top, dataflow.destination.s3),
      ...staging('destination'),
    }),
    state: openLocation(
      statePath ?? defaultStateLocation(dataflow.destination.path, dataflow.id),
      dir,
      statePath ? 'state.path' : 'destination.path',
      {
        s3: mergeS3Options(top, statePath ? undefined : dataflow.destination.s3, dataflow.state?.s3),
        ...staging('state'),
      },
    ),
  };
}

export async function readCursors(state: StateStore, audienceIds: string[]): Promise<Map<string, Cursor>> {
  const cursors = new Map<string, Cursor>();
  // Side by side: one round trip each on S3.
  const read = await Promise.all(audienceIds.map((id) => state.readCursor(id)));
  audienceIds.forEach((id, i) => read[i] && cursors.set(id, read[i]));
  return cursors;
}

export interface PlanRequest {
  command: 'run' | 'export-now';
  now: Date;
  audienceIds?: string[];
  pinnedSnapshot?: string;
  /** Problems worth telling (a broken snapshot descriptor no run uses). */
  warn?: (message: string) => void;
}

export interface Prepared {
  locations: Locations;
  state: StateStore;
  snapshots: SnapshotInfo[];
  pending: PendingRun[];
  cursors: Map<string, Cursor>;
  plan: Plan;
}

/** Lists snapshots, reads the state and plans; export-now refusals are usage errors. */
export async function prepare(
  config: LoadedConfig,
  request: PlanRequest,
  locations = openLocations(config),
): Promise<Prepared> {
  const state = new StateStore(locations.state);
  const broken: BrokenSnapshot[] = [];
  const snapshots = await listSnapshots(locations.source, (b) => broken.push(b));
  checkBrokenSnapshots(broken, snapshots, request);
  const pending = await state.listPending();
  const cursors = await readCursors(
    state,
    config.dataflow.audiences.map((a) => a.id),
  );
  return {
    locations,
    state,
    snapshots,
    pending,
    cursors,
    plan: planInvocation(config, request, snapshots, pending, cursors),
  };
}

/**
 * A broken `_snapshot.json` stops the invocation only when a run would (or may) use that
 * snapshot: it is pinned, or its evaluatedAt makes it the latest at or before now; when
 * its evaluatedAt cannot be read, when its folder sorts after the latest usable one's
 * (folders are usually named by time: it may be the newest). Otherwise it is a warning:
 * an old or future folder must not stop every run.
 */
function checkBrokenSnapshots(broken: BrokenSnapshot[], snapshots: SnapshotInfo[], request: PlanRequest): void {
  const latest = pickSnapshot(snapshots, request.now);
  for (const b of broken) {
    const pinned =
      request.pinnedSnapshot !== undefined &&
      (request.pinnedSnapshot === b.folder || request.pinnedSnapshot === b.snapshotId);
    const wouldBeLatest =
      b.evaluatedAt === undefined
        ? !latest || b.folder > latest.folder
        : b.evaluatedAt.getTime() <= request.now.getTime() &&
          (!latest || b.evaluatedAt.getTime() >= latest.evaluatedAt.getTime());
    if (pinned || (request.pinnedSnapshot === undefined && wouldBeLatest))
      throw new BadInputError(`${b.message}. Nothing was written.`);
    request.warn?.(`snapshot folder ${b.folder} is skipped: ${b.message}`);
  }
}

function planInvocation(
  config: LoadedConfig,
  options: PlanRequest,
  snapshots: SnapshotInfo[],
  pending: PendingRun[],
  cursors: Map<string, Cursor>,
): Plan {
  const { dataflow } = config;
  const scheduled = planScheduledRuns({
    dataflow,
    snapshots,
    cursors,
    pending,
    now: options.now,
    pinnedSnapshot: options.pinnedSnapshot,
  });
  if (options.command === 'run') return scheduled;
  const adHoc = planExportNow({
    dataflow,
    snapshots,
    audienceIds: options.audienceIds ?? [],
    now: options.now,
    pinnedSnapshot: options.pinnedSnapshot,
  });
  if (adHoc.refusals.length > 0) throw new ConfigError(adHoc.refusals);
  // Export now never runs scheduled slots, but it does finish this dataflow's interrupted runs
  // first; a request that repeats an interrupted export-now (same audience and time) is that run.
  const resumed = scheduled.runs.filter((r) => r.resumed);
  return {
    runs: [...resumed, ...adHoc.runs.filter((r) => !resumed.some((p) => p.runId === r.runId))],
    problems: adHoc.problems,
    idle: [],
    committedPending: scheduled.committedPending,
  };
}

/**
 * Loads each needed snapshot once. Records bad as a whole concern every audience: beyond
 * --max-bad-records they stop everything before a write. A run beyond the limit only
 * because of its own audience's bad entries is refused alone through `onRefused` (the
 * other audiences run: adding an audience changes nothing for them); without
 * `onRefused` it stops everything too.
 */
export async function loadSnapshots(
  engine: Engine,
  shape: Shape,
  source: StorageBackend,
  runs: PlannedRun[],
  options: { maxBadRecords: number; progress: (message: string) => void },
  scratchDir: string,
  onRefused?: (run: PlannedRun, message: string) => void,
): Promise<Map<string, LoadedSnapshot>> {
  const loaded = new Map<string, LoadedSnapshot>();
  for (const run of runs) {
    const snapshot = run.snapshot;
    if (loaded.has(snapshot.snapshotId)) continue;
    const parts = await fetchParts(source, snapshot, scratchDir);
    options.progress(`reading snapshot ${snapshot.snapshotId} (${parts.length} part(s))`);
    const result = await loadSnapshot(engine, shape, parts, { table: `snap_${loaded.size}`, scratchDir });
    options.progress(`snapshot ${snapshot.snapshotId}: ${result.profiles} profiles`);
    loaded.set(snapshot.snapshotId, result);
  }
  checkBadRecords(runs, loaded, options, onRefused);
  return loaded;
}

/** The snapshot's part files as local paths (downloaded into `scratchDir` from a remote source). */
export async function fetchParts(
  source: StorageBackend,
  snapshot: SnapshotInfo,
  scratchDir: string,
): Promise<PartFile[]> {
  const parts: PartFile[] = [];
  for (const part of await listParts(source, snapshot)) {
    parts.push({ path: await source.fetch(part.key, scratchDir), name: source.describe(part.key), kind: part.kind });
  }
  return parts;
}

/**
 * Applies --max-bad-records to each run: one over the limit on the snapshot's bad records
 * stops everything before a write (BadInputError); one over it only on its own audience's
 * bad entries is refused alone (`onRefused`), when given.
 */
export function checkBadRecords(
  runs: PlannedRun[],
  loaded: Map<string, LoadedSnapshot>,
  options: { maxBadRecords: number; progress: (message: string) => void },
  onRefused?: (run: PlannedRun, message: string) => void,
): void {
  const tooMany: string[] = [];
  for (const run of runs) {
    const snapshot = loaded.get(run.snapshot.snapshotId)!;
    const bad = badRecordsFor(snapshot, run.audienceId);
    const message = () => describeBadInput(run.snapshot.snapshotId, run.audienceId, bad, options.maxBadRecords);
    if (bad.length > options.maxBadRecords) {
      if (onRefused && snapshot.badRecords.length <= options.maxBadRecords)
        onRefused(run, `${message()}\nNothing was written for this audience.`);
      else tooMany.push(message());
    } else if (bad.length > 0) {
      options.progress(
        `${run.audienceId}: skipping ${bad.length} bad record(s) of snapshot ${run.snapshot.snapshotId} (--max-bad-records ${options.maxBadRecords})`,
      );
      for (const b of bad.slice(0, 10)) options.progress(`  ${b.file}:${b.line}: ${b.reason}`);
      if (bad.length > 10) options.progress(`  … and ${bad.length - 10} more`);
    }
  }
  if (tooMany.length > 0) throw new BadInputError(`${[...new Set(tooMany)].join('\n')}\nNothing was written.`);
}
