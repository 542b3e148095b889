// An engine of its own for a test file of the engine's unit tests, in a scratch folder:
// opened before the file's tests (then `setup` runs with it), closed and removed after them.
import { afterAll, beforeAll } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { openEngine, type Engine } from '../../src/engine/session.js';

export interface ScratchEngine {
  dir: string;
  engine: Engine;
}

export function useScratchEngine(prefix: string, setup: (opened: ScratchEngine) => void | Promise<void>): void {
  let opened: ScratchEngine | undefined;
  beforeAll(async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), prefix));
    opened = { dir, engine: await openEngine({ tempDirectory: path.join(dir, 'spill') }) };
    await setup(opened);
  });
  afterAll(() => {
    opened?.engine.close();
    if (opened) rmSync(opened.dir, { recursive: true, force: true });
  });
}
