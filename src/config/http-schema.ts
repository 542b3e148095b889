// The HTTP API destination's dataflow config (README "Send to an HTTP endpoint"): one zod schema for its shape and
// defaults, plus the cross-field rules, every problem at once as `path: message` (the same
// contract as the file destination's schema.ts). Secrets are references only
// ({ env } / { file }); a literal secret is refused, so none is ever kept in a config file.
import { isIP } from 'node:net';
import * as z from 'zod';
import { keepHistoryDays, s3Options } from './schema.js';
import { parseSourcePath } from './sources.js';

const ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

/** A secret is read at run time from the environment or a file, never written in the config. */
const secretRef = z.union([
  z.object({ env: z.string().min(1) }).strict(),
  z.object({ file: z.string().min(1) }).strict(),
]);
export type SecretRef = z.output<typeof secretRef>;

const auth = z.discriminatedUnion('type', [
  z.object({ type: z.literal('none') }).strict(),
  z.object({ type: z.literal('bearer'), token: secretRef }).strict(),
  z
    .object({
      type: z.literal('oauth2ClientCredentials'),
      tokenUrl: z.string().min(1),
      clientId: z.string().min(1),
      clientSecret: secretRef,
      clientCredentialsType: z.enum(['bodyFormEncoded', 'basicAuthorization']).default('bodyFormEncoded'),
      scope: z.string().optional(),
    })
    .strict(),
  z
    .object({
      type: z.literal('oauth2Password'),
      tokenUrl: z.string().min(1),
      clientId: z.string().min(1),
      clientSecret: secretRef,
      username: z.string().min(1),
      password: secretRef,
      scope: z.string().optional(),
    })
    .strict(),
]);
export type HttpAuthConfig = z.output<typeof auth>;

const stringMap = z.record(z.string(), z.union([z.string(), z.number(), z.boolean()]).transform(String));

const aggregation = z.discriminatedUnion('policy', [
  z
    .object({ policy: z.literal('bestEffort'), maxUsersPerRequest: z.number().int().min(1).max(10_000).default(10) })
    .strict(),
  z
    .object({
      policy: z.literal('configurable'),
      maxRecords: z
        .number()
        .int()
        .min(1, 'maxRecords is 1 to 10,000')
        .max(10_000, "maxRecords is at most 10,000 (the seed's limit)"),
    })
    .strict(),
]);

const destination = z
  .object({
    type: z.literal('http'),
    endpoint: z.string().min(1),
    headers: z.union([stringMap, z.string()]).default({}).describe('a map, or the seed\'s "h1:v1,h2:v2" string'),
    queryParameters: z.union([stringMap, z.string()]).default({}).describe('a map, or "a=1&b=2"'),
    auth: auth.default({ type: 'none' }),
    aggregation: aggregation.default({ policy: 'bestEffort', maxUsersPerRequest: 10 }),
    envelope: z.enum(['array', 'single']).default('array'),
    segmentMembership: z.enum(['mergePolicy', 'all', 'mapped']).default('mergePolicy'),
    includeSegmentNames: z.boolean().default(false),
    includeSegmentTimestamps: z.boolean().default(false),
    onExhausted: z.enum(['fail', 'deadLetter']).default('fail'),
    timeoutSeconds: z.number().positive().max(600).default(30),
    concurrency: z.number().int().min(1).max(64).default(4),
    maxRequestsPerSecond: z.number().positive().max(10_000).default(100),
  })
  .strict();

const httpDataflowObject = z
  .object({
    name: z.string().min(1),
    id: z.string().regex(ID, 'use letters, digits, ".", "_" or "-" (at most 128), starting with a letter or digit'),
    timezone: z.string().default('UTC'),
    profileKey: z.string().default('profileId'),
    source: z.object({ snapshots: z.string().min(1), s3: s3Options.optional() }).strict(),
    state: z
      .object({
        path: z.string().min(1),
        s3: s3Options.optional(),
        keepHistoryDays,
      })
      .strict(),
    s3: s3Options.optional(),
    destination,
    mapping: z.array(z.object({ source: z.string().min(1) }).strict()).default([]),
    audiences: z.array(z.object({ id: z.string().min(1) }).strict()).min(1),
  })
  .strict();

export type HttpDataflow = z.output<typeof httpDataflowObject>;
export type HttpDestination = HttpDataflow['destination'];

type Issue = { path: (string | number)[]; message: string };

/** Keys of the file destination that mean nothing to an HTTP dataflow. */
const FILE_ONLY_KEYS = ['format', 'folderPath', 'fileName', 'mandatory', 'dedupKeys', 'customText'];
const SECRET_FIELDS: Record<string, string[]> = {
  bearer: ['token'],
  oauth2ClientCredentials: ['clientSecret'],
  oauth2Password: ['clientSecret', 'password'],
};

const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);
const asArray = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);

/** True when the host is a loopback address or name (plain http:// is allowed only there). */
export function isLoopbackHost(hostname: string): boolean {
  const host = hostname.replace(/^\[|\]$/g, '').toLowerCase();
  if (host === 'localhost' || host.endsWith('.localhost')) return true;
  if (isIP(host) === 4) return host.startsWith('127.');
  if (isIP(host) === 6) return host === '::1' || host === '0:0:0:0:0:0:0:1';
  return false;
}

function checkUrl(value: unknown, at: (string | number)[], what: string): Issue[] {
  if (typeof value !== 'string') return [];
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return [{ path: at, message: `"${value}" is not an absolute URL (like https://hooks.example.com/profiles)` }];
  }
  if (url.protocol === 'https:') return [];
  if (url.protocol === 'http:' && isLoopbackHost(url.hostname)) return [];
  if (url.protocol === 'http:')
    return [
      {
        path: at,
        message: `${what} must use https:// (plain http:// is allowed only to a loopback address such as 127.0.0.1)`,
      },
    ];
  return [{ path: at, message: `${what} must be an https:// URL, not ${url.protocol}` }];
}

function checkCrossFields(raw: Record<string, unknown>): Issue[] {
  const issues: Issue[] = [];
  for (const key of FILE_ONLY_KEYS) {
    if (key in raw)
      issues.push({
        path: [key],
        message: `"${key}" is a file-destination key; an HTTP dataflow (destination.type: http) does not take it. Remove it`,
      });
  }
  const dest = raw['destination'];
  if (isObject(dest)) {
    if ('path' in dest)
      issues.push({
        path: ['destination', 'path'],
        message:
          'an HTTP destination has an endpoint, not a path; remove destination.path (state.path holds the state)',
      });
    issues.push(...checkUrl(dest['endpoint'], ['destination', 'endpoint'], 'destination.endpoint'));
    const a = dest['auth'];
    if (isObject(a)) {
      if ('tokenUrl' in a)
        issues.push(...checkUrl(a['tokenUrl'], ['destination', 'auth', 'tokenUrl'], 'destination.auth.tokenUrl'));
      for (const f of SECRET_FIELDS[String(a['type'])] ?? []) {
        if (typeof a[f] === 'string' || typeof a[f] === 'number') {
          issues.push({
            path: ['destination', 'auth', f],
            message: `a literal secret is not allowed in the config; write { env: NAME } (an environment variable) or { file: PATH } (a file holding it)`,
          });
        }
      }
    }
    if (typeof dest['headers'] === 'string')
      issues.push(...checkPairs(dest['headers'], ',', ':', ['destination', 'headers'], 'h1:v1,h2:v2'));
    if (typeof dest['queryParameters'] === 'string')
      issues.push(...checkPairs(dest['queryParameters'], '&', '=', ['destination', 'queryParameters'], 'a=1&b=2'));
    const headers = isObject(dest['headers'])
      ? Object.keys(dest['headers'])
      : typeof dest['headers'] === 'string'
        ? parsePairs(dest['headers'], ',', ':').map(([k]) => k)
        : [];
    for (const h of headers) {
      if (/^(authorization|idempotency-key|content-type|content-length)$/i.test(h)) {
        issues.push({
          path: ['destination', 'headers'],
          message: `header "${h}" is set by audex (auth, idempotency key, content type); remove it from headers`,
        });
      }
    }
  }
  const paths: string[] = [];
  asArray(raw['mapping']).forEach((m, i) => {
    if (!isObject(m)) return;
    for (const key of ['target', 'type', 'transform']) {
      if (key in m)
        issues.push({
          path: ['mapping', i, key],
          message: `"${key}" is a file-destination mapping key; an HTTP mapping takes XDM attribute paths only ({ source: person.name.firstName })`,
        });
    }
    const source = m['source'];
    if (typeof source !== 'string') return;
    const ref = parseSourcePath(source);
    if (typeof ref === 'string') issues.push({ path: ['mapping', i, 'source'], message: ref });
    else if (ref.kind !== 'attribute') {
      issues.push({
        path: ['mapping', i, 'source'],
        message: `"${source}": an HTTP mapping takes XDM attribute paths only; identities and memberships are always sent`,
      });
    } else {
      const overlap = paths.findIndex((p) => p === source || p.startsWith(`${source}.`) || source.startsWith(`${p}.`));
      if (overlap >= 0)
        issues.push({
          path: ['mapping', i, 'source'],
          message: `"${source}" overlaps mapping[${overlap}] "${paths[overlap]}"; map each attribute once`,
        });
    }
    paths.push(source);
  });
  const ids = new Map<string, number>();
  asArray(raw['audiences']).forEach((a, i) => {
    if (!isObject(a)) return;
    for (const key of ['mode', 'schedule']) {
      if (key in a)
        issues.push({
          path: ['audiences', i, key],
          message: `"${key}" is a file-destination key; an HTTP dataflow delivers every new snapshot (write { id } only)`,
        });
    }
    const id = a['id'];
    if (typeof id !== 'string') return;
    const prev = ids.get(id);
    if (prev !== undefined)
      issues.push({
        path: ['audiences', i, 'id'],
        message: `audience "${id}" is mapped twice (also audiences[${prev}])`,
      });
    ids.set(id, i);
  });
  if (!isObject(raw['state']))
    issues.push({
      path: ['state'],
      message:
        'state.path is required for an HTTP dataflow (there is no file destination to hold the state); e.g. state: { path: ./state/<id> }',
    });
  return issues;
}

export function parsePairs(text: string, between: string, within: string): [string, string][] {
  return text
    .split(between)
    .map((p) => p.trim())
    .filter(Boolean)
    .map((p) => {
      const at = p.indexOf(within);
      return at < 0 ? [p, ''] : [p.slice(0, at).trim(), p.slice(at + 1).trim()];
    });
}

function checkPairs(text: string, between: string, within: string, at: (string | number)[], example: string): Issue[] {
  const bad = text
    .split(between)
    .map((p) => p.trim())
    .filter((p) => p && p.indexOf(within) <= 0);
  return bad.length
    ? [
        {
          path: at,
          message: `"${bad[0]}" is not a ${within === ':' ? 'name:value' : 'name=value'} pair; write them like "${example}"`,
        },
      ]
    : [];
}

export type HttpValidationResult = { ok: true; dataflow: HttpDataflow } | { ok: false; issues: Issue[] };

/** Validates a raw HTTP dataflow: the schema and the cross-field rules, every problem at once. */
export function validateHttpDataflow(raw: Record<string, unknown>): HttpValidationResult {
  const stripped = Object.fromEntries(Object.entries(raw).filter(([k]) => !FILE_ONLY_KEYS.includes(k)));
  const parsed = httpDataflowObject.safeParse(stripped);
  // The cross-field rules word some problems better than the schema (a literal secret, a
  // file-only key): the schema's issue at the same path is then left out.
  const issues: Issue[] = checkCrossFields(raw);
  const explained = new Set(issues.map((i) => i.path.join('.')));
  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      const path = issue.path.filter((k): k is string | number => typeof k !== 'symbol');
      const found: Issue[] =
        issue.code === 'unrecognized_keys'
          ? issue.keys.map((key) => ({ path: [...path, key], message: 'unknown key; check its spelling and nesting' }))
          : [{ path, message: issue.message }];
      for (const f of found) if (!explained.has(f.path.join('.'))) issues.push(f);
    }
  }
  return parsed.success && issues.length === 0 ? { ok: true, dataflow: parsed.data } : { ok: false, issues };
}

/** The headers and query parameters as ordered pairs (both the map and the string forms). */
export function headerPairs(dest: HttpDestination): [string, string][] {
  return typeof dest.headers === 'string' ? parsePairs(dest.headers, ',', ':') : Object.entries(dest.headers);
}

export function queryPairs(dest: HttpDestination): [string, string][] {
  return typeof dest.queryParameters === 'string'
    ? parsePairs(dest.queryParameters, '&', '=')
    : Object.entries(dest.queryParameters);
}

/** The endpoint with the configured query parameters merged into its own query. */
export function endpointUrl(dest: HttpDestination): string {
  const url = new URL(dest.endpoint);
  for (const [k, v] of queryPairs(dest)) url.searchParams.append(k, v);
  return url.toString();
}

/** Messages per request: `single` sends one bare object each. */
export function messagesPerRequest(dest: HttpDestination): number {
  if (dest.envelope === 'single') return 1;
  return dest.aggregation.policy === 'bestEffort' ? dest.aggregation.maxUsersPerRequest : dest.aggregation.maxRecords;
}

/** The JSON Schema of an HTTP API dataflow config (`audex schema --http`), from the schema that validates it. */
export function httpConfigJsonSchema(): unknown {
  return z.toJSONSchema(httpDataflowObject, { io: 'input' });
}
