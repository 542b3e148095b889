// The HTTP API destination's benchmark: `npm run bench -- --http [--profiles N] [--max-records N]`.
//
// On the benchmark's two deterministic snapshots (scripts/bench/generate.js), times real
// CLI runs of an HTTP dataflow (5 audiences, 4 mapped attributes, configurable aggregation
// with maxRecords 1000 by default) delivering to a local sink (a node:http server in its
// own process on 127.0.0.1 that answers 200 and counts requests and bytes):
//   backfill     the first run (every active member of the 5 audiences), snapshot 1
//   incremental  the next run, snapshot 2 (~5% membership churn, attribute changes)
//   files-full   for comparison: a full CSV export of the same audiences from snapshot 2
// Each run is a fresh process under /usr/bin/time (peak RSS = its max resident set).
// Reports messages, requests, seconds, messages/s, requests/s and peak RSS.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ensureDataset } from './generate.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const BIN = path.join(ROOT, 'bin', 'audex.js');
const TIME = '/usr/bin/time';

const SINK = `
import http from 'node:http';
let requests = 0, bytes = 0;
const server = http.createServer((req, res) => {
  let n = 0;
  req.on('data', (c) => (n += c.length));
  req.on('end', () => { requests += 1; bytes += n; res.writeHead(200, { 'Content-Type': 'application/json' }); res.end('{"ok":true}'); });
});
server.keepAliveTimeout = 10000;
server.listen(0, '127.0.0.1', () => process.stdout.write(String(server.address().port) + '\\n'));
process.on('message', (m) => { if (m === 'count') process.send({ requests, bytes }); if (m === 'stop') { server.close(); process.exit(0); } });
`;

function parse(argv) {
  const o = { profiles: 1_000_000, maxRecords: 1000, cache: path.join(ROOT, '.bench-cache'), json: false, keep: false, memoryLimit: null, seed: 42, partSize: 250_000, workers: 2 };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const v = () => argv[++i];
    if (a === '--profiles') o.profiles = Number(String(v()).replace(/[_,]/g, '').replace(/k$/i, '000').replace(/m$/i, '000000'));
    else if (a === '--max-records') o.maxRecords = Number(v());
    else if (a === '--cache') o.cache = v();
    else if (a === '--memory-limit') o.memoryLimit = v();
    else if (a === '--json') o.json = true;
    else if (a === '--keep') o.keep = true;
    else if (a === '--workers') o.workers = Number(v());
    else throw new Error(`bench --http: unknown option ${a}`);
  }
  return o;
}

function startSink() {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--input-type=module', '-e', SINK], { stdio: ['ignore', 'pipe', 'inherit', 'ipc'] });
    child.stdout.setEncoding('utf8').once('data', (d) => {
      const port = Number(d.trim());
      resolve({
        url: `http://127.0.0.1:${port}`,
        count: () => new Promise((r) => { child.once('message', r); child.send('count'); }),
        stop: () => child.send('stop'),
      });
    });
    child.on('error', reject);
  });
}

function timed(args, rssFile) {
  return new Promise((resolve, reject) => {
    const useTime = existsSync(TIME);
    const started = performance.now();
    const child = useTime
      ? spawn(TIME, ['-f', '%M', '-o', rssFile, process.execPath, BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
      : spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => {
      const seconds = (performance.now() - started) / 1000;
      let peakMB = null;
      if (useTime) {
        try {
          peakMB = Number(readFileSync(rssFile, 'utf8').trim().split('\n').pop()) / 1024;
        } catch {
          peakMB = null;
        }
      }
      resolve({ code, seconds, peakMB, stdout, stderr });
    });
  });
}

const log = (m) => process.stderr.write(`bench: ${m}\n`);
const AUDIENCES = ['aud-00', 'aud-01', 'aud-02', 'aud-03', 'aud-04'];
const MAPPING = ['person.name.firstName', 'person.name.lastName', 'loyalty.tier', 'loyalty.points'];

export async function benchHttp(argv) {
  const o = parse(argv);
  const dataset = await ensureDataset({ cacheDir: o.cache, profiles: o.profiles, seed: o.seed, partSize: o.partSize, input: 'ndjson', workers: o.workers }, log);
  const [snap1, snap2] = dataset.snapshots;
  const work = mkdtempSync(path.join(os.tmpdir(), 'audex-bench-http-'));
  const sink = await startSink();
  const results = [];
  try {
    const flow = {
      name: 'Bench Webhook', id: 'bench-http', source: { snapshots: dataset.root }, state: { path: path.join(work, 'state') },
      destination: { type: 'http', endpoint: `${sink.url}/profiles`, aggregation: { policy: 'configurable', maxRecords: o.maxRecords }, concurrency: 4, maxRequestsPerSecond: 10000 },
      mapping: MAPPING.map((source) => ({ source })),
      audiences: AUDIENCES.map((id) => ({ id })),
    };
    const files = {
      name: 'Bench Files', id: 'bench-files', source: { snapshots: dataset.root }, destination: { path: path.join(work, 'out') },
      format: { type: 'csv', compression: 'gzip' }, fileName: '%SEGMENT_ID%_%DATETIME%',
      mapping: [{ source: 'profileId' }, ...MAPPING.map((source) => ({ source })), { source: 'segmentMembership.status' }],
      audiences: AUDIENCES.map((id) => ({ id, mode: 'full', schedule: { frequency: 'daily', trigger: 'afterEvaluation' } })),
    };
    writeFileSync(path.join(work, 'http.json'), JSON.stringify(flow));
    writeFileSync(path.join(work, 'files.json'), JSON.stringify(files));
    const mem = o.memoryLimit ? ['--memory-limit', o.memoryLimit] : [];
    const after = (iso) => new Date(Date.parse(iso) + 3_600_000).toISOString();
    for (const [name, config, at] of [['backfill', 'http.json', after(snap1.evaluatedAt)], ['incremental', 'http.json', after(snap2.evaluatedAt)], ['files-full', 'files.json', after(snap2.evaluatedAt)]]) {
      const before = await sink.count();
      log(`${name}: running`);
      const r = await timed(['run', '-c', path.join(work, config), '--at', at, '--json', '-q', ...mem], path.join(work, `${name}.rss`));
      const after_ = await sink.count();
      if (r.code !== 0) throw new Error(`${name} failed (exit ${r.code}):\n${r.stdout.slice(0, 2000)}\n${r.stderr.slice(0, 2000)}`);
      const runs = JSON.parse(r.stdout).runs;
      const messages = config === 'http.json' ? runs.reduce((s, x) => s + (x.counts.messages ?? 0), 0) : runs.reduce((s, x) => s + x.counts.rowsWritten, 0);
      const requests = after_.requests - before.requests;
      results.push({
        name, seconds: Number(r.seconds.toFixed(2)), messages, requests, megabytesSent: Number(((after_.bytes - before.bytes) / 1e6).toFixed(1)),
        messagesPerSecond: Math.round(messages / r.seconds), requestsPerSecond: Math.round(requests / r.seconds), peakRssMB: r.peakMB === null ? null : Math.round(r.peakMB),
      });
      log(`${name}: ${r.seconds.toFixed(1)} s`);
    }
  } finally {
    sink.stop();
    if (!o.keep) rmSync(work, { recursive: true, force: true });
  }
  const report = { profiles: o.profiles, maxRecords: o.maxRecords, audiences: AUDIENCES.length, cores: os.cpus().length, loadAverage: os.loadavg().map((x) => Number(x.toFixed(2))), results };
  if (o.json) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  else {
    const lines = [`HTTP destination, ${o.profiles.toLocaleString('en-US')} profiles, ${AUDIENCES.length} audiences, maxRecords ${o.maxRecords} (load average ${report.loadAverage.join(' ')})`];
    lines.push('run          seconds   messages/rows  requests  msg/s     req/s   MB sent  peak RSS MB');
    for (const r of results) {
      lines.push(`${r.name.padEnd(12)} ${String(r.seconds).padStart(7)}   ${String(r.messages).padStart(13)}  ${String(r.requests).padStart(8)}  ${String(r.messagesPerSecond).padStart(7)}  ${String(r.requestsPerSecond).padStart(6)}  ${String(r.megabytesSent).padStart(7)}  ${String(r.peakRssMB ?? '-').padStart(11)}`);
    }
    process.stdout.write(`${lines.join('\n')}\n`);
  }
  return 0;
}
