// Regenerates fixtures/snapshots: two small, readable snapshots whose profiles each show
// one behaviour of README "What gets exported" (see the `why` notes). Run: node scripts/make-fixtures.js
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { DuckDBInstance } from '@duckdb/node-api';

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'snapshots');

const audiences = [
  { id: 'aud-vip', name: 'VIP Customers', profileType: 'person' },
  { id: 'aud-churn', name: 'Churn Risk', profileType: 'person' },
  { id: 'aud-promo', name: 'Winter Promo', profileType: 'person' },
  { id: 'aud-prospects', name: 'Lookalike Prospects', profileType: 'prospect' },
];

const m = (status, lastQualificationTime) => ({ status, lastQualificationTime });
const ids = (...values) => values.map((id) => ({ id }));

function profile(id, { emails = [], ecids = [], first, last, tier, points, ups }) {
  const p = { profileId: id, identityMap: {} };
  if (emails.length) p.identityMap.email = ids(...emails);
  if (ecids.length) p.identityMap.ecid = ids(...ecids);
  p.person = { name: { firstName: first, lastName: last } };
  if (emails[0]) p.personalEmail = { address: emails[0] };
  p.loyalty = {};
  if (tier !== undefined) p.loyalty.tier = tier;
  if (points !== undefined) p.loyalty.points = points;
  p.segmentMembership = { ups };
  return p;
}

// Snapshot 1: 2026-11-20T05:00:00Z
const s1 = [
  // why: plain member of several audiences, two ecids (not mapped).
  profile('p-001', {
    emails: ['ann@example.com'],
    ecids: ['1457', '6647'],
    first: 'Ann',
    last: 'Lee',
    tier: 'gold',
    points: 1200,
    ups: { 'aud-vip': m('realized', '2026-11-19T10:00:00Z'), 'aud-churn': m('existing', '2026-11-01T00:00:00Z') },
  }),
  // why: exits aud-vip in snapshot 2 (status exited); fractional points.
  profile('p-002', {
    emails: ['bob@example.com'],
    first: 'Bob',
    last: 'Stone',
    tier: 'silver',
    points: 300.5,
    ups: { 'aud-vip': m('existing', '2026-10-02T08:00:00Z'), 'aud-promo': m('realized', '2026-11-19T09:00:00Z') },
  }),
  // why: dedup example "A": shares johndoe@example.com with p-004, qualified earlier -> excluded whole.
  profile('p-003', {
    emails: ['johndoe@example.com', 'john.a@example.com'],
    first: 'John',
    last: 'Doe',
    tier: 'gold',
    points: 900,
    ups: { 'aud-vip': m('realized', '2026-11-18T00:00:00Z') },
  }),
  // why: dedup example "B": qualified later -> wins johndoe@example.com.
  profile('p-004', {
    emails: ['johndoe@example.com'],
    first: 'John',
    last: 'Doe',
    tier: 'platinum',
    points: 5000,
    ups: { 'aud-vip': m('realized', '2026-11-19T12:00:00Z') },
  }),
  // why: no loyalty.tier (mandatory) -> excluded.
  profile('p-005', {
    emails: ['cara@example.com'],
    first: 'Cara',
    last: 'Mills',
    points: 40,
    ups: { 'aud-vip': m('realized', '2026-11-19T11:00:00Z') },
  }),
  // why: CSV-hostile values: comma, quotes, apostrophe, backslash and a line break.
  profile('p-006', {
    emails: ['dan@example.com'],
    first: 'Dan, "D"',
    last: "O'Brien\nJr \\ III",
    tier: 'gold',
    points: 75,
    ups: { 'aud-vip': m('existing', '2026-09-01T00:00:00Z'), 'aud-churn': m('realized', '2026-11-19T07:00:00Z') },
  }),
  // why: no email identity -> excluded (the identity namespace is mandatory).
  profile('p-007', {
    ecids: ['9001'],
    first: 'Eve',
    last: 'Park',
    tier: 'silver',
    points: 10,
    ups: { 'aud-vip': m('realized', '2026-11-19T13:00:00Z') },
  }),
  // why: exited aud-vip now; enters it in snapshot 2.
  profile('p-008', {
    emails: ['finn@example.com'],
    first: 'Finn',
    last: 'Hale',
    tier: 'bronze',
    points: 5,
    ups: { 'aud-vip': m('exited', '2026-11-10T00:00:00Z'), 'aud-churn': m('realized', '2026-11-19T07:30:00Z') },
  }),
  // why: gets a second email in snapshot 2 (identity-only change: not exported).
  profile('p-009', {
    emails: ['gail@example.com'],
    first: 'Gail',
    last: 'Ruiz',
    tier: 'silver',
    points: 12,
    ups: { 'aud-vip': m('realized', '2026-11-19T14:00:00Z'), 'aud-churn': m('exited', '2026-11-19T07:45:00Z') },
  }),
  // why: prospect audience member.
  profile('p-010', {
    emails: ['hank@example.net'],
    first: 'Hank',
    last: 'Moss',
    tier: 'none',
    points: 0,
    ups: { 'aud-prospects': m('realized', '2026-11-19T15:00:00Z') },
  }),
  // why: vanishes from snapshot 2 -> exit row with the baseline's email.
  profile('p-011', {
    emails: ['ivy@example.com'],
    first: 'Ivy',
    last: 'Chen',
    tier: 'gold',
    points: 820,
    ups: { 'aud-vip': m('existing', '2026-08-15T00:00:00Z'), 'aud-promo': m('realized', '2026-11-19T09:30:00Z') },
  }),
];

const clone = (v) => JSON.parse(JSON.stringify(v));
const s2 = clone(s1).filter((p) => p.profileId !== 'p-011');
const byId = (id) => s2.find((p) => p.profileId === id);
byId('p-001').loyalty.tier = 'platinum'; // attribute-only change: not in the incremental file
byId('p-002').segmentMembership.ups['aud-vip'] = m('exited', '2026-11-21T04:00:00Z');
byId('p-008').segmentMembership.ups['aud-vip'] = m('realized', '2026-11-21T04:10:00Z');
byId('p-009').identityMap.email.push({ id: 'gail.ruiz@example.com' }); // identity-only change
for (const p of s2) {
  for (const entry of Object.values(p.segmentMembership.ups))
    if (entry.status === 'realized') entry.status = 'existing';
}
byId('p-008').segmentMembership.ups['aud-vip'].status = 'realized';
s2.push(
  profile('p-012', {
    emails: ['june@example.com'],
    first: 'June',
    last: 'Ito',
    tier: 'gold',
    points: 640,
    ups: { 'aud-vip': m('realized', '2026-11-21T04:20:00Z'), 'aud-churn': m('realized', '2026-11-21T04:20:00Z') },
  }),
);

const ndjson = (profiles) => profiles.map((p) => JSON.stringify(p)).join('\n') + '\n';

async function writeParquet(profiles, file) {
  const tmp = `${file}.ndjson`;
  writeFileSync(tmp, ndjson(profiles));
  const db = await DuckDBInstance.create(':memory:');
  const c = await db.connect();
  // Typed like a producer would write XDM: strings for times, integers for points, and
  // memberships as a MAP (NDJSON parts read them as objects; both must work).
  const columns = {
    profileId: 'VARCHAR',
    identityMap: 'STRUCT(email STRUCT(id VARCHAR)[], ecid STRUCT(id VARCHAR)[])',
    person: 'STRUCT(name STRUCT(firstName VARCHAR, lastName VARCHAR))',
    personalEmail: 'STRUCT(address VARCHAR)',
    loyalty: 'STRUCT(tier VARCHAR, points BIGINT)',
    segmentMembership: 'STRUCT(ups MAP(VARCHAR, STRUCT(status VARCHAR, lastQualificationTime VARCHAR)))',
  };
  const spec = Object.entries(columns)
    .map(([k, v]) => `${k}: '${v}'`)
    .join(', ');
  await c.run(
    `COPY (SELECT * FROM read_json('${tmp}', format = 'newline_delimited', columns = {${spec}})) TO '${file}' (FORMAT parquet, COMPRESSION snappy)`,
  );
  c.closeSync();
  db.closeSync();
  rmSync(tmp);
}

rmSync(root, { recursive: true, force: true });
const write = (folder, descriptor, parts) => {
  mkdirSync(path.join(root, folder, 'profiles'), { recursive: true });
  for (const [name, content] of Object.entries(parts))
    writeFileSync(path.join(root, folder, 'profiles', name), content);
  writeFileSync(path.join(root, folder, '_snapshot.json'), JSON.stringify(descriptor, null, 2) + '\n');
};

write(
  'snap-20261120',
  { snapshotId: 'snap-20261120', evaluatedAt: '2026-11-20T05:00:00Z', mergePolicyId: 'mp-default', audiences },
  { 'part-00000.ndjson': ndjson(s1.slice(0, 6)), 'part-00001.ndjson.gz': gzipSync(ndjson(s1.slice(6)), { level: 9 }) },
);
write(
  'snap-20261121',
  { snapshotId: 'snap-20261121', evaluatedAt: '2026-11-21T05:00:00Z', mergePolicyId: 'mp-default', audiences },
  { 'part-00000.ndjson': ndjson(s2.slice(0, 5)) },
);
await writeParquet(s2.slice(5), path.join(root, 'snap-20261121', 'profiles', 'part-00001.parquet'));

// A folder still being written: no _snapshot.json, so audex ignores it.
mkdirSync(path.join(root, 'snap-20261122-incomplete', 'profiles'), { recursive: true });
writeFileSync(
  path.join(root, 'snap-20261122-incomplete', 'profiles', 'part-00000.ndjson'),
  '{"profileId":"p-x","segmentMembe',
);
console.log(`wrote ${root}`);
