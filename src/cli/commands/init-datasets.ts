// `audex init --datasets`: a commented dataset dataflow starter (README "Export datasets") and one sample
// batch, such that `audex validate`, `plan` and `run` succeed on them straight away.
import { access, mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { ConfigError } from '../../errors.js';
import type { Reporter } from '../reporter.js';

const CONFIG_NAME = 'audex.yaml';
const DATASET_ID = 'ds-sample';
const BATCH_ID = 'batch-20260101-0001';

const STARTER_CONFIG = `# audex dataset dataflow: copies dataset batches to files, incrementally. The first export
# of a dataset is a backfill of every complete batch; each later one holds the batches
# added since. Relative paths resolve against this file's folder.

name: My Dataset Export            # -> %DESTINATION_NAME% in folderPath (spaces become _)
id: my-dataset-export              # stable id: state, manifests, run ids and file names hang off it

source:
  datasets: ./datasets             # <datasetId>/<batchId>/_batch.json (written last) + part-*.ndjson|.ndjson.gz|.parquet
destination:
  path: ./exports                  # state goes to ./exports/_audex/my-dataset-export unless state.path is set

format:
  type: json                       # json (the records as they are, one a line) | parquet
  compression: gzip                # none | gzip  (-> .json.gz / .gz.parquet)
  maxRowsPerFile: 5000000          # larger exports are split into part-00000, part-00001 ...
  manifest: true                   # manifest-<id>-<runId>.json in each export folder, written last

# Files go to <destination>/<folderPath>/<datasetId>/exportTime=<YYYYMMDDHHmm>/
#   part-<nnnnn>-<hash>-c000.json.gz   (names are fixed, unique and stable across retries)
folderPath: "aep-datasets"

datasets:                          # schedules are in UTC: daily, every3Hours, every6Hours, every8Hours, every12Hours
  - id: ${DATASET_ID}
    schedule: { frequency: daily, startTime: "06:00", startDate: 2026-01-01 }
`;

const SAMPLE_RECORDS = [
  {
    orderId: 'o-1001',
    customer: 'ann@example.com',
    total: 42.5,
    items: [{ sku: 'A-1', qty: 2 }],
    placedAt: '2025-12-31T20:00:00Z',
  },
  {
    orderId: 'o-1002',
    customer: 'bob@example.com',
    total: 7,
    items: [{ sku: 'B-7', qty: 1 }],
    placedAt: '2026-01-01T01:30:00Z',
  },
];

export async function initDatasets(folder: string, reporter: Reporter): Promise<number> {
  const dir = path.resolve(folder);
  const configFile = path.join(dir, CONFIG_NAME);
  const batchDir = path.join(dir, 'datasets', DATASET_ID, BATCH_ID);
  for (const file of [configFile, batchDir]) {
    if (
      await access(file).then(
        () => true,
        () => false,
      )
    )
      throw new ConfigError(
        `${file} already exists; audex init never overwrites. Run it in an empty folder or pass --dir`,
      );
  }
  await mkdir(batchDir, { recursive: true });
  await writeFile(
    path.join(batchDir, 'part-00000.ndjson'),
    SAMPLE_RECORDS.map((r) => JSON.stringify(r)).join('\n') + '\n',
  );
  await writeFile(
    path.join(batchDir, '_batch.json'),
    `${JSON.stringify({ batchId: BATCH_ID, committedAt: '2026-01-01T02:00:00Z' }, null, 2)}\n`,
  );
  await writeFile(configFile, STARTER_CONFIG);
  const shown = path.relative(process.cwd(), configFile) || CONFIG_NAME;
  reporter.out(
    [
      `wrote ${configFile}`,
      `wrote ${path.join(batchDir, '_batch.json')} and part-00000.ndjson`,
      '',
      'Next:',
      `  audex validate --config ${shown}`,
      `  audex plan --config ${shown}`,
      `  audex run --config ${shown}`,
    ].join('\n'),
  );
  return 0;
}
