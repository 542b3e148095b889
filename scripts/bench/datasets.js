// Dataset export benchmark (README "Export datasets"): `npm run bench -- --datasets [options]`.
//
// 1. Generates (or reuses, from <cache>/datasets-<records>-<batches>-<seed>/) one dataset
//    in the §12 input layout: <batches> NDJSON batches of equal size (default 10 × 100,000
//    records, ~290 bytes a record), plus one more batch committed after the first slot.
// 2. Times real CLI runs, each a fresh process (peak RSS from /usr/bin/time when present):
//      backfill     the first export: every batch of the first slot (1M records)
//      increment    the next slot: the one batch added since
//    for NDJSON → json.gz and NDJSON → gz.parquet.
// 3. Times the "raw engine" baseline for the same records: one DuckDB COPY from read_json
//    of the same files to the same format (scripts/bench/datasets-raw.js, its own
//    process), and prints audex's time as a ratio to it.
import { spawn } from 'node:child_process';
import {
  cpSync,
  createWriteStream,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { once } from 'node:events';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const BIN = path.join(ROOT, 'bin', 'audex.js');
const RAW = path.join(ROOT, 'scripts', 'bench', 'datasets-raw.js');
const TIME = '/usr/bin/time';
const DATASET = 'ds-events';
const SLOT_1 = '2026-11-20T06:00:00Z';
const SLOT_2 = '2026-11-20T12:00:00Z';

const USAGE = `usage: npm run bench -- --datasets [options]
  --records N      records in the backfill (default 1000000)
  --batches N      batches they come in (default 10); one more batch is the increment
  --formats LIST   json,parquet (default both; always gzip)
  --repeat N       time every run N times and report the fastest (default 1)
  --cache DIR      dataset cache folder (default <repo>/.bench-cache)
  --seed N         generator seed (default 42)
  --json           print one JSON object on stdout instead of the table
  --save FILE      also write the JSON report to FILE`;

const log = (message) => process.stderr.write(`bench: ${message}\n`);

function parseArgs(argv) {
  const o = {
    records: 1_000_000,
    batches: 10,
    formats: ['json', 'parquet'],
    repeat: 1,
    cache: path.join(ROOT, '.bench-cache'),
    seed: 42,
    json: false,
    save: null,
    help: false,
  };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    const value = () => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${flag} needs a value`);
      return v;
    };
    const count = () => {
      const m = /^(\d+(?:\.\d+)?)([kKmM]?)$/.exec(value());
      if (!m) throw new Error(`${flag}: expected a positive number`);
      return Math.round(Number(m[1]) * (m[2] ? (/k/i.test(m[2]) ? 1e3 : 1e6) : 1));
    };
    switch (flag) {
      case '--records':
        o.records = count();
        break;
      case '--batches':
        o.batches = count();
        break;
      case '--formats':
        o.formats = value()
          .split(',')
          .map((s) => s.trim());
        break;
      case '--repeat':
        o.repeat = count();
        break;
      case '--cache':
        o.cache = path.resolve(value());
        break;
      case '--seed':
        o.seed = count();
        break;
      case '--json':
        o.json = true;
        break;
      case '--save':
        o.save = path.resolve(value());
        break;
      case '-h':
      case '--help':
        o.help = true;
        break;
      default:
        throw new Error(`unknown option ${flag}`);
    }
  }
  for (const f of o.formats)
    if (!['json', 'parquet'].includes(f)) throw new Error(`--formats: json or parquet, not ${f}`);
  if (o.records < o.batches) throw new Error('--records must be at least --batches');
  return o;
}

// ---------------------------------------------------------------- the dataset

function seeded(seed) {
  let state = seed | 0;
  return () => {
    state = (state + 0x6d2b79f5) | 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const CHANNELS = ['web', 'mobile', 'email', 'store', 'call-center'];
const EVENTS = ['page.view', 'product.view', 'cart.add', 'checkout', 'purchase'];

function record(rand, n) {
  const items = Array.from({ length: 1 + Math.floor(rand() * 3) }, (_, i) => ({
    sku: `SKU-${Math.floor(rand() * 50_000)}`,
    qty: 1 + Math.floor(rand() * 4),
    price: Math.round(rand() * 20_000) / 100,
    line: i + 1,
  }));
  return {
    eventId: `ev-${String(n).padStart(9, '0')}`,
    timestamp: new Date(Date.UTC(2026, 10, 19) + Math.floor(rand() * 86_400_000)).toISOString(),
    eventType: EVENTS[Math.floor(rand() * EVENTS.length)],
    customerId: `c-${Math.floor(rand() * 400_000)}`,
    channel: CHANNELS[Math.floor(rand() * CHANNELS.length)],
    amount: Math.round(rand() * 100_000) / 100,
    consent: rand() < 0.8,
    items,
    web: {
      url: `https://shop.example.com/p/${Math.floor(rand() * 10_000)}`,
      referrer: rand() < 0.5 ? null : 'https://search.example.com/',
    },
  };
}

async function writeBatch(dir, batchId, committedAt, from, count, rand) {
  mkdirSync(dir, { recursive: true });
  const out = createWriteStream(path.join(dir, 'part-00000.ndjson'));
  let chunk = [];
  for (let n = from; n < from + count; n++) {
    chunk.push(JSON.stringify(record(rand, n)));
    if (chunk.length === 5000) {
      if (!out.write(`${chunk.join('\n')}\n`)) await once(out, 'drain');
      chunk = [];
    }
  }
  if (chunk.length) out.write(`${chunk.join('\n')}\n`);
  out.end();
  await once(out, 'close');
  writeFileSync(path.join(dir, '_batch.json'), JSON.stringify({ batchId, committedAt }));
}

/** The dataset root (cached): `batches` batches of the backfill, then `increment`. */
async function ensureDataset(o) {
  const root = path.join(o.cache, `datasets-${o.records}-${o.batches}-${o.seed}`);
  if (existsSync(path.join(root, 'done.json'))) return JSON.parse(readFileSync(path.join(root, 'done.json'), 'utf8'));
  const tmp = `${root}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  const rand = seeded(o.seed);
  const per = Math.floor(o.records / o.batches);
  const started = performance.now();
  const files = [];
  for (let b = 0; b < o.batches; b++) {
    const count = b === o.batches - 1 ? o.records - per * (o.batches - 1) : per;
    const id = `batch-${String(b + 1).padStart(4, '0')}`;
    await writeBatch(
      path.join(tmp, 'datasets', DATASET, id),
      id,
      new Date(Date.UTC(2026, 10, 20, 0, b)).toISOString(),
      b * per,
      count,
      rand,
    );
    files.push(path.join(root, 'datasets', DATASET, id, 'part-00000.ndjson'));
    log(`generated ${id} (${count} records)`);
  }
  const incId = `batch-${String(o.batches + 1).padStart(4, '0')}`;
  await writeBatch(path.join(tmp, 'datasets', DATASET, incId), incId, '2026-11-20T08:00:00Z', o.records, per, rand);
  const meta = {
    root: path.join(root, 'datasets'),
    backfillFiles: files,
    incrementFiles: [path.join(root, 'datasets', DATASET, incId, 'part-00000.ndjson')],
    records: o.records,
    incrementRecords: per,
  };
  writeFileSync(path.join(tmp, 'done.json'), JSON.stringify(meta, null, 2));
  mkdirSync(o.cache, { recursive: true });
  renameSync(tmp, root);
  log(`dataset generated in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  return meta;
}

// ---------------------------------------------------------------- measuring

function measure(args, rssFile) {
  const useTime = existsSync(TIME);
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = useTime
      ? spawn(TIME, ['-f', '%M %U %S', '-o', rssFile, process.execPath, ...args], {
          cwd: ROOT,
          stdio: ['ignore', 'pipe', 'pipe'],
        })
      : spawn(process.execPath, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => {
      const wallMs = performance.now() - started;
      let peakKb = null;
      let cpuSeconds = null;
      if (useTime) {
        // The last line (time writes "Command exited with non-zero status N" first on failure).
        const m = /(\d+) ([\d.]+) ([\d.]+)\s*$/.exec(readFileSync(rssFile, 'utf8').trim());
        if (m) {
          peakKb = Number(m[1]);
          cpuSeconds = Number(m[2]) + Number(m[3]);
        }
      }
      resolve({ code, wallMs, peakKb, cpuSeconds, stdout, stderr });
    });
  });
}

async function fastest(repeat, attempt) {
  let best = null;
  for (let i = 0; i < repeat; i++) {
    const m = await attempt();
    if (!best || (m.ok && m.wallMs < best.wallMs) || !best.ok) best = m;
  }
  return best;
}

// ---------------------------------------------------------------- the runs

function config(source, destination, format) {
  return {
    name: `Bench datasets ${format}`,
    id: `bench-ds-${format}`,
    source: { datasets: source },
    destination: { path: destination },
    format: { type: format, compression: 'gzip', manifest: true },
    folderPath: 'datasets',
    datasets: [{ id: DATASET, schedule: { frequency: 'every6Hours', startTime: '00:00', startDate: '2026-11-20' } }],
  };
}

export async function benchDatasets(argv) {
  let o;
  try {
    o = parseArgs(argv);
  } catch (error) {
    process.stderr.write(`bench: ${error.message}\n${USAGE}\n`);
    return 2;
  }
  if (o.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const data = await ensureDataset(o);
  const work = mkdtempSync(path.join(os.tmpdir(), 'audex-bench-ds-'));
  const results = [];
  let seq = 0;
  try {
    // Warm the page cache, so the first timed run does not pay for the disk.
    for (const f of [...data.backfillFiles, ...data.incrementFiles]) readFileSync(f);
    for (const format of o.formats) {
      const rawOf = async (name, files, records) => {
        const m = await fastest(o.repeat, async () => {
          const out = path.join(work, `raw-${++seq}`);
          mkdirSync(out, { recursive: true });
          const r = await measure(
            [RAW, JSON.stringify({ files, format, outDir: out, tempDir: path.join(work, `raw-tmp-${seq}`) })],
            path.join(work, `rss-${seq}`),
          );
          rmSync(out, { recursive: true, force: true });
          const rows = r.code === 0 ? JSON.parse(r.stdout).rows : 0;
          return {
            ...r,
            ok: r.code === 0 && rows === records,
            rows,
            error: r.code === 0 ? undefined : r.stderr.slice(-400),
          };
        });
        results.push({ name, kind: 'raw', format, ...summarize(m, records) });
      };
      const audexOf = async (name, records, prepare) => {
        const m = await fastest(o.repeat, async () => {
          const { file, at } = prepare();
          const r = await measure(
            [BIN, 'run', '--config', file, '--at', at, '--json', '--quiet'],
            path.join(work, `rss-${++seq}`),
          );
          let rows = 0;
          try {
            rows = JSON.parse(r.stdout)
              .runs.filter((x) => x.status === 'success')
              .reduce((n, x) => n + x.counts.rowsWritten, 0);
          } catch {
            /* reported below */
          }
          return {
            ...r,
            ok: r.code === 0 && rows === records,
            rows,
            error: r.code === 0 ? undefined : r.stdout.slice(-400) + r.stderr.slice(-400),
          };
        });
        results.push({ name, kind: 'audex', format, ...summarize(m, records) });
      };
      const dir = path.join(work, format);
      const configFile = path.join(dir, 'flow.json');
      const fresh = () => {
        rmSync(dir, { recursive: true, force: true });
        mkdirSync(dir, { recursive: true });
        writeFileSync(configFile, JSON.stringify(config(data.root, path.join(dir, 'out'), format)));
      };
      log(`${format}: backfill of ${data.records} records`);
      await audexOf('backfill', data.records, () => (fresh(), { file: configFile, at: SLOT_1 }));
      await rawOf('backfill', data.backfillFiles, data.records);
      // The increment runs after a backfill; with --repeat, each attempt starts from a copy of that state.
      log(`${format}: increment of ${data.incrementRecords} records`);
      fresh();
      const base = await measure(
        [BIN, 'run', '--config', configFile, '--at', SLOT_1, '--quiet'],
        path.join(work, `rss-${++seq}`),
      );
      if (base.code !== 0) throw new Error(`the backfill before the increment failed: ${base.stderr}`);
      const snapshot = path.join(work, `${format}-after-backfill`);
      rmSync(snapshot, { recursive: true, force: true });
      renameSync(path.join(dir, 'out'), snapshot);
      await audexOf('increment', data.incrementRecords, () => {
        rmSync(path.join(dir, 'out'), { recursive: true, force: true });
        cpSync(snapshot, path.join(dir, 'out'), { recursive: true });
        return { file: configFile, at: SLOT_2 };
      });
      await rawOf('increment', data.incrementFiles, data.incrementRecords);
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  for (const r of results.filter((x) => x.kind === 'audex')) {
    const raw = results.find((x) => x.kind === 'raw' && x.name === r.name && x.format === r.format);
    r.vsRaw = raw && raw.ok && r.ok ? Math.round((r.wallSeconds / raw.wallSeconds) * 100) / 100 : null;
    // CPU time (user + sys) is steadier than wall time on a machine shared with other work.
    r.cpuVsRaw =
      raw && raw.ok && r.ok && raw.cpuSeconds && r.cpuSeconds !== null
        ? Math.round((r.cpuSeconds / raw.cpuSeconds) * 100) / 100
        : null;
  }
  const report = {
    records: data.records,
    batches: o.batches,
    incrementRecords: data.incrementRecords,
    cores: os.cpus().length,
    node: process.version,
    loadAverage: os.loadavg().map((l) => Math.round(l * 100) / 100),
    runs: results,
  };
  if (o.save) writeFileSync(o.save, `${JSON.stringify(report, null, 2)}\n`);
  process.stdout.write(o.json ? `${JSON.stringify(report, null, 2)}\n` : render(report));
  return results.every((r) => r.ok) ? 0 : 1;
}

function summarize(m, records) {
  return {
    ok: m.ok,
    ...(m.error ? { error: m.error } : {}),
    wallSeconds: Math.round(m.wallMs) / 1000,
    recordsPerSecond: Math.round(records / (m.wallMs / 1000)),
    cpuSeconds: m.cpuSeconds === null ? null : Math.round(m.cpuSeconds * 100) / 100,
    peakRssMB: m.peakKb === null ? null : Math.round(m.peakKb / 1024),
    rows: m.rows,
  };
}

function render(report) {
  const rows = report.runs.map((r) => [
    `${r.name} → ${r.format === 'json' ? 'json.gz' : 'gz.parquet'}`,
    r.kind,
    String(r.rows),
    r.ok ? r.wallSeconds.toFixed(2) : 'FAILED',
    r.ok ? String(r.recordsPerSecond) : '-',
    r.peakRssMB === null ? '-' : String(r.peakRssMB),
    r.cpuSeconds === null ? '-' : r.cpuSeconds.toFixed(2),
    r.vsRaw === undefined ? '' : r.vsRaw === null ? '-' : `${r.vsRaw.toFixed(2)}×`,
    r.cpuVsRaw === undefined ? '' : r.cpuVsRaw === null ? '-' : `${r.cpuVsRaw.toFixed(2)}×`,
  ]);
  const header = ['run', 'engine', 'records', 'wall s', 'records/s', 'peak MB', 'cpu s', 'wall vs raw', 'cpu vs raw'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const lines = [
    `dataset export: ${report.records} records in ${report.batches} batches (increment ${report.incrementRecords}); ${report.cores} cores, node ${report.node}, load ${report.loadAverage.join(' ')}`,
    ...[header, ...rows].map((r) =>
      r
        .map((c, i) => c.padEnd(widths[i]))
        .join('  ')
        .trimEnd(),
    ),
  ];
  for (const r of report.runs.filter((x) => !x.ok))
    lines.push(`${r.kind} ${r.name} ${r.format}: ${r.error ?? 'wrong row count'}`);
  return `${lines.join('\n')}\n`;
}
