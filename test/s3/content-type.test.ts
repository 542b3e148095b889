// The Content-Type of what audex stores on S3 comes from the format registry
// (writers/formats.ts) for data parts, and from the key for manifests.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HeadObjectCommand } from '@aws-sdk/client-s3';
import { crmConfig, trackWorkspaces } from '../helpers/harness.js';
import { startS3, type S3Test } from '../helpers/s3-server.js';

const workspace = trackWorkspaces();
let s3: S3Test;
beforeAll(async () => {
  s3 = await startS3(['exports']);
});
afterAll(async () => {
  await s3?.stop();
});

describe('content types on S3', () => {
  it.each([
    ['csv', 'none', /\.csv$/, 'text/csv'],
    ['json', 'gzip', /\.json\.gz$/, 'application/gzip'],
    ['parquet', 'gzip', /\.gz\.parquet$/, 'application/octet-stream'],
  ])(
    '%s parts (compression %s) are stored as %s… and the manifest as application/json',
    async (type, compression, ending, contentType) => {
      const ws = workspace();
      const root = `ct-${type}`;
      const config = ws.config(
        crmConfig({
          id: root,
          format: { type, compression },
          destination: {
            path: `s3://exports/${root}`,
            s3: { endpoint: s3.endpoint, forcePathStyle: true, region: 'us-east-1' },
          },
        }),
      );
      const result = await ws.audex(['run', '--config', config, '--at', '2026-11-20T06:00:00Z'], s3.env());
      expect(result.code, result.stderr).toBe(0);
      const keys = (await s3.listKeys('exports', `${root}/`)).filter((k) => !k.startsWith(`${root}/_audex/`));
      const typeOf = async (key: string) =>
        (await s3.client.send(new HeadObjectCommand({ Bucket: 'exports', Key: key }))).ContentType;
      const parts = keys.filter((k) => ending.test(k));
      expect(parts.length, keys.join('\n')).toBeGreaterThan(0);
      for (const key of parts) expect(await typeOf(key), key).toBe(contentType);
      const manifests = keys.filter((k) => /\/manifest-[^/]+\.json$/.test(k));
      expect(manifests).toHaveLength(1);
      expect(await typeOf(manifests[0]!)).toBe('application/json');
    },
  );
});
