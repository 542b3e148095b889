// Builds (or reuses) the benchmark snapshots under <cache>/<params>/:
//
//   <cache>/n<N>-s<seed>-p<partSize>-v<GEN_VERSION>/
//     ndjson/<snapshotId>/_snapshot.json + profiles/part-00000.ndjson …
//     parquet/<snapshotId>/_snapshot.json + profiles/part-00000.parquet …   (only when asked)
//     dataset.json                                                          (counts, timings)
//
// Each variant is built in a temp folder and renamed into place when whole, so an
// interrupted generation is never mistaken for a cache hit. NDJSON parts are written by
// worker threads (one part per task); Parquet parts are converted from them by DuckDB.
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { fileURLToPath } from 'node:url';
import { AUDIENCES, GEN_VERSION, SNAPSHOTS } from './profiles.js';

const WORKER = path.join(path.dirname(fileURLToPath(import.meta.url)), 'gen-worker.js');

export function datasetKey({ profiles, seed, partSize }) {
  return `n${profiles}-s${seed}-p${partSize}-v${GEN_VERSION}`;
}

const partName = (i, ext) => `part-${String(i).padStart(5, '0')}.${ext}`;

function snapshotJson(s) {
  return `${JSON.stringify({ snapshotId: s.snapshotId, evaluatedAt: s.evaluatedAt, mergePolicyId: 'mp-default', audiences: AUDIENCES }, null, 2)}\n`;
}

/** Runs tasks on a pool of worker threads; resolves with results in task order. */
async function runPool(tasks, workers, onDone) {
  const results = new Array(tasks.length);
  let nextTask = 0;
  const pool = Array.from({ length: Math.min(workers, tasks.length) }, () => new Worker(WORKER));
  try {
    await Promise.all(
      pool.map(
        (worker) =>
          new Promise((resolve, reject) => {
            const feed = () => {
              if (nextTask >= tasks.length) return resolve();
              const id = nextTask++;
              worker.postMessage({ ...tasks[id], id });
            };
            worker.on('message', (msg) => {
              if (msg.error) return reject(new Error(msg.error));
              results[msg.id] = msg.result;
              onDone?.(msg.id);
              feed();
            });
            worker.on('error', reject);
            feed();
          }),
      ),
    );
  } finally {
    await Promise.all(pool.map((w) => w.terminate()));
  }
  return results;
}

async function generateNdjson(dir, { profiles, seed, partSize, workers }, log) {
  const tmp = `${dir}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  for (const s of SNAPSHOTS) mkdirSync(path.join(tmp, s.snapshotId, 'profiles'), { recursive: true });
  const parts = Math.max(1, Math.ceil(profiles / partSize));
  const tasks = Array.from({ length: parts }, (_, p) => ({
    seed,
    start: p * partSize,
    end: Math.min(profiles, (p + 1) * partSize),
    files: SNAPSHOTS.map((s) => path.join(tmp, s.snapshotId, 'profiles', partName(p, 'ndjson'))),
  }));
  const started = performance.now();
  let done = 0;
  const results = await runPool(tasks, workers, () => {
    done++;
    if (done === parts || done % Math.max(1, Math.floor(parts / 10)) === 0) {
      log(`generate: ${done}/${parts} part(s) written (${((performance.now() - started) / 1000).toFixed(1)} s)`);
    }
  });
  const counts = SNAPSHOTS.map((_, s) => results.reduce((n, r) => n + r.counts[s], 0));
  const bytes = SNAPSHOTS.map((_, s) => results.reduce((n, r) => n + r.bytes[s], 0));
  // _snapshot.json last: the folder is complete (README "Inputs").
  for (const s of SNAPSHOTS) writeFileSync(path.join(tmp, s.snapshotId, '_snapshot.json'), snapshotJson(s));
  renameSync(tmp, dir);
  return { parts, counts, bytes, seconds: (performance.now() - started) / 1000 };
}

/** NDJSON column types for the conversion: nested structs, identityMap and ups as MAPs. */
const PARQUET_COLUMNS = `{
  profileId: 'VARCHAR',
  identityMap: 'MAP(VARCHAR, STRUCT(id VARCHAR)[])',
  person: 'STRUCT(name STRUCT(firstName VARCHAR, lastName VARCHAR), birthDate VARCHAR, gender VARCHAR)',
  personalEmail: 'STRUCT(address VARCHAR, status VARCHAR)',
  mobilePhone: 'STRUCT(number VARCHAR)',
  homeAddress: 'STRUCT(street1 VARCHAR, city VARCHAR, stateProvince VARCHAR, postalCode VARCHAR, countryCode VARCHAR)',
  consents: 'STRUCT(marketing STRUCT(email STRUCT(val VARCHAR)))',
  acquisition: 'STRUCT(channel VARCHAR, date VARCHAR)',
  loyalty: 'STRUCT(tier VARCHAR, points BIGINT, joinDate VARCHAR)',
  segmentMembership: 'STRUCT(ups MAP(VARCHAR, STRUCT(status VARCHAR, lastQualificationTime VARCHAR)))'
}`;

async function convertParquet(ndjsonDir, dir, parts, log) {
  const { DuckDBInstance } = await import('@duckdb/node-api');
  const tmp = `${dir}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  const started = performance.now();
  const db = await DuckDBInstance.create(':memory:', { preserve_insertion_order: 'true' });
  const con = await db.connect();
  try {
    for (const s of SNAPSHOTS) {
      mkdirSync(path.join(tmp, s.snapshotId, 'profiles'), { recursive: true });
      for (let p = 0; p < parts; p++) {
        const src = path.join(ndjsonDir, s.snapshotId, 'profiles', partName(p, 'ndjson'));
        const dst = path.join(tmp, s.snapshotId, 'profiles', partName(p, 'parquet'));
        await con.run(
          `COPY (SELECT * FROM read_json('${src.replaceAll("'", "''")}', format = 'newline_delimited', columns = ${PARQUET_COLUMNS}))
           TO '${dst.replaceAll("'", "''")}' (FORMAT parquet, COMPRESSION snappy, ROW_GROUP_SIZE 122880)`,
        );
      }
      writeFileSync(path.join(tmp, s.snapshotId, '_snapshot.json'), snapshotJson(s));
      log(`generate: parquet ${s.snapshotId} converted (${((performance.now() - started) / 1000).toFixed(1)} s)`);
    }
  } finally {
    con.closeSync();
    db.closeSync();
  }
  renameSync(tmp, dir);
  return { seconds: (performance.now() - started) / 1000 };
}

/**
 * Returns { root (the snapshots folder for `input`), snapshots: [{ snapshotId,
 * evaluatedAt, profiles }], meta } — generating what is missing.
 */
export async function ensureDataset({ cacheDir, profiles, seed, partSize, input, workers }, log) {
  const base = path.join(cacheDir, datasetKey({ profiles, seed, partSize }));
  mkdirSync(base, { recursive: true });
  const metaFile = path.join(base, 'dataset.json');
  const ndjsonDir = path.join(base, 'ndjson');
  let meta = existsSync(metaFile) && existsSync(ndjsonDir) ? JSON.parse(readFileSync(metaFile, 'utf8')) : null;
  if (!meta) {
    rmSync(ndjsonDir, { recursive: true, force: true });
    rmSync(path.join(base, 'parquet'), { recursive: true, force: true });
    log(
      `generate: ${profiles.toLocaleString('en-US')} profiles, seed ${seed}, ${partSize.toLocaleString('en-US')} per part, ${workers} worker(s) → ${ndjsonDir}`,
    );
    const gen = await generateNdjson(ndjsonDir, { profiles, seed, partSize, workers }, log);
    meta = {
      generatorVersion: GEN_VERSION,
      profiles,
      seed,
      partSize,
      parts: gen.parts,
      snapshots: SNAPSHOTS.map((s, i) => ({ ...s, profiles: gen.counts[i], ndjsonBytes: gen.bytes[i] })),
      ndjsonSeconds: gen.seconds,
    };
    writeFileSync(metaFile, `${JSON.stringify(meta, null, 2)}\n`);
    log(
      `generate: NDJSON done in ${gen.seconds.toFixed(1)} s (${gen.counts.join(' / ')} profiles, ${gen.bytes.map((b) => `${(b / 1e6).toFixed(0)} MB`).join(' / ')})`,
    );
  } else {
    log(`generate: reusing ${ndjsonDir}`);
  }
  let root = ndjsonDir;
  if (input === 'parquet') {
    const parquetDir = path.join(base, 'parquet');
    if (!existsSync(parquetDir)) {
      log(`generate: converting to Parquet → ${parquetDir}`);
      const conv = await convertParquet(ndjsonDir, parquetDir, meta.parts, log);
      meta.parquetSeconds = conv.seconds;
      writeFileSync(metaFile, `${JSON.stringify(meta, null, 2)}\n`);
      log(`generate: Parquet done in ${conv.seconds.toFixed(1)} s`);
    } else {
      log(`generate: reusing ${parquetDir}`);
    }
    root = parquetDir;
  }
  return { base, root, snapshots: meta.snapshots, meta };
}
