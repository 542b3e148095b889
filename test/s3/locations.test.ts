// How config locations become backends: s3:// or local in any combination, the `s3`
// blocks merged field by field, and malformed locations refused as config errors.
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/errors.js';
import { validateDataflow } from '../../src/config/schema.js';
import { openLocations } from '../../src/run/prepare.js';
import { LocalStorage } from '../../src/storage/local.js';
import { mergeS3Options, openLocation } from '../../src/storage/open-location.js';
import type { S3Storage } from '../../src/storage/s3.js';
import { parseS3Uri } from '../../src/storage/s3.js';
import { redactSecrets } from '../../src/storage/s3-errors.js';
import { crmConfig } from '../helpers/harness.js';

function load(overrides: Record<string, unknown>) {
  const result = validateDataflow(crmConfig(overrides));
  if (!result.ok) throw new Error(JSON.stringify(result.issues));
  return { dataflow: result.dataflow, file: '/work/flows/d.yaml', dir: '/work/flows' };
}

describe('S3 locations', () => {
  it('parses s3://bucket/prefix', () => {
    expect(parseS3Uri('s3://acme-exports/crm/daily/')).toEqual({ bucket: 'acme-exports', prefix: 'crm/daily' });
    expect(parseS3Uri('s3://acme-exports')).toEqual({ bucket: 'acme-exports', prefix: '' });
    expect(parseS3Uri('s3://')).toMatch(/expected s3:\/\/bucket\/prefix/);
    expect(parseS3Uri('s3://a b/x')).toMatch(/not a valid bucket name/);
    expect(parseS3Uri('s3://bucket/a/../b')).toMatch(/"\.\."/);
  });

  it('refuses a malformed location with exit 2, naming the config path', () => {
    expect(() => openLocation('s3://', '/x', 'destination.path')).toThrow(ConfigError);
    expect(() => openLocation('s3://', '/x', 'destination.path')).toThrow(/destination\.path: s3:\/\/: expected/);
    expect(() => openLocation('s3://b/p', '/x', 'state.path', { s3: { kmsKeyId: 'k' } })).toThrow(
      /state\.path: s3\.kmsKeyId is set but the s3\.sse in force .* is not set/,
    );
  });

  it('merges s3 blocks field by field; a block that sets sse does not inherit kmsKeyId', () => {
    expect(
      mergeS3Options(
        { region: 'eu-west-1', sse: 'aws:kms', kmsKeyId: 'k1' },
        { endpoint: 'http://127.0.0.1:9000', forcePathStyle: true },
      ),
    ).toEqual({
      region: 'eu-west-1',
      sse: 'aws:kms',
      kmsKeyId: 'k1',
      endpoint: 'http://127.0.0.1:9000',
      forcePathStyle: true,
    });
    expect(mergeS3Options({ sse: 'aws:kms', kmsKeyId: 'k1' }, { sse: 'AES256' })).toEqual({ sse: 'AES256' });
    expect(mergeS3Options({ sse: 'aws:kms', kmsKeyId: 'k1' }, { kmsKeyId: 'k2' })).toEqual({
      sse: 'aws:kms',
      kmsKeyId: 'k2',
    });
    expect(mergeS3Options(undefined, {})).toEqual({});
  });

  it('opens any combination of local and S3 locations; the default state inherits the destination block', () => {
    const mixed = openLocations(
      load({
        source: { snapshots: './snapshots' },
        destination: { path: 's3://exports/crm', s3: { region: 'eu-west-1', sse: 'AES256' } },
        s3: { region: 'us-east-1', forcePathStyle: true },
      }),
    );
    expect(mixed.source).toBeInstanceOf(LocalStorage);
    expect(mixed.source.root).toBe('/work/flows/snapshots');
    expect(mixed.destination.root).toBe('s3://exports/crm');
    expect((mixed.destination as S3Storage).s3Options).toEqual({
      region: 'eu-west-1',
      forcePathStyle: true,
      sse: 'AES256',
    });
    expect(mixed.state.root).toBe('s3://exports/crm/_audex/acme-crm');
    expect((mixed.state as S3Storage).s3Options).toEqual({ region: 'eu-west-1', forcePathStyle: true, sse: 'AES256' });

    const own = openLocations(
      load({
        source: { snapshots: 's3://lake/snapshots', s3: { region: 'us-west-2' } },
        destination: { path: './out' },
        state: { path: 's3://state-bucket/audex', s3: { sse: 'aws:kms', kmsKeyId: 'alias/audex' } },
        s3: { region: 'us-east-1' },
      }),
    );
    expect((own.source as S3Storage).s3Options).toEqual({ region: 'us-west-2' });
    expect(own.destination.root).toBe('/work/flows/out');
    expect((own.state as S3Storage).s3Options).toEqual({
      region: 'us-east-1',
      sse: 'aws:kms',
      kmsKeyId: 'alias/audex',
    });
  });

  it('keeps credentials out of error texts', () => {
    const text = redactSecrets(
      'Credential=AKIAIOSFODNN7EXAMPLE/20261120/us-east-1/s3/aws4_request, Signature=abcdef0123 token wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEYwJalrXUtnFEMI',
    );
    expect(text).not.toMatch(/AKIAIOSFODNN7EXAMPLE|abcdef0123|wJalrXUtnFEMI/);
  });
});
