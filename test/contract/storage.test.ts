// One contract for every StorageBackend: local disk, in memory, and S3 (s3rver on
// 127.0.0.1 behind the conditional-write proxy). Whatever audex's run and state code
// relies on is asserted here once, for all of them.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { S3Client } from '@aws-sdk/client-s3';
import type { LockableStorage } from '../../src/storage/backend.js';
import { LocalStorage } from '../../src/storage/local.js';
import { MemoryStorage } from '../../src/storage/memory.js';
import { S3Storage } from '../../src/storage/s3.js';
import { useS3Server, type S3Test } from '../helpers/s3-server.js';

let s3: S3Test;

const s3Server = useS3Server(['contract']);
let proxyClient: S3Client;
const temp = mkdtempSync(path.join(tmpdir(), 'audex-contract-'));
let counter = 0;

beforeAll(async () => {
  s3 = await s3Server();
  proxyClient = new S3Client({
    region: 'us-east-1',
    endpoint: s3.endpoint,
    forcePathStyle: true,
    credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
});

afterAll(async () => {
  proxyClient?.destroy();
  rmSync(temp, { recursive: true, force: true });
});

const backends: [string, () => LockableStorage][] = [
  ['local', () => new LocalStorage(path.join(temp, `local-${++counter}`))],
  ['memory', () => new MemoryStorage(`memory://contract-${++counter}`, path.join(temp, `staging-${counter}`))],
  // A small page size makes every listing below page through continuation tokens.
  [
    's3',
    () =>
      new S3Storage(
        { bucket: 'contract', prefix: `root-${++counter}/sub` },
        {
          configPath: 'test',
          s3: {},
          client: proxyClient,
          pageSize: 3,
          stagingDir: path.join(temp, `staging-${counter}`),
        },
      ),
  ],
];

const sha = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

// Readers racing a lock's creation must see no file or the whole of it, never an empty or
// cut one (a run takes that for a damaged lock, exit 3). Not asserted for s3rver: it writes
// an object's file as the PUT streams in, where S3 itself makes the object appear whole.
describe.each(backends.filter(([name]) => name !== 's3'))('%s storage, racing readers', (_name, make) => {
  it('a reader racing createExclusive sees nothing or the whole content, never a part of it', async () => {
    const store = make();
    const text = `${JSON.stringify({ pid: 1, host: 'h', filler: 'x'.repeat(4000) })}\n`;
    const seen = new Set<string>();
    for (let i = 0; i < 400; i++) {
      const key = `race/lock-${i}.json`;
      let done = false;
      const created = store.createExclusive(key, text).finally(() => (done = true));
      const reader = async () => {
        while (!done) {
          const read = await store.readText(key);
          if (read !== null) seen.add(read === text ? 'whole' : `partial (${read.length} chars)`);
        }
      };
      await Promise.all([created, ...Array.from({ length: 6 }, reader)]);
      expect(await created).toBe(true);
      expect(await store.readText(key)).toBe(text);
    }
    expect([...seen].filter((s) => s !== 'whole')).toEqual([]);
  });
});

describe.each(backends)('%s storage', (_name, make) => {
  const scratch = () => mkdtempSync(path.join(temp, 'scratch-'));

  it('reads a missing key as null', async () => {
    const store = make();
    expect(await store.readText('nope.json')).toBeNull();
    expect(await store.readVersioned('nope.json')).toBeNull();
  });

  it('writeText creates and replaces', async () => {
    const store = make();
    await store.writeText('a/b.json', 'one');
    expect(await store.readText('a/b.json')).toBe('one');
    await store.writeText('a/b.json', 'two ✓');
    expect(await store.readText('a/b.json')).toBe('two ✓');
  });

  it('createExclusive creates once, then refuses and keeps the first content', async () => {
    const store = make();
    expect(await store.createExclusive('lock.json', 'first')).toBe(true);
    expect(await store.createExclusive('lock.json', 'second')).toBe(false);
    expect(await store.readText('lock.json')).toBe('first');
  });

  it('replaceIfVersion replaces only the version it was given', async () => {
    const store = make();
    await store.writeText('lease.json', 'v1');
    const v1 = (await store.readVersioned('lease.json'))!;
    expect(v1.text).toBe('v1');
    const v2 = await store.replaceIfVersion('lease.json', 'v2', v1.version);
    expect(v2).not.toBeNull();
    expect(await store.replaceIfVersion('lease.json', 'v3', v1.version)).toBeNull();
    expect(await store.readText('lease.json')).toBe('v2');
    expect((await store.readVersioned('lease.json'))!.version).toBe(v2);
    expect(await store.replaceIfVersion('gone.json', 'x', v2!)).toBeNull();
    expect(await store.readText('gone.json')).toBeNull();
  });

  it('delete removes and is idempotent', async () => {
    const store = make();
    await store.writeText('d/x.json', 'x');
    await store.delete('d/x.json');
    expect(await store.readText('d/x.json')).toBeNull();
    await store.delete('d/x.json');
    await store.delete('never/was.json');
  });

  it('list is recursive, sorted, scoped to the folder, and pages to the end', async () => {
    const store = make();
    const keys = Array.from({ length: 14 }, (_, i) => `h/${String(i % 3)}/k${String(i).padStart(2, '0')}.json`);
    await Promise.all(keys.map((k) => store.writeText(k, k)));
    await store.writeText('h2/other.json', 'not in h');
    await store.writeText('top.json', 'top');
    expect(await store.list('h')).toEqual([...keys].sort());
    expect(await store.list('h/')).toEqual([...keys].sort());
    expect(await store.list('h/1')).toEqual(keys.filter((k) => k.startsWith('h/1/')).sort());
    expect(await store.list('')).toEqual([...keys, 'h2/other.json', 'top.json'].sort());
    expect(await store.list('missing')).toEqual([]);
  });

  it('listSizes gives the size of every object under a prefix', async () => {
    const store = make();
    await store.writeText('s/a.json', 'abc');
    await store.writeText('s/b/c.json', 'hello, world');
    await store.writeText('t.json', 'x');
    expect(await store.listSizes('s')).toEqual(
      new Map([
        ['s/a.json', 3],
        ['s/b/c.json', 12],
      ]),
    );
    expect(await store.listSizes('missing')).toEqual(new Map());
  });

  it('listFolders gives the immediate child folders, sorted', async () => {
    const store = make();
    // (s3rver omits a folder that holds only subfolders from a delimited listing, unlike S3,
    // so every folder here holds a file of its own.)
    for (const k of [
      'snap-b/_snapshot.json',
      'snap-a/profiles/p1.ndjson',
      'snap-a/_snapshot.json',
      'snap-c/f.json',
      'snap-c/x/f.json',
      'snap-c/x/y/z.json',
    ])
      await store.writeText(k, 'x');
    for (let i = 0; i < 5; i++) await store.writeText(`loose${i}.json`, 'x');
    for (let i = 0; i < 5; i++) await store.writeText(`snap-d${i}/f.json`, 'x');
    expect(await store.listFolders('')).toEqual([
      'snap-a',
      'snap-b',
      'snap-c',
      'snap-d0',
      'snap-d1',
      'snap-d2',
      'snap-d3',
      'snap-d4',
    ]);
    expect(await store.listFolders('snap-a')).toEqual(['profiles']);
    expect(await store.listFolders('snap-c/x')).toEqual(['y']);
  });

  it('a staged file appears under its key only when published, with its exact bytes', async () => {
    const store = make();
    const bytes = randomBytes(300_000);
    const staged = await store.stage('out/crm/file.csv.gz');
    writeFileSync(staged, bytes);
    expect(await store.readText('out/crm/file.csv.gz')).toBeNull();
    expect(await store.list('out')).toEqual([]);
    await store.publish(staged, 'out/crm/file.csv.gz');
    expect(existsSync(staged)).toBe(false);
    expect(await store.list('out')).toEqual(['out/crm/file.csv.gz']);
    const fetched = await store.fetch('out/crm/file.csv.gz', scratch());
    expect(sha(readFileSync(fetched))).toBe(sha(bytes));
  });

  it('publish replaces an existing object', async () => {
    const store = make();
    await store.writeText('r/file.csv', 'old');
    const staged = await store.stage('r/file.csv');
    writeFileSync(staged, 'new');
    await store.publish(staged, 'r/file.csv');
    expect(await store.readText('r/file.csv')).toBe('new');
  });

  it('removeStaged removes only the named runs’ staged files in that folder, never published objects', async () => {
    const store = make();
    await store.writeText('rs/run1.csv', 'published');
    const mine = await store.stage('rs/run1_2.csv');
    writeFileSync(mine, 'partial');
    const other = await store.stage('rs/other.csv');
    writeFileSync(other, 'someone else');
    const elsewhere = await store.stage('rs2/run1.csv');
    writeFileSync(elsewhere, 'another folder');
    expect(await store.removeStaged('rs', ['run1'])).toBe(1);
    expect(existsSync(mine)).toBe(false);
    expect(await store.readText('rs/run1.csv')).toBe('published');
    expect(await store.readText('rs/run1_2.csv')).toBeNull();
    await store.publish(other, 'rs/other.csv');
    await store.publish(elsewhere, 'rs2/run1.csv');
    expect(await store.readText('rs/other.csv')).toBe('someone else');
    expect(await store.readText('rs2/run1.csv')).toBe('another folder');
    expect(await store.removeStaged('rs', ['run1'])).toBe(0);
    expect(await store.removeStaged('nowhere', ['run1'])).toBe(0);
  });

  it('fetch returns a local path with the object’s bytes', async () => {
    const store = make();
    await store.writeText('f/part-00000.ndjson', '{"profileId":"p-1"}\n');
    const file = await store.fetch('f/part-00000.ndjson', scratch());
    expect(readFileSync(file, 'utf8')).toBe('{"profileId":"p-1"}\n');
    await expect(store.fetch('f/missing.ndjson', scratch())).rejects.toThrow(/missing\.ndjson/);
  });

  it('describe names the key under the root', () => {
    const store = make();
    expect(store.describe('x/y.json').startsWith(store.root.replace(/\/$/, ''))).toBe(true);
    expect(store.describe('x/y.json').endsWith('x/y.json')).toBe(true);
  });
});
