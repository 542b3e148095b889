// OpenPGP encryption of one finished data file (README "Encrypted files"): the compressed part, as written,
// is read as a stream, encrypted for the dataflow's recipient and written to another file,
// chunk by chunk, so no file is ever held in memory whole. The result is a standard binary
// OpenPGP message (`gpg --decrypt` gives back the exact input). It is randomised (a fresh
// session key each time), so a retried run publishes other bytes with the same content;
// the manifest describes the bytes actually published.
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import { Readable, Transform } from 'node:stream';
import type { ReadableStream as NodeReadableStream } from 'node:stream/web';
import { pipeline } from 'node:stream/promises';
import type { PublicKey } from 'openpgp';
import type { WrittenPart } from './write-parts.js';

/** An encrypted part is a binary OpenPGP message, whatever its format. */
export const ENCRYPTED_CONTENT_TYPE = 'application/octet-stream';

export interface PartEncryption {
  /** The recipient's public key, checked by loadEncryptionKey (config/load-encryption-key.ts). */
  key: PublicKey;
  /** The time the key was checked at and every message is dated with (the invocation's `--at` or now). */
  date: Date;
  /** Where the key came from, for messages: `format.encryption.publicKey.file: /abs/key.asc`. */
  source: string;
  /** The key's fingerprint, for messages. */
  fingerprint: string;
}

/**
 * Encrypts the file at `plainPath` into `encryptedPath` (created or replaced) and returns
 * the encrypted file's size and sha256, computed while it is written. The plain file is
 * left in place: the caller removes it. `name` is how the file is shown in messages (its
 * destination key; default the plain path).
 */
export async function encryptPart(
  encryption: PartEncryption,
  plainPath: string,
  encryptedPath: string,
  name = plainPath,
): Promise<{ bytes: number; sha256: string }> {
  const openpgp = await import('openpgp');
  const hash = createHash('sha256');
  let bytes = 0;
  const measure = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      hash.update(chunk);
      bytes += chunk.length;
      done(null, chunk);
    },
  });
  try {
    const plain = Readable.toWeb(createReadStream(plainPath)) as unknown as ReadableStream<Uint8Array>;
    const message = await openpgp.createMessage({ binary: plain });
    const encrypted = await openpgp.encrypt({
      message,
      encryptionKeys: encryption.key,
      format: 'binary',
      date: encryption.date,
    });
    await pipeline(
      Readable.fromWeb(encrypted as unknown as NodeReadableStream<Uint8Array>),
      measure,
      createWriteStream(encryptedPath),
    );
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new Error(
      `cannot encrypt ${name} for OpenPGP key ${encryption.fingerprint} (${encryption.source}): ${reason}`,
      { cause: error },
    );
  }
  return { bytes, sha256: hash.digest('hex') };
}

/**
 * A written (plain, staged) part encrypted into `encryptedPath`: the part as it will be
 * published, with the plain file's row count and the encrypted file's path, size and
 * sha256. The plain file is removed. `name`: as in encryptPart.
 */
export async function encryptWrittenPart(
  encryption: PartEncryption,
  part: WrittenPart,
  encryptedPath: string,
  name?: string,
): Promise<WrittenPart> {
  const described = await encryptPart(encryption, part.path, encryptedPath, name);
  await rm(part.path, { force: true });
  return { ...part, path: encryptedPath, ...described };
}
