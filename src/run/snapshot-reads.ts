// The one seam through which an invocation loads the snapshots of all its dataflows.
// Every dataflow's needs (its shape, source, planned runs) are known before the first
// load, so dataflows that read the same snapshot (same source location, same snapshot
// id) share one read of it: the engine loads it once with the union of what they read
// and gives each dataflow a view equal to a load of its own (engine/load-shared-snapshot.ts),
// so each dataflow's files are byte-identical to running it alone.
//
// - No snapshot shared: each dataflow gets its own engine and loads its own snapshots
//   when its turn comes, and its engine is closed when it is done (memory stays that of
//   one dataflow at a time), exactly as a single-dataflow invocation.
// - Some snapshot shared: one engine for the invocation, with a scratch folder of its
//   own (spill, downloads), kept until close(); shared snapshots are loaded at the first
//   read of any dataflow that needs them, the others' own snapshots at their turn.
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { loadSnapshot, type LoadedSnapshot } from '../engine/load-snapshot.js';
import { loadSnapshotForDataflows } from '../engine/load-shared-snapshot.js';
import { openEngine, type Engine } from '../engine/session.js';
import type { Shape } from '../engine/shape.js';
import type { PlannedRun } from '../plan/plan-runs.js';
import type { SnapshotInfo } from '../snapshots/list-snapshots.js';
import type { StorageBackend } from '../storage/backend.js';
import { createScratchDir } from '../storage/staging.js';
import { checkBadRecords, fetchParts, loadSnapshots } from './prepare.js';

/** What one dataflow of the invocation needs read. */
export interface SnapshotNeeds {
  shape: Shape;
  source: StorageBackend;
  runs: PlannedRun[];
  /** The dataflow's own scratch folder (downloads, DuckDB spill). */
  scratchDir: string;
  memoryLimit?: string;
  maxBadRecords: number;
  progress: (message: string) => void;
}

/** What a dataflow's runs select from: the engine holding its snapshots, and the runs refused on their own bad entries. */
export interface DataflowReads {
  engine: Engine;
  snapshots: Map<string, LoadedSnapshot>;
  /** Runs beyond --max-bad-records only because of their own audience's entries, with the message. */
  refused: Map<PlannedRun, string>;
}

export interface SnapshotReads {
  /** Loads (or hands over the already loaded) snapshots of dataflow `index` of the needs. */
  read(index: number): Promise<DataflowReads>;
  /** Dataflow `index` is done with its reads (its own engine, if it has one, closes). */
  release(index: number): void;
  /** The invocation is done: the shared engine, if any, closes and its scratch folder goes. */
  close(): Promise<void>;
}

/** A snapshot read by several dataflows of the invocation, by the dataflows' indexes. */
interface SharedSnapshot {
  snapshot: SnapshotInfo;
  readers: number[];
  loaded?: Promise<Map<number, LoadedSnapshot>>;
}

const snapshotKey = (source: StorageBackend, snapshotId: string) => JSON.stringify([source.root, snapshotId]);

/** `needs` has one entry per dataflow of the invocation; null for one that failed before reading. */
export function createSnapshotReads(needs: readonly (SnapshotNeeds | null)[]): SnapshotReads {
  const shared = findSharedSnapshots(needs);
  if (shared.size === 0) return ownReads(needs);
  let engine: Promise<{ engine: Engine; scratchDir: string }> | undefined;
  const sharedEngine = () =>
    (engine ??= (async () => {
      const first = needs.find((n) => n !== null)!;
      const scratchDir = await createScratchDir('shared');
      return {
        engine: await openEngine({ tempDirectory: path.join(scratchDir, 'spill'), memoryLimit: first.memoryLimit }),
        scratchDir,
      };
    })());
  let tables = 0;
  const loadShared = async (entry: SharedSnapshot): Promise<Map<number, LoadedSnapshot>> => {
    const { engine: e, scratchDir } = await sharedEngine();
    const first = needs[entry.readers[0]!]!;
    const parts = await fetchParts(first.source, entry.snapshot, scratchDir);
    first.progress(
      `reading snapshot ${entry.snapshot.snapshotId} (${parts.length} part(s)) once for ${entry.readers.length} dataflows of this invocation`,
    );
    const views = await loadSnapshotForDataflows(
      e,
      entry.readers.map((i) => needs[i]!.shape),
      parts,
      { table: `shared_${tables++}`, scratchDir },
    );
    return new Map(entry.readers.map((reader, k) => [reader, views[k]!]));
  };
  return {
    async read(index) {
      const need = needs[index];
      if (!need) throw new Error(`no snapshot needs for dataflow ${index} of the invocation`);
      const { engine: e, scratchDir } = await sharedEngine();
      const snapshots = new Map<string, LoadedSnapshot>();
      for (const run of need.runs) {
        const id = run.snapshot.snapshotId;
        if (snapshots.has(id)) continue;
        const entry = shared.get(snapshotKey(need.source, id));
        if (entry) {
          entry.loaded ??= loadShared(entry);
          snapshots.set(id, (await entry.loaded).get(index)!);
          need.progress(
            `snapshot ${id}: ${snapshots.get(id)!.profiles} profiles (read once, shared with other dataflows)`,
          );
          continue;
        }
        const parts = await fetchParts(need.source, run.snapshot, scratchDir);
        need.progress(`reading snapshot ${id} (${parts.length} part(s))`);
        const loaded = await loadSnapshot(e, need.shape, parts, { table: `own_${tables++}`, scratchDir });
        need.progress(`snapshot ${id}: ${loaded.profiles} profiles`);
        snapshots.set(id, loaded);
      }
      const refused = new Map<PlannedRun, string>();
      checkBadRecords(need.runs, snapshots, need, (run, message) => refused.set(run, message));
      return { engine: e, snapshots, refused };
    },
    release() {
      // The shared engine's tables stay until close(): a later dataflow may read them.
    },
    async close() {
      if (!engine) return;
      const { engine: e, scratchDir } = await engine;
      e.close();
      await rm(scratchDir, { recursive: true, force: true });
    },
  };
}

/** Snapshots that two or more dataflows of the invocation read from the same source. */
function findSharedSnapshots(needs: readonly (SnapshotNeeds | null)[]): Map<string, SharedSnapshot> {
  const all = new Map<string, SharedSnapshot>();
  needs.forEach((need, index) => {
    if (!need) return;
    for (const run of need.runs) {
      const key = snapshotKey(need.source, run.snapshot.snapshotId);
      const entry = all.get(key) ?? { snapshot: run.snapshot, readers: [] };
      if (!entry.readers.includes(index)) entry.readers.push(index);
      all.set(key, entry);
    }
  });
  return new Map([...all].filter(([, entry]) => entry.readers.length > 1));
}

/** Each dataflow on an engine of its own, opened at its read and closed at its release. */
function ownReads(needs: readonly (SnapshotNeeds | null)[]): SnapshotReads {
  const open = new Map<number, Engine>();
  return {
    async read(index) {
      const need = needs[index];
      if (!need) throw new Error(`no snapshot needs for dataflow ${index} of the invocation`);
      const engine = await openEngine({
        tempDirectory: path.join(need.scratchDir, 'spill'),
        memoryLimit: need.memoryLimit,
      });
      open.set(index, engine);
      const refused = new Map<PlannedRun, string>();
      const snapshots = await loadSnapshots(
        engine,
        need.shape,
        need.source,
        need.runs,
        need,
        need.scratchDir,
        (run, message) => refused.set(run, message),
      );
      return { engine, snapshots, refused };
    },
    release(index) {
      open.get(index)?.close();
      open.delete(index);
    },
    async close() {
      for (const index of [...open.keys()]) this.release(index);
    },
  };
}
