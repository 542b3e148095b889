// The one place where S3 failures become audex errors (README "Running it"):
//   - credentials, permissions, missing bucket, wrong region, bad config → StorageError
//     (exit 3) naming the bucket/key and what to check;
//   - throttling, 5xx, timeouts and dropped connections (already retried by the SDK with
//     jittered backoff) → RunFailedError (exit 1): transient, nothing committed, rerun.
// Messages never carry credentials: the SDK's own text is passed through `redactSecrets`.
import { RunFailedError, StorageError, type AudexError } from '../errors.js';

/** What audex was doing, for the message and the IAM permission it needs. */
export type S3Action = 'read' | 'list' | 'write' | 'delete' | 'list-uploads' | 'abort-upload';

export interface S3ErrorContext {
  action: S3Action;
  /** s3://bucket/key (or the prefix listed). */
  where: string;
  bucket: string;
  /** The config path of the location (source.snapshots, destination.path, state.path). */
  configPath: string;
  /** Set when writes are encrypted with KMS (the KMS key permissions matter too). */
  kms?: boolean;
  /** The endpoint when one is configured (S3-compatible stores). */
  endpoint?: string;
}

const VERB: Record<S3Action, string> = {
  read: 'read',
  list: 'list',
  write: 'write',
  delete: 'delete',
  'list-uploads': 'list the incomplete multipart uploads under',
  'abort-upload': 'abort an incomplete multipart upload of',
};

const PERMISSION: Record<S3Action, string> = {
  read: 's3:GetObject',
  list: 's3:ListBucket',
  write: 's3:PutObject',
  delete: 's3:DeleteObject',
  'list-uploads': 's3:ListBucketMultipartUploads',
  'abort-upload': 's3:AbortMultipartUpload',
};

const CREDENTIAL_SOURCES =
  'AWS_PROFILE, AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, `aws sso login`, or the instance/task role';
const TRANSIENT_CODES = new Set([
  'SlowDown',
  'Throttling',
  'ThrottlingException',
  'RequestLimitExceeded',
  'TooManyRequestsException',
  'ServiceUnavailable',
  'InternalError',
  'IncompleteBody',
  'RequestTimeout',
  'RequestTimeoutException',
  'TimeoutError',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'EAI_AGAIN',
]);
const UNREACHABLE_CODES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EHOSTUNREACH', 'ENETUNREACH']);
const EXPIRED_CODES = new Set([
  'ExpiredToken',
  'ExpiredTokenException',
  'TokenRefreshRequired',
  'InvalidToken',
  'RequestExpired',
]);

interface SdkError {
  name?: string;
  Code?: string;
  code?: string;
  message?: string;
  $retryable?: unknown;
  $metadata?: { httpStatusCode?: number; attempts?: number };
  cause?: unknown;
}

/** The error's S3 code (or Node network code), as the classification sees it. */
export function s3ErrorCode(error: unknown): string {
  const e = (error ?? {}) as SdkError;
  const cause = (e.cause ?? {}) as SdkError;
  return (
    e.Code ??
    (typeof e.code === 'string' ? e.code : undefined) ??
    (e.name && e.name !== 'Error' ? e.name : undefined) ??
    cause.code ??
    'Unknown'
  );
}

export function s3Status(error: unknown): number | undefined {
  return (error as SdkError | undefined)?.$metadata?.httpStatusCode;
}

export function isNotFound(error: unknown): boolean {
  const code = s3ErrorCode(error);
  return code === 'NoSuchKey' || code === 'NotFound' || (s3Status(error) === 404 && code !== 'NoSuchBucket');
}

/** A conditional write lost: the object exists (If-None-Match) or changed (If-Match). */
export function isPreconditionFailed(error: unknown): boolean {
  const code = s3ErrorCode(error);
  return (
    code === 'PreconditionFailed' ||
    code === 'ConditionalRequestConflict' ||
    s3Status(error) === 412 ||
    s3Status(error) === 409
  );
}

/** The store does not implement the request (s3rver: AbortMultipartUpload, ListMultipartUploads). */
export function isNotImplemented(error: unknown): boolean {
  const code = s3ErrorCode(error);
  return code === 'NotImplemented' || code === 'MethodNotAllowed' || s3Status(error) === 501 || s3Status(error) === 405;
}

export function isTransient(error: unknown): boolean {
  const code = s3ErrorCode(error);
  const status = s3Status(error);
  if (TRANSIENT_CODES.has(code)) return true;
  if (status !== undefined && (status >= 500 || status === 429)) return status !== 501;
  const message = (error as SdkError | undefined)?.message ?? '';
  return /socket hang up|timed out|aborted|premature close/i.test(message);
}

/** Turns any failure of an S3 call into the audex error a user should see. */
export function classifyS3Error(error: unknown, ctx: S3ErrorContext): AudexError {
  if (error instanceof StorageError || error instanceof RunFailedError) return error;
  const code = s3ErrorCode(error);
  const status = s3Status(error);
  const attempts = (error as SdkError | undefined)?.$metadata?.attempts;
  const what = `cannot ${VERB[ctx.action]} ${ctx.where}`;
  const detail = `${code}${status ? `, HTTP ${status}` : ''}`;
  const options = { cause: error };
  const name = (error as SdkError | undefined)?.name ?? '';
  const message = redactSecrets((error as SdkError | undefined)?.message ?? String(error));

  if (name === 'CredentialsProviderError' || /could not load credentials/i.test(message)) {
    return new StorageError(
      `${what}: no AWS credentials were found; provide them through ${CREDENTIAL_SOURCES}`,
      options,
    );
  }
  if (/region is missing|region not accepted/i.test(message)) {
    return new StorageError(
      `${what}: no usable AWS region is set; set s3.region in the config (top level or under ${locationKey(ctx.configPath)}) or AWS_REGION`,
      options,
    );
  }
  if (code === 'InvalidAccessKeyId') {
    return new StorageError(
      `${what} (${detail}): the access key id is not known to this store; check which credentials are in use (${CREDENTIAL_SOURCES}) and that they belong to the account of bucket ${ctx.bucket}`,
      options,
    );
  }
  if (code === 'SignatureDoesNotMatch') {
    return new StorageError(
      `${what} (${detail}): the secret key does not match the access key id; check the secret of the credentials in use (${CREDENTIAL_SOURCES})`,
      options,
    );
  }
  if (EXPIRED_CODES.has(code)) {
    return new StorageError(
      `${what} (${detail}): the session credentials have expired; refresh them (\`aws sso login\`, a new role session) and run again`,
      options,
    );
  }
  if (code === 'NoSuchBucket') {
    return new StorageError(
      `${what} (${detail}): bucket ${ctx.bucket} does not exist; check the bucket name in ${ctx.configPath} (and the endpoint, for S3-compatible stores)`,
      options,
    );
  }
  if (
    code === 'PermanentRedirect' ||
    code === 'AuthorizationHeaderMalformed' ||
    code === 'IllegalLocationConstraintException' ||
    status === 301
  ) {
    return new StorageError(
      `${what} (${detail}): bucket ${ctx.bucket} is in another region; set s3.region (or AWS_REGION) to the bucket's region`,
      options,
    );
  }
  if (code.startsWith('KMS.') || (code === 'AccessDenied' && /kms/i.test(message))) {
    return new StorageError(
      `${what} (${detail}): the KMS key refused the request; the credentials need kms:GenerateDataKey and kms:Decrypt on the key set in s3.kmsKeyId (or the default aws/s3 key)`,
      options,
    );
  }
  if (code === 'AccessDenied' || code === 'AllAccessDisabled' || code === 'Forbidden' || status === 403) {
    const kms = ctx.kms && ctx.action === 'write' ? ' (and kms:GenerateDataKey on the KMS key)' : '';
    const note =
      ctx.action === 'read'
        ? '; without s3:ListBucket, S3 also answers AccessDenied for a key that does not exist'
        : '';
    return new StorageError(
      `${what} (${detail}): access denied; the credentials in use need ${PERMISSION[ctx.action]}${kms} on bucket ${ctx.bucket} for this prefix${note} (see "Run against S3" in the README)`,
      options,
    );
  }
  if (code === 'InvalidBucketName') {
    return new StorageError(
      `${what} (${detail}): "${ctx.bucket}" is not a valid bucket name; check ${ctx.configPath}`,
      options,
    );
  }
  if (UNREACHABLE_CODES.has(code)) {
    const endpoint = ctx.endpoint ? ` ${ctx.endpoint}` : '';
    return new StorageError(
      `${what} (${detail}): the S3 endpoint${endpoint} cannot be reached; check s3.endpoint / AWS_ENDPOINT_URL_S3 and the network`,
      options,
    );
  }
  if (isTransient(error)) {
    const tries = attempts && attempts > 1 ? ` after ${attempts} attempts` : '';
    return new RunFailedError(`${what}: the store failed transiently (${detail})${tries}; run audex again`, options);
  }
  return new StorageError(`${what} (${detail}): ${message}`, options);
}

function locationKey(configPath: string): string {
  return configPath.split('.')[0] ?? configPath;
}

/**
 * Removes credentials from a text: the values of the AWS credential variables in the
 * environment and anything shaped like an access key id or a long secret.
 */
export function redactSecrets(text: string): string {
  let out = text;
  for (const name of ['AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN', 'AWS_ACCESS_KEY_ID', 'AWS_SECURITY_TOKEN']) {
    const value = process.env[name];
    if (value && value.length >= 4) out = out.split(value).join('[redacted]');
  }
  return out
    .replace(/\b(AKIA|ASIA|AIDA|AROA)[A-Z0-9]{12,}\b/g, '[redacted]')
    .replace(/(Credential=)[^,\s]+/g, '$1[redacted]')
    .replace(/(Signature=)[0-9a-f]+/gi, '$1[redacted]')
    .replace(/\b[A-Za-z0-9/+=]{40,}\b/g, '[redacted]');
}
