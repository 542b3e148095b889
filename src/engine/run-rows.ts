// The handle on one run's rows in the engine: which connection, which shape and which
// table. Callers outside engine/ only pass it on (run/ to writers/, writers/ to
// render-parts.ts); the table's name stays inside the engine.
import type { Engine } from './session.js';
import type { Shape } from './shape.js';

export class RunRows {
  readonly #engine: Engine;
  readonly #shape: Shape;
  readonly #table: string;

  constructor(
    engine: Engine,
    shape: Shape,
    table: string,
    /** How many rows the run writes (in file order: profile key, then id). */
    readonly count: number,
  ) {
    this.#engine = engine;
    this.#shape = shape;
    this.#table = table;
  }

  /** For engine modules only: where the rows are. */
  static locate(rows: RunRows): { engine: Engine; shape: Shape; table: string } {
    return { engine: rows.#engine, shape: rows.#shape, table: rows.#table };
  }
}
