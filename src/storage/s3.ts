// S3 storage (s3://bucket/prefix): keys live under the prefix.
//
// - Nothing partial under a final key: a staged file is uploaded in one PutObject, or as a
//   multipart upload (bounded memory: `queueSize` parts of `partSize` in flight) that
//   S3 only shows once CompleteMultipartUpload succeeds. Small objects are one PutObject.
// - Listings page through ContinuationToken to the end, or fail.
// - Reads for DuckDB are downloaded into the caller's scratch folder (fetch); staged
//   outputs live in a run-owned local folder (staging.ts) and are removed once uploaded.
// - Every write carries the configured server-side encryption headers.
// - Conditional writes (If-None-Match: *, If-Match: <ETag>) back the run lease
//   (state/state-store.ts).
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { GetObjectCommandOutput, PutObjectCommandInput, S3Client } from '@aws-sdk/client-s3';
import type { S3Options } from '../config/schema.js';
import { StorageError } from '../errors.js';
import type { LockableStorage, Versioned } from './backend.js';
import { loadS3Sdk, loadUpload, s3ClientFor, type S3ClientTuning } from './s3-client.js';
import {
  classifyS3Error,
  isNotFound,
  isNotImplemented,
  isPreconditionFailed,
  s3ErrorCode,
  type S3Action,
} from './s3-errors.js';
import { stagedPath, stagingFolder } from './staging.js';

export interface S3Location {
  bucket: string;
  /** Without leading or trailing slash; '' for the bucket's root. */
  prefix: string;
}

const MiB = 1024 * 1024;
/** Multipart part size: parts above 8 MiB are uploaded in 8 MiB pieces, 4 at a time (≤ 32 MiB buffered). */
export const DEFAULT_PART_SIZE = 8 * MiB;
export const DEFAULT_QUEUE_SIZE = 4;
const FETCH_ATTEMPTS = 3;

/** Parses s3://bucket[/prefix]; a string is the problem with it. */
export function parseS3Uri(uri: string): S3Location | string {
  const match = /^s3:\/\/([^/]*)(?:\/(.*))?$/.exec(uri);
  const bucket = match?.[1] ?? '';
  if (!match || bucket === '') return 'expected s3://bucket/prefix';
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,254}$/.test(bucket)) return `"${bucket}" is not a valid bucket name`;
  const prefix = normalizeKey(match[2] ?? '');
  if (prefix.split('/').some((s) => s === '.' || s === '..')) return 'the prefix must not contain "." or ".." segments';
  return { bucket, prefix };
}

export interface S3StorageOptions {
  /** Where the location is set in the config (for messages): source.snapshots, destination.path, state.path. */
  configPath: string;
  s3: S3Options;
  /** A local folder the caller owns for staged outputs; default: a per-process temp folder. */
  stagingDir?: string;
  client?: S3Client;
  tuning?: S3ClientTuning;
  /** Keys per listing page (S3's maximum is 1,000; tests use a small one). */
  pageSize?: number;
  partSize?: number;
  queueSize?: number;
}

export class S3Storage implements LockableStorage {
  readonly root: string;
  readonly sharedAcrossHosts = true;
  private clientPromise: Promise<S3Client> | undefined;
  private readonly bucket: string;
  private readonly prefix: string;
  private readonly staged = new Map<string, string>();
  private fetched = 0;

  constructor(
    location: S3Location,
    private readonly options: S3StorageOptions,
  ) {
    this.bucket = location.bucket;
    this.prefix = location.prefix;
    this.root = `s3://${this.bucket}${this.prefix ? `/${this.prefix}` : ''}`;
  }

  /** The client, created on first use (the SDK is loaded only when an S3 location is used). */
  private client(): Promise<S3Client> {
    this.clientPromise ??= this.options.client
      ? Promise.resolve(this.options.client)
      : s3ClientFor(this.options.s3, this.options.tuning);
    return this.clientPromise;
  }

  /** The S3 options in force for this location (after merging the config's blocks). */
  get s3Options(): S3Options {
    return this.options.s3;
  }

  describe(key: string): string {
    return `s3://${this.bucket}/${this.fullKey(key)}`;
  }

  private fullKey(key: string): string {
    return normalizeKey(this.prefix ? `${this.prefix}/${key}` : key);
  }

  /** The key prefix that lists everything inside the folder `prefix` ('' = the root). */
  private folderKey(prefix: string): string {
    const full = this.fullKey(prefix);
    return full === '' ? '' : `${full}/`;
  }

  private relative(fullKey: string): string {
    return this.prefix ? fullKey.slice(this.prefix.length + 1) : fullKey;
  }

  private fail(error: unknown, action: S3Action, where: string): never {
    throw classifyS3Error(error, {
      action,
      where,
      bucket: this.bucket,
      configPath: this.options.configPath,
      kms: this.options.s3.sse === 'aws:kms',
      endpoint: this.options.s3.endpoint,
    });
  }

  private writeParams(key: string, type = contentType(key)): Omit<PutObjectCommandInput, 'Body'> {
    const { sse, kmsKeyId } = this.options.s3;
    return {
      Bucket: this.bucket,
      Key: this.fullKey(key),
      ContentType: type,
      ...(sse ? { ServerSideEncryption: sse } : {}),
      ...(sse === 'aws:kms' && kmsKeyId ? { SSEKMSKeyId: kmsKeyId } : {}),
    };
  }

  async readVersioned(key: string): Promise<Versioned | null> {
    return this.getObject(key, async (response) => {
      const bytes = Buffer.from((await response.Body?.transformToByteArray()) ?? []);
      checkLength(bytes.length, response.ContentLength);
      return { text: bytes.toString('utf8'), version: response.ETag ?? '' };
    });
  }

  async readText(key: string): Promise<string | null> {
    return (await this.readVersioned(key))?.text ?? null;
  }

  private async put(key: string, text: string, condition: { IfNoneMatch?: string; IfMatch?: string }): Promise<string> {
    const sdk = await loadS3Sdk();
    const response = await (
      await this.client()
    ).send(new sdk.PutObjectCommand({ ...this.writeParams(key), Body: text, ...condition }));
    return response.ETag ?? '';
  }

  async writeText(key: string, text: string): Promise<void> {
    try {
      await this.put(key, text, {});
    } catch (error) {
      this.fail(error, 'write', this.describe(key));
    }
  }

  async createExclusive(key: string, text: string): Promise<boolean> {
    try {
      await this.put(key, text, { IfNoneMatch: '*' });
      return true;
    } catch (error) {
      if (isPreconditionFailed(error)) return false;
      return this.fail(error, 'write', this.describe(key));
    }
  }

  async replaceIfVersion(key: string, text: string, version: string): Promise<string | null> {
    try {
      return await this.put(key, text, { IfMatch: version });
    } catch (error) {
      if (isPreconditionFailed(error) || isNotFound(error)) return null;
      return this.fail(error, 'write', this.describe(key));
    }
  }

  async delete(key: string): Promise<void> {
    try {
      const sdk = await loadS3Sdk();
      await (await this.client()).send(new sdk.DeleteObjectCommand({ Bucket: this.bucket, Key: this.fullKey(key) }));
    } catch (error) {
      if (isNotFound(error)) return;
      this.fail(error, 'delete', this.describe(key));
    }
  }

  /** Every page of a listing, to the end (or an error: never a silently short list). */
  private async listPages(
    prefix: string,
    delimiter?: string,
  ): Promise<{ keys: string[]; folders: string[]; sizes: Map<string, number> }> {
    const folder = this.folderKey(prefix);
    const keys: string[] = [];
    const sizes = new Map<string, number>();
    const folders: string[] = [];
    let token: string | undefined;
    do {
      let page;
      try {
        const sdk = await loadS3Sdk();
        page = await (
          await this.client()
        ).send(
          new sdk.ListObjectsV2Command({
            Bucket: this.bucket,
            Prefix: folder,
            ContinuationToken: token,
            ...(delimiter ? { Delimiter: delimiter } : {}),
            ...(this.options.pageSize ? { MaxKeys: this.options.pageSize } : {}),
          }),
        );
      } catch (error) {
        return this.fail(error, 'list', `s3://${this.bucket}/${folder}`);
      }
      for (const object of page.Contents ?? []) {
        if (!object.Key || object.Key.endsWith('/')) continue;
        keys.push(object.Key);
        sizes.set(object.Key, object.Size ?? 0);
      }
      for (const common of page.CommonPrefixes ?? []) if (common.Prefix) folders.push(common.Prefix);
      if (page.IsTruncated && !page.NextContinuationToken) {
        throw new StorageError(
          `cannot list s3://${this.bucket}/${folder}: the store said the listing continues but gave no continuation token; nothing was read. Check that the store supports ListObjectsV2 paging`,
        );
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
    return { keys, folders, sizes };
  }

  async list(prefix: string): Promise<string[]> {
    const { keys } = await this.listPages(prefix);
    return keys.map((k) => this.relative(k)).sort();
  }

  async listSizes(prefix: string): Promise<Map<string, number>> {
    const { sizes } = await this.listPages(prefix);
    return new Map([...sizes].map(([k, size]) => [this.relative(k), size]));
  }

  async listFolders(prefix: string): Promise<string[]> {
    const folder = this.folderKey(prefix);
    const { folders } = await this.listPages(prefix, '/');
    return [...new Set(folders.map((f) => f.slice(folder.length).replace(/\/$/, '')))].filter((f) => f !== '').sort();
  }

  async stage(key: string): Promise<string> {
    const file = stagedPath(await stagingFolder(this.options.stagingDir), key);
    this.staged.set(file, this.fullKey(key));
    return file;
  }

  async publish(staged: string, key: string, type?: string): Promise<void> {
    try {
      const Upload = await loadUpload();
      const upload = new Upload({
        client: await this.client(),
        params: { ...this.writeParams(key, type), Body: createReadStream(staged) },
        partSize: Math.max(5 * MiB, this.options.partSize ?? DEFAULT_PART_SIZE),
        queueSize: this.options.queueSize ?? DEFAULT_QUEUE_SIZE,
        // Aborted below, so that a store that cannot abort (s3rver: 405) does not hide the real error.
        leavePartsOnError: true,
      });
      await upload.done();
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
        throw new StorageError(`cannot publish ${this.describe(key)}: the staged file ${staged} is gone`, {
          cause: error,
        });
      }
      const fullKey = this.fullKey(key);
      await this.abortUploads(fullKey, (k) => k === fullKey).catch(() => undefined);
      this.fail(error, 'write', this.describe(key));
    } finally {
      this.staged.delete(staged);
      await rm(staged, { force: true });
    }
  }

  /**
   * Removes what an interrupted run left for `names` in `folder`: staged local files of
   * this process and incomplete multipart uploads (invisible, but billed).
   */
  async removeStaged(folder: string, names: string[]): Promise<number> {
    const folderKey = this.folderKey(folder);
    const matches = (fullKey: string) =>
      fullKey.startsWith(folderKey) &&
      !fullKey.slice(folderKey.length).includes('/') &&
      names.some((n) => fullKey.slice(folderKey.length).startsWith(n));
    let removed = 0;
    for (const [file, fullKey] of this.staged) {
      if (!matches(fullKey)) continue;
      await rm(file, { force: true });
      this.staged.delete(file);
      removed += 1;
    }
    return removed + (await this.abortUploads(folderKey, matches));
  }

  /**
   * Aborts the incomplete multipart uploads under `prefix` whose keys match. Stores that
   * do not implement listing or aborting uploads (s3rver: 501/405) are tolerated.
   */
  private async abortUploads(prefix: string, matches: (fullKey: string) => boolean): Promise<number> {
    const sdk = await loadS3Sdk();
    const client = await this.client();
    let aborted = 0;
    let keyMarker: string | undefined;
    let uploadIdMarker: string | undefined;
    do {
      let page;
      try {
        page = await client.send(
          new sdk.ListMultipartUploadsCommand({
            Bucket: this.bucket,
            Prefix: prefix,
            KeyMarker: keyMarker,
            UploadIdMarker: uploadIdMarker,
          }),
        );
      } catch (error) {
        if (isNotImplemented(error)) return aborted;
        return this.fail(error, 'list-uploads', `s3://${this.bucket}/${prefix}`);
      }
      for (const upload of page.Uploads ?? []) {
        if (!upload.Key || !upload.UploadId || !matches(upload.Key)) continue;
        try {
          await client.send(
            new sdk.AbortMultipartUploadCommand({ Bucket: this.bucket, Key: upload.Key, UploadId: upload.UploadId }),
          );
          aborted += 1;
        } catch (error) {
          if (isNotImplemented(error)) return aborted;
          if (s3ErrorCode(error) === 'NoSuchUpload') continue;
          this.fail(error, 'abort-upload', `s3://${this.bucket}/${upload.Key}`);
        }
      }
      keyMarker = page.IsTruncated ? page.NextKeyMarker : undefined;
      uploadIdMarker = page.IsTruncated ? page.NextUploadIdMarker : undefined;
    } while (keyMarker);
    return aborted;
  }

  /**
   * GETs `key` and hands the response to `consume`. The SDK retries the request itself; a
   * body that breaks off midway (or ends short of its length) is fetched again, up to
   * FETCH_ATTEMPTS times. A missing key gives null.
   */
  private async getObject<T>(
    key: string,
    consume: (response: GetObjectCommandOutput) => Promise<T>,
  ): Promise<T | null> {
    for (let attempt = 1; ; attempt++) {
      let response;
      try {
        const sdk = await loadS3Sdk();
        response = await (
          await this.client()
        ).send(new sdk.GetObjectCommand({ Bucket: this.bucket, Key: this.fullKey(key) }));
      } catch (error) {
        if (isNotFound(error)) return null;
        return this.fail(error, 'read', this.describe(key));
      }
      try {
        return await consume(response);
      } catch (error) {
        if (attempt < FETCH_ATTEMPTS) continue;
        return this.fail(error, 'read', this.describe(key));
      }
    }
  }

  /** Downloads `key` into `scratchDir`, streamed to disk (see getObject for retries). */
  async fetch(key: string, scratchDir: string): Promise<string> {
    const dir = path.join(scratchDir, 'fetched');
    await mkdir(dir, { recursive: true });
    const file = path.join(dir, `${++this.fetched}-${path.posix.basename(key).replace(/[^A-Za-z0-9._-]/g, '_')}`);
    const partial = `${file}.partial`;
    const done = await this.getObject(key, async (response) => {
      try {
        await pipeline(response.Body as Readable, createWriteStream(partial));
        checkLength((await stat(partial)).size, response.ContentLength);
        await rename(partial, file);
        return file;
      } catch (error) {
        await rm(partial, { force: true });
        throw error;
      }
    });
    if (done === null)
      throw new StorageError(
        `${this.describe(key)} does not exist (it was listed a moment ago); check whether something else deletes it`,
      );
    return done;
  }
}

function checkLength(size: number, expected: number | undefined): void {
  if (expected !== undefined && size !== expected) {
    throw Object.assign(new Error(`the download ended after ${size} of ${expected} bytes`), { name: 'IncompleteBody' });
  }
}

function normalizeKey(key: string): string {
  return key.replace(/\/+/g, '/').replace(/^\/|\/$/g, '');
}

/** For objects published without a content type of their own (manifests, state): by the key's ending. */
function contentType(key: string): string {
  if (key.endsWith('.json')) return 'application/json';
  if (key.endsWith('.csv')) return 'text/csv';
  if (key.endsWith('.gz')) return 'application/gzip';
  return 'application/octet-stream';
}
