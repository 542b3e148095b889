// The one seam through which an invocation loads the snapshots of all its dataflows.
// Every dataflow's needs (its shape, source, planned runs) are known before the first
// load, so dataflows that read the same snapshot can share one read of it. Today each
// dataflow gets its own engine and loads its own snapshots when its turn comes, and its
// engine is closed when it is done: memory stays that of one dataflow at a time.
import path from 'node:path';
import type { LoadedSnapshot } from '../engine/load-snapshot.js';
import { openEngine, type Engine } from '../engine/session.js';
import type { Shape } from '../engine/shape.js';
import type { PlannedRun } from '../plan/plan-runs.js';
import type { StorageBackend } from '../storage/backend.js';
import { loadSnapshots } from './prepare.js';

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
  /** Dataflow `index` is done with its reads (its engine may close). */
  release(index: number): void;
}

/** `needs` has one entry per dataflow of the invocation; null for one that failed before reading. */
export function createSnapshotReads(needs: readonly (SnapshotNeeds | null)[]): SnapshotReads {
  const open = new Map<number, Engine>();
  return {
    async read(index) {
      const need = needs[index];
      if (!need) throw new Error(`no snapshot needs for dataflow ${index} of the invocation`);
      const engine = await openEngine({ tempDirectory: path.join(need.scratchDir, 'spill'), memoryLimit: need.memoryLimit });
      open.set(index, engine);
      const refused = new Map<PlannedRun, string>();
      const snapshots = await loadSnapshots(engine, need.shape, need.source, need.runs, need, need.scratchDir, (run, message) => refused.set(run, message));
      return { engine, snapshots, refused };
    },
    release(index) {
      open.get(index)?.close();
      open.delete(index);
    },
  };
}
