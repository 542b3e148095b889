// The one storage interface. Keys are POSIX paths relative to the backend's root.
// Invariant: a file only ever appears under its final key complete (stage, then publish).

export interface StorageBackend {
  /** How the root is shown to users (an absolute folder or s3://bucket/prefix). */
  readonly root: string;
  /** How one key is shown in messages. */
  describe(key: string): string;
  readText(key: string): Promise<string | null>;
  /** Replaces the object at `key` atomically. */
  writeText(key: string, text: string): Promise<void>;
  /** Creates `key` only if it does not exist; false when it does. */
  createExclusive(key: string, text: string): Promise<boolean>;
  delete(key: string): Promise<void>;
  /** Every key under `prefix` (recursive), sorted. */
  list(prefix: string): Promise<string[]>;
  /** The names of the immediate child folders of `prefix`, sorted. */
  listFolders(prefix: string): Promise<string[]>;
  /** A local path to write the content of `key` to before it is published. */
  stage(key: string): Promise<string>;
  /** Makes a staged file visible under `key` in one step. */
  publish(staged: string, key: string): Promise<void>;
  /**
   * Removes staged files left by an interrupted run in `folder` whose final names start
   * with one of `names` (a run only cleans up after itself: other dataflows may be
   * writing into the same folder right now).
   */
  removeStaged(folder: string, names: string[]): Promise<number>;
  /** A local path with the content of `key` (in place when local; downloaded into scratchDir otherwise). */
  fetch(key: string, scratchDir: string): Promise<string>;
}

export function joinKey(...parts: string[]): string {
  return parts.filter((p) => p !== '').join('/').replace(/\/+/g, '/');
}
