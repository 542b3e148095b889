// S3 client construction. Region, endpoint and credentials come from the standard AWS
// chain (AWS_PROFILE, AWS_REGION, AWS_ENDPOINT_URL_S3, env keys, SSO, roles) unless the
// config's `s3` block sets them; audex never handles credentials itself.
//
// Retries: the SDK's standard strategy, 5 attempts, exponential backoff with full jitter
// (100 ms base, 500 ms for throttling such as SlowDown, capped at 20 s). What still fails
// after that is classified in s3-errors.ts.
import type { S3Client } from '@aws-sdk/client-s3';
import type * as UploadModule from '@aws-sdk/lib-storage';
import type * as S3SdkModule from '@aws-sdk/client-s3';
import type { S3Options } from '../config/schema.js';

type S3Sdk = typeof S3SdkModule;
let sdk: Promise<S3Sdk> | undefined;
let upload: Promise<typeof UploadModule.Upload> | undefined;

/**
 * The SDK, loaded on first use: runs on local disk only do not pay for loading it. In the
 * bundle (scripts/bundle.js) it is a chunk of its own, built from the SDK's ES modules.
 */
export function loadS3Sdk(): Promise<S3Sdk> {
  sdk ??= import('@aws-sdk/client-s3');
  return sdk;
}

export function loadUpload(): Promise<typeof UploadModule.Upload> {
  upload ??= import('@aws-sdk/lib-storage').then((m) => m.Upload);
  return upload;
}

export const S3_MAX_ATTEMPTS = 5;

export interface S3ClientTuning {
  /** Milliseconds to open a connection (default 5 s). */
  connectionTimeoutMs?: number;
  /** Milliseconds a socket may stay silent mid-request before the attempt fails (default 60 s). */
  socketTimeoutMs?: number;
  maxAttempts?: number;
}

const clients = new Map<string, Promise<S3Client>>();

/** One client per distinct configuration, shared by the locations that use it. */
export function s3ClientFor(options: S3Options, tuning: S3ClientTuning = {}): Promise<S3Client> {
  const cacheKey = JSON.stringify([options.region, options.endpoint, options.forcePathStyle, tuning]);
  let client = clients.get(cacheKey);
  if (!client) {
    client = loadS3Sdk().then(
      ({ S3Client }) =>
        new S3Client({
          ...(options.region ? { region: options.region } : {}),
          ...(options.endpoint ? { endpoint: options.endpoint } : {}),
          ...(options.forcePathStyle !== undefined ? { forcePathStyle: options.forcePathStyle } : {}),
          maxAttempts: tuning.maxAttempts ?? S3_MAX_ATTEMPTS,
          retryMode: 'standard',
          requestHandler: {
            connectionTimeout: tuning.connectionTimeoutMs ?? 5_000,
            socketTimeout: tuning.socketTimeoutMs ?? 60_000,
          },
        }),
    );
    clients.set(cacheKey, client);
  }
  return client;
}
