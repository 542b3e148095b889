// The dataflow config (SPEC §2.3): one zod schema gives the types, the defaults, the
// validation (every problem at once, as `path: message`) and the JSON Schema for editors.
import { IANAZone } from 'luxon';
import { z } from 'zod';
import { findTemplateProblems } from '../naming/names.js';
import { defaultTargetName, parseSourcePath, type SourceRef } from './sources.js';

const DATE = /^\d{4}-\d{2}-\d{2}$/;
const TIME = /^([01]\d|2[0-3]):[0-5]\d$/;
const ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

const isoDate = z
  .string()
  .regex(DATE, 'expected a date as YYYY-MM-DD')
  .refine((s) => !Number.isNaN(Date.parse(`${s}T00:00:00Z`)) && new Date(`${s}T00:00:00Z`).toISOString().startsWith(s), 'not a real calendar date');

const s3Options = z
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
    .object({ path: z.string().min(1).describe(`${what}: a local folder or s3://bucket/prefix`), s3: s3Options.optional() })
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

const formatOptions = z
  .object({
    type: z.enum(['csv', 'json', 'parquet']),
    compression: z.enum(['none', 'gzip']).default('none'),
    csv: csvOptions.prefault({}),
    maxRowsPerFile: z.number().int().min(1).max(10_000_000).default(5_000_000),
    manifest: z.boolean().default(true),
    emptyExport: z.enum(['write', 'skip']).default('write'),
  })
  .strict();

const mappingEntry = z
  .object({
    source: z.string().min(1),
    target: z.string().min(1).max(255).optional(),
    type: z.enum(['string', 'int64', 'double', 'boolean', 'timestamp']).default('string').describe('Parquet column type'),
    transform: z.enum(['sha256']).optional().describe('sha256: lowercase + trim, then hex SHA-256'),
  })
  .strict();

export const FREQUENCIES = ['once', 'daily', 'every3Hours', 'every6Hours', 'every8Hours', 'every12Hours', 'weekly', 'monthly'] as const;

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
    timezone: z.string().default('UTC').refine((tz) => IANAZone.isValidZone(tz), 'not an IANA time zone name (like UTC or Europe/Berlin)'),
    customText: z.string().optional(),
    profileKey: z.string().default('profileId'),
    source: z.object({ snapshots: z.string().min(1), s3: s3Options.optional() }).strict(),
    destination: location('where export files go'),
    state: location('where audex keeps cursors, baselines, history and the lock').partial({ path: true }).optional(),
    s3: s3Options.optional(),
    format: formatOptions,
    folderPath: z.string().default(''),
    fileName: z.string().default('%DESTINATION_NAME%_%SEGMENT_ID%_%DATETIME(YYYYMMdd_HHmmss)%'),
    mapping: z.array(mappingEntry).min(1),
    mandatory: z.array(z.string()).default([]),
    dedupKeys: z.array(z.string()).max(2).default([]),
    audiences: z.array(audience).min(1),
  })
  .strict();

type Issue = { path: (string | number)[]; message: string };

function checkCrossFields(c: z.output<typeof dataflowObject>): Issue[] {
  const issues: Issue[] = [];
  const refs = new Map<string, SourceRef>();
  const key = parseSourcePath(c.profileKey);
  if (typeof key === 'string' || key.kind !== 'attribute') {
    issues.push({ path: ['profileKey'], message: typeof key === 'string' ? key : 'the profile key must be an attribute path' });
  }
  const targets = new Map<string, number>();
  const namespaces: string[] = [];
  c.mapping.forEach((m, i) => {
    const ref = parseSourcePath(m.source);
    if (typeof ref === 'string') {
      issues.push({ path: ['mapping', i, 'source'], message: ref });
      return;
    }
    refs.set(m.source, ref);
    if (ref.kind === 'identity' && !namespaces.includes(ref.namespace)) namespaces.push(ref.namespace);
    const target = m.target ?? defaultTargetName(m.source);
    const seen = targets.get(target);
    if (seen !== undefined) issues.push({ path: ['mapping', i, 'target'], message: `duplicate target name "${target}" (also mapping[${seen}])` });
    else targets.set(target, i);
  });
  if (namespaces.length > 1) {
    issues.push({ path: ['mapping'], message: `at most one identity namespace per dataflow; found ${namespaces.map((n) => `identityMap.${n}`).join(', ')}` });
  }
  c.mandatory.forEach((m, i) => {
    if (!refs.has(m)) issues.push({ path: ['mandatory', i], message: `"${m}" is not a mapped source; mandatory fields must be mapped` });
  });
  const ns = namespaces[0];
  if (ns !== undefined) {
    const bad = c.dedupKeys.filter((k) => k !== `identityMap.${ns}`);
    if (bad.length > 0) {
      issues.push({ path: ['dedupKeys'], message: `identityMap.${ns} is mapped, so it is the dedup key; remove ${bad.join(', ')}` });
    }
  } else {
    c.dedupKeys.forEach((k, i) => {
      const ref = refs.get(k);
      if (!ref) issues.push({ path: ['dedupKeys', i], message: `"${k}" is not a mapped source; dedup keys must be mapped` });
      else if (ref.kind !== 'attribute') issues.push({ path: ['dedupKeys', i], message: `"${k}": a dedup key is one identity namespace or one or two attributes` });
    });
  }
  const templates = findTemplateProblems(c.folderPath, c.fileName);
  for (const e of templates.errors) issues.push({ path: [e.field], message: e.message });
  const ids = new Map<string, number>();
  c.audiences.forEach((a, i) => {
    const prev = ids.get(a.id);
    if (prev !== undefined) issues.push({ path: ['audiences', i, 'id'], message: `audience "${a.id}" is mapped twice (also audiences[${prev}])` });
    ids.set(a.id, i);
    issues.push(...checkSchedule(a, ['audiences', i]));
  });
  return issues;
}

const INCREMENTAL_FREQUENCIES = new Set(['daily', 'every3Hours', 'every6Hours', 'every8Hours', 'every12Hours']);

function checkSchedule(a: z.output<typeof audience>, at: (string | number)[]): Issue[] {
  const issues: Issue[] = [];
  const s = a.schedule;
  if (a.mode === 'incremental' && !INCREMENTAL_FREQUENCIES.has(s.frequency)) {
    issues.push({ path: [...at, 'schedule', 'frequency'], message: `incremental exports run daily or every 3/6/8/12 hours, not "${s.frequency}"` });
  }
  if (s.trigger === 'afterEvaluation' && (a.mode !== 'full' || s.frequency !== 'daily')) {
    issues.push({ path: [...at, 'schedule', 'trigger'], message: 'afterEvaluation is for full exports with frequency daily' });
  }
  if (['once', 'weekly', 'monthly'].includes(s.frequency) && !s.startDate) {
    issues.push({ path: [...at, 'schedule', 'startDate'], message: `frequency "${s.frequency}" needs a startDate` });
  }
  if (s.startDate && s.endDate && s.endDate <= s.startDate) {
    issues.push({ path: [...at, 'schedule', 'endDate'], message: `endDate ${s.endDate} is not after startDate ${s.startDate} (endDate is exclusive)` });
  }
  return issues;
}

export const dataflowSchema = dataflowObject.superRefine((c, ctx) => {
  for (const issue of checkCrossFields(c)) ctx.addIssue({ code: 'custom', path: issue.path, message: issue.message });
});

export type Dataflow = z.output<typeof dataflowSchema>;
export type AudienceConfig = Dataflow['audiences'][number];
export type ScheduleConfig = AudienceConfig['schedule'];
export type FormatConfig = Dataflow['format'];
export type CsvOptions = FormatConfig['csv'];
export type MappingConfig = Dataflow['mapping'][number];
export type S3Options = z.output<typeof s3Options>;

export function configJsonSchema(): unknown {
  return z.toJSONSchema(dataflowObject, { io: 'input' });
}
