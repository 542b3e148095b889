// The bad-input corpus of issue 5, for the cases test/e2e/input.test.ts,
// test/e2e/config.test.ts, test/e2e/formats.test.ts, test/e2e/layout.test.ts and
// test/e2e/commands.test.ts do not cover yet (each: exit code, message fragment, and
// nothing written unless the case exports):
//   - a very long line: > 64 MiB is a bad record (MAX_RECORD_BYTES), a valid 20 MiB one
//     (beyond DuckDB's default 16 MiB object size) is read; the verdict on a long record
//     does not depend on other records;
//   - wrong types: the profile key (boolean, object), identityMap (not an object), a
//     membership status / lastQualificationTime of another JSON type, an entry that is an
//     array; mapped attributes of an unexpected shape (exported as JSON text / null, not an
//     error); typed Parquet columns (boolean, double, timestamp) given values that do not
//     convert;
//   - an unknown audience id in `audex run`: that run fails, the others export, exit 1;
//   - an empty snapshot with emptyExport: skip (no data file, only the manifest);
//   - a snapshot root whose only folder has no _snapshot.json; a _snapshot.json that is not
//     valid JSON, or not a valid descriptor.
// Already covered elsewhere: malformed JSON, invalid status values, identityMap.email of
// the wrong type, a missing / empty profile key, non-UTF-8 bytes, duplicate keys, an empty
// snapshot with emptyExport: write (input.test.ts); int64 columns (formats.test.ts);
// config mistakes (config.test.ts); hostile audience names (layout.test.ts).
import { afterEach, describe, expect, it } from 'vitest';
import { createWriteStream, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { once } from 'node:events';
import path from 'node:path';
import { createWorkspace, crmConfig, prof, readCsv, vip, type CliResult, type Workspace } from '../helpers/harness.js';

let ws: Workspace;
afterEach(() => ws?.cleanup());

const AT = '2026-11-22T06:00:00Z';
const SNAP = 'snap-gaps';
const EVALUATED = '2026-11-22T05:00:00Z';
const MiB = 1024 * 1024;

function snapshotFolder(id = SNAP, audiences = [{ id: 'aud-vip', name: 'VIP Customers' }]): string {
  const folder = path.join(ws.snapshots, id);
  mkdirSync(path.join(folder, 'profiles'), { recursive: true });
  writeFileSync(
    path.join(folder, '_snapshot.json'),
    JSON.stringify({ snapshotId: id, evaluatedAt: EVALUATED, audiences }),
  );
  return path.join(folder, 'profiles');
}

function writeLines(lines: (string | object)[], id = SNAP): string {
  const file = path.join(snapshotFolder(id), 'part-00000.ndjson');
  writeFileSync(file, lines.map((l) => (typeof l === 'string' ? l : JSON.stringify(l))).join('\n') + '\n');
  return file;
}

/**
 * Writes a part whose line 2 is a valid profile of exactly `lineBytes` bytes (padded with an
 * unmapped attribute), streamed in 1 MiB chunks; optionally a bad line 3.
 */
async function writeLongLine(lineBytes: number, extraBadLine = false): Promise<string> {
  const file = path.join(snapshotFolder(), 'part-00000.ndjson');
  const out = createWriteStream(file);
  const put = async (text: string) => {
    if (!out.write(text)) await once(out, 'drain');
  };
  await put(`${JSON.stringify(prof('p-1'))}\n`);
  const head = `${JSON.stringify(prof('p-2')).slice(0, -1)},"pad":"`;
  const tail = '"}';
  let remaining = lineBytes - Buffer.byteLength(head) - tail.length;
  const chunk = 'x'.repeat(MiB);
  await put(head);
  while (remaining > 0) {
    const n = Math.min(remaining, MiB);
    await put(n === MiB ? chunk : chunk.slice(0, n));
    remaining -= n;
  }
  await put(`${tail}\n`);
  if (extraBadLine) await put('{"profileId": "p-bad", broken\n');
  await put(`${JSON.stringify(prof('p-3'))}\n`);
  out.end();
  await once(out, 'close');
  return file;
}

function run(args: string[] = [], config: Record<string, unknown> = {}): Promise<CliResult> {
  return ws.audex(['run', '--config', ws.config(crmConfig(config)), '--at', AT, ...args]);
}

function expectNothingWritten(): void {
  expect(ws.files('out')).toEqual([]);
  expect(
    ws.files('out', true).filter((f) => /\/(cursors|baselines|pending)\//.test(f) || f.endsWith('lock.json')),
  ).toEqual([]);
}

function expectReported(stderr: string, where: string, reason: string | RegExp): void {
  const hits = stderr.split('\n').filter((l) => l.includes(`${where}: `));
  expect(hits, `stderr should name ${where}\n${stderr.slice(0, 2000)}`).not.toEqual([]);
  const ok = hits.some((l) => (typeof reason === 'string' ? l.includes(reason) : reason.test(l)));
  expect(ok, `${where} should say ${String(reason)}\n${stderr.slice(0, 2000)}`).toBe(true);
}

describe('a very long line', () => {
  it('a record longer than 64 MiB is a bad record: exit 4, file:line, nothing written', async () => {
    ws = createWorkspace();
    const file = await writeLongLine(65 * MiB);
    const result = await run();
    expect(result.code, result.stdout.slice(0, 2000) + result.stderr.slice(0, 2000)).toBe(4);
    expectReported(result.stderr, `${file}:2`, 'the record is longer than 64 MiB');
    expectNothingWritten();
  }, 60_000);

  it('a record longer than 64 MiB is judged the same whether or not the file has another bad record', async () => {
    ws = createWorkspace();
    await writeLongLine(65 * MiB);
    const alone = await run(['--json', '--max-bad-records', '5']);
    expect(alone.code, alone.stderr.slice(0, 2000)).toBe(0);
    const aloneRun = alone.json().runs[0]!;

    ws.cleanup();
    ws = createWorkspace();
    await writeLongLine(65 * MiB, true);
    const withOther = await run(['--json', '--max-bad-records', '5']);
    expect(withOther.code, withOther.stderr.slice(0, 2000)).toBe(0);
    const otherRun = withOther.json().runs[0]!;
    expect({ badRecords: otherRun.counts.badRecords, rows: otherRun.counts.rowsWritten }).toEqual({
      badRecords: (aloneRun.counts.badRecords ?? 0) + 1,
      rows: aloneRun.counts.rowsWritten,
    });
  }, 60_000);

  it("a valid 20 MiB record (beyond DuckDB's default 16 MiB object size) is read and exported", async () => {
    ws = createWorkspace();
    await writeLongLine(20 * MiB);
    const result = await run(['--json']);
    expect(result.code, result.stderr.slice(0, 2000)).toBe(0);
    const r = result.json().runs[0]!;
    expect(r.counts.badRecords).toBe(0);
    expect(
      readCsv(r.files[0]!.path)
        .slice(1)
        .map((row) => row[0]),
    ).toEqual(['p-1@example.com', 'p-2@example.com', 'p-3@example.com']);
  }, 60_000);
});

describe('wrong JSON types (exit 4, file:line, nothing written)', () => {
  it.each([
    {
      name: 'profile key is a boolean',
      line: prof('p-2', { profileId: true }),
      reason: 'no profile key at "profileId"',
    },
    {
      name: 'profile key is an object',
      line: prof('p-2', { profileId: { id: 'p-2' } }),
      reason: 'no profile key at "profileId"',
    },
    {
      name: 'profile key is an array',
      line: prof('p-2', { profileId: ['p-2'] }),
      reason: 'no profile key at "profileId"',
    },
    {
      name: 'identityMap is a string',
      line: prof('p-2', { identityMap: 'p-2@example.com' }),
      reason: /identityMap(\.email)? is not an (object|array)|identityMap/,
    },
    {
      name: 'identityMap.email is an object',
      line: prof('p-2', { identityMap: { email: { id: 'p-2@example.com' } } }),
      reason: 'identityMap.email is not an array',
    },
    {
      name: 'membership status is a number',
      line: prof('p-2', vip({ status: 1, lastQualificationTime: '2026-11-21T10:00:00Z' })),
      reason: /segmentMembership\.ups\.aud-vip\.status is ("1"|1)/,
    },
    {
      name: 'membership status is an object',
      line: prof('p-2', vip({ status: { value: 'realized' }, lastQualificationTime: '2026-11-21T10:00:00Z' })),
      reason: /segmentMembership\.ups\.aud-vip\.status/,
    },
    {
      name: 'lastQualificationTime is a number',
      line: prof('p-2', vip({ status: 'realized', lastQualificationTime: 20261121 })),
      reason: /lastQualificationTime "?20261121"? is not an RFC 3339 time/,
    },
    {
      name: 'membership entry is an array',
      line: prof('p-2', vip(['realized'])),
      reason: 'segmentMembership.ups.aud-vip is not an object',
    },
  ])('$name', async (c) => {
    ws = createWorkspace();
    const file = writeLines([prof('p-1'), c.line, prof('p-3')]);
    const result = await run();
    expect(result.code, result.stderr).toBe(4);
    expectReported(result.stderr, `${file}:2`, c.reason);
    expectNothingWritten();
  });

  it('mapped attributes of an unexpected shape are values, not errors: objects/arrays as JSON text, a path through a scalar as null', async () => {
    ws = createWorkspace();
    writeLines([
      prof('p-1'),
      prof('p-2', { person: 'Ann', loyalty: { tier: ['gold', 'silver'], points: { value: 7 } } }),
      prof('p-3', { person: { name: 42 }, loyalty: { tier: true, points: '12' } }),
    ]);
    const result = await run(['--json']);
    expect(result.code, result.stderr).toBe(0);
    const r = result.json().runs[0]!;
    expect(r.counts.badRecords).toBe(0);
    expect(readCsv(r.files[0]!.path)).toEqual([
      ['email', 'person_name_firstName', 'tier', 'points', 'status'],
      ['p-1@example.com', 'Fp-1', 'gold', '10', 'realized'],
      ['p-2@example.com', '', '["gold","silver"]', '{"value":7}', 'realized'],
      ['p-3@example.com', '', 'true', '12', 'realized'],
    ]);
  });

  it.each([
    { type: 'boolean', value: 'yes' },
    { type: 'double', value: 'abc' },
    { type: 'timestamp', value: 'yesterday' },
    { type: 'int64', value: true },
  ])(
    'a typed Parquet column ($type) given $value: the run fails with exit 4 naming profile and source, no data file',
    async ({ type, value }) => {
      ws = createWorkspace();
      writeLines([prof('p-1', { loyalty: { tier: 'gold', points: value } }), prof('p-2')]);
      const result = await run(['--json'], {
        format: { type: 'parquet' },
        mapping: [
          { source: 'identityMap.email', target: 'email' },
          { source: 'loyalty.points', target: 'points', type },
        ],
        mandatory: [],
      });
      expect(result.code, result.stderr).toBe(4);
      const r = result.json().runs[0]!;
      expect(r.status).toBe('failed');
      expect(r.error).toContain('"p-1"');
      expect(r.error).toContain('loyalty.points');
      expect(r.error).toContain(type);
      expect(ws.files('out').filter((f) => f.endsWith('.parquet') || f.includes('manifest-'))).toEqual([]);
      expect(ws.files('out', true).filter((f) => f.includes('/cursors/'))).toEqual([]);
    },
  );
});

describe('an audience id that is not in the snapshot', () => {
  it('that run fails (exit 1) naming the audience and the snapshot; the other audiences export', async () => {
    ws = createWorkspace();
    const result = await ws.audex([
      'run',
      '--config',
      ws.config(
        crmConfig({
          audiences: [
            {
              id: 'aud-ghost',
              mode: 'full',
              schedule: { frequency: 'daily', startTime: '05:30', startDate: '2026-11-01' },
            },
            {
              id: 'aud-vip',
              mode: 'incremental',
              schedule: { frequency: 'daily', startTime: '05:30', startDate: '2026-11-01' },
            },
          ],
        }),
      ),
      '--at',
      '2026-11-20T06:00:00Z',
      '--json',
    ]);
    expect(result.code, result.stderr).toBe(1);
    const runs = result.json().runs;
    const ghost = runs.find((r) => r.audienceId === 'aud-ghost')!;
    const vipRun = runs.find((r) => r.audienceId === 'aud-vip')!;
    expect(ghost.status).toBe('failed');
    expect(ghost.error).toMatch(
      /audience aud-ghost is not in snapshot snap-20261120 \(its audiences: .*aud-vip.*\); check audiences\[0\]\.id/,
    );
    expect(ghost.files).toEqual([]);
    expect(vipRun.status).toBe('success');
    expect(vipRun.counts.rowsWritten).toBeGreaterThan(0);
    for (const f of vipRun.files) expect(existsSync(f.path)).toBe(true);
    // Only aud-vip's files and cursor; the failed audience has no cursor and no folder.
    expect(ws.files('out').every((f) => f.startsWith('crm/VIP Customers/'))).toBe(true);
    const state = ws.files('out', true).filter((f) => f.startsWith('_audex/'));
    expect(state.filter((f) => f.includes('/cursors/'))).toEqual(['_audex/acme-crm/cursors/aud-vip.json']);
    expect(state.filter((f) => f.includes('/pending/') || f.endsWith('lock.json'))).toEqual([]);
  });
});

describe('empty snapshots with emptyExport: skip', () => {
  it.each([
    ['an empty part', ''],
    ['blank lines only', '\n\n'],
  ])('%s: no data file, only the manifest (counts 0)', async (_name, content) => {
    ws = createWorkspace();
    writeFileSync(path.join(snapshotFolder(), 'part-00000.ndjson'), content);
    const result = await run(['--json'], {
      format: { type: 'csv', compression: 'gzip', emptyExport: 'skip', manifest: true },
    });
    expect(result.code, result.stderr).toBe(0);
    const r = result.json().runs[0]!;
    expect(r.snapshotId).toBe(SNAP);
    expect(r.counts.rowsWritten).toBe(0);
    expect(r.files).toEqual([]);
    const files = ws.files('out');
    expect(files).toHaveLength(1);
    expect(path.posix.basename(files[0]!)).toBe(`manifest-acme-crm-${r.runId}.json`);
    const manifest = JSON.parse(readFileSync(path.join(ws.out, files[0]!), 'utf8')) as {
      exportResults: unknown[];
      counts: { rowsWritten: number };
    };
    expect(manifest.exportResults).toEqual([]);
    expect(manifest.counts.rowsWritten).toBe(0);
  });
});

describe('snapshot folders and descriptors', () => {
  it('a snapshot root whose only folder has no _snapshot.json: the due run fails (exit 1) saying so, nothing written', async () => {
    ws = createWorkspace();
    rmSync(ws.snapshots, { recursive: true });
    const profiles = path.join(ws.snapshots, 'snap-in-progress', 'profiles');
    mkdirSync(profiles, { recursive: true });
    writeFileSync(path.join(profiles, 'part-00000.ndjson'), `${JSON.stringify(prof('p-1'))}\n`);
    const result = await run(['--json']);
    expect(result.code, result.stderr).toBe(1);
    const r = result.json().runs[0]!;
    expect(r.status).toBe('failed');
    expect(r.error).toMatch(/no complete snapshot evaluated at or before .*_snapshot\.json/);
    expectNothingWritten();
  });

  it.each([
    [
      'not valid JSON',
      '{"snapshotId": "snap-gaps", "evaluatedAt": ',
      /is not valid JSON .*the producer must write a complete _snapshot\.json/,
    ],
    [
      'without evaluatedAt',
      JSON.stringify({ snapshotId: 'snap-gaps', audiences: [] }),
      /is not a valid snapshot descriptor: evaluatedAt/,
    ],
    [
      'with an evaluatedAt that is not a time',
      JSON.stringify({ snapshotId: 'snap-gaps', evaluatedAt: 'today', audiences: [] }),
      /is not a valid snapshot descriptor: evaluatedAt/,
    ],
  ])('a _snapshot.json %s: exit 4 naming the file, nothing written', async (_name, text, message) => {
    ws = createWorkspace();
    writeLines([prof('p-1')]);
    writeFileSync(path.join(ws.snapshots, SNAP, '_snapshot.json'), text);
    const result = await run();
    expect(result.code, result.stderr).toBe(4);
    expect(result.stderr).toContain(path.join(ws.snapshots, SNAP, '_snapshot.json'));
    expect(result.stderr).toMatch(message);
    expectNothingWritten();
  });
});
