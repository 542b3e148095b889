// The handle on one run's rows in the engine: which connection, which shape and which
// table (or view). Callers outside engine/ only pass it on (run/ to writers/, writers/ to
// render-parts.ts); the table's name stays inside the engine.
import type { Engine } from './session.js';
import type { Shape } from './shape.js';
import { ident } from './sql.js';
import type { RowRange } from './render-sql.js';

export class RunRows {
  readonly #engine: Engine;
  readonly #shape: Shape;
  readonly #table: string;
  readonly #view: boolean;
  #numbered: Promise<string> | undefined;

  constructor(
    engine: Engine,
    shape: Shape,
    table: string,
    /** How many rows the run writes (in file order: profile key, then id). */
    readonly count: number,
    /** The rows are a view (in row order, read whole): a part of them is read from a numbered copy. */
    view = false,
  ) {
    this.#engine = engine;
    this.#shape = shape;
    this.#table = table;
    this.#view = view;
  }

  /** For engine modules only: where the rows are. */
  static locate(rows: RunRows): { engine: Engine; shape: Shape; table: string } {
    return { engine: rows.#engine, shape: rows.#shape, table: rows.#table };
  }

  /**
   * For engine modules only: where rows first..last (1-based) are read. All of them: the
   * table or view itself. A part of a view: a table copied from it once (its rowid is the
   * row's position), dropped with the run's tables (numberedTableOf).
   */
  static async rangeOf(rows: RunRows, first: number, last: number): Promise<{ table: string; range: RowRange }> {
    if (first === 1 && last === rows.count) return { table: rows.#table, range: null };
    if (!rows.#view) return { table: rows.#table, range: { first, last } };
    const copy = numberedTableOf(rows.#table);
    rows.#numbered ??= rows.#engine
      .run(`CREATE OR REPLACE TABLE ${ident(copy)} AS SELECT * FROM ${ident(rows.#table)}`)
      .then(() => copy);
    return { table: await rows.#numbered, range: { first, last } };
  }
}

/** The numbered copy RunRows.rangeOf makes of a view of rows (for the run's cleanup). */
export function numberedTableOf(table: string): string {
  return `${table}_numbered`;
}
