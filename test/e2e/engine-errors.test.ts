// A snapshot part the engine cannot read is the user's input (exit 4, "check the parts"),
// never an internal error: the classifier that sends audex's own SQL failures to exit 1
// (test/unit/engine-errors.test.ts) must not catch real read errors of real parts.
import { afterEach, describe, expect, it } from 'vitest';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { constants, deflateRawSync, gzipSync } from 'node:zlib';
import { createWorkspace, crmConfig, prof, type Workspace } from '../helpers/harness.js';

let ws: Workspace;
afterEach(() => ws?.cleanup());

function writeSnapshot(parts: Record<string, Buffer | string>): void {
  const folder = path.join(ws.snapshots, 'snap-broken');
  mkdirSync(path.join(folder, 'profiles'), { recursive: true });
  for (const [name, content] of Object.entries(parts)) writeFileSync(path.join(folder, 'profiles', name), content);
  writeFileSync(
    path.join(folder, '_snapshot.json'),
    JSON.stringify({
      snapshotId: 'snap-broken',
      evaluatedAt: '2026-11-22T05:00:00Z',
      audiences: [{ id: 'aud-vip', name: 'VIP Customers' }],
    }),
  );
}

/** A gzip part cut right after a flush: its text ends on a line break, with no end of stream and no trailer. */
function gzipCutAtLineEnd(text: string): Buffer {
  const header = Buffer.from([0x1f, 0x8b, 0x08, 0, 0, 0, 0, 0, 0, 0x03]);
  return Buffer.concat([header, deflateRawSync(text, { finishFlush: constants.Z_SYNC_FLUSH })]);
}

describe('an unreadable snapshot part', () => {
  it.each([
    ['a .parquet part that is not Parquet', { 'part-00000.parquet': 'these bytes are not a Parquet file\n' }],
    [
      'a .ndjson.gz part cut short',
      { 'part-00000.ndjson.gz': gzipSync(`${JSON.stringify(prof('p-1'))}\n`.repeat(2000)).subarray(0, 400) },
    ],
    [
      'a .ndjson.gz part cut before its first line',
      { 'part-00000.ndjson.gz': gzipSync(`${JSON.stringify(prof('p-1'))}\n`.repeat(200)).subarray(0, 60) },
    ],
    [
      'a .ndjson.gz part cut where its text ends on a line break',
      { 'part-00000.ndjson.gz': gzipCutAtLineEnd(`${JSON.stringify(prof('p-1'))}\n${JSON.stringify(prof('p-2'))}\n`) },
    ],
  ])('%s fails the run with exit 4 and says which part, not "please report"', async (_what, parts) => {
    ws = createWorkspace();
    writeSnapshot(parts);
    const result = await ws.audex(['run', '--config', ws.config(crmConfig()), '--at', '2026-11-22T06:00:00Z']);
    expect(result.code, result.stderr).toBe(4);
    expect(result.stderr).toContain(`snap-broken/profiles/${Object.keys(parts)[0]}`);
    expect(result.stderr).not.toContain('please report');
    expect(ws.files('out')).toEqual([]);
  });
});
