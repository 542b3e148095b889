// Turns a location from the config (local path or s3://bucket/prefix) into a backend.
import path from 'node:path';
import { ConfigError } from '../errors.js';
import type { StorageBackend } from './backend.js';
import { LocalStorage } from './local.js';

export function isS3Uri(location: string): boolean {
  return location.startsWith('s3://');
}

/** Opens a location; relative local paths resolve against `baseDir` (the config file's folder). */
export function openLocation(location: string, baseDir: string, configPath: string): StorageBackend {
  if (isS3Uri(location)) {
    throw new ConfigError(`${configPath}: ${location}: S3 locations are not supported by this version of audex yet; use a local path`);
  }
  return new LocalStorage(path.resolve(baseDir, location));
}

/** The default state location: <destination>/_audex/<dataflow id>. */
export function defaultStateLocation(destination: string, dataflowId: string): string {
  return `${destination.replace(/\/+$/, '')}/_audex/${dataflowId}`;
}
