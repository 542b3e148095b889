// What every kind of invocation (audience files, datasets, HTTP) takes from the command
// line besides its config: the run's now, the bad-record limit, the engine's memory, the
// lock, and where progress and warnings go.

export interface InvocationSettings {
  now: Date;
  maxBadRecords: number;
  memoryLimit?: string;
  /** Take the dataflow lock (default). --no-lock is for stores without conditional writes. */
  lock?: boolean;
  progress: (message: string) => void;
  /** A problem the user must see even with --quiet (stderr). */
  warn: (message: string) => void;
}
