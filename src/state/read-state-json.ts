// The one way a state object is read back: JSON, or a clear error naming the object.
import { StorageError } from '../errors.js';
import type { StorageBackend } from '../storage/backend.js';

export async function readStateJson<T>(
  storage: Pick<StorageBackend, 'readText' | 'describe'>,
  key: string,
): Promise<T | null> {
  const text = await storage.readText(key);
  if (text === null) return null;
  try {
    return JSON.parse(text) as T;
  } catch {
    throw new StorageError(
      `state object ${storage.describe(key)} is not valid JSON; it was changed by hand or damaged. Restore it, or delete it to start that audience over`,
    );
  }
}
