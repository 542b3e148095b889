// The dataset dataflow config (README "Export datasets"): a dataflow with `datasets:` instead of
// `audiences:` copies dataset batches to files. Same conventions as schema.ts: one zod
// schema, every problem at once as `path: message`. What does not apply to datasets
// (CSV, mapping, mandatory, dedup, fileName, modes, triggers, other frequencies, zones
// other than UTC) is reported by name, so a config copied from an audience dataflow
// says exactly what to remove.
import * as z from 'zod';
import { findTemplateProblems } from '../naming/names.js';
import { dataflowSchema } from './schema.js';

const DATE = /^\d{4}-\d{2}-\d{2}$/;
const TIME = /^([01]\d|2[0-3]):[0-5]\d$/;

export const DATASET_FREQUENCIES = ['daily', 'every3Hours', 'every6Hours', 'every8Hours', 'every12Hours'] as const;

const isoDate = z
  .string()
  .regex(DATE, 'expected a date as YYYY-MM-DD')
  .refine((s) => new Date(`${s}T00:00:00Z`).toISOString().startsWith(s), 'not a real calendar date');

const shared = dataflowSchema.shape;

const datasetSchedule = z
  .object({
    frequency: z.enum(DATASET_FREQUENCIES, { message: `dataset exports run ${DATASET_FREQUENCIES.join(', ')}` }),
    startDate: isoDate.optional(),
    startTime: z.string().regex(TIME, 'expected HH:mm (24-hour, UTC)').default('00:00'),
    endDate: isoDate.optional().describe('exclusive: no slot on or after it'),
  })
  .strict();

const dataset = z
  .object({
    id: z
      .string()
      .regex(
        /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/,
        'use letters, digits, ".", "_" or "-" (at most 128), starting with a letter or digit',
      ),
    schedule: datasetSchedule,
  })
  .strict();

const datasetFormat = z
  .object({
    type: z.enum(['json', 'parquet'], { message: 'datasets are exported as json or parquet' }),
    compression: z.enum(['none', 'gzip']).default('none'),
    maxRowsPerFile: z.number().int().min(1).max(10_000_000).default(5_000_000),
    manifest: z.boolean().default(true),
    encryption: shared.format.shape.encryption,
  })
  .strict();

const datasetDataflowObject = z
  .object({
    name: shared.name,
    id: shared.id,
    timezone: z
      .literal('UTC', { message: 'dataset exports are scheduled in UTC; remove timezone or set it to UTC' })
      .default('UTC'),
    customText: shared.customText,
    source: z
      .object({
        datasets: z
          .string()
          .min(1)
          .describe('<datasetId>/<batchId>/{_batch.json, part-*}: a local folder or s3://bucket/prefix'),
        s3: shared.s3,
      })
      .strict(),
    destination: shared.destination,
    state: shared.state,
    s3: shared.s3,
    format: datasetFormat,
    folderPath: z.string().default(''),
    datasets: z.array(dataset).min(1),
  })
  .strict();

export type DatasetDataflow = z.output<typeof datasetDataflowObject>;
export type DatasetConfig = DatasetDataflow['datasets'][number];
export type DatasetFormat = DatasetDataflow['format'];

type Issue = { path: (string | number)[]; message: string };

/** Keys of an audience dataflow that a dataset dataflow refuses, with what to do instead. */
const NOT_FOR_DATASETS: Record<string, string> = {
  audiences: 'a dataflow exports either audiences or datasets; move the audiences to a dataflow of their own',
  mapping: 'dataset records are exported as they are; remove mapping',
  mandatory: 'no fields are mandatory in a dataset export; remove mandatory',
  dedupKeys: 'dataset records are not deduplicated; remove dedupKeys',
  fileName: 'dataset file names are fixed (part-<nnnnn>-<hash>-c000<ext>); remove fileName',
  profileKey: 'dataset records have no profile key; remove profileKey',
};
const NOT_FOR_DATASET_FORMAT: Record<string, string> = {
  csv: 'datasets are exported as json or parquet; remove format.csv',
  emptyExport: 'a slot with no new batch writes no data file (only its manifest); remove emptyExport',
};

const field = (v: unknown, key: string): unknown =>
  v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>)[key] : undefined;
const has = (v: unknown, key: string): boolean => v !== null && typeof v === 'object' && !Array.isArray(v) && key in v;

/** Whether a raw config is a dataset dataflow (it has `datasets:`). */
export function isDatasetConfig(raw: unknown): boolean {
  return has(raw, 'datasets');
}

/** Validates a raw dataset dataflow: the schema and the rules of README "Export datasets", every problem at once. */
export function validateDatasetDataflow(
  raw: unknown,
): { ok: true; dataflow: DatasetDataflow } | { ok: false; issues: Issue[] } {
  const issues: Issue[] = [];
  const refused = new Set<string>();
  for (const [key, message] of Object.entries(NOT_FOR_DATASETS)) {
    if (has(raw, key)) {
      issues.push({ path: [key], message });
      refused.add(key);
    }
  }
  const format = field(raw, 'format');
  for (const [key, message] of Object.entries(NOT_FOR_DATASET_FORMAT)) {
    if (has(format, key)) {
      issues.push({ path: ['format', key], message });
      refused.add(`format.${key}`);
    }
  }
  const datasets = field(raw, 'datasets');
  const ids = new Map<string, number>();
  (Array.isArray(datasets) ? datasets : []).forEach((d, i) => {
    if (has(d, 'mode')) {
      issues.push({
        path: ['datasets', i, 'mode'],
        message: 'dataset exports are always incremental (the first one a backfill); remove mode',
      });
      refused.add(`datasets.${i}.mode`);
    }
    const schedule = field(d, 'schedule');
    if (has(schedule, 'trigger')) {
      issues.push({
        path: ['datasets', i, 'schedule', 'trigger'],
        message: 'dataset exports run on their schedule only; remove trigger',
      });
      refused.add(`datasets.${i}.schedule.trigger`);
    }
    const startDate = field(schedule, 'startDate');
    const endDate = field(schedule, 'endDate');
    if (typeof startDate === 'string' && typeof endDate === 'string' && endDate <= startDate) {
      issues.push({
        path: ['datasets', i, 'schedule', 'endDate'],
        message: `endDate ${endDate} is not after startDate ${startDate} (endDate is exclusive)`,
      });
    }
    const id = field(d, 'id');
    if (typeof id !== 'string') return;
    const prev = ids.get(id);
    if (prev !== undefined)
      issues.push({ path: ['datasets', i, 'id'], message: `dataset "${id}" is listed twice (also datasets[${prev}])` });
    ids.set(id, i);
  });
  const folderPath = field(raw, 'folderPath');
  if (typeof folderPath === 'string') {
    for (const e of findTemplateProblems(folderPath, '%SEGMENT_ID%').errors)
      if (e.field === 'folderPath') issues.push({ path: ['folderPath'], message: e.message });
  }

  const parsed = datasetDataflowObject.safeParse(raw);
  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      const path = issue.path.filter((k): k is string | number => typeof k !== 'symbol');
      if (issue.code === 'unrecognized_keys') {
        for (const key of issue.keys)
          if (!refused.has([...path, key].join('.')))
            issues.push({ path: [...path, key], message: 'unknown key; check its spelling and nesting' });
      } else issues.push({ path, message: issue.message });
    }
  }
  return parsed.success && issues.length === 0 ? { ok: true, dataflow: parsed.data } : { ok: false, issues };
}

/** The JSON Schema of a dataset dataflow, for editor completion (`audex schema --datasets`). */
export function datasetConfigJsonSchema(): unknown {
  return z.toJSONSchema(datasetDataflowObject, { io: 'input' });
}
