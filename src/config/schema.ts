// The dataflow config (README "The dataflow config"): one zod schema gives the types, the defaults, the
// validation (every problem at once, as `path: message`) and the JSON Schema for editors.
import { IANAZone } from 'luxon';
import * as z from 'zod';
import { findTemplateProblems } from '../naming/names.js';
import { utcZone } from '../schedule/slots.js';
import { defaultTargetName, parseSourcePath, type SourceRef } from './sources.js';

const DATE = /^\d{4}-\d{2}-\d{2}$/;
const DEFAULT_FILE_NAME = '%DESTINATION_NAME%_%SEGMENT_ID%_%DATETIME(YYYYMMdd_HHmmss)%';
const TIME = /^([01]\d|2[0-3]):[0-5]\d$/;
const ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

const isoDate = z
  .string()
  .regex(DATE, 'expected a date as YYYY-MM-DD')
  .refine(
    (s) => !Number.isNaN(Date.parse(`${s}T00:00:00Z`)) && new Date(`${s}T00:00:00Z`).toISOString().startsWith(s),
    'not a real calendar date',
  );

/** `state.keepHistoryDays`, the same for every kind of dataflow (README "What is kept, for how long, and how much space"). */
export const keepHistoryDays = z
  .number()
  .int()
  .min(1)
  .optional()
  .describe('remove history records whose logical time is older than this many days (default: keep all)');

export const s3Options = z
  .object({
    region: z.string().min(1).optional(),
    endpoint: z.string().url().optional(),
    forcePathStyle: z.boolean().optional(),
    sse: z.enum(['AES256', 'aws:kms']).optional(),
    kmsKeyId: z.string().min(1).optional(),
  })
  .strict()
  .describe('S3 client options; credentials come from the standard AWS chain, never from this file');

const location = (what: string) =>
  z
    .object({
      path: z.string().min(1).describe(`${what}: a local folder or s3://bucket/prefix`),
      s3: s3Options.optional(),
    })
    .strict();

const csvOptions = z
  .object({
    delimiter: z.enum([',', ';', ':', '|', '\t']).default(','),
    quote: z.enum(['"', 'none']).default('"').describe('"\\"" or "none"'),
    escape: z.enum(['\\', "'"]).default('\\'),
    emptyValue: z.enum(['', '""', 'null']).default('').describe('how an empty string is written'),
    nullValue: z.enum(['', '""', 'null']).default('').describe('how a missing value is written'),
    header: z.boolean().default(true),
    quoteAll: z.boolean().default(false),
  })
  .strict();

// README "Encrypted files". The key itself is read (and checked) by src/config/load-encryption-key.ts.
const encryptionOptions = z
  .object({
    type: z.literal('pgp'),
    publicKey: z
      .object({
        file: z
          .string()
          .min(1)
          .optional()
          .describe('an OpenPGP public key file (armored or binary), relative to this config'),
        env: z
          .string()
          .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'expected an environment variable name')
          .optional()
          .describe('an environment variable holding the armored public key'),
      })
      .strict()
      .refine(
        (k) => (k.file === undefined) !== (k.env === undefined),
        'give exactly one of { file: PATH } or { env: NAME }',
      ),
  })
  .strict()
  .describe('encrypt every data file for this recipient (OpenPGP), after compression; names get ".gpg"');

const formatOptions = z
  .object({
    type: z.enum(['csv', 'json', 'parquet']),
    compression: z.enum(['none', 'gzip']).default('none'),
    csv: csvOptions.prefault({}),
    maxRowsPerFile: z.number().int().min(1).max(10_000_000).default(5_000_000),
    manifest: z.boolean().default(true),
    emptyExport: z.enum(['write', 'skip']).default('write'),
    encryption: encryptionOptions.optional(),
  })
  .strict();

const mappingEntry = z
  .object({
    source: z.string().min(1),
    target: z.string().min(1).max(255).optional(),
    type: z
      .enum(['string', 'int64', 'double', 'boolean', 'timestamp'])
      .default('string')
      .describe('Parquet column type'),
    transform: z.enum(['sha256']).optional().describe('sha256: lowercase + trim, then hex SHA-256'),
  })
  .strict();

export const FREQUENCIES = [
  'once',
  'daily',
  'every3Hours',
  'every6Hours',
  'every8Hours',
  'every12Hours',
  'weekly',
  'monthly',
] as const;

const schedule = z
  .object({
    frequency: z.enum(FREQUENCIES),
    trigger: z.enum(['schedule', 'afterEvaluation']).default('schedule'),
    startDate: isoDate.optional(),
    startTime: z.string().regex(TIME, 'expected HH:mm (24-hour)').default('00:00'),
    endDate: isoDate.optional().describe('exclusive: no slot on or after it'),
  })
  .strict();

const audience = z
  .object({
    id: z.string().min(1),
    mode: z.enum(['full', 'incremental']),
    schedule,
  })
  .strict();

const dataflowObject = z
  .object({
    name: z.string().min(1).describe('-> %DESTINATION_NAME% (spaces become _)'),
    id: z.string().regex(ID, 'use letters, digits, ".", "_" or "-" (at most 128), starting with a letter or digit'),
    timezone: z
      .string()
      .default('UTC')
      .refine(
        (tz) => utcZone(tz) !== null || IANAZone.isValidZone(tz),
        'not an IANA time zone name (like UTC or Europe/Berlin)',
      ),
    customText: z.string().optional(),
    profileKey: z.string().default('profileId'),
    source: z.object({ snapshots: z.string().min(1), s3: s3Options.optional() }).strict(),
    destination: location('where export files go').extend({
      type: z
        .literal('files')
        .optional()
        .describe('absent or files: files (this schema); http: the HTTP API destination'),
    }),
    state: location('where audex keeps cursors, baselines, history and the lock')
      .extend({
        keepBaselines: z
          .number()
          .int()
          .min(1)
          .max(1000)
          .default(2)
          .describe(
            'baselines kept per incremental audience after each commit (the current one and older ones, for audex reset --to)',
          ),
        keepHistoryDays,
      })
      .partial({ path: true })
      .optional(),
    s3: s3Options.optional(),
    format: formatOptions,
    folderPath: z.string().default(''),
    fileName: z.string().default(DEFAULT_FILE_NAME),
    mapping: z.array(mappingEntry).min(1),
    mandatory: z.array(z.string()).default([]),
    dedupKeys: z.array(z.string()).max(2).default([]),
    audiences: z.array(audience).min(1),
  })
  .strict();

type Issue = { path: (string | number)[]; message: string };

// Cross-field rules read the raw input defensively, so they are reported even when some
// other field is missing or mistyped (every problem at once).
const asArray = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);
const asString = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
const field = (v: unknown, key: string): unknown =>
  v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>)[key] : undefined;

function checkCrossFields(raw: unknown): Issue[] {
  const issues: Issue[] = [];
  const refs = new Map<string, SourceRef>();
  const keyPath = asString(field(raw, 'profileKey')) ?? 'profileId';
  const key = parseSourcePath(keyPath);
  if (typeof key === 'string' || key.kind !== 'attribute') {
    issues.push({
      path: ['profileKey'],
      message: typeof key === 'string' ? key : 'the profile key must be an attribute path',
    });
  }
  const targets = new Map<string, number>();
  // Parquet column names are matched without case by most readers (and the engine would
  // rename the second one): targets differing only in case are one column there.
  const parquet = field(field(raw, 'format'), 'type') === 'parquet';
  const folded = new Map<string, number>();
  const namespaces: string[] = [];
  asArray(field(raw, 'mapping')).forEach((m, i) => {
    const source = asString(field(m, 'source'));
    if (source === undefined) return;
    const ref = parseSourcePath(source);
    if (typeof ref === 'string') {
      issues.push({ path: ['mapping', i, 'source'], message: ref });
      return;
    }
    refs.set(source, ref);
    if (ref.kind === 'identity' && !namespaces.includes(ref.namespace)) namespaces.push(ref.namespace);
    const target = asString(field(m, 'target')) ?? defaultTargetName(source);
    const seen = targets.get(target);
    const sameButCase = folded.get(target.toLowerCase());
    if (seen !== undefined)
      issues.push({
        path: ['mapping', i, 'target'],
        message: `duplicate target name "${target}" (also mapping[${seen}])`,
      });
    else if (parquet && sameButCase !== undefined) {
      issues.push({
        path: ['mapping', i, 'target'],
        message: `target "${target}" differs from mapping[${sameButCase}]'s only in case; Parquet column names must differ in more than case`,
      });
    } else targets.set(target, i);
    folded.set(target.toLowerCase(), folded.get(target.toLowerCase()) ?? i);
  });
  if (namespaces.length > 1) {
    issues.push({
      path: ['mapping'],
      message: `at most one identity namespace per dataflow; found ${namespaces.map((n) => `identityMap.${n}`).join(', ')}`,
    });
  }
  asArray(field(raw, 'mandatory')).forEach((m, i) => {
    if (typeof m === 'string' && !refs.has(m))
      issues.push({
        path: ['mandatory', i],
        message: `"${m}" is not a mapped source; mandatory fields must be mapped`,
      });
  });
  const dedupKeys = asArray(field(raw, 'dedupKeys')).filter((k): k is string => typeof k === 'string');
  const ns = namespaces[0];
  if (ns !== undefined) {
    const bad = dedupKeys.filter((k) => k !== `identityMap.${ns}`);
    if (bad.length > 0) {
      issues.push({
        path: ['dedupKeys'],
        message: `identityMap.${ns} is mapped, so it is the dedup key; remove ${bad.join(', ')}`,
      });
    }
  } else {
    dedupKeys.forEach((k, i) => {
      const ref = refs.get(k);
      if (!ref)
        issues.push({ path: ['dedupKeys', i], message: `"${k}" is not a mapped source; dedup keys must be mapped` });
      else if (ref.kind !== 'attribute')
        issues.push({
          path: ['dedupKeys', i],
          message: `"${k}": a dedup key is one identity namespace or one or two attributes`,
        });
    });
  }
  const folderPath = asString(field(raw, 'folderPath')) ?? '';
  const fileName = asString(field(raw, 'fileName')) ?? DEFAULT_FILE_NAME;
  for (const e of findTemplateProblems(folderPath, fileName).errors)
    issues.push({ path: [e.field], message: e.message });
  const ids = new Map<string, number>();
  asArray(field(raw, 'audiences')).forEach((a, i) => {
    const id = asString(field(a, 'id'));
    if (id === undefined) return;
    const prev = ids.get(id);
    if (prev !== undefined)
      issues.push({
        path: ['audiences', i, 'id'],
        message: `audience "${id}" is mapped twice (also audiences[${prev}])`,
      });
    ids.set(id, i);
    issues.push(...checkSchedule(asString(field(a, 'mode')), field(a, 'schedule'), ['audiences', i]));
  });
  return issues;
}

const INCREMENTAL_FREQUENCIES = new Set(['daily', 'every3Hours', 'every6Hours', 'every8Hours', 'every12Hours']);

function checkSchedule(mode: string | undefined, schedule: unknown, at: (string | number)[]): Issue[] {
  const issues: Issue[] = [];
  const frequency = asString(field(schedule, 'frequency'));
  const trigger = asString(field(schedule, 'trigger'));
  const startDate = asString(field(schedule, 'startDate'));
  const endDate = asString(field(schedule, 'endDate'));
  if (frequency === undefined) return issues;
  if (mode === 'incremental' && !INCREMENTAL_FREQUENCIES.has(frequency)) {
    issues.push({
      path: [...at, 'schedule', 'frequency'],
      message: `incremental exports run daily or every 3/6/8/12 hours, not "${frequency}"`,
    });
  }
  if (trigger === 'afterEvaluation' && (mode !== 'full' || frequency !== 'daily')) {
    issues.push({
      path: [...at, 'schedule', 'trigger'],
      message: 'afterEvaluation is for full exports with frequency daily',
    });
  }
  if (['once', 'weekly', 'monthly'].includes(frequency) && !startDate) {
    issues.push({ path: [...at, 'schedule', 'startDate'], message: `frequency "${frequency}" needs a startDate` });
  }
  if (startDate && endDate && endDate <= startDate) {
    issues.push({
      path: [...at, 'schedule', 'endDate'],
      message: `endDate ${endDate} is not after startDate ${startDate} (endDate is exclusive)`,
    });
  }
  return issues;
}

export type Dataflow = z.output<typeof dataflowObject>;

export type ValidationResult = { ok: true; dataflow: Dataflow } | { ok: false; issues: Issue[] };

/** Validates a raw config: the schema and the cross-field rules, every problem at once. */
export function validateDataflow(raw: unknown): ValidationResult {
  const parsed = dataflowObject.safeParse(raw);
  const issues: Issue[] = [];
  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      const path = issue.path.filter((k): k is string | number => typeof k !== 'symbol');
      // One problem per unknown key, at the key itself, so its line can be shown.
      if (issue.code === 'unrecognized_keys')
        for (const key of issue.keys)
          issues.push({ path: [...path, key], message: 'unknown key; check its spelling and nesting' });
      else issues.push({ path, message: issue.message });
    }
  }
  const seen = new Set(issues.map((i) => `${i.path.join('.')}|${i.message}`));
  for (const issue of checkCrossFields(raw))
    if (!seen.has(`${issue.path.join('.')}|${issue.message}`)) issues.push(issue);
  return parsed.success && issues.length === 0 ? { ok: true, dataflow: parsed.data } : { ok: false, issues };
}
export type AudienceConfig = Dataflow['audiences'][number];
export const dataflowSchema = dataflowObject;
export type ScheduleConfig = AudienceConfig['schedule'];
export type FormatConfig = Dataflow['format'];
export type CsvOptions = FormatConfig['csv'];
export type MappingConfig = Dataflow['mapping'][number];
export type S3Options = z.output<typeof s3Options>;

export function configJsonSchema(): unknown {
  return z.toJSONSchema(dataflowObject, { io: 'input' });
}
