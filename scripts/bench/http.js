// The HTTP API destination's benchmark: `npm run bench -- --http [--profiles N] [--max-records N] [--repeat N]`.
//
// On the benchmark's two deterministic snapshots (scripts/bench/generate.js), times real
// CLI runs of an HTTP dataflow (the 5 audiences of the file benchmark's dataflows, 4 mapped
// attributes, configurable aggregation with maxRecords 1000 by default) delivering to a
// local sink (a node:http server in its own process on 127.0.0.1 that answers 200 and
// counts requests and bytes):
//   backfill     the first run (every active member of the 5 audiences), snapshot 1
//   incremental  the next run, snapshot 2 (~5% membership churn, attribute changes)
//   files-full   for comparison: the file benchmark's full run (`npm run bench -- --runs
//                full`: the same 5 audiences, its mapping, csv.gz) on snapshot 2
// Each run is a fresh process under /usr/bin/time (peak RSS = its max resident set, CPU =
// user + sys). `build` is the part of an HTTP run before the first request is sent (read,
// diff, messages, outbox, baseline: the progress lines' arrival times). With --repeat N
// every run is timed N times (fresh state each time) and medians are reported.
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
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
  const o = {
    profiles: 1_000_000,
    maxRecords: 1000,
    cache: path.join(ROOT, '.bench-cache'),
    json: false,
    keep: false,
    memoryLimit: null,
    seed: 42,
    partSize: 250_000,
    workers: 2,
    repeat: 1,
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const v = () => argv[++i];
    if (a === '--profiles')
      o.profiles = Number(String(v()).replace(/[_,]/g, '').replace(/k$/i, '000').replace(/m$/i, '000000'));
    else if (a === '--max-records') o.maxRecords = Number(v());
    else if (a === '--cache') o.cache = v();
    else if (a === '--memory-limit') o.memoryLimit = v();
    else if (a === '--json') o.json = true;
    else if (a === '--keep') o.keep = true;
    else if (a === '--workers') o.workers = Number(v());
    else if (a === '--repeat') o.repeat = Math.max(1, Number(v()));
    else throw new Error(`bench --http: unknown option ${a}`);
  }
  return o;
}

function startSink() {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--input-type=module', '-e', SINK], {
      stdio: ['ignore', 'pipe', 'inherit', 'ipc'],
    });
    child.stdout.setEncoding('utf8').once('data', (d) => {
      const port = Number(d.trim());
      resolve({
        url: `http://127.0.0.1:${port}`,
        count: () =>
          new Promise((r) => {
            child.once('message', r);
            child.send('count');
          }),
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
      ? spawn(TIME, ['-f', '%M %U %S', '-o', rssFile, process.execPath, BIN, ...args], {
          stdio: ['ignore', 'pipe', 'pipe'],
        })
      : spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    const lines = [];
    let rest = '';
    child.stdout.setEncoding('utf8').on('data', (d) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d) => {
      stderr += d;
      const parts = (rest + d).split('\n');
      rest = parts.pop();
      for (const line of parts) lines.push({ at: (performance.now() - started) / 1000, line });
    });
    child.on('error', reject);
    child.on('close', (code) => {
      const seconds = (performance.now() - started) / 1000;
      let peakMB = null;
      let cpuSeconds = null;
      if (useTime) {
        try {
          const [rss, user, sys] = readFileSync(rssFile, 'utf8').trim().split('\n').pop().split(' ').map(Number);
          peakMB = rss / 1024;
          cpuSeconds = user + sys;
        } catch {
          peakMB = null;
        }
      }
      const sending = lines.find((l) => /: sending \d+ of \d+ request/.test(l.line));
      resolve({ code, seconds, peakMB, cpuSeconds, buildSeconds: sending ? sending.at : null, stdout, stderr });
    });
  });
}

const median = (xs) => {
  const v = xs.filter((x) => x !== null).sort((a, b) => a - b);
  if (!v.length) return null;
  return v.length % 2 ? v[(v.length - 1) / 2] : (v[v.length / 2 - 1] + v[v.length / 2]) / 2;
};

const log = (m) => process.stderr.write(`bench: ${m}\n`);
// The file benchmark's 5 audiences (scripts/bench.js pickAudiences(5)), so files-full is its full run.
const AUDIENCES = ['aud-00', 'aud-02', 'aud-05', 'aud-09', 'aud-14'];
const MAPPING = ['person.name.firstName', 'person.name.lastName', 'loyalty.tier', 'loyalty.points'];

export async function benchHttp(argv) {
  const o = parse(argv);
  const dataset = await ensureDataset(
    {
      cacheDir: o.cache,
      profiles: o.profiles,
      seed: o.seed,
      partSize: o.partSize,
      input: 'ndjson',
      workers: o.workers,
    },
    log,
  );
  const [snap1, snap2] = dataset.snapshots;
  const work = mkdtempSync(path.join(os.tmpdir(), 'audex-bench-http-'));
  const sink = await startSink();
  const attempts = { backfill: [], incremental: [], 'files-full': [] };
  try {
    const mem = o.memoryLimit ? ['--memory-limit', o.memoryLimit] : [];
    const after = (iso) => new Date(Date.parse(iso) + 3_600_000).toISOString();
    for (let attempt = 1; attempt <= o.repeat; attempt++) {
      // Fresh state and output every attempt: the backfill is a first run each time.
      const dir = path.join(work, `attempt-${attempt}`);
      const flow = {
        name: 'Bench Webhook',
        id: 'bench-http',
        source: { snapshots: dataset.root },
        state: { path: path.join(dir, 'state') },
        destination: {
          type: 'http',
          endpoint: `${sink.url}/profiles`,
          aggregation: { policy: 'configurable', maxRecords: o.maxRecords },
          concurrency: 4,
          maxRequestsPerSecond: 10000,
        },
        mapping: MAPPING.map((source) => ({ source })),
        audiences: AUDIENCES.map((id) => ({ id })),
      };
      mkdirSync(dir, { recursive: true });
      writeFileSync(path.join(dir, 'http.json'), JSON.stringify(flow));
      writeFileSync(path.join(dir, 'files.json'), JSON.stringify(filesFullConfig(dataset.root, path.join(dir, 'out'))));
      for (const [name, config, at] of [
        ['backfill', 'http.json', after(snap1.evaluatedAt)],
        ['incremental', 'http.json', after(snap2.evaluatedAt)],
        ['files-full', 'files.json', FILES_SLOT],
      ]) {
        const before = await sink.count();
        log(`${name} (attempt ${attempt} of ${o.repeat}): running`);
        const r = await timed(
          ['run', '-c', path.join(dir, config), '--at', at, '--json', ...mem],
          path.join(dir, `${name}.rss`),
        );
        const after_ = await sink.count();
        if (r.code !== 0)
          throw new Error(`${name} failed (exit ${r.code}):\n${r.stdout.slice(0, 2000)}\n${r.stderr.slice(0, 2000)}`);
        const runs = JSON.parse(r.stdout).runs;
        const messages =
          config === 'http.json'
            ? runs.reduce((sum, x) => sum + (x.counts.messages ?? 0), 0)
            : runs.reduce((sum, x) => sum + x.counts.rowsWritten, 0);
        attempts[name].push({
          ...r,
          messages,
          requests: after_.requests - before.requests,
          bytes: after_.bytes - before.bytes,
        });
        log(
          `${name}: ${r.seconds.toFixed(1)} s, ${r.cpuSeconds?.toFixed(1) ?? '-'} CPU-s, peak RSS ${r.peakMB?.toFixed(0) ?? '-'} MB`,
        );
      }
    }
  } finally {
    sink.stop();
    if (!o.keep) rmSync(work, { recursive: true, force: true });
  }
  const round = (x, d = 2) => (x === null ? null : Number(x.toFixed(d)));
  const results = Object.entries(attempts).map(([name, list]) => {
    const seconds = median(list.map((a) => a.seconds));
    const { messages, requests, bytes } = list[0];
    return {
      name,
      seconds: round(seconds),
      cpuSeconds: round(median(list.map((a) => a.cpuSeconds)), 1),
      buildSeconds: round(median(list.map((a) => a.buildSeconds))),
      messages,
      requests,
      megabytesSent: round(bytes / 1e6, 1),
      messagesPerSecond: Math.round(messages / seconds),
      requestsPerSecond: Math.round(requests / seconds),
      peakRssMB: round(median(list.map((a) => a.peakMB)), 0),
      maxPeakRssMB: round(Math.max(...list.map((a) => a.peakMB ?? 0)), 0),
      attempts: list.map((a) => ({
        seconds: round(a.seconds),
        cpuSeconds: round(a.cpuSeconds, 1),
        buildSeconds: round(a.buildSeconds),
        peakRssMB: round(a.peakMB, 0),
      })),
    };
  });
  const by = Object.fromEntries(results.map((r) => [r.name, r]));
  const ratio = (a, b) => (a === null || b === null || !b ? null : round(a / b));
  const incrementalVsFilesFull = {
    wall: ratio(by.incremental.seconds, by['files-full'].seconds),
    cpu: ratio(by.incremental.cpuSeconds, by['files-full'].cpuSeconds),
    build: ratio(by.incremental.buildSeconds, by['files-full'].seconds),
  };
  const report = {
    profiles: o.profiles,
    maxRecords: o.maxRecords,
    audiences: AUDIENCES,
    repeat: o.repeat,
    cores: os.cpus().length,
    loadAverage: os.loadavg().map((x) => round(x)),
    results,
    incrementalVsFilesFull,
  };
  if (o.json) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  else {
    const lines = [
      `HTTP destination, ${o.profiles.toLocaleString('en-US')} profiles, audiences ${AUDIENCES.join(', ')}, maxRecords ${o.maxRecords}, medians of ${o.repeat} (load average ${report.loadAverage.join(' ')})`,
    ];
    lines.push(
      'run          wall s  CPU s  build s  messages/rows  requests    msg/s  req/s  MB sent  peak RSS MB (max)',
    );
    for (const r of results) {
      lines.push(
        `${r.name.padEnd(12)} ${String(r.seconds).padStart(6)}  ${String(r.cpuSeconds ?? '-').padStart(5)}  ${String(r.buildSeconds ?? '-').padStart(7)}  ${String(r.messages).padStart(13)}  ${String(r.requests).padStart(8)}  ${String(r.messagesPerSecond).padStart(7)}  ${String(r.requestsPerSecond).padStart(5)}  ${String(r.megabytesSent).padStart(7)}  ${String(r.peakRssMB ?? '-').padStart(11)} (${r.maxPeakRssMB})`,
      );
    }
    lines.push(
      `incremental / files-full: wall ${incrementalVsFilesFull.wall}×, CPU ${incrementalVsFilesFull.cpu}×, build (before the first request) ${incrementalVsFilesFull.build}× the full export's wall`,
    );
    lines.push(
      'build s = until the first request is sent (read, diff, messages, outbox, baseline); CPU s = user + sys of the process',
    );
    process.stdout.write(`${lines.join('\n')}\n`);
  }
  return 0;
}

// The file benchmark's full run (scripts/bench.js dataflowConfig, mode full): same audiences,
// mapping (email namespace, names, tier, points), csv.gz with a manifest, slot after snapshot 2.
const FILES_SLOT = '2026-11-21T06:00:00Z';
function filesFullConfig(snapshots, destination) {
  return {
    name: 'Bench full',
    id: 'bench-full',
    source: { snapshots },
    destination: { path: destination },
    format: { type: 'csv', compression: 'gzip', manifest: true, emptyExport: 'write' },
    folderPath: '%SEGMENT_ID%',
    fileName: '%DESTINATION_NAME%_%SEGMENT_ID%_%DATETIME%',
    mapping: [
      { source: 'identityMap.email', target: 'email' },
      { source: 'person.name.firstName', target: 'first_name' },
      { source: 'person.name.lastName', target: 'last_name' },
      { source: 'loyalty.tier', target: 'tier' },
      { source: 'loyalty.points', target: 'points', type: 'int64' },
      { source: 'segmentMembership.status', target: 'status' },
    ],
    audiences: AUDIENCES.map((id) => ({
      id,
      mode: 'full',
      schedule: { frequency: 'daily', startTime: '06:00', startDate: '2026-11-21' },
    })),
  };
}
