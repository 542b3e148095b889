// The one storage interface, StorageBackend (storage/backend: the name drops the folder's
// word), with the small conditional-write capability only the lock needs. Keys are POSIX
// paths relative to the backend's root.
// Invariant: a file only ever appears under its final key complete (stage, then publish).
// Every backend (local.ts, memory.ts, s3.ts) passes the same contract suite
// (test/contract/storage.test.ts).

/** An object's text with an opaque version tag (S3: its ETag) for conditional replaces. */
export interface Versioned {
  text: string;
  version: string;
}

export interface StorageBackend {
  /** How the root is shown to users (an absolute folder or s3://bucket/prefix). */
  readonly root: string;
  /** How one key is shown in messages. */
  describe(key: string): string;
  readText(key: string): Promise<string | null>;
  /** Replaces the object at `key` atomically. */
  writeText(key: string, text: string): Promise<void>;
  delete(key: string): Promise<void>;
  /** Every key under `prefix` (recursive), sorted. */
  list(prefix: string): Promise<string[]>;
  /** The size in bytes of every object under `prefix` (recursive), by key. */
  listSizes(prefix: string): Promise<Map<string, number>>;
  /** The names of the immediate child folders of `prefix`, sorted. */
  listFolders(prefix: string): Promise<string[]>;
  /** A local path to write the content of `key` to before it is published. */
  stage(key: string): Promise<string>;
  /** Makes a staged file visible under `key` in one step; `contentType` where the store keeps one (S3). */
  publish(staged: string, key: string, contentType?: string): Promise<void>;
  /**
   * Removes staged files left by an interrupted run in `folder` whose final names start
   * with one of `names` (a run only cleans up after itself: other dataflows may be
   * writing into the same folder right now).
   */
  removeStaged(folder: string, names: string[]): Promise<number>;
  /** A local path with the content of `key` (in place when local; downloaded into scratchDir otherwise). */
  fetch(key: string, scratchDir: string): Promise<string>;
}

/**
 * What the dataflow lock (state/lock.ts) needs from the store that holds the state, and
 * nothing else does: an atomic create, a versioned read and a compare-and-swap. Every
 * backend has them (the contract suite covers them).
 */
export interface ConditionalWrites {
  /**
   * false: one machine's disk, so the process that holds a lock can be checked (and a
   * lock whose process is gone taken over); true: several hosts reach the store, so a
   * lock must be a lease that expires.
   */
  readonly sharedAcrossHosts: boolean;
  /** Creates `key` only if it does not exist; false when it does. */
  createExclusive(key: string, text: string): Promise<boolean>;
  /** The text of `key` and its version, or null when it does not exist. */
  readVersioned(key: string): Promise<Versioned | null>;
  /**
   * Replaces `key` only while its version is still `version`; the new version, or null
   * when the object changed or is gone (someone else wrote it).
   */
  replaceIfVersion(key: string, text: string, version: string): Promise<string | null>;
}

/** A backend that can also hold the dataflow lock: every backend audex opens. */
export type LockableStorage = StorageBackend & ConditionalWrites;

export function joinKey(...parts: string[]): string {
  return parts
    .filter((p) => p !== '')
    .join('/')
    .replace(/\/+/g, '/');
}
