// engine/session.ts: whether the engine has spilled, the signal run/invoke.ts uses to run
// diffs one at a time when the snapshot does not fit the engine's memory.
import { afterAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { hasSpilled, openEngine } from '../../src/engine/session.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'audex-session-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('hasSpilled', () => {
  it('is false while the tables fit the memory limit, true once the engine moved data out of memory', async () => {
    const engine = await openEngine({ tempDirectory: path.join(dir, 'spill'), memoryLimit: '64MB', threads: 1 });
    try {
      await engine.run(`CREATE TABLE small AS SELECT range AS i FROM range(1000)`);
      expect(await hasSpilled(engine)).toBe(false);
      // About 300 MB of text against a 64 MB limit.
      await engine.run(
        `CREATE TABLE big AS SELECT range AS i, repeat('x', 48) || range::VARCHAR AS s FROM range(5000000)`,
      );
      expect(await hasSpilled(engine)).toBe(true);
    } finally {
      engine.close();
    }
  });
});
