// Throwaway OpenPGP keys made by the real `gpg` (Debian's gnupg) in a temp GNUPGHOME, and
// `gpg --decrypt` with their private keys: the tool a receiving team uses.
//
// Keys are generated with --faked-system-time 2026-01-01, so they already exist at the
// fixtures' `--at` times (November 2026): audex checks the key at the run's time, and a
// key created later than that is refused. The expired key is made in 2025 with a one-day
// expiry.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

export interface TestKey {
  /** Armored public key (what a customer gives). */
  publicKey: string;
  /** The same public key, binary (`gpg --export` without --armor). */
  publicKeyBinary: Buffer;
  /** Armored private key (must be refused). */
  privateKey: string;
  fingerprint: string;
}

export interface Gpg {
  home: string;
  rsa: TestKey;
  ecc: TestKey;
  expired: TestKey;
  signOnly: TestKey;
  /** `gpg --decrypt` of a file: the plaintext bytes (throws when gpg fails). */
  decrypt(file: string): Buffer;
  /** Writes an armored key into `dir` and returns its path. */
  writeKey(dir: string, name: string, key: string | Buffer): string;
  stop(): void;
}

const BASE = ['--batch', '--pinentry-mode', 'loopback', '--passphrase', ''];
const CREATED = '20260101T000000';

export function startGpg(): Gpg {
  const home = mkdtempSync(path.join(tmpdir(), 'audex-gpg-'));
  const gpgBytes = (args: string[]) =>
    execFileSync('gpg', ['--homedir', home, ...BASE, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  const gpg = (args: string[]) => gpgBytes(args).toString('utf8');
  const fingerprintOf = (uid: string) => /^fpr:+([0-9A-F]{40}):/m.exec(gpg(['--with-colons', '--list-keys', uid]))![1]!;
  const exported = (uid: string): TestKey => ({
    publicKey: gpg(['--armor', '--export', uid]),
    publicKeyBinary: gpgBytes(['--export', uid]),
    privateKey: gpg(['--armor', '--export-secret-keys', uid]),
    fingerprint: fingerprintOf(uid),
  });
  const at = (time: string, args: string[]) => gpg(['--faked-system-time', time, ...args]);

  at(CREATED, ['--quick-gen-key', 'RSA Recipient <rsa@example.com>', 'rsa3072', 'sign,encr', 'never']);
  at(CREATED, ['--quick-gen-key', 'ECC Recipient <ecc@example.com>', 'ed25519', 'sign', 'never']);
  at(CREATED, ['--quick-add-key', fingerprintOf('ecc@example.com'), 'cv25519', 'encr', 'never']);
  at('20250101T000000', ['--quick-gen-key', 'Expired Recipient <expired@example.com>', 'ed25519', 'sign', '1d']);
  at('20250101T000000', ['--quick-add-key', fingerprintOf('expired@example.com'), 'cv25519', 'encr', '1d']);
  at(CREATED, ['--quick-gen-key', 'Signer <sign@example.com>', 'ed25519', 'sign', 'never']);

  return {
    home,
    rsa: exported('rsa@example.com'),
    ecc: exported('ecc@example.com'),
    expired: exported('expired@example.com'),
    signOnly: exported('sign@example.com'),
    decrypt(file) {
      const result = spawnSync('gpg', ['--homedir', home, ...BASE, '--decrypt', file], { maxBuffer: 64 * 1024 * 1024 });
      if (result.status !== 0)
        throw new Error(`gpg --decrypt ${file} failed (${result.status}): ${result.stderr.toString()}`);
      return result.stdout;
    },
    writeKey(dir, name, key) {
      const file = path.join(dir, name);
      writeFileSync(file, key);
      return file;
    },
    stop() {
      spawnSync('gpgconf', ['--homedir', home, '--kill', 'all']);
      rmSync(home, { recursive: true, force: true });
    },
  };
}

/** A run of the key's base64 body: if it shows up anywhere, key material leaked. */
export function keyMaterialSample(armored: string): string {
  const lines = armored.split('\n').filter((l) => /^[A-Za-z0-9+/]{60,}$/.test(l));
  return lines[Math.floor(lines.length / 2)]!.slice(0, 40);
}
