// `audex init`: a commented starter config and a tiny sample snapshot, such that
// `audex validate` and `audex run` succeed on them straight away.
import { mkdir, writeFile, access } from 'node:fs/promises';
import path from 'node:path';
import { ConfigError } from '../../errors.js';
import type { CommandOptions } from '../program.js';
import type { Reporter } from '../reporter.js';
import { initDatasets } from './init-datasets.js';

export type InitFlags = CommandOptions<'init'>;

const CONFIG_NAME = 'audex.yaml';
const SNAPSHOT_ID = 'sample-20260101';

const STARTER_CONFIG = `# audex dataflow: one destination, its file format, the column mapping and the audiences
# exported to it. Relative paths resolve against this file's folder.
# Editor support: \`audex schema > audex.schema.json\`, then add to the top of this file:
#   # yaml-language-server: $schema=./audex.schema.json

name: My Destination               # -> %DESTINATION_NAME% (spaces become _)
id: my-destination                 # stable id: state, manifests and run ids hang off it
timezone: UTC                      # IANA zone for schedules and date tokens

source:
  snapshots: ./snapshots           # <snapshotId>/_snapshot.json + profiles/part-*.ndjson|.ndjson.gz|.parquet
destination:
  path: ./exports                  # state goes to ./exports/_audex/my-destination unless state.path is set

format:
  type: csv                        # csv | json | parquet
  compression: gzip                # none | gzip
  maxRowsPerFile: 5000000          # larger exports are split into _2, _3 ... parts
  manifest: true                   # manifest-<id>-<runId>.json next to the files, written last
  emptyExport: write               # write a header-only file when nobody qualifies, or skip

folderPath: "%SEGMENT_NAME%"
fileName: "%DESTINATION_NAME%_%SEGMENT_ID%_%DATETIME(YYYYMMdd_HHmmss)%"   # must contain %SEGMENT_ID%

mapping:                           # column order = this order
  - { source: identityMap.email, target: email }       # one row per email; also the dedup key
  - { source: person.name.firstName, target: first_name }
  - { source: loyalty.tier, target: tier }
  - { source: segmentMembership.status, target: status }   # mapped, so incremental exits are written
mandatory: [loyalty.tier]          # profiles without these are excluded (and counted)

audiences:
  - id: aud-sample
    mode: incremental              # first run: everyone; then only enters and exits
    schedule: { frequency: daily, startTime: "06:00", startDate: 2026-01-01 }
`;

const SAMPLE_PROFILES = [
  {
    profileId: 'p-1',
    identityMap: { email: [{ id: 'ann@example.com' }] },
    person: { name: { firstName: 'Ann' } },
    loyalty: { tier: 'gold' },
    segmentMembership: { ups: { 'aud-sample': { status: 'realized', lastQualificationTime: '2025-12-31T20:00:00Z' } } },
  },
  {
    profileId: 'p-2',
    identityMap: { email: [{ id: 'bob@example.com' }, { id: 'bob@work.example' }] },
    person: { name: { firstName: 'Bob' } },
    loyalty: { tier: 'silver' },
    segmentMembership: { ups: { 'aud-sample': { status: 'existing', lastQualificationTime: '2025-11-02T08:00:00Z' } } },
  },
  {
    profileId: 'p-3',
    identityMap: { email: [{ id: 'cy@example.com' }] },
    person: { name: { firstName: 'Cy' } },
    loyalty: { tier: 'gold' },
    segmentMembership: { ups: { 'aud-sample': { status: 'exited', lastQualificationTime: '2025-12-30T10:00:00Z' } } },
  },
];

async function exists(file: string): Promise<boolean> {
  return access(file).then(
    () => true,
    () => false,
  );
}

export async function initCommand(flags: InitFlags, reporter: Reporter): Promise<number> {
  if (flags.datasets) return initDatasets(flags.dir, reporter);
  const dir = path.resolve(flags.dir);
  const configFile = path.join(dir, CONFIG_NAME);
  const snapshotDir = path.join(dir, 'snapshots', SNAPSHOT_ID);
  for (const file of [configFile, snapshotDir]) {
    if (await exists(file))
      throw new ConfigError(
        `${file} already exists; audex init never overwrites. Run it in an empty folder or pass --dir`,
      );
  }
  await mkdir(path.join(snapshotDir, 'profiles'), { recursive: true });
  await writeFile(
    path.join(snapshotDir, 'profiles', 'part-00000.ndjson'),
    SAMPLE_PROFILES.map((p) => JSON.stringify(p)).join('\n') + '\n',
  );
  await writeFile(
    path.join(snapshotDir, '_snapshot.json'),
    `${JSON.stringify({ snapshotId: SNAPSHOT_ID, evaluatedAt: '2026-01-01T05:00:00Z', audiences: [{ id: 'aud-sample', name: 'Sample Audience', profileType: 'person' }] }, null, 2)}\n`,
  );
  await writeFile(configFile, STARTER_CONFIG);
  reporter.out(
    [
      `wrote ${configFile}`,
      `wrote ${path.join(snapshotDir, '_snapshot.json')} and profiles/part-00000.ndjson`,
      '',
      'Next:',
      `  audex validate --config ${path.relative(process.cwd(), configFile) || CONFIG_NAME} --snapshot ${SNAPSHOT_ID}`,
      `  audex plan --config ${path.relative(process.cwd(), configFile) || CONFIG_NAME}`,
      `  audex run --config ${path.relative(process.cwd(), configFile) || CONFIG_NAME}`,
    ].join('\n'),
  );
  return 0;
}
