// Encrypted files (README "Encrypted files") through the real CLI, checked with the real `gpg`: every data
// file is `<name><ext>.gpg`, `gpg --decrypt` with the recipient's private key gives back
// the bytes of the same run without encryption, and the plain manifest lists the encrypted
// files (name, size, sha256) with the plain row counts. A key audex cannot use is exit 2
// before anything is written; a killed encrypted run, run again, publishes each part once
// under its final name with a manifest that matches the published bytes.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { crmConfig, listFiles, trackWorkspaces, type CliResult, type Workspace } from '../helpers/harness.js';
import { keyMaterialSample, startGpg, type Gpg, type TestKey } from '../helpers/gpg.js';
import { isStagedName } from '../helpers/reliability.js';
import { useS3Server, type S3Test } from '../helpers/s3-server.js';

const AT = '2026-11-21T06:00:00Z';
const KEY_ENV = 'AUDEX_TEST_RECIPIENT_KEY';

const workspace = trackWorkspaces();
let gpg: Gpg;

beforeAll(() => {
  gpg = startGpg();
});
afterAll(() => gpg?.stop());

const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');
const isManifest = (rel: string) => path.posix.basename(rel).startsWith('manifest-');
const dataFiles = (ws: Workspace) => ws.files().filter((f) => !isManifest(f));

type Format = Record<string, unknown>;
type KeySource = { file: string } | { env: string };

/** The CRM dataflow with this format, encrypted for `key` when given. */
function flow(format: Format, key?: KeySource): Record<string, unknown> {
  return crmConfig({ format: { ...format, ...(key ? { encryption: { type: 'pgp', publicKey: key } } : {}) } });
}

async function runOk(ws: Workspace, config: string, env: Record<string, string> = {}): Promise<CliResult> {
  const result = await ws.audex(['run', '--config', config, '--at', AT, '--json'], env);
  expect(result.code, result.stderr).toBe(0);
  expect(result.json().runs.map((r) => r.status)).toEqual(['success']);
  return result;
}

/** The same dataflow without encryption: the reference bytes. */
async function plainRun(format: Format): Promise<Workspace> {
  const ws = workspace();
  await runOk(ws, ws.config(flow(format)));
  return ws;
}

interface ManifestFile {
  name: string;
  size: number;
  rows: number;
  sha256: string;
}
const readManifest = (ws: Workspace) => {
  const [name, ...more] = ws.files().filter(isManifest);
  expect(more).toEqual([]);
  return {
    name: name!,
    body: JSON.parse(readFileSync(path.join(ws.out, name!), 'utf8')) as {
      exportResults: ManifestFile[];
      counts: unknown;
    },
  };
};

/** What a receiving team checks: names, decrypted bytes, the manifest and the --json summary. */
function expectEncryptedCopyOf(plain: Workspace, encrypted: Workspace, result: CliResult): void {
  const plainFiles = dataFiles(plain);
  expect(plainFiles.length).toBeGreaterThan(0);
  expect(dataFiles(encrypted)).toEqual(plainFiles.map((f) => `${f}.gpg`));
  for (const f of plainFiles) {
    const published = readFileSync(path.join(encrypted.out, `${f}.gpg`));
    const original = readFileSync(path.join(plain.out, f));
    expect(published.equals(original)).toBe(false);
    expect(gpg.decrypt(path.join(encrypted.out, `${f}.gpg`)).equals(original), `${f}.gpg decrypts to ${f}`).toBe(true);
  }
  const reference = readManifest(plain);
  const manifest = readManifest(encrypted);
  expect(manifest.name).toBe(reference.name);
  expect(manifest.body.counts).toEqual(reference.body.counts);
  expect(manifest.body.exportResults.map((r) => r.name)).toEqual(
    reference.body.exportResults.map((r) => `${r.name}.gpg`),
  );
  expect(manifest.body.exportResults.map((r) => r.rows)).toEqual(reference.body.exportResults.map((r) => r.rows));
  const folder = path.posix.dirname(plainFiles[0]!);
  for (const entry of manifest.body.exportResults) {
    const bytes = readFileSync(path.join(encrypted.out, folder, entry.name));
    expect({ size: entry.size, sha256: entry.sha256 }).toEqual({ size: bytes.length, sha256: sha256(bytes) });
  }
  const [run] = result.json().runs;
  expect(
    run!.files.map((f) => ({ name: path.basename(f.path), bytes: f.bytes, sha256: f.sha256, rows: f.rows })),
  ).toEqual(manifest.body.exportResults.map((r) => ({ name: r.name, bytes: r.size, sha256: r.sha256, rows: r.rows })));
}

/** Nothing the run printed or stored (files, state, history) holds the key. */
function expectNoKeyMaterial(ws: Workspace, key: TestKey, ...outputs: CliResult[]): void {
  const sample = keyMaterialSample(key.publicKey);
  for (const rel of listFiles(ws.out)) {
    const text = readFileSync(path.join(ws.out, rel)).toString('latin1');
    expect(text.includes(sample) || text.includes('BEGIN PGP'), rel).toBe(false);
  }
  for (const o of outputs) expect(`${o.stdout}${o.stderr}`).not.toContain(sample);
}

describe('encrypted exports decrypt with gpg to the unencrypted run, byte for byte', () => {
  const cases: { name: string; format: Format; key: 'rsa' | 'ecc'; source: 'file' | 'binary file' | 'env' }[] = [
    { name: 'CSV gzip, RSA key from a file', format: { type: 'csv', compression: 'gzip' }, key: 'rsa', source: 'file' },
    {
      name: 'JSON, ECC (Curve25519) key from an environment variable',
      format: { type: 'json', compression: 'none' },
      key: 'ecc',
      source: 'env',
    },
    {
      name: 'Parquet gzip, ECC key from a binary (not armored) file',
      format: { type: 'parquet', compression: 'gzip' },
      key: 'ecc',
      source: 'binary file',
    },
    {
      name: 'CSV gzip in three parts (maxRowsPerFile 3), RSA key',
      format: { type: 'csv', compression: 'gzip', maxRowsPerFile: 3 },
      key: 'rsa',
      source: 'file',
    },
  ];
  it.each(cases)('$name', async ({ format, key, source }) => {
    const plain = await plainRun(format);
    const ws = workspace();
    const recipient = gpg[key];
    const env: Record<string, string> = source === 'env' ? { [KEY_ENV]: recipient.publicKey } : {};
    if (source !== 'env')
      gpg.writeKey(ws.dir, 'recipient.asc', source === 'file' ? recipient.publicKey : recipient.publicKeyBinary);
    const result = await runOk(
      ws,
      ws.config(flow(format, source === 'env' ? { env: KEY_ENV } : { file: 'recipient.asc' })),
      env,
    );
    expectEncryptedCopyOf(plain, ws, result);
    if (format['maxRowsPerFile'] === 3)
      expect(dataFiles(ws).map((f) => path.basename(f))).toEqual([
        'Acme_CRM_aud-vip_20261121_053000.csv.gz.gpg',
        'Acme_CRM_aud-vip_20261121_053000_2.csv.gz.gpg',
        'Acme_CRM_aud-vip_20261121_053000_3.csv.gz.gpg',
      ]);
    if (format['type'] === 'parquet') expect(dataFiles(ws)[0]).toMatch(/\.gz\.parquet\.gpg$/);
    expect(result.stderr).toContain(`OpenPGP key ${recipient.fingerprint}`);
    expectNoKeyMaterial(ws, recipient, result);
  });

  it('plan shows the encrypted names; nothing is written', async () => {
    const ws = workspace();
    gpg.writeKey(ws.dir, 'recipient.asc', gpg.ecc.publicKey);
    const result = await ws.audex([
      'plan',
      '--config',
      ws.config(flow({ type: 'csv', compression: 'gzip' }, { file: 'recipient.asc' })),
      '--at',
      AT,
    ]);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toMatch(/Acme_CRM_aud-vip_20261121_053000\.csv\.gz\.gpg/);
    expect(ws.files('out', true)).toEqual([]);
  });
});

describe('a key audex cannot use is exit 2, naming the key source, before anything is read or written', () => {
  const cases: {
    name: string;
    key: (ws: Workspace) => KeySource;
    at?: string;
    message: (ws: Workspace) => RegExp;
    leak?: () => TestKey;
  }[] = [
    {
      name: 'a key file that cannot be read',
      key: () => ({ file: 'keys/missing.asc' }),
      message: (ws) =>
        new RegExp(
          `format\\.encryption\\.publicKey\\.file: ${ws.dir}/keys/missing\\.asc: cannot read the public key: no such file`,
        ),
    },
    {
      name: 'a file that is not an OpenPGP key',
      key: (ws) => {
        writeFileSync(path.join(ws.dir, 'notes.asc'), 'please encrypt for me\n');
        return { file: 'notes.asc' };
      },
      message: (ws) =>
        new RegExp(`publicKey\\.file: ${ws.dir}/notes\\.asc: not an OpenPGP public key .*gpg --armor --export`),
    },
    {
      name: 'a private key instead of the public one',
      key: (ws) => ({ file: path.basename(gpg.writeKey(ws.dir, 'secret.asc', gpg.rsa.privateKey)) }),
      message: (ws) =>
        new RegExp(
          `publicKey\\.file: ${ws.dir}/secret\\.asc: this is a private \\(secret\\) key; give the recipient's public key`,
        ),
      leak: () => ({ ...gpg.rsa, publicKey: gpg.rsa.privateKey }),
    },
    {
      name: 'an expired key',
      key: (ws) => ({ file: path.basename(gpg.writeKey(ws.dir, 'old.asc', gpg.expired.publicKey)) }),
      message: () =>
        new RegExp(
          `old\\.asc: key ${gpg.expired.fingerprint} expired at 2025-01-02T00:00:00\\.000Z \\(checked at ${AT.replace('Z', '.000Z')}`,
        ),
    },
    {
      name: 'a key that cannot encrypt (signing only)',
      key: (ws) => ({ file: path.basename(gpg.writeKey(ws.dir, 'signer.asc', gpg.signOnly.publicKey)) }),
      message: () =>
        new RegExp(
          `signer\\.asc: key ${gpg.signOnly.fingerprint} has no subkey that can encrypt .*gpg --quick-add-key ${gpg.signOnly.fingerprint} cv25519 encr`,
        ),
    },
    {
      name: 'a key created after the run time (--at)',
      key: (ws) => ({ file: path.basename(gpg.writeKey(ws.dir, 'new.asc', gpg.rsa.publicKey)) }),
      at: '2025-12-31T00:00:00Z',
      message: () =>
        /new\.asc: key [0-9A-F]{40} was created at 2026-01-01T00:00:00\.000Z, after the time it is checked at \(2025-12-31T00:00:00\.000Z/,
    },
    {
      name: 'an environment variable that is not set',
      key: () => ({ env: 'AUDEX_TEST_UNSET_KEY' }),
      message: () =>
        /format\.encryption\.publicKey\.env: AUDEX_TEST_UNSET_KEY: the environment variable AUDEX_TEST_UNSET_KEY is not set or empty/,
    },
  ];
  it.each(cases)('$name', async ({ key, at, message, leak }) => {
    const ws = workspace();
    const result = await ws.audex([
      'run',
      '--config',
      ws.config(flow({ type: 'csv', compression: 'gzip' }, key(ws))),
      '--at',
      at ?? AT,
    ]);
    expect(result.code, result.stderr).toBe(2);
    expect(result.stderr).toMatch(message(ws));
    expect(result.stderr).toContain(`invalid config ${ws.dir}/dataflow.yaml`);
    expect(ws.files('out', true), 'not even the lock or a state record').toEqual([]);
    if (leak) expect(`${result.stdout}${result.stderr}`).not.toContain(keyMaterialSample(leak().publicKey));
  });

  it('validate and plan refuse it too; a publicKey with both file and env is a schema error', async () => {
    const ws = workspace();
    gpg.writeKey(ws.dir, 'signer.asc', gpg.signOnly.publicKey);
    const config = ws.config(flow({ type: 'csv', compression: 'gzip' }, { file: 'signer.asc' }));
    for (const args of [
      ['validate', '--config', config],
      ['plan', '--config', config, '--at', AT],
    ]) {
      const result = await ws.audex(args);
      expect(result.code, args[0]).toBe(2);
      expect(result.stderr).toMatch(/signer\.asc: key [0-9A-F]{40} has no subkey that can encrypt/);
    }
    const both = await ws.audex([
      'validate',
      '--config',
      ws.config(flow({ type: 'csv' }, { file: 'signer.asc', env: KEY_ENV } as KeySource), 'both.yaml'),
    ]);
    expect(both.code).toBe(2);
    expect(both.stderr).toMatch(
      /format\.encryption\.publicKey: give exactly one of \{ file: PATH \} or \{ env: NAME \}/,
    );
    expect(ws.files('out', true)).toEqual([]);
  });
});

describe('a killed encrypted run, run again', () => {
  const format = { type: 'csv', compression: 'gzip', maxRowsPerFile: 3 };
  let reference: Workspace;
  beforeAll(async () => {
    reference = await plainRun(format);
  });

  const published = (ws: Workspace) =>
    Object.fromEntries(
      listFiles(ws.out)
        .filter((f) => !f.startsWith('_audex/'))
        .map((f) => [f, sha256(readFileSync(path.join(ws.out, f)))]),
    );

  it.each(['after-part:2', 'after-manifest'])(
    'killed at %s: each part published once under its final name, the manifest matches the published bytes',
    async (point) => {
      const ws = workspace();
      gpg.writeKey(ws.dir, 'recipient.asc', gpg.ecc.publicKey);
      const config = ws.config(flow(format, { file: 'recipient.asc' }));
      const tmp = path.join(ws.dir, 'tmp');
      mkdirSync(tmp);
      const killed = await ws.audex(['run', '--config', config, '--at', AT, '--json'], {
        AUDEX_CRASH_AT: point,
        TMPDIR: tmp,
      });
      expect(killed.code, killed.stderr).toBe(null);
      const before = published(ws);
      expect(Object.keys(before).filter((f) => f.endsWith('.gpg')).length).toBe(point === 'after-part:2' ? 2 : 3);
      expect(
        Object.keys(before).filter((f) => !f.endsWith('.gpg') && !isManifest(f)),
        'plain data never reaches the destination',
      ).toEqual([]);

      const rerun = await runOk(ws, config, { TMPDIR: tmp });
      expectEncryptedCopyOf(reference, ws, rerun);
      expect(listFiles(ws.out).filter(isStagedName), 'no staged file is left').toEqual([]);
      expect(listFiles(tmp), "the killed run's plain parts are swept with its scratch folder").toEqual([]);
      // The retry encrypted again (OpenPGP is randomised): the manifest describes the new bytes.
      const after = published(ws);
      for (const name of Object.keys(before).filter((f) => f.endsWith('.gpg')))
        expect(after[name]).not.toBe(before[name]);
    },
  );

  it('a retry with fewer parts removes the extra encrypted parts of the killed attempt', async () => {
    const ws = workspace();
    gpg.writeKey(ws.dir, 'recipient.asc', gpg.rsa.publicKey);
    const killed = await ws.audex(
      ['run', '--config', ws.config(flow({ ...format, maxRowsPerFile: 2 }, { file: 'recipient.asc' })), '--at', AT],
      { AUDEX_CRASH_AT: 'after-data' },
    );
    expect(killed.code).toBe(null);
    expect(dataFiles(ws).length).toBe(4);
    const rerun = await runOk(ws, ws.config(flow(format, { file: 'recipient.asc' })));
    expectEncryptedCopyOf(reference, ws, rerun);
  });
});

describe('an encrypted export to S3', () => {
  let s3: S3Test;
  const s3Server = useS3Server(['exports']);
  beforeAll(async () => {
    s3 = await s3Server();
  });

  it('the objects decrypt with gpg to the unencrypted local run; the manifest on S3 lists their sha256', async () => {
    const format = { type: 'parquet', compression: 'gzip', maxRowsPerFile: 4 };
    const plain = await plainRun(format);
    const ws = workspace();
    gpg.writeKey(ws.dir, 'recipient.asc', gpg.ecc.publicKey);
    const tmp = path.join(ws.dir, 'tmp');
    mkdirSync(tmp);
    const config = ws.config({
      ...flow(format, { file: 'recipient.asc' }),
      destination: {
        path: 's3://exports/enc',
        s3: { endpoint: s3.endpoint, forcePathStyle: true, region: 'us-east-1' },
      },
    });
    const result = await ws.audex(['run', '--config', config, '--at', AT, '--json'], { ...s3.env(), TMPDIR: tmp });
    expect(result.code, result.stderr).toBe(0);
    expect(readdirSync(tmp), 'plain parts and staged files are gone with the run').toEqual([]);

    const keys = (await s3.listKeys('exports', 'enc/')).filter((k) => !k.includes('/_audex/'));
    const plainFiles = dataFiles(plain);
    expect(plainFiles.length).toBe(2);
    expect(keys.filter((k) => !isManifest(k)).sort()).toEqual(plainFiles.map((f) => `enc/${f}.gpg`).sort());
    const download = path.join(ws.dir, 'download');
    mkdirSync(download);
    const manifestKey = keys.find(isManifest)!;
    const manifest = JSON.parse((await s3.getBytes('exports', manifestKey))!.toString('utf8')) as {
      exportResults: ManifestFile[];
    };
    for (const f of plainFiles) {
      const bytes = (await s3.getBytes('exports', `enc/${f}.gpg`))!;
      const local = path.join(download, `${path.basename(f)}.gpg`);
      writeFileSync(local, bytes);
      expect(gpg.decrypt(local).equals(readFileSync(path.join(plain.out, f)))).toBe(true);
      const entry = manifest.exportResults.find((r) => r.name === `${path.basename(f)}.gpg`)!;
      expect({ size: entry.size, sha256: entry.sha256 }).toEqual({ size: statSync(local).size, sha256: sha256(bytes) });
    }
  });
});
