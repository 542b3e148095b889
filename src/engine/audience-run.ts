// The engine's run-level API for one audience run (README "Layout"): select the run's rows
// from a loaded snapshot, diffing against a baseline when there is one; write the next
// baseline to a file, or keep it in the engine for a run chained after it (`audex plan`);
// drop the run's tables. run/ speaks to the engine through these and never sees SQL or a
// table name. The HTTP destination and dataset exports can reuse the same shape: a
// selection is a handle on rows plus counts, and a baseline is a local Parquet file or a
// handle on one kept in the engine.
//
// A run's tables are regular tables (not TEMP: runs of several audiences go side by side
// on connections of their own, and the engine can move regular tables out of memory),
// named by a counter so that no two runs of one invocation share a name.
import type { Engine } from './session.js';
import type { Shape } from './shape.js';
import { badRecordsFor, type LoadedSnapshot } from './load-snapshot.js';
import { baselineSql, selectionObjects, selectRows, type Selection, type SelectionCounts } from './select-rows.js';
import { ident, literal } from './sql.js';
import { RunRows } from './run-rows.js';

export { RunRows } from './run-rows.js';

/** A membership baseline kept in the engine (the one a run leaves, for the run after it). */
export class KeptBaseline {
  readonly #table: string;
  constructor(table: string) {
    this.#table = table;
  }
  static tableOf(baseline: KeptBaseline): string {
    return baseline.#table;
  }
}

/** Where a diff's baseline comes from: a local Parquet file (state's) or one kept in the engine. */
export type BaselineSource = { file: string } | KeptBaseline;

export interface RunCountsOfSelection extends SelectionCounts {
  /** Records the run skips: bad records of the snapshot plus the audience's bad entries. */
  badRecords: number;
}

interface RunTables {
  output: string;
  selection: Selection;
  /** The baseline read from a file for this run, dropped with it. */
  ownBaseline?: string;
}

/** One selected run: its counts and a handle on its rows; its tables stay inside the engine. */
export class SelectedRun {
  readonly #tables: RunTables;
  constructor(
    readonly counts: RunCountsOfSelection,
    readonly rows: RunRows,
    tables: RunTables,
  ) {
    this.#tables = tables;
  }
  static tablesOf(run: SelectedRun): RunTables {
    return run.#tables;
  }
}

let runCounter = 0;

/**
 * Selects one audience's rows from a loaded snapshot (README "What gets exported"): a full run without a
 * baseline, a diff against it with one. The caller drops the run (dropRun) when done with
 * its rows and baseline; a selection that fails drops what it made.
 */
export async function selectRun(
  engine: Engine,
  shape: Shape,
  snapshot: LoadedSnapshot,
  audienceId: string,
  baseline?: BaselineSource,
  /** The caller writes or keeps the run's next baseline (the engine then keeps what it is read from). */
  options: { nextBaseline?: boolean } = {},
): Promise<SelectedRun> {
  const audience = shape.audiences.indexOf(audienceId);
  if (audience < 0) throw new Error(`internal: audience ${audienceId} is not in the dataflow's shape`);
  const full = { kind: 'full', keepCandidates: options.nextBaseline === true } as const;
  const tables: RunTables = { output: `audience_run_${++runCounter}`, selection: full };
  try {
    if (baseline instanceof KeptBaseline) {
      tables.selection = { kind: 'diff', baselineTable: KeptBaseline.tableOf(baseline) };
    } else if (baseline) {
      tables.ownBaseline = `${tables.output}_baseline`;
      await engine.run(
        `CREATE OR REPLACE VIEW ${ident(tables.ownBaseline)} AS SELECT k, status, qtime, ids FROM read_parquet(${literal(baseline.file)})`,
      );
      tables.selection = { kind: 'diff', baselineTable: tables.ownBaseline };
    }
    const { selection } = tables;
    const counts = await selectRows(engine, shape, snapshot, audience, selection, tables.output);
    const rows = new RunRows(engine, shape, tables.output, counts.rowsWritten, selection.kind === 'full');
    return new SelectedRun({ ...counts, badRecords: badRecordsFor(snapshot, audienceId).length }, rows, tables);
  } catch (error) {
    await dropTables(engine, tables);
    throw error;
  }
}

/** Writes the baseline the run leaves (README "State and safety") to a local Parquet file; returns its profile count. */
export async function writeNextBaseline(run: SelectedRun, file: string): Promise<number> {
  const { engine } = RunRows.locate(run.rows);
  const [copied] = await engine.all<{ Count: string | number }>(
    `COPY (${baselineSql(tablesOf(run).output, tablesOf(run).selection)}) TO ${literal(file)} (FORMAT parquet, COMPRESSION zstd)`,
  );
  return Number(copied?.Count ?? 0);
}

/** Keeps the baseline the run leaves in the engine, for a later run's diff; it lives as long as the engine. */
export async function keepNextBaseline(run: SelectedRun): Promise<KeptBaseline> {
  const { engine } = RunRows.locate(run.rows);
  const table = `${tablesOf(run).output}_next`;
  await engine.run(
    `CREATE OR REPLACE TABLE ${ident(table)} AS ${baselineSql(tablesOf(run).output, tablesOf(run).selection)}`,
  );
  return new KeptBaseline(table);
}

/** Drops the run's tables (its rows, and a baseline it read from a file); a kept next baseline stays. */
export async function dropRun(run: SelectedRun): Promise<void> {
  await dropTables(RunRows.locate(run.rows).engine, tablesOf(run));
}

function tablesOf(run: SelectedRun): RunTables {
  return SelectedRun.tablesOf(run);
}

async function dropTables(engine: Engine, tables: RunTables): Promise<void> {
  const made = selectionObjects(tables.output, tables.selection);
  // A baseline read from a file is a view on it: the diff reads it once.
  const views = [...made.views, ...(tables.ownBaseline ? [tables.ownBaseline] : [])];
  await engine.run(
    [
      ...views.map((name) => `DROP VIEW IF EXISTS ${ident(name)};`),
      ...made.tables.map((name) => `DROP TABLE IF EXISTS ${ident(name)};`),
      ...made.types.map((name) => `DROP TYPE IF EXISTS ${ident(name)};`),
    ].join(' '),
  );
}
