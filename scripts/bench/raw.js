// The "raw engine" baseline: the bench's selection as the shortest DuckDB SQL, with no
// audex semantics (no mandatory / dedup / identity explosion, no state, no ordering, no
// bad-record checks). Run as a child process by scripts/bench.js so its wall time and
// peak RSS are measured exactly like audex's:
//
//   node scripts/bench/raw.js '<json options>'
//
// options: { mode: full | incremental | both, input: ndjson | parquet, format: csv | json |
// parquet, previous, current (snapshot folders), audiences [ids], outDir, memoryLimit,
// tempDir }. Prints one JSON object: { stages: [{ name, ms }], rows: { full, incremental } }.
//
// full        = read the current snapshot; per audience COPY its active members.
// incremental = read both snapshots; per audience COPY enters (+ status) and exits
//               ('exited', current attributes when the profile is still there).
// both        = read both once, then both kinds of COPY (the issue's "hand-written
//               pipeline": full + incremental for 5 audiences from two snapshots).
import { DuckDBInstance } from '@duckdb/node-api';
import path from 'node:path';

const opts = JSON.parse(process.argv[2]);
const q = (s) => `'${String(s).replaceAll("'", "''")}'`;
const id = (s) => `"${String(s).replaceAll('"', '""')}"`;
const stages = [];
let mark = performance.now();
const stage = (name) => {
  const now = performance.now();
  stages.push({ name, ms: now - mark });
  mark = now;
};

const ACTIVE = `('realized', 'existing')`;

function readSql(dir, withAttributes) {
  const glob = path.join(dir, 'profiles', opts.input === 'parquet' ? '*.parquet' : '*.ndjson');
  const auds = opts.audiences.map((a, i) =>
    opts.input === 'parquet'
      ? `segmentMembership.ups[${q(a)}].status AS s${i}`
      : `segmentMembership.ups.${id(a)}.status AS s${i}`,
  );
  const attrs = withAttributes
    ? [
        opts.input === 'parquet' ? `identityMap['email'][1].id AS email` : `identityMap.email[1].id AS email`,
        'person.name.firstName AS first_name',
        'person.name.lastName AS last_name',
        'loyalty.tier AS tier',
        'loyalty.points AS points',
      ]
    : [];
  const cols = ['profileId AS k', ...attrs, ...auds].join(', ');
  if (opts.input === 'parquet') return `SELECT ${cols} FROM read_parquet(${q(glob)})`;
  const ups = opts.audiences.map((a) => `${id(a)} STRUCT(status VARCHAR)`).join(', ');
  const types = withAttributes
    ? `profileId: 'VARCHAR', identityMap: 'STRUCT(email STRUCT(id VARCHAR)[])', person: 'STRUCT(name STRUCT(firstName VARCHAR, lastName VARCHAR))',
       loyalty: 'STRUCT(tier VARCHAR, points BIGINT)', segmentMembership: ${q(`STRUCT(ups STRUCT(${ups}))`)}`
    : `profileId: 'VARCHAR', segmentMembership: ${q(`STRUCT(ups STRUCT(${ups}))`)}`;
  return `SELECT ${cols} FROM read_json(${q(glob)}, format = 'newline_delimited', columns = {${types}})`;
}

const EXT = { csv: '.csv.gz', json: '.json.gz', parquet: '.gz.parquet' };
const COPY_OPTIONS = {
  csv: '(FORMAT csv, HEADER, COMPRESSION gzip)',
  json: '(FORMAT json, COMPRESSION gzip)',
  parquet: '(FORMAT parquet, COMPRESSION gzip)',
};

const db = await DuckDBInstance.create(':memory:', {
  memory_limit: opts.memoryLimit,
  temp_directory: opts.tempDir,
  threads: String(opts.threads ?? 2),
});
const con = await db.connect();
const copy = async (select, name) => {
  const reader = await con.runAndReadAll(
    `COPY (${select}) TO ${q(path.join(opts.outDir, name + EXT[opts.format]))} ${COPY_OPTIONS[opts.format]}`,
  );
  return Number(reader.getRowObjectsJson()[0]?.Count ?? 0);
};
const rows = { full: {}, incremental: {} };
try {
  await con.run(`CREATE TEMP TABLE cur AS ${readSql(opts.current, true)}`);
  stage('read current snapshot');
  if (opts.mode !== 'full') {
    await con.run(`CREATE TEMP TABLE prev AS ${readSql(opts.previous, false)}`);
    stage('read previous snapshot');
  }
  const cols = 'email, first_name, last_name, tier, points';
  if (opts.mode !== 'incremental') {
    for (const [i, a] of opts.audiences.entries()) {
      rows.full[a] = await copy(`SELECT ${cols}, s${i} AS status FROM cur WHERE s${i} IN ${ACTIVE}`, `full_${a}`);
    }
    stage('write full (COPY × audiences)');
  }
  if (opts.mode !== 'full') {
    for (const [i, a] of opts.audiences.entries()) {
      rows.incremental[a] = await copy(
        `SELECT ${cols}, CASE WHEN s${i} IN ${ACTIVE} THEN s${i} ELSE 'exited' END AS status
         FROM cur FULL JOIN (SELECT k FROM prev WHERE s${i} IN ${ACTIVE}) p USING (k)
         WHERE coalesce(s${i} IN ${ACTIVE}, FALSE) <> (p.k IS NOT NULL)`,
        `incr_${a}`,
      );
    }
    stage('diff + write incremental (COPY × audiences)');
  }
} finally {
  con.closeSync();
  db.closeSync();
}
process.stdout.write(`${JSON.stringify({ stages, rows })}\n`);
