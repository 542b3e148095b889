// State benchmark (issue 17), `npm run bench -- --history N [--s3] [--baseline-profiles P]`:
//
// 1. History: writes N history records (20 incremental audiences every 6 hours, going back
//    from 2026-11-30: 100,000 records span ~3.4 years, in month folders, with a cursor and
//    two baselines per audience) into a local state folder and, with --s3 (default on),
//    into a state prefix on s3rver (in a child process on 127.0.0.1; uploads take a while),
//    then times fresh CLI processes, best of --repeat (default 3):
//      runs --limit 20, status (the targets: < 1 s local, < 5 s on S3), and, local only,
//      runs --limit N (every record read: what both commands did before month folders).
// 2. Baseline size (with --baseline-profiles P): an incremental backfill of 5 audiences on
//    the bench generator's snapshot of P profiles; reports each baseline's members and
//    bytes, and the bytes per 1 million members.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ensureDataset } from './generate.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const BIN = path.join(ROOT, 'bin', 'audex.js');
const S3RVER_CHILD = path.join(ROOT, 'test', 'helpers', 's3rver-child.mjs');
const log = (message) => process.stderr.write(`bench: ${message}\n`);
const AUDIENCES = Array.from({ length: 20 }, (_, i) => `aud-${String(i).padStart(2, '0')}`);
const END = Date.parse('2026-11-30T18:00:00Z');
const SIX_HOURS = 6 * 3_600_000;

export function parseHistoryArgs(argv) {
  const o = {
    history: 100_000,
    s3: true,
    repeat: 3,
    baselineProfiles: null,
    cache: path.join(ROOT, '.bench-cache'),
    json: false,
    keep: false,
  };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    const value = () => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${flag} needs a value`);
      return v;
    };
    const count = (v) => {
      const n = Number(String(v).replace(/[_,]/g, '').replace(/k$/i, '000').replace(/m$/i, '000000'));
      if (!Number.isInteger(n) || n < 1) throw new Error(`${flag}: expected a positive whole number, got ${v}`);
      return n;
    };
    switch (flag) {
      case '--history':
        o.history = count(value());
        break;
      case '--no-s3':
        o.s3 = false;
        break;
      case '--s3':
        o.s3 = true;
        break;
      case '--repeat':
        o.repeat = count(value());
        break;
      case '--baseline-profiles':
        o.baselineProfiles = count(value());
        break;
      case '--cache':
        o.cache = path.resolve(value());
        break;
      case '--json':
        o.json = true;
        break;
      case '--keep':
        o.keep = true;
        break;
      default:
        throw new Error(
          `unknown option ${flag} (with --history: --no-s3, --repeat N, --baseline-profiles P, --cache DIR, --json, --keep)`,
        );
    }
  }
  return o;
}

const hash8 = (text) => createHash('sha256').update(text).digest('hex').slice(0, 8);
const stampOf = (ms) =>
  new Date(ms)
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'Z');

/** The state objects: N history records (newest first), cursors, two baselines per audience. */
function* stateObjects(n, keys, dataflowId) {
  const latest = new Map();
  for (let i = 0; i < n; i++) {
    const audienceId = AUDIENCES[i % AUDIENCES.length];
    const at = END - Math.floor(i / AUDIENCES.length) * SIX_HOURS;
    const logicalTime = new Date(at).toISOString();
    const runId = `${stampOf(at)}-${hash8(`${dataflowId}\n${audienceId}\n${logicalTime}`)}`;
    const status = i % 31 === 7 ? 'failed' : i % 17 === 3 ? 'skipped' : 'success';
    if (status === 'success' && !latest.has(audienceId)) latest.set(audienceId, { runId, logicalTime });
    const record = {
      runId,
      audienceId,
      mode: 'incremental',
      trigger: 'schedule',
      logicalTime,
      snapshotId: status === 'skipped' ? null : `snap-${stampOf(at).slice(0, 8)}`,
      status,
      counts: {
        profilesReceived: 9000,
        rowsWritten: status === 'success' ? 8800 : 0,
        excludedMandatory: 120,
        excludedDuplicate: 80,
        exitsOmitted: 0,
        badRecords: 0,
      },
      files:
        status === 'success'
          ? [
              {
                path: `s3://bench/out/${audienceId}/Bench_${audienceId}_${stampOf(at)}.csv.gz`,
                rows: 8800,
                bytes: 412_345,
                sha256: createHash('sha256').update(runId).digest('hex'),
              },
            ]
          : [],
      durationMs: 2345,
      ...(status === 'failed'
        ? {
            error:
              'cannot read s3://lake/snapshots/…: SlowDown\nThe run was not committed; the next `audex run` finishes it.',
          }
        : {}),
      ...(status === 'skipped' ? { note: 'coalesced into a later run' } : {}),
    };
    yield [keys.history(runId, status, audienceId), `${JSON.stringify(record, null, 2)}\n`];
  }
  for (const [audienceId, last] of latest) {
    const baseline = keys.baseline(audienceId, last.runId);
    yield [
      keys.cursor(audienceId),
      `${JSON.stringify({ audienceId, lastSlot: last.logicalTime, runId: last.runId, snapshotId: 'snap-x', mode: 'incremental', baseline, baselineSize: 9000 }, null, 2)}\n`,
    ];
    yield [baseline, 'PAR1 (stand-in: status lists baselines, it never reads them)'];
    yield [keys.baseline(audienceId, `${stampOf(Date.parse(last.logicalTime) - SIX_HOURS)}-00000000`), 'PAR1'];
  }
}

function dataflow(state, s3Endpoint) {
  return {
    name: 'Bench history',
    id: 'bench-history',
    source: { snapshots: './snapshots' },
    destination: { path: s3Endpoint ? 's3://bench/out' : './out' },
    state: { path: state },
    ...(s3Endpoint ? { s3: { endpoint: s3Endpoint, forcePathStyle: true, region: 'us-east-1' } } : {}),
    format: { type: 'csv', compression: 'gzip' },
    folderPath: '%SEGMENT_ID%',
    fileName: '%DESTINATION_NAME%_%SEGMENT_ID%_%DATETIME%',
    mapping: [
      { source: 'identityMap.email', target: 'email' },
      { source: 'segmentMembership.status', target: 'status' },
    ],
    audiences: AUDIENCES.map((id) => ({
      id,
      mode: 'incremental',
      schedule: { frequency: 'every6Hours', startTime: '00:00', startDate: '2023-01-01' },
    })),
  };
}

function timeCli(args, env, cwd) {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(process.execPath, [BIN, ...args], {
      cwd,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code !== 0) return reject(new Error(`audex ${args.join(' ')} exited ${code}: ${stderr.slice(0, 2000)}`));
      resolve({ seconds: (performance.now() - started) / 1000, stdout });
    });
  });
}

async function best(repeat, args, env, cwd) {
  const all = [];
  let out = '';
  for (let i = 0; i < repeat; i++) {
    const r = await timeCli(args, env, cwd);
    all.push(r.seconds);
    out = r.stdout;
  }
  return { seconds: Math.min(...all), all, out };
}

async function startS3rver(dir) {
  const child = spawn(process.execPath, ['--openssl-legacy-provider', '--no-deprecation', S3RVER_CHILD, dir, 'bench'], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const port = await new Promise((resolve, reject) => {
    let text = '';
    child.stdout.on('data', (d) => {
      text += d;
      const m = /"port":\s*(\d+)/.exec(text);
      if (m) resolve(Number(m[1]));
    });
    child.on('exit', (code) => reject(new Error(`s3rver exited ${code}`)));
  });
  return { endpoint: `http://127.0.0.1:${port}`, stop: () => child.stdin.end() };
}

const S3_ENV = {
  AWS_ACCESS_KEY_ID: 'S3RVER',
  AWS_SECRET_ACCESS_KEY: 'S3RVER',
  AWS_SESSION_TOKEN: '',
  AWS_PROFILE: '',
  AWS_REGION: 'us-east-1',
  AWS_EC2_METADATA_DISABLED: 'true',
  AWS_REQUEST_CHECKSUM_CALCULATION: 'WHEN_REQUIRED',
  AWS_RESPONSE_CHECKSUM_VALIDATION: 'WHEN_REQUIRED',
};

async function uploadAll(endpoint, prefix, objects) {
  const { S3Client, PutObjectCommand } = await import('@aws-sdk/client-s3');
  const client = new S3Client({
    region: 'us-east-1',
    endpoint,
    forcePathStyle: true,
    credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
    requestChecksumCalculation: 'WHEN_REQUIRED',
  });
  let next = 0;
  let done = 0;
  const worker = async () => {
    while (next < objects.length) {
      const [key, body] = objects[next++];
      await client.send(new PutObjectCommand({ Bucket: 'bench', Key: `${prefix}/${key}`, Body: body }));
      if (++done % 10_000 === 0) log(`uploaded ${done} of ${objects.length} objects`);
    }
  };
  await Promise.all(Array.from({ length: 24 }, worker));
  client.destroy();
}

async function benchHistoryReads(o, work) {
  const { stateKeys } = await import(path.join(ROOT, 'dist', 'state', 'state-keys.js'));
  const objects = [...stateObjects(o.history, stateKeys, 'bench-history')];
  mkdirSync(path.join(work, 'snapshots'));
  const results = [];
  const started = performance.now();
  const local = path.join(work, 'state');
  for (const [key, body] of objects) {
    mkdirSync(path.dirname(path.join(local, key)), { recursive: true });
    writeFileSync(path.join(local, key), body);
  }
  const months = readdirSync(path.join(local, stateKeys.historyPrefix)).length;
  log(
    `wrote ${o.history} history records in ${months} month folders locally (${((performance.now() - started) / 1000).toFixed(1)} s)`,
  );
  writeFileSync(path.join(work, 'local.json'), JSON.stringify(dataflow('./state')));
  const at = new Date(END + SIX_HOURS).toISOString();
  const cases = (config) => [
    ['runs --limit 20', ['runs', '--config', config, '--limit', '20', '--json']],
    ['status', ['status', '--config', config, '--at', at, '--json']],
  ];
  for (const [name, args] of cases('local.json')) {
    const r = await best(o.repeat, args, {}, work);
    results.push({ where: 'local', name, ...r, target: 1 });
  }
  const all = await best(1, ['runs', '--config', 'local.json', '--limit', String(o.history), '--json'], {}, work);
  results.push({ where: 'local', name: `runs --limit ${o.history} (reads every record)`, ...all, target: null });
  if (o.s3) {
    const server = await startS3rver(path.join(work, 's3rver'));
    try {
      const upStarted = performance.now();
      await uploadAll(server.endpoint, 'state', objects);
      log(`uploaded ${objects.length} objects to s3rver (${((performance.now() - upStarted) / 1000).toFixed(0)} s)`);
      writeFileSync(path.join(work, 's3.json'), JSON.stringify(dataflow('s3://bench/state', server.endpoint)));
      for (const [name, args] of cases('s3.json')) {
        const r = await best(o.repeat, args, S3_ENV, work);
        results.push({ where: 's3rver', name, ...r, target: 5 });
      }
    } finally {
      server.stop();
    }
  }
  const check = JSON.parse(results[0].out);
  if (check.runs.length !== 20) throw new Error(`runs --limit 20 printed ${check.runs.length} runs`);
  return { records: o.history, months, results: results.map(({ out: _out, ...r }) => r) };
}

async function benchBaselineSize(o, work) {
  const dataset = await ensureDataset(
    {
      cacheDir: o.cache,
      profiles: o.baselineProfiles,
      seed: 42,
      partSize: 250_000,
      input: 'ndjson',
      workers: Math.min(4, os.cpus().length),
    },
    log,
  );
  const audiences = ['aud-00', 'aud-02', 'aud-05', 'aud-09', 'aud-14'];
  const config = {
    ...dataflow('./baseline-state'),
    id: 'bench-baseline',
    source: { snapshots: dataset.root },
    destination: { path: './baseline-out' },
    mapping: [
      { source: 'identityMap.email', target: 'email' },
      { source: 'person.name.firstName', target: 'first_name' },
      { source: 'loyalty.tier', target: 'tier' },
      { source: 'segmentMembership.status', target: 'status' },
    ],
    audiences: audiences.map((id) => ({
      id,
      mode: 'incremental',
      schedule: { frequency: 'daily', startTime: '06:00', startDate: '2026-11-20' },
    })),
  };
  writeFileSync(path.join(work, 'baseline.json'), JSON.stringify(config));
  const run = await timeCli(
    ['run', '--config', 'baseline.json', '--at', '2026-11-20T06:00:00Z', '--json', '-q'],
    {},
    work,
  );
  const rows = [];
  for (const id of audiences) {
    const cursor = JSON.parse(readFileSync(path.join(work, 'baseline-state', 'cursors', `${id}.json`), 'utf8'));
    const bytes = statSync(path.join(work, 'baseline-state', cursor.baseline)).size;
    rows.push({
      audienceId: id,
      members: cursor.baselineSize,
      bytes,
      bytesPerMillion: Math.round((bytes / cursor.baselineSize) * 1e6),
    });
  }
  return { profiles: o.baselineProfiles, runSeconds: run.seconds, baselines: rows };
}

export async function benchHistory(argv) {
  const o = parseHistoryArgs(argv);
  const work = mkdtempSync(path.join(os.tmpdir(), 'audex-bench-history-'));
  try {
    const report = {
      machine: { cpus: os.cpus().length, node: process.version },
      history: await benchHistoryReads(o, work),
    };
    if (o.baselineProfiles) report.baselineSize = await benchBaselineSize(o, work);
    process.stdout.write(o.json ? `${JSON.stringify(report, null, 2)}\n` : renderHistoryReport(report));
    return report.history.results.every((r) => r.target === null || r.seconds < r.target) ? 0 : 1;
  } finally {
    if (o.keep) log(`work folder kept: ${work}`);
    else rmSync(work, { recursive: true, force: true });
  }
}

function renderHistoryReport(report) {
  const out = [
    `history: ${report.history.records} records in ${report.history.months} month folders, 20 audiences (${report.machine.cpus} cores, node ${report.machine.node})`,
    '',
  ];
  out.push('| where | command | best s | attempts s | target |', '|:--|:--|--:|:--|--:|');
  for (const r of report.history.results)
    out.push(
      `| ${r.where} | ${r.name} | ${r.seconds.toFixed(2)} | ${r.all.map((s) => s.toFixed(2)).join(', ')} | ${r.target === null ? '' : `< ${r.target} s`} |`,
    );
  if (report.baselineSize) {
    out.push(
      '',
      `baseline size: incremental backfill of snapshot 1 at ${report.baselineSize.profiles} profiles (${report.baselineSize.runSeconds.toFixed(1)} s)`,
      '',
    );
    out.push('| audience | members | bytes | bytes per 1M members |', '|:--|--:|--:|--:|');
    for (const b of report.baselineSize.baselines)
      out.push(`| ${b.audienceId} | ${b.members} | ${b.bytes} | ${b.bytesPerMillion} |`);
  }
  return `${out.join('\n')}\n`;
}
