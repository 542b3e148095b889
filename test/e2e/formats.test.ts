// README "What gets exported" end to end: CSV dialects (exact bytes and read-back with a standard parser),
// NDJSON shape, Parquet column types and codecs, gzip, part splitting with manifests,
// empty exports and byte-for-byte determinism. Every file is produced by the real CLI.
import { beforeAll, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import {
  addSnapshot,
  crmConfig,
  readCsv,
  readJsonLines,
  readParquet,
  readText,
  type CliResult,
  type JsonSummary,
  type Workspace,
  trackWorkspaces,
} from '../helpers/harness.js';

const AT = '2026-11-20T06:00:00Z'; // aud-vip daily 05:30 → slot 2026-11-20T05:30Z, snapshot snap-20261120

type Run = JsonSummary['runs'][number];

const workspace = trackWorkspaces();

/** Writes `config` under `name` and runs it once at `at`; asserts one successful run. */
async function runOk(
  ws: Workspace,
  config: Record<string, unknown>,
  name: string,
  at = AT,
  extra: string[] = [],
): Promise<Run> {
  const result = await runCfg(ws, config, name, at, extra);
  expect(result.code, `${name}: ${result.stderr}\n${result.stdout}`).toBe(0);
  const runs = result.json().runs.filter((r) => r.status !== 'skipped');
  expect(runs, name).toHaveLength(1);
  expect(runs[0]!.status, `${name}: ${runs[0]!.error ?? ''}`).toBe('success');
  return runs[0]!;
}

function runCfg(
  ws: Workspace,
  config: Record<string, unknown>,
  name: string,
  at = AT,
  extra: string[] = [],
): Promise<CliResult> {
  const file = ws.config(config, `${name}.yaml`);
  return ws.audex(['run', '--config', file, '--at', at, '--json', '--quiet', ...extra]);
}

const sha256 = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex');

/** Profiles of the fixture snapshot snap-20261120 as NDJSON lines (both parts). */
function fixtureLines(ws: Workspace): string[] {
  const dir = path.join(ws.snapshots, 'snap-20261120', 'profiles');
  return [readText(path.join(dir, 'part-00000.ndjson')), readText(path.join(dir, 'part-00001.ndjson.gz'))]
    .flatMap((t) => t.split('\n'))
    .filter(Boolean);
}

const vip = (status: string, lastQualificationTime: string) => ({
  ups: { 'aud-vip': { status, lastQualificationTime } },
});

// ---------------------------------------------------------------------------------------
// CSV
// ---------------------------------------------------------------------------------------

const CSV_MAPPING = [
  { source: 'identityMap.email', target: 'email' },
  { source: 'person.name.firstName' }, // default target person_name_firstName
  { source: 'person.name.lastName', target: 'last' },
  { source: 'loyalty.tier', target: 'tier' },
  { source: 'loyalty.points', target: 'points' },
  { source: 'segmentMembership.status', target: 'status' },
  { source: 'segmentMembership.lastQualificationTime', target: 'qualified' },
];
const CSV_HEADER = ['email', 'person_name_firstName', 'last', 'tier', 'points', 'status', 'qualified'];

// The 6-row VIP backfill of snap-20261120, in export order (profile key), plus two extra
// profiles: p-013 with an empty string and two missing fields, p-014 with every
// delimiter, both escape characters, CR LF, a trailing backslash and non-ASCII text.
type Cell = string | null;
const FIXTURE_ROWS: Cell[][] = [
  ['ann@example.com', 'Ann', 'Lee', 'gold', '1200', 'realized', '2026-11-19T10:00:00Z'],
  ['bob@example.com', 'Bob', 'Stone', 'silver', '300.5', 'existing', '2026-10-02T08:00:00Z'],
  ['johndoe@example.com', 'John', 'Doe', 'platinum', '5000', 'realized', '2026-11-19T12:00:00Z'],
  ['dan@example.com', 'Dan, "D"', "O'Brien\nJr \\ III", 'gold', '75', 'existing', '2026-09-01T00:00:00Z'],
  ['gail@example.com', 'Gail', 'Ruiz', 'silver', '12', 'realized', '2026-11-19T14:00:00Z'],
  ['ivy@example.com', 'Ivy', 'Chen', 'gold', '820', 'existing', '2026-08-15T00:00:00Z'],
];
const HOSTILE_FIRST = "a|b\tc;d:e'f,g";
const HOSTILE_LAST = 'Zoë "Z" 日本 😀\r\nend \'\\';
const EXTRA_ROWS: Cell[][] = [
  ['empty@example.com', '', null, 'gold', null, 'realized', '2026-11-19T16:00:00Z'],
  ['zoe@example.com', HOSTILE_FIRST, HOSTILE_LAST, 'silver', '7', 'existing', '2026-11-19T17:00:00Z'],
];
const EXTRA_PROFILES = [
  {
    profileId: 'p-013',
    identityMap: { email: [{ id: 'empty@example.com' }] },
    person: { name: { firstName: '' } },
    loyalty: { tier: 'gold' },
    segmentMembership: vip('realized', '2026-11-19T16:00:00Z'),
  },
  {
    profileId: 'p-014',
    identityMap: { email: [{ id: 'zoe@example.com' }] },
    person: { name: { firstName: HOSTILE_FIRST, lastName: HOSTILE_LAST } },
    loyalty: { tier: 'silver', points: 7 },
    segmentMembership: vip('existing', '2026-11-19T17:00:00Z'),
  },
];

interface Dialect {
  delimiter?: string;
  quote?: string;
  escape?: string;
  emptyValue?: string;
  nullValue?: string;
  header?: boolean;
  quoteAll?: boolean;
}
type FullDialect = Required<Dialect>;
const withDefaults = (d: Dialect): FullDialect => ({
  delimiter: ',',
  quote: '"',
  escape: '\\',
  emptyValue: '',
  nullValue: '',
  header: true,
  quoteAll: false,
  ...d,
});

/** The spec's rendering of one cell (README "Files, names and the manifest" and the decisions in the brief): the oracle. */
function renderCell(value: Cell, d: FullDialect): string {
  if (value === null) return d.nullValue;
  if (value === '') return d.emptyValue;
  if (d.quote === 'none') {
    let out = '';
    for (const ch of value) out += [d.escape, d.delimiter, '\n', '\r'].includes(ch) ? d.escape + ch : ch;
    return out;
  }
  const needs = d.quoteAll || [d.delimiter, '"', d.escape, '\n', '\r'].some((ch) => value.includes(ch));
  if (!needs) return value;
  let out = '';
  for (const ch of value) out += ch === d.escape || ch === '"' ? d.escape + ch : ch;
  return `"${out}"`;
}

function expectedCsv(rows: Cell[][], d: FullDialect): string {
  const lines = [...(d.header ? [CSV_HEADER] : []), ...rows].map((r) =>
    r.map((v) => renderCell(v, d)).join(d.delimiter),
  );
  return lines.map((l) => `${l}\n`).join('');
}

/** What a reader of this dialect gets back for each cell (null / empty rendered as text). */
function readBackValue(value: Cell, d: FullDialect): string {
  if (value !== null && value !== '') return value;
  const written = value === null ? d.nullValue : d.emptyValue;
  // `""` is an empty quoted field for a quoting reader; with quote none it is two characters.
  return written === '""' && d.quote !== 'none' ? '' : written;
}

/** Reader for quote none: the escape character makes the next character literal. */
function readUnquoted(text: string, d: FullDialect): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]!;
    if (ch === d.escape) {
      i++;
      field += text[i] ?? '';
    } else if (ch === d.delimiter) {
      row.push(field);
      field = '';
    } else if (ch === '\n') {
      row.push(field);
      rows.push(row);
      row = [];
      field = '';
    } else field += ch;
  }
  if (field !== '' || row.length > 0) rows.push([...row, field]);
  return rows;
}

function readBack(file: string, d: FullDialect): string[][] {
  if (d.quote === 'none') return readUnquoted(readText(file), d);
  return readCsv(file, { delimiter: d.delimiter, quote: d.quote, escape: d.escape, record_delimiter: '\n' });
}

const DIALECTS: { label: string; csv: Dialect; gzip?: boolean }[] = [
  { label: 'defaults', csv: {} },
  { label: 'delimiter ;', csv: { delimiter: ';' } },
  { label: 'delimiter :', csv: { delimiter: ':' } },
  { label: 'delimiter |', csv: { delimiter: '|' } },
  { label: 'delimiter tab', csv: { delimiter: '\t' } },
  { label: "escape '", csv: { escape: "'" } },
  { label: "escape ' with delimiter ;", csv: { escape: "'", delimiter: ';' } },
  { label: 'quote none', csv: { quote: 'none' } },
  { label: "quote none, escape ', delimiter |", csv: { quote: 'none', escape: "'", delimiter: '|' } },
  {
    label: 'quote none, empty "" null null, no header',
    csv: { quote: 'none', emptyValue: '""', nullValue: 'null', header: false },
  },
  { label: 'quoteAll', csv: { quoteAll: true } },
  { label: "quoteAll, escape ', tab", csv: { quoteAll: true, escape: "'", delimiter: '\t' } },
  { label: 'quoteAll, empty null, null ""', csv: { quoteAll: true, emptyValue: 'null', nullValue: '""' } },
  { label: 'empty "", null null', csv: { emptyValue: '""', nullValue: 'null' } },
  { label: 'empty null, null ""', csv: { emptyValue: 'null', nullValue: '""' } },
  { label: 'empty "", null "" (explicit nothing)', csv: { emptyValue: '', nullValue: '""' } },
  { label: 'header false', csv: { header: false } },
  { label: "gzip, delimiter ;, escape '", csv: { delimiter: ';', escape: "'" }, gzip: true },
];

describe('CSV dialects', () => {
  let ws: Workspace;
  beforeAll(() => {
    ws = workspace();
    // Same profiles as snap-20261120 plus p-013 / p-014, evaluated a little later.
    addSnapshot(ws.snapshots, 'snap-csv', '2026-11-20T05:10:00Z', [...fixtureLines(ws), ...EXTRA_PROFILES]);
  });

  describe.concurrent('round trip', () => {
    DIALECTS.forEach(({ label, csv, gzip }, i) => {
      it(label, async ({ expect }) => {
        const d = withDefaults(csv);
        const config = crmConfig({
          id: `csv-${i}`,
          folderPath: `csv-${i}`,
          format: { type: 'csv', compression: gzip ? 'gzip' : 'none', csv },
          mapping: CSV_MAPPING,
        });
        const result = await runCfg(ws, config, `csv-${i}`, AT, ['--snapshot', 'snap-csv']);
        expect(result.code, result.stderr + result.stdout).toBe(0);
        const run = result.json().runs[0]!;
        expect(run.status).toBe('success');
        const rows = [...FIXTURE_ROWS, ...EXTRA_ROWS];
        expect(run.counts.rowsWritten).toBe(rows.length);
        expect(run.files).toHaveLength(1);
        const file = run.files[0]!.path;
        expect(path.basename(file)).toBe(`Acme_CRM_aud-vip_20261120_053000${gzip ? '.csv.gz' : '.csv'}`);

        const bytes = readFileSync(file);
        const text = readText(file);
        // UTF-8 (no BOM, valid), \n line ends, exactly the spec's rendering.
        expect(Buffer.from(text, 'utf8').equals(gzip ? gunzipSync(bytes) : bytes)).toBe(true);
        expect(text.startsWith('\uFEFF')).toBe(false);
        expect(text).toBe(expectedCsv(rows, d));

        // A standard reader given the same dialect gets every value back.
        const parsed = readBack(file, d);
        const expected = [...(d.header ? [CSV_HEADER] : []), ...rows.map((r) => r.map((v) => readBackValue(v, d)))];
        expect(parsed).toEqual(expected);
        // The hostile rows in particular.
        const body = d.header ? parsed.slice(1) : parsed;
        expect(body[3]![1]).toBe('Dan, "D"');
        expect(body[3]![2]).toBe("O'Brien\nJr \\ III");
        expect(body[7]![1]).toBe(HOSTILE_FIRST);
        expect(body[7]![2]).toBe(HOSTILE_LAST);
      });
    });
  });
});

// ---------------------------------------------------------------------------------------
// JSON (and the same nested values in CSV / Parquet)
// ---------------------------------------------------------------------------------------

const LEE = 'Lee\nJr \\ "III" \u2028 😀';
const NESTED_PROFILES = [
  {
    profileId: 'n-1',
    identityMap: { email: [{ id: 'ann@example.com' }] },
    person: { name: { firstName: 'Ann', lastName: LEE, aliases: ['A', 'Annie'] } },
    personalEmail: { address: '  Ann@Example.COM ' },
    interests: ['ski', 'golf'],
    loyalty: { tier: 'gold', points: 1200 },
    optIn: true,
    segmentMembership: vip('realized', '2026-11-19T10:00:00Z'),
  },
  {
    profileId: 'n-2',
    identityMap: { email: [{ id: 'bob@example.com' }] },
    person: { name: { firstName: 'Bob "B"' } },
    interests: [],
    loyalty: { tier: 'silver', points: 300.5 },
    optIn: false,
    segmentMembership: vip('existing', '2026-10-02T08:00:00Z'),
  },
  {
    profileId: 'n-3',
    identityMap: { email: [{ id: 'cara@example.com' }] },
    loyalty: { tier: 'bronze' },
    segmentMembership: vip('realized', '2026-11-19T11:00:00Z'),
  },
];
const NESTED_MAPPING = [
  { source: 'identityMap.email', target: 'email' },
  { source: 'person.name', target: 'name' },
  { source: 'interests' },
  { source: 'loyalty.points', target: 'points' },
  { source: 'optIn' },
  { source: 'segmentMembership.status', target: 'status' },
  { source: 'person.name.lastName', target: 'last' },
  { source: 'personalEmail.address', target: 'email_sha256', transform: 'sha256' },
];
const ANN_SHA = createHash('sha256').update('ann@example.com').digest('hex');
const NESTED_EXPECTED = [
  {
    email: 'ann@example.com',
    name: { firstName: 'Ann', lastName: LEE, aliases: ['A', 'Annie'] },
    interests: ['ski', 'golf'],
    points: 1200,
    optIn: true,
    status: 'realized',
    last: LEE,
    email_sha256: ANN_SHA,
  },
  {
    email: 'bob@example.com',
    name: { firstName: 'Bob "B"' },
    interests: [],
    points: 300.5,
    optIn: false,
    status: 'existing',
    last: null,
    email_sha256: null,
  },
  {
    email: 'cara@example.com',
    name: null,
    interests: null,
    points: null,
    optIn: null,
    status: 'realized',
    last: null,
    email_sha256: null,
  },
];

describe('JSON', () => {
  it('writes NDJSON: one object a row, keys in mapping order, nested values, numbers, missing → null', async () => {
    const ws = workspace();
    addSnapshot(ws.snapshots, 'snap-nested', '2026-11-20T05:10:00Z', NESTED_PROFILES);
    // One folder per dataflow: these run at the same time (see layout.test.ts on shared folders).
    const base = { mapping: NESTED_MAPPING, mandatory: [] };
    const [json, csv, parquet] = await Promise.all([
      runOk(
        ws,
        crmConfig({ ...base, id: 'nested-json', folderPath: 'nested-json', format: { type: 'json' } }),
        'nested-json',
      ),
      runOk(
        ws,
        crmConfig({ ...base, id: 'nested-csv', folderPath: 'nested-csv', format: { type: 'csv' } }),
        'nested-csv',
      ),
      runOk(
        ws,
        crmConfig({ ...base, id: 'nested-pq', folderPath: 'nested-pq', format: { type: 'parquet' } }),
        'nested-pq',
      ),
    ]);

    const file = json.files[0]!.path;
    expect(path.basename(file)).toBe('Acme_CRM_aud-vip_20261120_053000.json');
    const text = readText(file);
    expect(text.endsWith('\n')).toBe(true);
    expect(text.includes('\r')).toBe(false);
    const lines = text.split('\n');
    expect(lines.pop()).toBe('');
    expect(lines).toHaveLength(3);
    const rows = readJsonLines(file);
    expect(rows).toEqual(NESTED_EXPECTED);
    for (const row of rows)
      expect(Object.keys(row)).toEqual(NESTED_MAPPING.map((m) => m.target ?? m.source.replaceAll('.', '_')));
    expect(typeof rows[1]!['points']).toBe('number');
    expect(json.files[0]!.rows).toBe(3);

    // CSV and Parquet carry arrays and objects as JSON text (README "What gets exported").
    const csvRows = readCsv(csv.files[0]!.path);
    expect(csvRows[0]).toEqual(['email', 'name', 'interests', 'points', 'optIn', 'status', 'last', 'email_sha256']);
    expect(csvRows[1]![6]).toBe(LEE);
    expect(csvRows[1]![7]).toBe(ANN_SHA);
    expect(JSON.parse(csvRows[1]![1]!)).toEqual(NESTED_EXPECTED[0]!.name);
    expect(JSON.parse(csvRows[1]![2]!)).toEqual(['ski', 'golf']);
    expect(csvRows[1]![4]).toBe('true');
    expect(JSON.parse(csvRows[2]![1]!)).toEqual({ firstName: 'Bob "B"' });
    expect(csvRows[2]![2]).toBe('[]');
    expect(csvRows[2]![3]).toBe('300.5');
    expect(csvRows[3]!.slice(1, 5)).toEqual(['', '', '', '']);

    const pq = await readParquet(parquet.files[0]!.path);
    expect(pq.rows).toHaveLength(3);
    expect(JSON.parse(pq.rows[0]!['name'] as string)).toEqual(NESTED_EXPECTED[0]!.name);
    expect(JSON.parse(pq.rows[0]!['interests'] as string)).toEqual(['ski', 'golf']);
    expect(pq.rows[2]!['name']).toBeNull();
  });
});

// ---------------------------------------------------------------------------------------
// Parquet
// ---------------------------------------------------------------------------------------

const TYPED_PROFILES = [
  {
    profileId: 't-1',
    identityMap: { email: [{ id: 'ann@example.com' }] },
    loyalty: { tier: 'gold', points: 1200, balance: 10.25 },
    optIn: true,
    segmentMembership: vip('realized', '2026-11-19T10:00:00Z'),
  },
  {
    profileId: 't-2',
    identityMap: { email: [{ id: 'bob@example.com' }] },
    loyalty: { tier: 'silver', points: 9007199254740993, balance: 3 },
    optIn: false,
    segmentMembership: vip('existing', '2026-10-02T08:00:00.5Z'),
  },
  {
    profileId: 't-3',
    identityMap: { email: [{ id: 'cara@example.com' }] },
    loyalty: { tier: 'bronze' },
    segmentMembership: vip('realized', '2026-11-19T11:00:00+02:00'),
  },
];
const TYPED_MAPPING = [
  { source: 'identityMap.email', target: 'email' },
  { source: 'loyalty.tier', target: 'tier' },
  { source: 'loyalty.points', target: 'points', type: 'int64' },
  { source: 'loyalty.balance', target: 'balance', type: 'double' },
  { source: 'optIn', target: 'optIn', type: 'boolean' },
  { source: 'segmentMembership.lastQualificationTime', target: 'qualified', type: 'timestamp' },
  { source: 'segmentMembership.status', target: 'status', type: 'string' },
];

describe('Parquet', () => {
  it('writes one typed column a target; SNAPPY without compression, GZIP with it', async () => {
    const ws = workspace();
    // The numbers line is written raw: 9007199254740993 is beyond a double's precision.
    const lines = TYPED_PROFILES.map((p) => JSON.stringify(p).replace('9007199254740992', '9007199254740993'));
    addSnapshot(ws.snapshots, 'snap-typed', '2026-11-20T05:10:00Z', lines);
    const base = { mapping: TYPED_MAPPING, mandatory: [] };
    const [snappy, gzip] = await Promise.all([
      runOk(
        ws,
        crmConfig({ ...base, id: 'pq-snappy', folderPath: 'snappy', format: { type: 'parquet', compression: 'none' } }),
        'pq-snappy',
      ),
      runOk(
        ws,
        crmConfig({ ...base, id: 'pq-gzip', folderPath: 'gzip', format: { type: 'parquet', compression: 'gzip' } }),
        'pq-gzip',
      ),
    ]);
    expect(path.basename(snappy.files[0]!.path)).toBe('Acme_CRM_aud-vip_20261120_053000.parquet');
    expect(path.basename(gzip.files[0]!.path)).toBe('Acme_CRM_aud-vip_20261120_053000.gz.parquet');

    const a = await readParquet(snappy.files[0]!.path);
    const b = await readParquet(gzip.files[0]!.path);
    expect(a.codecs).toEqual(['SNAPPY']);
    expect(b.codecs).toEqual(['GZIP']);
    // A real Parquet file either way (magic at both ends), not a gzip stream.
    for (const f of [snappy.files[0]!.path, gzip.files[0]!.path]) {
      const bytes = readFileSync(f);
      expect(bytes.subarray(0, 4).toString()).toBe('PAR1');
      expect(bytes.subarray(-4).toString()).toBe('PAR1');
    }

    const byName = Object.fromEntries(a.columns.map((c) => [c.name, c]));
    expect(a.columns.map((c) => c.name)).toEqual([
      'email',
      'tier',
      'points',
      'balance',
      'optIn',
      'qualified',
      'status',
    ]);
    // Strings: BYTE_ARRAY annotated UTF8 (DuckDB writes the converted type, which the harness
    // does not expose; hyparquet decodes the values as JS strings only because of it).
    for (const s of ['email', 'tier', 'status']) {
      expect(byName[s]!.type).toBe('BYTE_ARRAY');
      for (const row of a.rows) if (row[s] !== null) expect(typeof row[s]).toBe('string');
    }
    expect(byName['points']!.type).toBe('INT64');
    expect(byName['balance']!.type).toBe('DOUBLE');
    expect(byName['optIn']!.type).toBe('BOOLEAN');
    expect(byName['qualified']!.type).toBe('INT64');
    expect(byName['qualified']!.logical).toMatchObject({ type: 'TIMESTAMP' });

    expect(a.rows).toEqual(b.rows);
    const ts = (r: Record<string, unknown>) =>
      r['qualified'] instanceof Date ? r['qualified'].toISOString() : r['qualified'];
    expect(a.rows.map((r) => ({ ...r, qualified: ts(r) }))).toEqual([
      {
        email: 'ann@example.com',
        tier: 'gold',
        points: 1200n,
        balance: 10.25,
        optIn: true,
        qualified: '2026-11-19T10:00:00.000Z',
        status: 'realized',
      },
      {
        email: 'bob@example.com',
        tier: 'silver',
        points: 9007199254740993n,
        balance: 3,
        optIn: false,
        qualified: '2026-10-02T08:00:00.500Z',
        status: 'existing',
      },
      {
        email: 'cara@example.com',
        tier: 'bronze',
        points: null,
        balance: null,
        optIn: null,
        qualified: '2026-11-19T09:00:00.000Z',
        status: 'realized',
      },
    ]);
  });

  it('fails the run (exit 4) when a value does not convert to its column type, naming profile and source', async () => {
    const ws = workspace();
    const config = crmConfig({
      id: 'pq-bad',
      format: { type: 'parquet', compression: 'gzip' },
      mapping: [
        { source: 'identityMap.email', target: 'email' },
        { source: 'loyalty.tier', target: 'tier', type: 'int64' },
      ],
    });
    const result = await runCfg(ws, config, 'pq-bad');
    expect(result.code, result.stderr).toBe(4);
    const run = result.json().runs[0]!;
    expect(run.status).toBe('failed');
    expect(run.files).toEqual([]);
    expect(run.error).toContain('p-001');
    expect(run.error).toContain('loyalty.tier');
    expect(run.error).toContain('gold');
    // No data file under a final name (nor a manifest claiming the run is whole); no cursor.
    const files = ws.files();
    expect(files.filter((f) => f.endsWith('.parquet'))).toEqual([]);
    expect(files.filter((f) => path.basename(f).startsWith('manifest-'))).toEqual([]);
    expect(existsSync(path.join(ws.out, '_audex', 'pq-bad', 'cursors', 'aud-vip.json'))).toBe(false);
  });

  it('does not round a fractional number into an int64 column (p-002 has points 300.5)', async () => {
    const ws = workspace();
    const config = crmConfig({
      id: 'pq-frac',
      format: { type: 'parquet' },
      mapping: [
        { source: 'identityMap.email', target: 'email' },
        { source: 'loyalty.tier', target: 'tier' },
        { source: 'loyalty.points', target: 'points', type: 'int64' },
      ],
    });
    const result = await runCfg(ws, config, 'pq-frac');
    const run = result.json().runs[0]!;
    const written = run.files[0]
      ? (await readParquet(run.files[0].path)).rows.find((r) => r['email'] === 'bob@example.com')
      : undefined;
    expect(run.status, `bob's points were written as ${String(written?.['points'])}`).toBe('failed');
    expect(result.code).toBe(4);
    expect(run.error).toContain('p-002');
    expect(run.error).toContain('loyalty.points');
    expect(ws.files().filter((f) => f.endsWith('.parquet'))).toEqual([]);
  });
});

// ---------------------------------------------------------------------------------------
// gzip
// ---------------------------------------------------------------------------------------

describe('gzip', () => {
  it('.csv.gz and .json.gz decompress to the uncompressed bytes; the gzip header has no time', async () => {
    const ws = workspace();
    const mk = (id: string, type: string, compression: string) =>
      runOk(ws, crmConfig({ id, folderPath: id, format: { type, compression } }), id);
    const [csv, csvGz, json, jsonGz] = await Promise.all([
      mk('plain-csv', 'csv', 'none'),
      mk('gz-csv', 'csv', 'gzip'),
      mk('plain-json', 'json', 'none'),
      mk('gz-json', 'json', 'gzip'),
    ]);
    const pairs: [Run, Run, string][] = [
      [csv, csvGz, '.csv.gz'],
      [json, jsonGz, '.json.gz'],
    ];
    for (const [plain, zipped, ext] of pairs) {
      const gzFile = zipped.files[0]!.path;
      expect(gzFile.endsWith(`Acme_CRM_aud-vip_20261120_053000${ext}`)).toBe(true);
      const bytes = readFileSync(gzFile);
      expect([bytes[0], bytes[1], bytes[2]]).toEqual([0x1f, 0x8b, 8]);
      expect(bytes.readUInt32LE(4)).toBe(0); // MTIME
      expect(gunzipSync(bytes).equals(readFileSync(plain.files[0]!.path))).toBe(true);
      expect(zipped.files[0]!.rows).toBe(6);
      expect(zipped.files[0]!.bytes).toBe(bytes.length);
      expect(zipped.files[0]!.sha256).toBe(sha256(gzFile));
    }
  });
});

// ---------------------------------------------------------------------------------------
// Parts and manifests
// ---------------------------------------------------------------------------------------

interface Manifest {
  flowRunId: string;
  scheduledTime: string;
  audienceId: string;
  exportMode: string;
  snapshotId: string;
  exportResults: { sinkPath: string; name: string; size: number; rows: number; sha256: string }[];
  counts: Record<string, number>;
}

function manifestOf(ws: Workspace, run: Run, folder: string, dataflowId: string): Manifest {
  const file = path.join(ws.out, folder, `manifest-${dataflowId}-${run.runId}.json`);
  expect(existsSync(file), file).toBe(true);
  return JSON.parse(readFileSync(file, 'utf8')) as Manifest;
}

/** Asserts the manifest lists exactly these files with their true size, rows and hash. */
function expectManifestMatches(manifest: Manifest, folder: string, files: string[], rows: number[]): void {
  expect(manifest.exportResults.map((r) => r.name)).toEqual(files.map((f) => path.basename(f)));
  manifest.exportResults.forEach((r, i) => {
    expect(r.sinkPath).toBe(folder);
    expect(r.size).toBe(readFileSync(files[i]!).length);
    expect(r.sha256).toBe(sha256(files[i]!));
    expect(r.rows).toBe(rows[i]);
  });
}

describe('parts', () => {
  it('splits at maxRowsPerFile: name, name_2, name_3, header on each CSV part, rows in order, manifest matches', async () => {
    const ws = workspace();
    const [csv2, csv1, pq2, json4] = await Promise.all([
      runOk(
        ws,
        crmConfig({ id: 'parts-csv', folderPath: 'csv', format: { type: 'csv', maxRowsPerFile: 2 } }),
        'parts-csv',
      ),
      runOk(
        ws,
        crmConfig({
          id: 'parts-one',
          folderPath: 'one',
          format: { type: 'csv', compression: 'gzip', maxRowsPerFile: 1 },
        }),
        'parts-one',
      ),
      runOk(
        ws,
        crmConfig({
          id: 'parts-pq',
          folderPath: 'pq',
          format: { type: 'parquet', compression: 'gzip', maxRowsPerFile: 2 },
        }),
        'parts-pq',
      ),
      runOk(
        ws,
        crmConfig({ id: 'parts-json', folderPath: 'json', format: { type: 'json', maxRowsPerFile: 4 } }),
        'parts-json',
      ),
    ]);
    // An exact multiple gives no empty trailing part.
    const [csv3, pq6] = await Promise.all([
      runOk(
        ws,
        crmConfig({ id: 'parts-three', folderPath: 'three', format: { type: 'csv', maxRowsPerFile: 3 } }),
        'parts-three',
      ),
      runOk(
        ws,
        crmConfig({ id: 'parts-six', folderPath: 'six', format: { type: 'parquet', maxRowsPerFile: 6 } }),
        'parts-six',
      ),
    ]);
    const base = 'Acme_CRM_aud-vip_20261120_053000';
    const header = ['email', 'person_name_firstName', 'tier', 'points', 'status'];
    const emails = [
      'ann@example.com',
      'bob@example.com',
      'johndoe@example.com',
      'dan@example.com',
      'gail@example.com',
      'ivy@example.com',
    ];

    // CSV, 2 rows a part.
    const csvFiles = ws.files().filter((f) => f.startsWith('csv/') && !path.basename(f).startsWith('manifest-'));
    expect(csvFiles).toEqual([`csv/${base}.csv`, `csv/${base}_2.csv`, `csv/${base}_3.csv`]);
    expect(csv2.files.map((f) => path.relative(ws.out, f.path))).toEqual(csvFiles);
    const csvParts = csvFiles.map((f) => readCsv(path.join(ws.out, f)));
    for (const part of csvParts) {
      expect(part[0]).toEqual(header);
      expect(part).toHaveLength(3);
    }
    expect(csvParts.flatMap((p) => p.slice(1).map((r) => r[0]))).toEqual(emails);
    expect(csvParts[1]![2]![1]).toBe('Dan, "D"');
    expectManifestMatches(
      manifestOf(ws, csv2, 'csv', 'parts-csv'),
      'csv',
      csvFiles.map((f) => path.join(ws.out, f)),
      [2, 2, 2],
    );
    csv2.files.forEach((f) => {
      expect(f.rows).toBe(2);
      expect(f.sha256).toBe(sha256(f.path));
      expect(f.bytes).toBe(readFileSync(f.path).length);
    });

    // maxRowsPerFile 1 (gzip): six parts of one row each, header on each.
    const oneFiles = ws.files().filter((f) => f.startsWith('one/') && !path.basename(f).startsWith('manifest-'));
    expect(oneFiles).toEqual([`one/${base}.csv.gz`, ...[2, 3, 4, 5, 6].map((n) => `one/${base}_${n}.csv.gz`)].sort());
    const ordered = [`${base}.csv.gz`, ...[2, 3, 4, 5, 6].map((n) => `${base}_${n}.csv.gz`)];
    expect(csv1.files.map((f) => path.basename(f.path))).toEqual(ordered);
    const oneRows = ordered.map((n) => readCsv(path.join(ws.out, 'one', n)));
    for (const part of oneRows) expect(part[0]).toEqual(header);
    expect(oneRows.map((p) => p.slice(1).map((r) => r[0]))).toEqual(emails.map((e) => [e]));
    expectManifestMatches(
      manifestOf(ws, csv1, 'one', 'parts-one'),
      'one',
      ordered.map((n) => path.join(ws.out, 'one', n)),
      [1, 1, 1, 1, 1, 1],
    );

    // Parquet + gzip, 2 rows a part.
    const pqNames = [`${base}.gz.parquet`, `${base}_2.gz.parquet`, `${base}_3.gz.parquet`];
    expect(pq2.files.map((f) => path.basename(f.path))).toEqual(pqNames);
    expect(ws.files().filter((f) => f.startsWith('pq/') && f.endsWith('.parquet'))).toEqual(
      pqNames.map((n) => `pq/${n}`),
    );
    const pqParts = await Promise.all(pqNames.map((n) => readParquet(path.join(ws.out, 'pq', n))));
    expect(pqParts.map((p) => p.rows.length)).toEqual([2, 2, 2]);
    expect(pqParts.flatMap((p) => p.rows.map((r) => r['email']))).toEqual(emails);
    for (const p of pqParts) expect(p.codecs).toEqual(['GZIP']);
    expectManifestMatches(
      manifestOf(ws, pq2, 'pq', 'parts-pq'),
      'pq',
      pqNames.map((n) => path.join(ws.out, 'pq', n)),
      [2, 2, 2],
    );

    // JSON, 4 rows a part: 4 + 2.
    const jsonNames = [`${base}.json`, `${base}_2.json`];
    expect(json4.files.map((f) => path.basename(f.path))).toEqual(jsonNames);
    const jsonParts = jsonNames.map((n) => readJsonLines(path.join(ws.out, 'json', n)));
    expect(jsonParts.map((p) => p.length)).toEqual([4, 2]);
    expect(jsonParts.flat().map((r) => r['email'])).toEqual(emails);
    expectManifestMatches(
      manifestOf(ws, json4, 'json', 'parts-json'),
      'json',
      jsonNames.map((n) => path.join(ws.out, 'json', n)),
      [4, 2],
    );

    expect(csv3.files.map((f) => [path.basename(f.path), f.rows])).toEqual([
      [`${base}.csv`, 3],
      [`${base}_2.csv`, 3],
    ]);
    expect(ws.files('out/three').filter((f) => !f.startsWith('manifest-'))).toEqual([`${base}.csv`, `${base}_2.csv`]);
    expect(pq6.files.map((f) => [path.basename(f.path), f.rows])).toEqual([[`${base}.parquet`, 6]]);
    expect(ws.files('out/six').filter((f) => !f.startsWith('manifest-'))).toEqual([`${base}.parquet`]);

    // The manifest describes the run.
    const m = manifestOf(ws, csv2, 'csv', 'parts-csv');
    expect(m).toMatchObject({
      flowRunId: csv2.runId,
      scheduledTime: '2026-11-20T05:30:00.000Z',
      audienceId: 'aud-vip',
      exportMode: 'incremental',
      snapshotId: 'snap-20261120',
    });
    expect(m.counts['rowsWritten']).toBe(6);
  });
});

// ---------------------------------------------------------------------------------------
// Empty exports
// ---------------------------------------------------------------------------------------

describe('emptyExport', () => {
  it('write: header-only CSV, empty JSON, zero-row Parquet with the columns; skip: no data file, manifest still written', async () => {
    const ws = workspace();
    // Nobody is an active member of aud-vip here.
    addSnapshot(ws.snapshots, 'snap-empty', '2026-11-20T05:10:00Z', [
      {
        profileId: 'e-1',
        identityMap: { email: [{ id: 'x@example.com' }] },
        loyalty: { tier: 'gold' },
        segmentMembership: vip('exited', '2026-11-19T00:00:00Z'),
      },
      {
        profileId: 'e-2',
        identityMap: { email: [{ id: 'y@example.com' }] },
        loyalty: { tier: 'gold' },
        segmentMembership: { ups: {} },
      },
    ]);
    const mk = (id: string, format: Record<string, unknown>) =>
      runOk(ws, crmConfig({ id, folderPath: id, format }), id);
    const [csv, json, pq, skipCsv, skipPq] = await Promise.all([
      mk('empty-csv', { type: 'csv', emptyExport: 'write' }),
      mk('empty-json', { type: 'json' }), // write is the default
      mk('empty-pq', { type: 'parquet', emptyExport: 'write' }),
      mk('skip-csv', { type: 'csv', emptyExport: 'skip' }),
      mk('skip-pq', { type: 'parquet', compression: 'gzip', emptyExport: 'skip' }),
    ]);
    for (const run of [csv, json, pq, skipCsv, skipPq]) {
      expect(run.counts.rowsWritten).toBe(0);
      expect(run.snapshotId).toBe('snap-empty');
    }

    expect(csv.files).toHaveLength(1);
    expect(readText(csv.files[0]!.path)).toBe('email,person_name_firstName,tier,points,status\n');
    expect(csv.files[0]!.rows).toBe(0);

    expect(json.files).toHaveLength(1);
    expect(readFileSync(json.files[0]!.path).length).toBe(0);

    expect(pq.files).toHaveLength(1);
    const parquet = await readParquet(pq.files[0]!.path);
    expect(parquet.rows).toEqual([]);
    expect(parquet.columns.map((c) => c.name)).toEqual(['email', 'person_name_firstName', 'tier', 'points', 'status']);

    for (const [run, id] of [
      [skipCsv, 'skip-csv'],
      [skipPq, 'skip-pq'],
    ] as const) {
      expect(run.files).toEqual([]);
      expect(ws.files(`out/${id}`)).toEqual([`manifest-${id}-${run.runId}.json`]);
      const manifest = manifestOf(ws, run, id, id);
      expect(manifest.exportResults).toEqual([]);
      expect(manifest.flowRunId).toBe(run.runId);
      expect(manifest.counts['rowsWritten']).toBe(0);
    }
    for (const [run, id] of [
      [csv, 'empty-csv'],
      [json, 'empty-json'],
      [pq, 'empty-pq'],
    ] as const) {
      const manifest = manifestOf(ws, run, id, id);
      expect(manifest.exportResults).toHaveLength(1);
      expect(manifest.exportResults[0]!.rows).toBe(0);
    }
  });
});

// ---------------------------------------------------------------------------------------
// Determinism
// ---------------------------------------------------------------------------------------

describe('determinism', () => {
  it('same config and inputs in two fresh workspaces give byte-identical files and manifests', async () => {
    const formats = [
      { id: 'det-csv', format: { type: 'csv' } },
      { id: 'det-csv-gz', format: { type: 'csv', compression: 'gzip' } },
      { id: 'det-json-gz', format: { type: 'json', compression: 'gzip' } },
      { id: 'det-pq', format: { type: 'parquet' } },
      { id: 'det-pq-gz', format: { type: 'parquet', compression: 'gzip', maxRowsPerFile: 4 } },
    ];
    const produce = async () => {
      const ws = workspace();
      const runs = await Promise.all(formats.map((f) => runOk(ws, crmConfig({ ...f, folderPath: f.id }), f.id)));
      return { ws, runs };
    };
    const [one, two] = await Promise.all([produce(), produce()]);
    expect(one.ws.files()).toEqual(two.ws.files());
    expect(one.ws.files().length).toBe(formats.length * 2 + 1); // one data file each (two for det-pq-gz) + manifests
    for (const rel of one.ws.files()) {
      const a = readFileSync(path.join(one.ws.out, rel));
      const b = readFileSync(path.join(two.ws.out, rel));
      expect(sha256(path.join(one.ws.out, rel)), rel).toBe(sha256(path.join(two.ws.out, rel)));
      expect(a.equals(b), rel).toBe(true);
    }
    one.runs.forEach((run, i) => {
      expect(run.runId).toBe(two.runs[i]!.runId);
      expect(run.files.map((f) => f.sha256)).toEqual(two.runs[i]!.files.map((f) => f.sha256));
    });
  });
});
