// Turns a location from the config (local path or s3://bucket/prefix) into a backend.
import path from 'node:path';
import type { S3Options } from '../config/schema.js';
import { ConfigError } from '../errors.js';
import type { LockableStorage } from './backend.js';
import { LocalStorage } from './local.js';
import { parseS3Uri, S3Storage } from './s3.js';

export function isS3Uri(location: string): boolean {
  return location.startsWith('s3://');
}

export interface OpenLocationOptions {
  /** The S3 options in force for this location (top-level `s3` block merged with the location's own). */
  s3?: S3Options;
  /** A local folder the caller owns and removes, for staged uploads (default: a per-process temp folder). */
  stagingDir?: string;
}

/** Opens a location; relative local paths resolve against `baseDir` (the config file's folder). */
export function openLocation(
  location: string,
  baseDir: string,
  configPath: string,
  options: OpenLocationOptions = {},
): LockableStorage {
  if (isS3Uri(location)) {
    const parsed = parseS3Uri(location);
    if (typeof parsed === 'string') throw new ConfigError(`${configPath}: ${location}: ${parsed}`);
    const s3 = options.s3 ?? {};
    if (s3.kmsKeyId && s3.sse !== 'aws:kms')
      throw new ConfigError(
        `${configPath}: s3.kmsKeyId is set but the s3.sse in force for this location is ${s3.sse ?? 'not set'}; set sse: aws:kms next to kmsKeyId, or remove kmsKeyId`,
      );
    return new S3Storage(parsed, { configPath, s3, stagingDir: options.stagingDir });
  }
  return new LocalStorage(path.resolve(baseDir, location));
}

/**
 * Field by field, later blocks over earlier ones; `sse` and `kmsKeyId` go together, so a
 * block that sets `sse` does not inherit another block's `kmsKeyId`.
 */
export function mergeS3Options(...blocks: (S3Options | undefined)[]): S3Options {
  const merged: S3Options = {};
  for (const block of blocks) {
    if (!block) continue;
    if (block.sse !== undefined) delete merged.kmsKeyId;
    for (const [k, v] of Object.entries(block)) if (v !== undefined) (merged as Record<string, unknown>)[k] = v;
  }
  return merged;
}

/** The default state location: <destination>/_audex/<dataflow id>. */
export function defaultStateLocation(destination: string, dataflowId: string): string {
  return `${destination.replace(/\/+$/, '')}/_audex/${dataflowId}`;
}
