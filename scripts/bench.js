#!/usr/bin/env node
// audex benchmark (issue 6).
//
//   npm run bench -- --profiles 1000000 [--format csv|json|parquet] [--input ndjson|parquet]
//                    [--memory-limit 1GB] [--json] [--cache DIR] [--repeat N] [--runs LIST] [--encrypt]
//   npm run bench -- --history 100000 [--no-s3] [--baseline-profiles 1000000]   (scripts/bench/history.js)
//
// 1. Generates (or reuses, from <cache>/<params>/) two deterministic synthetic snapshots in
//    the README "Inputs" layout: 20 audiences, ~4 memberships a profile, ~5% membership churn.
// 2. Times real CLI runs (`node bin/audex.js run --config … --at … --json`), each a fresh
//    process under /usr/bin/time (peak RSS = its %M, the max resident set of the node
//    process; without /usr/bin/time, VmHWM sampled from /proc/<pid>/status):
//      full         5 audiences, full, gzip, on snapshot 2
//      backfill     5 audiences, incremental, first run (full backfill) on snapshot 1
//      incremental  the same dataflow's next run, on snapshot 2 (diff against the baseline)
//    With --encrypt, also "full, encrypted": the same full dataflow with OpenPGP encryption
//    (format.encryption, a Curve25519 key made with the openpgp library), timed right after
//    each plain full run, and reported as a ratio to it.
// 3. Times the "raw engine" baseline (scripts/bench/raw.js): the same selection as the
//    shortest DuckDB SQL, in its own process, measured the same way, and prints audex's
//    time as a ratio to it.
// 4. Derives a per-stage breakdown of each audex run from its progress lines on stderr,
//    timestamped as they arrive (so audex runs without --quiet; a run prints ~15 lines).
//
// Progress goes to stderr; the table (or, with --json, one JSON object) to stdout.
import { spawn, spawnSync } from 'node:child_process';
import {
  createReadStream,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ensureDataset } from './bench/generate.js';
import { SNAPSHOTS } from './bench/profiles.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const BIN = path.join(ROOT, 'bin', 'audex.js');
const RAW = path.join(ROOT, 'scripts', 'bench', 'raw.js');
const TIME = '/usr/bin/time';

const USAGE = `usage: npm run bench -- [options]     (dataset exports: npm run bench -- --datasets --help)
  --profiles N         profiles per snapshot universe (default 1000000; 1e6, 1M, 500k accepted)
  --format F           output format: csv | json | parquet (default csv; always gzip)
  --input I            snapshot parts: ndjson | parquet (default ndjson)
  --memory-limit S     passed to audex (--memory-limit) and used by the raw baseline (default: audex's 1GB)
  --json               print one JSON object on stdout instead of the table
  --cache DIR          snapshot cache folder (default <repo>/.bench-cache)
  --seed N             generator seed (default 42)
  --part-size N        profiles per part file (default 250000)
  --workers N          generator worker threads (default: cores, at most 4)
  --repeat N           time every run N times and report the medians (default 1)
  --runs LIST          comma list of full,incremental,pair,raw (default all; pair = the full and the
                       incremental dataflow in one invocation, sharing one read of snapshot 2)
  --encrypt            also time the full run with OpenPGP encryption of every file (needs full in --runs)
  --audiences N        audiences mapped in the dataflows, 1..19 (default 5)
  --generate-only      build the snapshots and stop
  --keep               keep the work folder (configs, exports, state)
  --audex-bin FILE     the audex entry point to time (default <repo>/bin/audex.js)
  --save FILE          also write the JSON report to FILE
  --wait-idle S        before each timed attempt, wait up to S seconds for the machine to be idle
                       (< 15% CPU busy over 1 s; other sessions share the cores) (default 0)
  --render FILE        print the table of a saved JSON report and stop
  --http               the HTTP API destination's benchmark instead (scripts/bench/http.js:
                       --profiles, --max-records N (default 1000), --memory-limit, --repeat N (medians), --json, --keep)`;

function parseCount(text, flag) {
  const m = /^([0-9][0-9_,]*(?:\.[0-9]+)?(?:e[0-9]+)?)([kKmM]?)$/.exec(String(text ?? '').trim());
  if (!m) throw new Error(`${flag}: not a number: ${text}`);
  const n = Number(m[1].replace(/[_,]/g, '')) * (m[2] === '' ? 1 : /k/i.test(m[2]) ? 1e3 : 1e6);
  if (!Number.isInteger(n) || n < 1) throw new Error(`${flag}: expected a positive whole number, got ${text}`);
  return n;
}

export function parseArgs(argv) {
  const o = {
    profiles: 1_000_000,
    format: 'csv',
    input: 'ndjson',
    memoryLimit: null,
    json: false,
    cache: path.join(ROOT, '.bench-cache'),
    seed: 42,
    partSize: 250_000,
    workers: Math.max(1, Math.min(4, os.cpus().length)),
    repeat: 1,
    runs: ['full', 'incremental', 'pair', 'raw'],
    audiences: 5,
    encrypt: false,
    generateOnly: false,
    keep: false,
    help: false,
    audexBin: BIN,
    save: null,
    render: null,
    waitIdle: 0,
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const [flag, inline] =
      arg.startsWith('--') && arg.includes('=')
        ? [arg.slice(0, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)]
        : [arg, undefined];
    const value = () => {
      const v = inline ?? argv[++i];
      if (v === undefined) throw new Error(`${flag} needs a value`);
      return v;
    };
    switch (flag) {
      case '--profiles':
        o.profiles = parseCount(value(), flag);
        break;
      case '--format':
        o.format = value();
        break;
      case '--input':
        o.input = value();
        break;
      case '--memory-limit':
        o.memoryLimit = value();
        break;
      case '--json':
        o.json = true;
        break;
      case '--cache':
        o.cache = path.resolve(value());
        break;
      case '--seed':
        o.seed = parseCount(value(), flag);
        break;
      case '--part-size':
        o.partSize = parseCount(value(), flag);
        break;
      case '--workers':
        o.workers = parseCount(value(), flag);
        break;
      case '--repeat':
        o.repeat = parseCount(value(), flag);
        break;
      case '--runs':
        o.runs = value()
          .split(',')
          .map((s) => s.trim())
          .filter(Boolean);
        break;
      case '--audiences':
        o.audiences = parseCount(value(), flag);
        break;
      case '--encrypt':
        o.encrypt = true;
        break;
      case '--generate-only':
        o.generateOnly = true;
        break;
      case '--keep':
        o.keep = true;
        break;
      case '--audex-bin':
        o.audexBin = path.resolve(value());
        break;
      case '--save':
        o.save = path.resolve(value());
        break;
      case '--wait-idle':
        o.waitIdle = Number(value());
        break;
      case '--render':
        o.render = path.resolve(value());
        break;
      case '-h':
      case '--help':
        o.help = true;
        break;
      default:
        throw new Error(`unknown option ${arg}`);
    }
  }
  if (!['csv', 'json', 'parquet'].includes(o.format))
    throw new Error(`--format: csv, json or parquet, not ${o.format}`);
  if (!['ndjson', 'parquet'].includes(o.input)) throw new Error(`--input: ndjson or parquet, not ${o.input}`);
  if (o.memoryLimit !== null && !/^[0-9.]+\s*[KMGT]i?B$/i.test(o.memoryLimit))
    throw new Error(`--memory-limit: a size like 1GB or 512MB, not ${o.memoryLimit}`);
  for (const r of o.runs)
    if (!['full', 'incremental', 'pair', 'raw'].includes(r))
      throw new Error(`--runs: full, incremental, pair, raw; not ${r}`);
  if (o.encrypt && !o.runs.includes('full'))
    throw new Error('--encrypt times the full run encrypted against the plain one: keep full in --runs');
  if (o.audiences > 19) throw new Error('--audiences: at most 19 (aud-19 is a prospect audience)');
  return o;
}

const log = (message) => process.stderr.write(`bench: ${message}\n`);

// Interrupted (Ctrl-C, kill): stop the running child and remove the work folder.
const live = { child: null, work: null };
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => {
    if (live.child) live.child.kill('SIGTERM');
    if (live.work) rmSync(live.work, { recursive: true, force: true });
    process.exit(130);
  });
}

// ---------------------------------------------------------------- configs

/** Mapped audiences: spread over the popularity range (aud-00 is the biggest). */
export function pickAudiences(n) {
  const preferred = [0, 2, 5, 9, 14, 1, 3, 4, 6, 7, 8, 10, 11, 12, 13, 15, 16, 17, 18];
  return preferred
    .slice(0, n)
    .sort((a, b) => a - b)
    .map((i) => `aud-${String(i).padStart(2, '0')}`);
}

const SLOT_1 = '2026-11-20T06:00:00Z'; // after snapshot 1 (05:00), before snapshot 2
const SLOT_2 = '2026-11-21T06:00:00Z'; // after snapshot 2

function dataflowConfig({ id, mode, snapshots, destination, format, audiences, encryption }) {
  return {
    name: `Bench ${mode}`,
    id,
    source: { snapshots },
    destination: { path: destination },
    format: {
      type: format,
      compression: 'gzip',
      manifest: true,
      emptyExport: 'write',
      ...(encryption ? { encryption } : {}),
    },
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
    audiences: audiences.map((a) => ({
      id: a,
      mode,
      schedule: { frequency: 'daily', startTime: '06:00', startDate: mode === 'full' ? '2026-11-21' : '2026-11-20' },
    })),
  };
}

// ---------------------------------------------------------------- measuring a process

/**
 * Runs a command as its own process; returns wall ms (spawn to exit, measured here), peak
 * RSS (KiB) and CPU seconds, stdout, and the stderr lines with their arrival time (ms).
 */
function measure(command, args, { rssFile }) {
  const useTime = existsSync(TIME);
  return new Promise((resolve, reject) => {
    const cpuBefore = machineBusySeconds();
    const started = performance.now();
    const child = useTime
      ? spawn(TIME, ['-f', '%M %U %S', '-o', rssFile, command, ...args], {
          stdio: ['ignore', 'pipe', 'pipe'],
          cwd: ROOT,
        })
      : spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], cwd: ROOT });
    live.child = child;
    let stdout = '';
    const lines = [];
    let partial = '';
    let hwm = 0;
    let sampler = null;
    if (!useTime) {
      const sample = () => {
        try {
          const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'));
          if (m) hwm = Math.max(hwm, Number(m[1]));
        } catch {
          /* gone */
        }
      };
      sampler = setInterval(sample, 20);
    }
    child.stdout.setEncoding('utf8').on('data', (d) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d) => {
      const t = performance.now() - started;
      const parts = (partial + d).split('\n');
      partial = parts.pop();
      for (const text of parts) lines.push({ t, text });
    });
    child.on('error', reject);
    child.on('close', (code) => {
      live.child = null;
      const wallMs = performance.now() - started;
      const machineBusy = cpuBefore === null ? null : machineBusySeconds() - cpuBefore;
      if (sampler) clearInterval(sampler);
      if (partial) lines.push({ t: wallMs, text: partial });
      let peakKb = hwm;
      let cpuUser = null;
      let cpuSys = null;
      if (useTime) {
        try {
          const text = readFileSync(rssFile, 'utf8').trim().split('\n').pop();
          const [m, u, s] = text.split(/\s+/).map(Number);
          peakKb = m;
          cpuUser = u;
          cpuSys = s;
        } catch {
          peakKb = null;
        }
        // /usr/bin/time writes "Command exited with non-zero status N" first; the exit code is ours.
      }
      const othersCpu = machineBusy === null || cpuUser === null ? null : Math.max(0, machineBusy - cpuUser - cpuSys);
      resolve({
        code,
        wallMs,
        peakKb,
        cpuUser,
        cpuSys,
        othersCpu,
        stdout,
        lines,
        rssMethod: useTime
          ? '/usr/bin/time %M (max RSS of the process)'
          : '/proc/<pid>/status VmHWM sampled every 20 ms',
      });
    });
  });
}

// ---------------------------------------------------------------- machine load

/** CPU-seconds the whole machine has been busy since boot (/proc/stat), or null. */
function machineBusySeconds() {
  try {
    const [, ...f] = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).map(Number);
    const [user, nice, system, _idle, _iowait, irq, softirq, steal] = f;
    return (user + nice + system + irq + softirq + steal) / 100; // USER_HZ
  } catch {
    return null;
  }
}

/** Waits (up to `limitS`) until the machine is < 15% busy over one second; returns the wait in s. */
async function waitIdle(limitS) {
  const started = performance.now();
  const cores = os.cpus().length;
  for (;;) {
    const a = machineBusySeconds();
    if (a === null) return 0;
    await new Promise((r) => setTimeout(r, 1000));
    const busy = (machineBusySeconds() - a) / cores;
    const waited = (performance.now() - started) / 1000;
    if (busy < 0.15 || waited >= limitS) {
      if (waited > 1.5) log(`waited ${waited.toFixed(0)} s for an idle machine (now ${(busy * 100).toFixed(0)}% busy)`);
      return waited;
    }
  }
}

// ---------------------------------------------------------------- audex progress → stages

/**
 * Turns audex's progress lines into consecutive stages. Events: "reading snapshot X",
 * "snapshot X: N profiles", "<aud>: selecting …", "<aud>: wrote …"; the time between two
 * events is charged to the stage the first one opens.
 */
export function audexStages(lines, wallMs) {
  const events = [];
  for (const { t, text } of lines) {
    // Several dataflows in one invocation prefix their lines with the dataflow's id.
    const prefix = /^audex: (bench-[\w-]+): /.exec(text);
    const msg = text.replace(/^audex: (bench-[\w-]+: )?/, '');
    const who = prefix ? `${prefix[1]}: ` : '';
    let m;
    if ((m = /^reading snapshot (\S+)/.exec(msg))) events.push({ t, kind: 'read', id: m[1] });
    else if ((m = /^snapshot (\S+): (\d+) profiles/.exec(msg))) events.push({ t, kind: 'loaded', id: m[1] });
    else if ((m = /^(\S+): selecting (\w+) rows/.exec(msg))) events.push({ t, kind: 'select', id: who + m[1] });
    else if ((m = /^(\S+): wrote (\d+) rows/.exec(msg))) events.push({ t, kind: 'wrote', id: who + m[1] });
  }
  const stages = [];
  let prevT = 0;
  let label = 'startup (node, config, plan, lock, DuckDB open)';
  let group = 'startup';
  // Every stage is kept, also one of 0 ms: two audiences run side by side, so two of
  // their progress lines can arrive in one read of stderr, with the same time.
  const close = (t) => {
    stages.push({ name: label, group, ms: Math.max(0, t - prevT) });
    prevT = Math.max(prevT, t);
  };
  for (const e of events) {
    close(e.t);
    if (e.kind === 'read') [label, group] = [`load snapshot ${e.id} (read + checks)`, 'load snapshot'];
    else if (e.kind === 'loaded') [label, group] = ['bad-record check, run set-up', 'commit / set-up'];
    else if (e.kind === 'select') [label, group] = [`${e.id}: select + write`, 'select + write'];
    else if (e.kind === 'wrote')
      [label, group] = [`${e.id}: commit (manifest, baseline, cursor) + next set-up`, 'commit / set-up'];
  }
  close(wallMs);
  if (stages.length && stages[stages.length - 1].group === 'commit / set-up') {
    stages[stages.length - 1].name = stages[stages.length - 1].name.replace('+ next set-up', '+ history, exit');
  }
  const groups = {};
  for (const s of stages) groups[s.group] = (groups[s.group] ?? 0) + s.ms;
  return { stages, groups, events: events.length };
}

// ---------------------------------------------------------------- helpers

function median(values) {
  const v = [...values].sort((a, b) => a - b);
  const mid = Math.floor(v.length / 2);
  return v.length % 2 ? v[mid] : (v[mid - 1] + v[mid]) / 2;
}

function profilesDirs(root) {
  return SNAPSHOTS.map((s) => path.join(root, s.snapshotId));
}

async function warmCache(root) {
  const started = performance.now();
  let bytes = 0;
  for (const dir of profilesDirs(root)) {
    const profiles = path.join(dir, 'profiles');
    for (const f of readdirSync(profiles).sort()) {
      await new Promise((resolve, reject) => {
        createReadStream(path.join(profiles, f), { highWaterMark: 4 << 20 })
          .on('data', (d) => (bytes += d.length))
          .on('end', resolve)
          .on('error', reject);
      });
    }
  }
  return { bytes, seconds: (performance.now() - started) / 1000 };
}

const mb = (kb) => (kb == null ? null : Math.round(kb / 1024));
const fmt = (n, d = 2) => (n == null || Number.isNaN(n) ? '—' : n.toFixed(d));
const int = (n) => (n == null ? '—' : Math.round(n).toLocaleString('en-US'));

function ensureBuilt() {
  if (existsSync(path.join(ROOT, 'dist', 'bundle', 'main.js'))) return;
  log('dist/ is missing: npm run build');
  const r = spawnSync('npm', ['run', 'build'], { cwd: ROOT, stdio: ['ignore', 2, 2] });
  if (r.status !== 0) throw new Error('npm run build failed');
}

function duckdbVersion() {
  try {
    return JSON.parse(readFileSync(path.join(ROOT, 'node_modules', '@duckdb', 'node-api', 'package.json'), 'utf8'))
      .version;
  } catch {
    return null;
  }
}

// ---------------------------------------------------------------- main

async function main() {
  // Dataset exports (README "Export datasets") have a benchmark of their own.
  if (process.argv.includes('--datasets'))
    return (await import('./bench/datasets.js')).benchDatasets(process.argv.slice(2).filter((a) => a !== '--datasets'));
  // The HTTP API destination's benchmark has its own runs and report (scripts/bench/http.js).
  if (process.argv.includes('--http'))
    return (await import('./bench/http.js')).benchHttp(process.argv.slice(2).filter((a) => a !== '--http'));
  // The state benchmark (issue 17): history reads and baseline sizes.
  if (process.argv.includes('--history'))
    return (await import('./bench/history.js')).benchHistory(process.argv.slice(2));
  let o;
  try {
    o = parseArgs(process.argv.slice(2));
  } catch (error) {
    process.stderr.write(`bench: ${error.message}\n${USAGE}\n`);
    return 2;
  }
  if (o.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  if (o.render) {
    process.stdout.write(renderReport(JSON.parse(readFileSync(o.render, 'utf8'))));
    return 0;
  }
  const loadBefore = os.loadavg();
  const genStarted = performance.now();
  const dataset = await ensureDataset(
    { cacheDir: o.cache, profiles: o.profiles, seed: o.seed, partSize: o.partSize, input: o.input, workers: o.workers },
    log,
  );
  const datasetSeconds = (performance.now() - genStarted) / 1000;
  if (o.generateOnly) {
    process.stdout.write(`${JSON.stringify({ dataset: { root: dataset.root, ...dataset.meta } }, null, 2)}\n`);
    return 0;
  }
  if (o.audexBin === BIN) ensureBuilt();

  const [snap1, snap2] = dataset.snapshots;
  const audiences = pickAudiences(o.audiences);
  const work = mkdtempSync(path.join(os.tmpdir(), 'audex-bench-'));
  live.work = work;
  const warm = await warmCache(dataset.root);
  log(`page cache warmed: ${(warm.bytes / 1e6).toFixed(0)} MB read in ${warm.seconds.toFixed(1)} s`);

  const memoryArgs = o.memoryLimit ? ['--memory-limit', o.memoryLimit] : [];
  let seq = 0;
  const results = [];

  /** One `audex run` of one dataflow, or of several in one invocation (one --config each). */
  async function audexRun(configFiles, at) {
    const files = [configFiles].flat();
    const configArgs = files.flatMap((f) => ['--config', f]);
    const m = await measure(process.execPath, [o.audexBin, 'run', ...configArgs, '--at', at, '--json', ...memoryArgs], {
      rssFile: path.join(work, `rss-${++seq}.txt`),
    });
    let summary = null;
    try {
      summary = JSON.parse(m.stdout);
    } catch {
      /* reported below */
    }
    const runs = (summary?.dataflows?.flatMap((d) => d.runs ?? []) ?? summary?.runs ?? []).filter(
      (r) => r.status !== 'skipped',
    );
    const failed =
      m.code !== 0 ||
      !summary ||
      runs.length !== audiences.length * files.length ||
      runs.some((r) => r.status !== 'success');
    const sum = (key) => runs.reduce((n, r) => n + (r.counts?.[key] ?? 0), 0);
    return {
      ...m,
      ok: !failed,
      error: failed
        ? `exit ${m.code}; ${
            runs
              .filter((r) => r.status !== 'success')
              .map((r) => `${r.audienceId}: ${r.error}`)
              .join('; ') ||
            m.lines
              .slice(-5)
              .map((l) => l.text)
              .join(' | ')
          }`
        : undefined,
      rows: sum('rowsWritten'),
      selected: sum('profilesReceived'),
      counts: Object.fromEntries(runs.map((r) => [r.audienceId, r.counts])),
      bytes: runs.reduce((n, r) => n + r.files.reduce((b, f) => b + f.bytes, 0), 0),
      stageInfo: audexStages(m.lines, m.wallMs),
    };
  }

  async function rawRun(mode) {
    const out = path.join(work, `raw-${mode}`);
    rmSync(out, { recursive: true, force: true });
    mkdirSync(out, { recursive: true });
    const [previous, current] = profilesDirs(dataset.root);
    const options = {
      mode,
      input: o.input,
      format: o.format,
      previous,
      current,
      audiences,
      outDir: out,
      memoryLimit: o.memoryLimit ?? '1GB',
      tempDir: path.join(work, `raw-spill-${mode}`),
    };
    const m = await measure(process.execPath, [RAW, JSON.stringify(options)], {
      rssFile: path.join(work, `rss-${++seq}.txt`),
    });
    let parsed = null;
    try {
      parsed = JSON.parse(m.stdout);
    } catch {
      /* reported below */
    }
    const rowsOf = (kind) => Object.values(parsed?.rows?.[kind] ?? {}).reduce((a, b) => a + b, 0);
    const bytes = readdirSync(out).reduce((n, f) => n + statSync(path.join(out, f)).size, 0);
    rmSync(out, { recursive: true, force: true });
    rmSync(options.tempDir, { recursive: true, force: true });
    return {
      ...m,
      ok: m.code === 0 && parsed !== null,
      error:
        m.code === 0 && parsed
          ? undefined
          : `exit ${m.code}: ${m.lines
              .slice(-5)
              .map((l) => l.text)
              .join(' | ')}`,
      rows: rowsOf('full') + rowsOf('incremental'),
      rowsByKind: parsed?.rows,
      bytes,
      stageInfo: parsed
        ? { stages: parsed.stages.map((s) => ({ name: s.name, group: s.name, ms: s.ms })), groups: null }
        : null,
    };
  }

  /** One timed attempt (waiting for an idle machine first when asked). */
  async function attempt(name, once) {
    if (o.waitIdle > 0) await waitIdle(o.waitIdle);
    const load = os.loadavg()[0];
    const a = await once();
    a.loadBefore = load;
    log(
      `${name}: ${a.ok ? `${(a.wallMs / 1000).toFixed(2)} s, peak RSS ${mb(a.peakKb)} MB, CPU ${fmt(a.cpuUser + a.cpuSys, 1)} s, others' CPU ${fmt(a.othersCpu, 1)} s` : `FAILED ${a.error}`}`,
    );
    return a;
  }

  /** A run's median over its successful attempts, with every attempt's figures. */
  function summarize(name, kind, profiles, attempts) {
    const ok = attempts.filter((a) => a.ok);
    // The median attempt by wall time stands for the run (its stages, rows, RSS); wall and
    // CPU seconds are the medians of the attempts.
    const sorted = [...(ok.length ? ok : attempts)].sort((x, y) => x.wallMs - y.wallMs);
    const best = sorted[Math.floor((sorted.length - 1) / 2)];
    const wallSeconds = median(sorted.map((a) => a.wallMs / 1000));
    const cpus = sorted.filter((a) => a.cpuUser != null).map((a) => a.cpuUser + a.cpuSys);
    return {
      name,
      kind,
      ok: best.ok,
      error: best.error,
      wallSeconds,
      profiles,
      profilesPerSecond: profiles / wallSeconds,
      peakRssMB: mb(best.peakKb),
      cpuSeconds: cpus.length ? median(cpus) : null,
      rows: best.rows,
      selected: best.selected,
      bytes: best.bytes,
      counts: best.counts,
      rowsByKind: best.rowsByKind,
      loadAverage1m: best.loadBefore,
      othersCpuSeconds: best.othersCpu,
      allWallSeconds: attempts.map((a) => a.wallMs / 1000),
      allCpuSeconds: attempts.map((a) => (a.cpuUser == null ? null : a.cpuUser + a.cpuSys)),
      allOthersCpuSeconds: attempts.map((a) => a.othersCpu),
      stages: best.stageInfo?.stages.map((st) => ({ name: st.name, group: st.group, seconds: st.ms / 1000 })) ?? [],
      stageGroups: best.stageInfo?.groups
        ? Object.fromEntries(Object.entries(best.stageInfo.groups).map(([k, v]) => [k, v / 1000]))
        : null,
      rssMethod: best.rssMethod,
    };
  }

  const dest = (name) => path.join(work, name);
  const writeConfig = (name, mode, encryption) => {
    const file = path.join(work, `${name}.json`);
    writeFileSync(
      file,
      JSON.stringify(
        dataflowConfig({
          id: `bench-${name}`,
          mode,
          snapshots: dataset.root,
          destination: dest(name),
          format: o.format,
          audiences,
          encryption,
        }),
        null,
        2,
      ),
    );
    return file;
  };

  // Attempts are interleaved (full, backfill, incremental, raw × 3, then again), so audex
  // and the raw baseline see the same machine when other sessions share its cores.
  const attempts = {
    full: [],
    fullEncrypted: [],
    backfill: [],
    incremental: [],
    pair: [],
    rawFull: [],
    rawIncremental: [],
    rawBoth: [],
  };
  try {
    const fullCfg = o.runs.includes('full') ? writeConfig('full', 'full') : null;
    const encCfg = o.encrypt
      ? writeConfig('full-encrypted', 'full', { type: 'pgp', publicKey: { file: await writeBenchKey(work) } })
      : null;
    const incCfg = o.runs.includes('incremental') ? writeConfig('incremental', 'incremental') : null;
    // The same two dataflows run in one invocation (README "Several dataflows in one invocation"): one read of snapshot 2.
    const pairCfg = o.runs.includes('pair')
      ? [writeConfig('pair-full', 'full'), writeConfig('pair-incremental', 'incremental')]
      : null;
    for (let r = 0; r < o.repeat; r++) {
      if (o.repeat > 1) log(`round ${r + 1}/${o.repeat}`);
      if (fullCfg) {
        attempts.full.push(
          await attempt('audex full', () => {
            rmSync(dest('full'), { recursive: true, force: true });
            return audexRun(fullCfg, SLOT_2);
          }),
        );
      }
      if (encCfg) {
        attempts.fullEncrypted.push(
          await attempt('audex full, encrypted', () => {
            rmSync(dest('full-encrypted'), { recursive: true, force: true });
            return audexRun(encCfg, SLOT_2);
          }),
        );
      }
      if (incCfg) {
        // A fresh backfill on snapshot 1 (timed, reported apart), then the timed incremental run.
        rmSync(dest('incremental'), { recursive: true, force: true });
        const b = await attempt('audex backfill', () => audexRun(incCfg, SLOT_1));
        attempts.backfill.push(b);
        attempts.incremental.push(
          b.ok
            ? await attempt('audex incremental', () => audexRun(incCfg, SLOT_2))
            : { ...b, error: `backfill failed: ${b.error}` },
        );
      }
      if (pairCfg) {
        // The incremental dataflow's backfill on snapshot 1 first (not timed), then both dataflows at once.
        for (const name of ['pair-full', 'pair-incremental']) rmSync(dest(name), { recursive: true, force: true });
        const b = await audexRun(pairCfg[1], SLOT_1);
        attempts.pair.push(
          b.ok
            ? await attempt('audex full + incremental, one invocation', () => audexRun(pairCfg, SLOT_2))
            : { ...b, error: `backfill failed: ${b.error}` },
        );
      }
      if (o.runs.includes('raw')) {
        attempts.rawFull.push(await attempt('raw full', () => rawRun('full')));
        attempts.rawIncremental.push(await attempt('raw incremental', () => rawRun('incremental')));
        attempts.rawBoth.push(await attempt('raw full+incremental', () => rawRun('both')));
      }
    }
  } finally {
    if (!o.keep) rmSync(work, { recursive: true, force: true });
    else log(`work folder kept: ${work}`);
  }
  const plan = [
    ['audex full', 'audex', snap2.profiles, attempts.full],
    ['audex full, encrypted', 'audex', snap2.profiles, attempts.fullEncrypted],
    ['audex backfill (not in ratio)', 'audex', snap1.profiles, attempts.backfill],
    ['audex incremental', 'audex', snap2.profiles, attempts.incremental],
    ['audex full + incremental, one invocation', 'audex', snap2.profiles, attempts.pair],
    ['raw full', 'raw', snap2.profiles, attempts.rawFull],
    ['raw incremental', 'raw', snap2.profiles, attempts.rawIncremental],
    ['raw full+incremental', 'raw', snap2.profiles, attempts.rawBoth],
  ];
  for (const [name, kind, profiles, list] of plan) if (list.length) results.push(summarize(name, kind, profiles, list));

  const byName = (n) => results.find((r) => r.name === n && r.ok);
  const ratio = (a, b) => (a && b ? a.wallSeconds / b.wallSeconds : null);
  const full = byName('audex full');
  const fullEncrypted = byName('audex full, encrypted');
  const inc = byName('audex incremental');
  const rawFull = byName('raw full');
  const rawInc = byName('raw incremental');
  const rawBoth = byName('raw full+incremental');
  const pair = byName('audex full + incremental, one invocation');
  const cpuRatio = (a, b) => (a && b && a.cpuSeconds && b.cpuSeconds ? a.cpuSeconds / b.cpuSeconds : null);
  const ratios = {
    full: ratio(full, rawFull),
    incremental: ratio(inc, rawInc),
    total: full && inc && rawBoth ? (full.wallSeconds + inc.wallSeconds) / rawBoth.wallSeconds : null,
    cpuFull: cpuRatio(full, rawFull),
    cpuIncremental: cpuRatio(inc, rawInc),
    encryption: ratio(fullEncrypted, full),
    cpuEncryption: cpuRatio(fullEncrypted, full),
    cpuTotal:
      full?.cpuSeconds && inc?.cpuSeconds && rawBoth?.cpuSeconds
        ? (full.cpuSeconds + inc.cpuSeconds) / rawBoth.cpuSeconds
        : null,
    pairToRaw: ratio(pair, rawBoth),
    cpuPairToRaw: cpuRatio(pair, rawBoth),
    pairToTwo: pair && full && inc ? pair.wallSeconds / (full.wallSeconds + inc.wallSeconds) : null,
    cpuPairToTwo:
      pair?.cpuSeconds && full?.cpuSeconds && inc?.cpuSeconds
        ? pair.cpuSeconds / (full.cpuSeconds + inc.cpuSeconds)
        : null,
  };
  for (const r of results) {
    r.ratioToRaw =
      r.name === 'audex full'
        ? ratios.full
        : r.name === 'audex incremental'
          ? ratios.incremental
          : r.name === 'audex full + incremental, one invocation'
            ? ratios.pairToRaw
            : null;
  }

  const report = {
    command: `npm run bench -- ${process.argv.slice(2).join(' ')}`.trim(),
    machine: {
      cpus: os.cpus().length,
      cpuModel: os.cpus()[0]?.model ?? null,
      memoryGiB: Math.round(os.totalmem() / 2 ** 30),
      platform: `${os.platform()} ${os.release()}`,
      node: process.version,
      duckdbNodeApi: duckdbVersion(),
      loadAverageBefore: loadBefore,
      loadAverageAfter: os.loadavg(),
    },
    params: {
      profiles: o.profiles,
      format: o.format,
      compression: 'gzip',
      input: o.input,
      memoryLimit: o.memoryLimit ?? '1GB (audex default)',
      audiences,
      seed: o.seed,
      partSize: o.partSize,
      repeat: o.repeat,
      waitIdle: o.waitIdle,
      audexBin: o.audexBin,
    },
    dataset: {
      root: dataset.root,
      snapshots: dataset.snapshots,
      parts: dataset.meta.parts,
      generatedSeconds: dataset.meta.ndjsonSeconds,
      parquetSeconds: dataset.meta.parquetSeconds ?? null,
      preparedThisRunSeconds: datasetSeconds,
      pageCacheWarmSeconds: warm.seconds,
    },
    runs: results,
    ratios,
  };

  if (o.save) writeFileSync(o.save, `${JSON.stringify(report, null, 2)}\n`);
  if (o.json) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  else process.stdout.write(renderReport(report));
  return results.every((r) => r.ok) ? 0 : 1;
}

/** A throwaway Curve25519 recipient key (public part only) for the encrypted run. */
async function writeBenchKey(work) {
  const openpgp = await import('openpgp');
  const { publicKey } = await openpgp.generateKey({
    type: 'ecc',
    curve: 'curve25519Legacy',
    userIDs: [{ name: 'audex bench', email: 'bench@example.com' }],
    date: new Date('2026-01-01T00:00:00Z'),
    format: 'armored',
  });
  const file = path.join(work, 'recipient.asc');
  writeFileSync(file, publicKey);
  return file;
}

function renderReport(report) {
  const { params, machine, dataset, runs, ratios } = report;
  const out = [];
  out.push(
    `audex bench: ${int(params.profiles)} profiles (snapshot 1: ${int(dataset.snapshots[0].profiles)}, snapshot 2: ${int(dataset.snapshots[1].profiles)}), ` +
      `input ${params.input}, output ${params.format}.gz, ${params.audiences.length} audiences (${params.audiences.join(', ')}), memory limit ${params.memoryLimit}`,
  );
  out.push(
    `machine: ${machine.cpus} × ${machine.cpuModel}, ${machine.memoryGiB} GiB, ${machine.node}, @duckdb/node-api ${machine.duckdbNodeApi}; load ${machine.loadAverageBefore.map((l) => l.toFixed(2)).join(' ')} before`,
  );
  out.push('');
  const header = ['run', 'wall s', 'profiles/s', 'peak RSS MB', 'CPU s', 'others CPU s', 'selected', 'rows', 'vs raw'];
  const rows = runs.map((r) => [
    r.name + (r.ok ? '' : ' (FAILED)'),
    r.ok ? fmt(r.wallSeconds) : `(${fmt(r.wallSeconds)})`,
    r.ok ? int(r.profilesPerSecond) : '—',
    r.peakRssMB == null ? '—' : String(r.peakRssMB),
    fmt(r.cpuSeconds, 1),
    fmt(r.othersCpuSeconds, 1),
    int(r.kind === 'raw' ? r.rows : r.selected),
    int(r.rows),
    r.ratioToRaw == null ? '' : `${r.ratioToRaw.toFixed(2)}×`,
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells) =>
    `| ${cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join(' | ')} |`;
  out.push(line(header));
  out.push(`|${widths.map((w, i) => (i === 0 ? `:${'-'.repeat(w + 1)}` : `${'-'.repeat(w + 1)}:`)).join('|')}|`);
  for (const r of rows) out.push(line(r));
  out.push('');
  if (ratios.total != null)
    out.push(
      `audex full + incremental vs raw full+incremental (one process, both snapshots): ${ratios.total.toFixed(2)}× (issue target ≤ 1.0×)`,
    );
  if (ratios.full != null)
    out.push(
      `audex full vs raw full: ${ratios.full.toFixed(2)}×;  audex incremental vs raw incremental: ${ratios.incremental?.toFixed(2) ?? '—'}×`,
    );
  if (ratios.encryption != null) {
    const encrypted = runs.find((r) => r.name === 'audex full, encrypted');
    const plain = runs.find((r) => r.name === 'audex full');
    out.push(
      `audex full, encrypted vs audex full: ${ratios.encryption.toFixed(2)}× wall, ${ratios.cpuEncryption?.toFixed(2) ?? '—'}× CPU (issue target ≤ 1.3×); ` +
        `${int(encrypted.bytes)} bytes encrypted vs ${int(plain.bytes)} plain`,
    );
  }
  if (ratios.pairToTwo != null) {
    out.push(
      `audex full + incremental in one invocation vs the two invocations: ${ratios.pairToTwo.toFixed(2)}× wall, ${ratios.cpuPairToTwo?.toFixed(2) ?? '—'}× CPU; ` +
        `vs raw full+incremental: ${ratios.pairToRaw?.toFixed(2) ?? '—'}× wall, ${ratios.cpuPairToRaw?.toFixed(2) ?? '—'}× CPU`,
    );
  }
  if (ratios.cpuFull != null)
    out.push(
      `by CPU seconds: full ${ratios.cpuFull.toFixed(2)}×, incremental ${ratios.cpuIncremental?.toFixed(2) ?? '—'}×, full + incremental ${ratios.cpuTotal?.toFixed(2) ?? '—'}×`,
    );
  if (runs.some((r) => r.allWallSeconds.length > 1))
    for (const r of runs)
      out.push(
        `attempts, ${r.name}: ${r.allWallSeconds.map((w, i) => `${fmt(w)} s (others ${fmt(r.allOthersCpuSeconds[i], 1)})`).join(', ')}`,
      );
  out.push(`peak RSS: ${runs[0]?.rssMethod ?? ''}; profiles/s = snapshot-2 profiles / wall s (backfill: snapshot 1);`);
  out.push(
    "CPU s = the process's user+sys; others CPU s = CPU the rest of the machine used meanwhile (other sessions: > 0.5 × wall s means the timing is contended)",
  );
  out.push(
    'selected = profiles selected (audex profilesReceived; raw: rows, one per profile); rows = rows written (audex: one per email id, after dedup)',
  );
  for (const r of runs.filter((x) => x.ok && x.kind === 'audex')) {
    out.push('');
    out.push(
      `stages, ${r.name} (${fmt(r.wallSeconds)} s): ${Object.entries(r.stageGroups ?? {})
        .map(([g, s]) => `${g} ${fmt(s)} s`)
        .join(', ')}`,
    );
    for (const s of r.stages) out.push(`  ${fmt(s.seconds).padStart(7)} s  ${s.name}`);
  }
  for (const r of runs.filter((x) => x.ok && x.kind === 'raw')) {
    out.push('');
    out.push(`stages, ${r.name} (${fmt(r.wallSeconds)} s wall; the rest is process start-up and exit):`);
    for (const s of r.stages) out.push(`  ${fmt(s.seconds).padStart(7)} s  ${s.name}`);
  }
  for (const r of runs.filter((x) => !x.ok)) out.push(`\n${r.name} FAILED: ${r.error}`);
  return `${out.join('\n')}\n`;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (error) => {
    process.stderr.write(`bench: ${error && error.stack ? error.stack : error}\n`);
    process.exitCode = 1;
  },
);
