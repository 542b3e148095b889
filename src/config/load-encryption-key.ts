// Reads and checks the OpenPGP recipient key of `format.encryption` (README "Encrypted files") before a
// command reads or writes anything: a key that cannot be read, is a private key, is not
// valid at the invocation's time (expired, revoked, created later) or has no subkey that
// can encrypt is a config error (exit 2) naming the key source. Messages name the source
// and the key's fingerprint, never the key's content.
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { PublicKey } from 'openpgp';
import { ConfigError } from '../errors.js';
import type { PartEncryption } from '../writers/encrypt-part.js';
import type { LoadedConfig } from './load.js';

/** What the key check reads of a loaded config (audience and dataset dataflows alike). */
export type EncryptingConfig = Pick<LoadedConfig, 'file' | 'dir'> & {
  dataflow: { format: Pick<LoadedConfig['dataflow']['format'], 'encryption'> };
};

const EXPORT_HINT = "export the recipient's public key with `gpg --armor --export KEY-ID`";

/**
 * The checked key, or undefined when the dataflow does not encrypt. `at` is the time the
 * key must be valid at: the invocation's `--at`, else now (the same date every encrypted
 * file of the invocation carries).
 */
export async function loadEncryptionKey(
  config: EncryptingConfig,
  at: Date,
  env: NodeJS.ProcessEnv = process.env,
): Promise<PartEncryption | undefined> {
  const publicKey = config.dataflow.format.encryption?.publicKey;
  if (!publicKey) return undefined;
  let source = 'format.encryption.publicKey';
  const fail = (problem: string): never => {
    throw new ConfigError([`${source}: ${problem}`], config.file);
  };

  let data: Buffer;
  if (publicKey.file !== undefined) {
    const file = path.resolve(config.dir, publicKey.file);
    source = `format.encryption.publicKey.file: ${file}`;
    try {
      data = await readFile(file);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      const why =
        code === 'ENOENT'
          ? 'no such file'
          : code === 'EACCES'
            ? 'permission denied'
            : code === 'EISDIR'
              ? 'is a folder, not a key file'
              : (error as Error).message;
      return fail(
        `cannot read the public key: ${why}; ${EXPORT_HINT} into that file (paths are relative to the config)`,
      );
    }
  } else {
    const name = publicKey.env ?? '';
    source = `format.encryption.publicKey.env: ${name}`;
    const value = env[name];
    if (value === undefined || value.trim() === '')
      return fail(
        `the environment variable ${name} is not set or empty; set it to the armored public key (${EXPORT_HINT})`,
      );
    data = Buffer.from(value, 'utf8');
  }

  const openpgp = await import('openpgp');
  let keys: PublicKey[];
  try {
    const text = data.toString('utf8');
    keys = text.includes('-----BEGIN PGP')
      ? await openpgp.readKeys({ armoredKeys: text })
      : await openpgp.readKeys({ binaryKeys: new Uint8Array(data) });
  } catch (error) {
    // openpgp's parse messages describe the format problem, never the content.
    return fail(`not an OpenPGP public key (${(error as Error).message.split('\n')[0]}); ${EXPORT_HINT}`);
  }
  if (keys.some((k) => k.isPrivate())) {
    return fail(
      "this is a private (secret) key; give the recipient's public key instead (`gpg --armor --export KEY-ID`): the private key stays with the recipient",
    );
  }
  const key = keys[0];
  if (!key || keys.length !== 1)
    return fail(`holds ${keys.length} keys; audex encrypts for one recipient: export only that recipient's key`);

  const fingerprint = key.getFingerprint().toUpperCase();
  const when = at.toISOString();
  const created = key.getCreationTime();
  if (created > at) {
    return fail(
      `key ${fingerprint} was created at ${created.toISOString()}, after the time it is checked at (${when}: the run's --at, else now); a run dated before the key existed cannot use it: replay with the key that was valid then, or without --at`,
    );
  }
  try {
    await key.verifyPrimaryKey(at);
  } catch (error) {
    const expires = await key.getExpirationTime().catch(() => null);
    if (expires instanceof Date && expires <= at) {
      return fail(
        `key ${fingerprint} expired at ${expires.toISOString()} (checked at ${when}: the run's --at, else now); ask the recipient for a key with a later expiry (\`gpg --quick-set-expire\`) and export it again`,
      );
    }
    return fail(
      `key ${fingerprint} is not valid at ${when} (${(error as Error).message}); ask the recipient for a valid public key`,
    );
  }
  try {
    await key.getEncryptionKey(undefined, at);
  } catch {
    return fail(
      `key ${fingerprint} has no subkey that can encrypt at ${when} (a signing-only key, or its encryption subkey expired or was revoked); ` +
        `the recipient adds one (\`gpg --quick-add-key ${fingerprint} cv25519 encr\`) and exports the public key again`,
    );
  }
  return { key, date: at, source, fingerprint };
}
