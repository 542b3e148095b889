// Golden outputs: every file a set of dataflows writes over two days (the bundled
// fixtures, and a small snapshot pair from the bench generator), in every format ×
// compression × CSV dialect the tests use, full and incremental, pinned by sha256.
// A change to the engine, the writers or the naming must reproduce these bytes; a change
// of a rule that is meant to change them regenerates the file on purpose:
//
//   GOLDEN_UPDATE=1 npx vitest run test/golden
//
// and the diff of test/golden/outputs.json shows which files changed.
import { describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { crmConfig, listFiles, trackWorkspaces, type Workspace } from '../helpers/harness.js';
// @ts-expect-error plain JS module of the bench generator
import { writePart } from '../../scripts/bench/gen-worker.js';
// @ts-expect-error plain JS module of the bench generator
import { AUDIENCES, SNAPSHOTS } from '../../scripts/bench/profiles.js';

const GOLDEN = path.join(path.dirname(fileURLToPath(import.meta.url)), 'outputs.json');
const workspace = trackWorkspaces();

const crmMapping = [
  { source: 'identityMap.email', target: 'email' },
  { source: 'person.name.firstName' },
  { source: 'person.name.lastName' },
  { source: 'loyalty.tier', target: 'tier' },
  { source: 'loyalty.points', target: 'points' },
  { source: 'segmentMembership.status', target: 'status' },
  { source: 'segmentMembership.lastQualificationTime', target: 'qualified_at' },
  { source: 'personalEmail.address', target: 'email_sha256', transform: 'sha256' },
];
const crmAudiences = [
  { id: 'aud-vip', mode: 'incremental', schedule: { frequency: 'daily', startTime: '05:30', startDate: '2026-11-01' } },
  { id: 'aud-churn', mode: 'full', schedule: { frequency: 'daily', trigger: 'afterEvaluation' } },
  { id: 'aud-promo', mode: 'full', schedule: { frequency: 'once', startDate: '2026-11-20', startTime: '06:00' } },
];
const fixtureDays = ['2026-11-20T06:00:00Z', '2026-11-21T06:00:00Z'];

interface Variant {
  name: string;
  source: 'fixtures' | 'bench';
  config: Record<string, unknown>;
}

const fixtureVariant = (
  name: string,
  format: Record<string, unknown>,
  extra: Record<string, unknown> = {},
): Variant => ({
  name,
  source: 'fixtures',
  config: crmConfig({ id: `golden-${name}`, format, mapping: crmMapping, audiences: crmAudiences, ...extra }),
});

const benchMapping = [
  { source: 'identityMap.email', target: 'email' },
  { source: 'person.name.firstName', target: 'first_name' },
  { source: 'person.name.lastName', target: 'last_name' },
  { source: 'loyalty.tier', target: 'tier' },
  { source: 'loyalty.points', target: 'points', type: 'int64' },
  { source: 'segmentMembership.status', target: 'status' },
  { source: 'segmentMembership.lastQualificationTime', target: 'qualified_at' },
];
const benchAudiences = (mode: string) =>
  ['aud-00', 'aud-01', 'aud-02'].map((id) => ({
    id,
    mode,
    schedule: { frequency: 'daily', startTime: '06:00', startDate: '2026-11-01' },
  }));
const benchVariant = (name: string, format: Record<string, unknown>, mode: string): Variant => ({
  name,
  source: 'bench',
  config: crmConfig({
    id: `golden-${name}`,
    source: { snapshots: './bench-snapshots' },
    format: { maxRowsPerFile: 700, ...format },
    folderPath: '%SEGMENT_ID%',
    mapping: benchMapping,
    mandatory: [],
    audiences: benchAudiences(mode),
  }),
});

const VARIANTS: Variant[] = [
  fixtureVariant('csv', { type: 'csv', compression: 'none' }),
  fixtureVariant('csv-gzip-parts', { type: 'csv', compression: 'gzip', maxRowsPerFile: 2 }),
  fixtureVariant('csv-semicolon-noquote', {
    type: 'csv',
    csv: { delimiter: ';', quote: 'none', escape: "'", emptyValue: '""', nullValue: 'null', header: true },
  }),
  fixtureVariant('csv-tab-quoteall', { type: 'csv', csv: { delimiter: '\t', quoteAll: true, header: false } }),
  fixtureVariant('csv-dedup', { type: 'csv' }, { dedupKeys: ['identityMap.email'] }),
  fixtureVariant('json', { type: 'json', compression: 'none' }),
  fixtureVariant('json-gzip', { type: 'json', compression: 'gzip' }),
  fixtureVariant('parquet', { type: 'parquet', compression: 'none' }),
  fixtureVariant('parquet-gzip', { type: 'parquet', compression: 'gzip' }),
  benchVariant('bench-csv-gzip-incremental', { type: 'csv', compression: 'gzip' }, 'incremental'),
  benchVariant('bench-json-full', { type: 'json', compression: 'none' }, 'full'),
  benchVariant('bench-parquet-gzip-incremental', { type: 'parquet', compression: 'gzip' }, 'incremental'),
];

/** Two snapshots of 2,000 profiles from the bench generator (deterministic by seed). */
function writeBenchSnapshots(dir: string): void {
  const files = (SNAPSHOTS as { snapshotId: string }[]).map((s) => {
    mkdirSync(path.join(dir, s.snapshotId, 'profiles'), { recursive: true });
    return path.join(dir, s.snapshotId, 'profiles', 'part-00000.ndjson');
  });
  writePart({ seed: 7, start: 0, end: 2000, files });
  for (const s of SNAPSHOTS as { snapshotId: string; evaluatedAt: string }[]) {
    writeFileSync(path.join(dir, s.snapshotId, '_snapshot.json'), JSON.stringify({ ...s, audiences: AUDIENCES }));
  }
}

async function outputsOf(ws: Workspace, variant: Variant): Promise<Record<string, string>> {
  const days = variant.source === 'fixtures' ? fixtureDays : ['2026-11-20T07:00:00Z', '2026-11-21T07:00:00Z'];
  const config = ws.config(variant.config, `${variant.name}.yaml`);
  for (const at of days) {
    const result = await ws.audex(['run', '--config', config, '--at', at, '--quiet']);
    expect(result.code, `${variant.name} at ${at}: ${result.stderr}`).toBe(0);
  }
  const out: Record<string, string> = {};
  for (const file of listFiles(ws.out).filter((f) => !f.startsWith('_audex/'))) {
    out[file] = createHash('sha256')
      .update(readFileSync(path.join(ws.out, file)))
      .digest('hex');
  }
  return out;
}

describe('golden outputs', () => {
  it('every format, dialect and mode writes the pinned bytes', async () => {
    const actual: Record<string, Record<string, string>> = {};
    for (const variant of VARIANTS) {
      const ws = workspace();
      if (variant.source === 'bench') writeBenchSnapshots(path.join(ws.dir, 'bench-snapshots'));
      actual[variant.name] = await outputsOf(ws, variant);
      expect(Object.keys(actual[variant.name]!).length, variant.name).toBeGreaterThan(2);
    }
    if (process.env['GOLDEN_UPDATE'] === '1' || !existsSync(GOLDEN)) {
      if (process.env['CI']) throw new Error(`${GOLDEN} is missing: generate it with GOLDEN_UPDATE=1 and commit it`);
      writeFileSync(GOLDEN, `${JSON.stringify(actual, null, 2)}\n`);
    }
    const expected = JSON.parse(readFileSync(GOLDEN, 'utf8')) as Record<string, Record<string, string>>;
    expect(actual).toEqual(expected);
  }, 240_000);
});
