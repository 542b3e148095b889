// `npm run demo`: a real export of the bundled fixtures into ./out, no network needed.
// Replays two days: the first run backfills, the second writes incremental changes; then a
// quiet day and a missed one for the CRM drop. Ends with the run report, out/report.html,
// and its screenshot, out/report.png (when Debian's chromium is installed).
import { spawnSync } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), '..');
const bin = path.join(root, 'bin', 'audex.js');
rmSync(path.join(root, 'out'), { recursive: true, force: true });

const steps = [
  ['fixtures/demo/acme-crm.yaml', '2026-11-20T06:00:00Z'],
  ['fixtures/demo/acme-crm.yaml', '2026-11-21T06:00:00Z'],
  ['fixtures/demo/acme-lake.yaml', '2026-11-21T06:00:00Z'],
  ['fixtures/demo/acme-crm.yaml', '2026-11-22T06:00:00Z'],
  ['fixtures/demo/acme-lake.yaml', '2026-11-22T06:00:00Z'],
  // 23 and 24 November are missed: the 25th run exports once and records those slots as skipped.
  ['fixtures/demo/acme-crm.yaml', '2026-11-25T06:00:00Z'],
];
for (const [config, at] of steps) {
  console.log(`\n$ audex run --config ${config} --at ${at}`);
  const result = spawnSync(process.execPath, [bin, 'run', '--config', config, '--at', at, '--quiet'], {
    cwd: root,
    stdio: 'inherit',
  });
  if (result.status !== 0) process.exit(result.status ?? 1);
}

const reportArgs = [
  'report',
  '--config',
  'fixtures/demo/acme-crm.yaml',
  '--config',
  'fixtures/demo/acme-lake.yaml',
  '--at',
  '2026-11-25T07:00:00Z',
  '--out',
  'out/report.html',
  '--quiet',
];
console.log(`\n$ audex ${reportArgs.join(' ')}`);
const report = spawnSync(process.execPath, [bin, ...reportArgs], { cwd: root, stdio: 'inherit' });
if (report.status !== 0) process.exit(report.status ?? 1);
await screenshot(path.join(root, 'out', 'report.html'), path.join(root, 'out', 'report.png'));

console.log(
  '\nThe files are under ./out (state under ./out/<dataflow>/_audex). Try: zcat "out/acme-crm/crm/VIP Customers/"*.csv.gz',
);
console.log('Open out/report.html in a browser for the run report (it needs no network).');

/** A full-page screenshot with the system chromium; without one, say how to get it and go on. */
async function screenshot(page, png) {
  const chromium = [process.env.CHROMIUM_PATH, '/usr/bin/chromium', '/usr/bin/chromium-browser'].find(
    (p) => p && existsSync(p),
  );
  if (!chromium) {
    console.log(
      'No chromium found, so no out/report.png; install it with `apt-get install chromium` (or set CHROMIUM_PATH).',
    );
    return;
  }
  let puppeteer;
  try {
    puppeteer = (await import('puppeteer-core')).default;
  } catch {
    console.log(
      'puppeteer-core is not installed (a development dependency), so no out/report.png; run `npm install` in this folder.',
    );
    return;
  }
  const browser = await puppeteer.launch({
    executablePath: chromium,
    args: ['--headless=new', '--no-sandbox', '--disable-gpu'],
  });
  try {
    const tab = await browser.newPage();
    await tab.setViewport({ width: 1280, height: 900 });
    await tab.goto(`file://${page}`, { waitUntil: 'load' });
    await tab.screenshot({ path: png, fullPage: true });
    console.log(`wrote ${png}`);
  } finally {
    await browser.close();
  }
}
