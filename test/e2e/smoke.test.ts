import { afterEach, describe, expect, it } from 'vitest';
import path from 'node:path';
import { createWorkspace, crmConfig, readCsv, readParquet, type Workspace } from '../helpers/harness.js';

let ws: Workspace;
afterEach(() => ws?.cleanup());

describe('smoke', () => {
  it('exports the VIP backfill as CSV and Parquet', async () => {
    ws = createWorkspace();
    const config = ws.config(crmConfig());
    const result = await ws.audex(['run', '--config', config, '--at', '2026-11-20T06:00:00Z', '--json']);
    expect(result.code, result.stderr).toBe(0);
    const run = result.json().runs[0]!;
    expect(run.counts.rowsWritten).toBe(6);
    const rows = readCsv(run.files[0]!.path);
    expect(rows[0]).toEqual(['email', 'person_name_firstName', 'tier', 'points', 'status']);
    const pq = ws.config(crmConfig({ id: 'pq', format: { type: 'parquet', compression: 'gzip' } }), 'pq.yaml');
    const r2 = await ws.audex(['run', '--config', pq, '--at', '2026-11-20T06:00:00Z', '--json']);
    expect(r2.code, r2.stderr).toBe(0);
    const file = r2.json().runs[0]!.files[0]!.path;
    expect(path.basename(file)).toMatch(/\.gz\.parquet$/);
    const parquet = await readParquet(file);
    expect(parquet.rows).toHaveLength(6);
    expect(parquet.codecs).toEqual(['GZIP']);
  });
});
