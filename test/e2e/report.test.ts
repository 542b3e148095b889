// Issue 16 / README "Run report": `audex report` writes one self-contained HTML page from the run
// history, built here by real CLI runs (--at stepping through a success, a failed run that
// the next run finishes, and skipped slots), then opened in headless Chromium: no console
// errors, no network, charts drawn, and the numbers on the page equal the history records.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { createRequire } from 'node:module';
import path from 'node:path';
import type { Browser, Page } from 'puppeteer-core';
import { crmConfig, trackWorkspaces, type CliResult, type Workspace } from '../helpers/harness.js';
import { renderReport } from '../../src/report/render-report.js';
import { syntheticHistory } from '../helpers/synthetic-history.js';
import {
  browserTestsRun,
  canvasPixels,
  findChromium,
  INSTALL_CHROMIUM,
  launchChromium,
  openFile,
  type OpenedPage,
} from '../helpers/browser.js';

const workspace = trackWorkspaces();

const VIP = {
  id: 'aud-vip',
  mode: 'incremental',
  schedule: { frequency: 'daily', startTime: '05:30', startDate: '2026-11-01' },
};
const CHURN = { id: 'aud-churn', mode: 'full', schedule: { frequency: 'daily', trigger: 'afterEvaluation' } };
const mapping = (tierType: string) => [
  { source: 'identityMap.email', target: 'email' },
  { source: 'loyalty.tier', target: 'tier', type: tierType },
  { source: 'loyalty.points', target: 'points' },
  { source: 'segmentMembership.status', target: 'status' },
];
/** tier as int64 fails every run (tier is "gold"); as string the same dataflow works. */
const crm = (tierType: string) =>
  crmConfig({ format: { type: 'parquet', compression: 'none' }, mapping: mapping(tierType), audiences: [VIP, CHURN] });
const lake = () => ({
  ...crmConfig({
    name: 'Acme Lake',
    id: 'acme-lake',
    destination: { path: './lake' },
    format: { type: 'json', compression: 'none' },
  }),
  audiences: [
    { id: 'aud-vip', mode: 'full', schedule: { frequency: 'daily', startTime: '06:00', startDate: '2026-11-01' } },
  ],
});

const AT = '2026-11-24T07:00:00Z';
const FAILED_SLOT = '2026-11-21T05:30:00.000Z';
const OKABE_VERMILLION = '#D55E00';
const SKIPPED_GREY = '#6B6B6B';

interface HistoryRecord {
  runId: string;
  audienceId: string;
  status: string;
  logicalTime: string;
  trigger: string;
  mode: string;
  counts: Record<string, number>;
  files: unknown[];
  durationMs?: number;
  error?: string;
  note?: string;
}

function ok(r: CliResult): CliResult {
  if (r.code !== 0) throw new Error(`exit ${r.code}\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`);
  return r;
}

/** Builds the history with real runs and returns both configs. */
async function buildHistory(w: Workspace): Promise<{ crmFile: string; lakeFile: string }> {
  const good = w.config(crm('string'), 'crm.yaml');
  const bad = w.config(crm('int64'), 'crm-bad.yaml');
  const lakeFile = w.config(lake(), 'lake.yaml');
  const run = (file: string, at: string) => w.audex(['run', '-c', file, '--at', at, '-q', '--json']);
  ok(await run(good, '2026-11-20T06:00:00Z'));
  const failed = await run(bad, '2026-11-21T06:00:00Z');
  expect(failed.code, failed.stderr).toBe(4);
  ok(await run(good, '2026-11-21T06:00:00Z'));
  const late = ok(await run(good, '2026-11-24T06:00:00Z')).json();
  expect(late.runs.map((r) => r.status)).toEqual(['skipped', 'skipped', 'success']);
  ok(await run(lakeFile, '2026-11-24T06:00:00Z'));
  return { crmFile: good, lakeFile };
}

async function history(w: Workspace, config: string): Promise<HistoryRecord[]> {
  return (
    JSON.parse(ok(await w.audex(['runs', '-c', config, '-n', '1000', '--json'])).stdout) as { runs: HistoryRecord[] }
  ).runs;
}

const require = createRequire(import.meta.url);
const readChartLibrary = () => ({
  script: readFileSync(require.resolve('uplot/dist/uPlot.iife.min.js'), 'utf8'),
  style: readFileSync(require.resolve('uplot/dist/uPlot.min.css'), 'utf8'),
});

const cellText = (page: Page, selector: string) =>
  page.$$eval(selector, (els) => els.map((e) => (e as HTMLElement).innerText.trim()));

describe('audex report (README "Run report")', () => {
  let w: Workspace;
  let crmFile: string;
  let lakeFile: string;
  let crmRuns: HistoryRecord[];
  let lakeRuns: HistoryRecord[];
  let report: CliResult;
  let outFile: string;

  beforeAll(async () => {
    w = workspace();
    ({ crmFile, lakeFile } = await buildHistory(w));
    [crmRuns, lakeRuns] = await Promise.all([history(w, crmFile), history(w, lakeFile)]);
    outFile = path.join(w.dir, 'reports', 'report.html');
    report = await w.audex(['report', '-c', crmFile, '-c', lakeFile, '--at', AT, '--out', outFile, '--json']);
  });

  it('writes one page whose --json names it, with the run counts of each dataflow; nothing is fetched from elsewhere', () => {
    ok(report);
    const summary = JSON.parse(report.stdout) as {
      out: string;
      bytes: number;
      at: string;
      dataflows: { dataflowId: string; runs: number }[];
    };
    expect(summary).toEqual({
      at: '2026-11-24T07:00:00.000Z',
      out: outFile,
      bytes: readFileSync(outFile).length,
      dataflows: [
        { dataflowId: 'acme-crm', runs: 9 },
        { dataflowId: 'acme-lake', runs: 1 },
      ],
    });
    expect(crmRuns).toHaveLength(9);
    const html = readFileSync(outFile, 'utf8');
    expect(html).not.toMatch(/<script[^>]+src=|<link[^>]+href=|@import|url\(\s*['"]?https?:/i);
    expect(readdirSync(path.dirname(outFile))).toEqual(['report.html']); // no temp file left
  });

  it('the same history and --at give the same bytes', async () => {
    const again = path.join(w.dir, 'again.html');
    ok(await w.audex(['report', '-c', crmFile, '-c', lakeFile, '--at', AT, '--out', again, '-q']));
    expect(readFileSync(again).equals(readFileSync(outFile))).toBe(true);
  });

  it('--since keeps only runs at or after it; a bad --since or config is refused before anything is written', async () => {
    const since = path.join(w.dir, 'since.html');
    ok(await w.audex(['report', '-c', crmFile, '--since', '2026-11-22', '--at', AT, '--out', since, '-q']));
    const html = readFileSync(since, 'utf8');
    const vipIds = [
      ...html.matchAll(/<tr data-run-id="([^"]+)" data-status="(\w+)"><td>([^<]+)<\/td><td>\w+<\/td><td>/g),
    ].map((m) => [m[3], m[2]]);
    expect(vipIds).toEqual([
      ['2026-11-24 05:30 UTC', 'success'],
      ['2026-11-23 05:30 UTC', 'skipped'],
      ['2026-11-22 05:30 UTC', 'skipped'],
    ]);
    expect(html).toContain('(runs since 2026-11-22 00:00 UTC)');

    const badSince = await w.audex([
      'report',
      '-c',
      crmFile,
      '--since',
      'yesterday',
      '--out',
      path.join(w.dir, 'x.html'),
    ]);
    expect(badSince.code).toBe(2);
    expect(badSince.stderr).toMatch(/--since yesterday: not an ISO 8601 time/);
    const missing = await w.audex([
      'report',
      '-c',
      crmFile,
      '-c',
      path.join(w.dir, 'nope.yaml'),
      '--out',
      path.join(w.dir, 'x.html'),
    ]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('nope.yaml');
    expect(existsSync(path.join(w.dir, 'x.html'))).toBe(false);
    const asJson = await w.audex([
      'report',
      '-c',
      path.join(w.dir, 'nope.yaml'),
      '--out',
      path.join(w.dir, 'x.html'),
      '--json',
    ]);
    expect(asJson.code).toBe(2);
    expect(JSON.parse(asJson.stdout)).toEqual({
      error: { exitCode: 2, message: expect.stringContaining('nope.yaml') },
    });
  });

  it('names the holder of a lock, in the report and in `audex status`, and says when its process is gone', async () => {
    const lockFile = path.join(w.out, '_audex', 'acme-crm', 'lock.json');
    const lockOut = path.join(w.dir, 'locked.html');
    const holder = async (pid: number) => {
      writeFileSync(
        lockFile,
        JSON.stringify({
          token: 't',
          pid,
          host: hostname(),
          acquiredAt: '2026-11-24T06:59:00.000Z',
          dataflowId: 'acme-crm',
        }),
      );
      ok(await w.audex(['report', '-c', crmFile, '--at', AT, '--out', lockOut, '-q']));
      const status = JSON.parse(ok(await w.audex(['status', '-c', crmFile, '--at', AT, '--json'])).stdout) as {
        lockHolder: string | null;
      };
      const shown = /<p class="lock" data-field="lock">(.*?)<\/p>/.exec(readFileSync(lockOut, 'utf8'))![1];
      return { shown, status: status.lockHolder };
    };
    try {
      const live = await holder(process.pid);
      expect(live.status).toBe(`pid ${process.pid} on ${hostname()}, since 2026-11-24T06:59:00.000Z`);
      expect(live.shown).toBe(`Lock: <span class="flag warn">locked</span> by ${live.status}`);
      const gone = await holder(2 ** 22 + 17); // above Linux's largest pid
      expect(gone.status).toMatch(/\(that process is gone; the next run takes the lock over\)$/);
    } finally {
      rmSync(lockFile, { force: true });
    }
  });

  describe.runIf(browserTestsRun())('in headless Chromium', () => {
    let browser: Browser;
    let opened: OpenedPage;
    beforeAll(async () => {
      if (!findChromium()) return; // under CI=true: every test below fails, the first says why
      browser = await launchChromium();
      opened = await openFile(browser, outFile);
    });

    it('has a browser (Debian chromium) to render in', () => {
      expect(findChromium(), `no chromium found; install it with \`${INSTALL_CHROMIUM}\``).not.toBeNull();
    });
    afterAll(async () => {
      await browser?.close();
    });

    it('renders with no console or page error and asks for nothing but the file itself', () => {
      expect(opened.errors).toEqual([]);
      expect(opened.requests).toEqual([`file://${outFile}`]);
    });

    it('the header names the dataflows, the time range of the runs and when the report was made', async () => {
      const { page } = opened;
      expect(await page.$eval('h1', (e) => e.textContent)).toBe('Run report: Acme CRM, Acme Lake');
      expect(await page.$eval('[data-field=range]', (e) => e.textContent)).toBe(
        'Runs from 2026-11-20 05:00 UTC to 2026-11-24 06:00 UTC',
      );
      expect(await page.$eval('[data-field=generatedAt]', (e) => e.textContent)).toMatch(
        /^Made at 2026-11-24 07:00 UTC/,
      );
      expect(await cellText(page, '[data-field=overview] li')).toEqual([
        'Acme CRM: 9 run(s), 5 succeeded, 2 failed, 2 skipped',
        'Acme Lake: 1 run(s), 1 succeeded, 0 failed, 0 skipped',
      ]);
    });

    it('every chart drew, and failed runs and skipped slots are marked on the time axis', async () => {
      const { page } = opened;
      const figures = await page.$$eval('[data-dataflow=acme-crm] [data-audience=aud-vip] figure.chart', (els) =>
        els.map((e) => e.getAttribute('data-chart')),
      );
      expect(figures).toEqual([
        'Profiles received and rows written',
        'Excluded, exits and bad records',
        'Run duration',
      ]);
      const pixels = await canvasPixels(page, 'figure.chart canvas', [OKABE_VERMILLION, SKIPPED_GREY]);
      expect(pixels.length).toBe(await page.$$eval('figure.chart', (els) => els.length));
      expect(pixels.length).toBe(3 + 3 + 3); // vip and churn of acme-crm, vip of acme-lake
      for (const p of pixels) expect(p.drawn).toBeGreaterThan(2000);
      const vip = pixels.slice(0, 3);
      for (const p of vip) {
        expect(p.colours[OKABE_VERMILLION]).toBeGreaterThan(20); // the failed run's marker
        expect(p.colours[SKIPPED_GREY]).toBeGreaterThan(20); // the skipped slots' markers
      }
      // The legend names them in words too.
      const legend = await cellText(page, '[data-audience=aud-vip] figure.chart:first-child .u-legend .u-label');
      expect(legend).toEqual(
        expect.arrayContaining(['failed run', 'skipped slot', 'profiles received', 'rows written']),
      );
    });

    it("the chart's legend shows the history's numbers of the run under the cursor", async () => {
      const { page } = opened;
      const chart = '[data-dataflow=acme-crm] [data-audience=aud-vip] figure.chart:first-child';
      const over = (await page.$(`${chart} .u-over`))!;
      const box = (await over.boundingBox())!;
      await page.mouse.move(box.x + box.width - 1, box.y + box.height / 2); // the newest run is at the right edge
      const values = await cellText(page, `${chart} .u-legend .u-series .u-value`);
      const newest = crmRuns.find((r) => r.audienceId === 'aud-vip')!;
      expect(newest.status).toBe('success');
      expect(values.slice(0, 3)).toEqual([
        '2026-11-24 05:30',
        String(newest.counts['profilesReceived']),
        String(newest.counts['rowsWritten']),
      ]);
    });

    it('the tables of latest runs and of failures hold exactly the history records', async () => {
      const { page } = opened;
      for (const [dataflow, runs] of [
        ['acme-crm', crmRuns],
        ['acme-lake', lakeRuns],
      ] as const) {
        for (const audienceId of [...new Set(runs.map((r) => r.audienceId))]) {
          const scope = `[data-dataflow=${dataflow}] section.audience[data-audience=${audienceId}]`;
          const rows = await page.$$eval(`${scope} table.runs tbody tr`, (trs) =>
            trs.map((tr) => ({
              runId: tr.getAttribute('data-run-id'),
              status: tr.getAttribute('data-status'),
              cells: Object.fromEntries(
                [...tr.querySelectorAll('td[data-counter]')].map((td) => [
                  td.getAttribute('data-counter'),
                  (td as HTMLElement).innerText,
                ]),
              ),
            })),
          );
          const mine = runs.filter((r) => r.audienceId === audienceId); // newest first, as the table
          expect(rows.map((r) => [r.runId, r.status])).toEqual(mine.map((r) => [r.runId, r.status]));
          rows.forEach((row, i) => {
            const record = mine[i]!;
            const expected: Record<string, string> = {};
            for (const key of Object.keys(record.counts))
              expected[key] = record.status === 'success' ? String(record.counts[key]) : '–';
            expected['durationMs'] =
              record.durationMs === undefined
                ? '–'
                : `${(record.durationMs / 1000).toFixed(record.durationMs < 1000 ? 2 : 1)} s`;
            expected['files'] = record.status === 'success' ? String(record.files.length) : '–';
            expect(row.cells, `${dataflow} ${audienceId} ${record.runId} ${record.status}`).toEqual(expected);
          });
          const problems = await page.$$eval(`${scope} table.problems tbody tr`, (trs) =>
            trs.map((tr) => [
              tr.getAttribute('data-run-id'),
              tr.getAttribute('data-status'),
              (tr.querySelector('td.message') as HTMLElement).innerText,
            ]),
          );
          expect(problems).toEqual(
            mine.filter((r) => r.status !== 'success').map((r) => [r.runId, r.status, r.error ?? r.note]),
          );
        }
      }
      const failed = crmRuns.filter((r) => r.status === 'failed');
      expect(failed.map((r) => [r.audienceId, r.logicalTime])).toEqual([
        ['aud-vip', FAILED_SLOT],
        ['aud-churn', '2026-11-21T05:00:00.000Z'],
      ]);
      expect(failed[0]!.error).toMatch(/int64/);
    });

    it('the status table shows what `audex status` says, and the lock is free', async () => {
      const { page } = opened;
      const status = JSON.parse(ok(await w.audex(['status', '-c', crmFile, '--at', AT, '--json'])).stdout) as {
        lockHolder: string | null;
        audiences: {
          audienceId: string;
          nextSlot: string;
          baselineSize: number;
          lastSuccess: { rowsWritten: number; files: number };
        }[];
      };
      expect(status.lockHolder).toBeNull();
      const vip = status.audiences.find((a) => a.audienceId === 'aud-vip')!;
      const row = '[data-dataflow=acme-crm] table.status tr[data-audience=aud-vip]';
      expect(await cellText(page, `${row} td`)).toEqual([
        `2026-11-24 05:30 UTC\n${vip.lastSuccess.rowsWritten} rows in ${vip.lastSuccess.files} file(s)`,
        '2026-11-25 05:30 UTC',
        `${vip.baselineSize} profiles`,
        'none',
        'none',
      ]);
      expect(vip.nextSlot).toBe('2026-11-25T05:30:00.000Z');
      expect(await page.$eval('[data-dataflow=acme-crm] [data-field=lock]', (e) => e.textContent)).toBe(
        'Lock: free (no run in progress)',
      );
    });

    it('a page of 10,000 runs (with HTTP counters and one it does not know) opens with no error and draws every chart', async () => {
      const file = path.join(w.dir, 'long.html');
      writeFileSync(
        file,
        renderReport({
          generatedAt: new Date(AT),
          since: null,
          chartLibrary: readChartLibrary(),
          dataflows: [
            {
              id: 'acme-http',
              name: 'Acme Webhook',
              lockHolder: 'pid 7 on host-a, since 2026-11-24T06:59:00Z',
              audiences: [],
              history: syntheticHistory(10_000),
            },
          ],
        }),
      );
      const long = await openFile(browser, file);
      try {
        console.log(`10,000 runs: page loaded and charts drawn in ${long.loadMs.toFixed(0)} ms`);
        expect(long.errors).toEqual([]);
        expect(long.loadMs).toBeLessThan(10_000);
        const titles = await long.page.$$eval('[data-audience=aud-b] figure.chart', (els) =>
          els.map((e) => e.getAttribute('data-chart')),
        );
        expect(titles).toEqual([
          'Volume',
          'Excluded, exits and bad records',
          'Delivery: retries and dead letters',
          'Other counters',
          'Run duration',
        ]);
        const pixels = await canvasPixels(long.page, 'figure.chart canvas');
        expect(pixels).toHaveLength(3 + 5);
        for (const p of pixels) expect(p.drawn).toBeGreaterThan(2000);
        expect(await long.page.$eval('[data-field=lock]', (e) => e.textContent)).toBe(
          'Lock: locked by pid 7 on host-a, since 2026-11-24T06:59:00Z',
        );
        // Older history is one point per day, and the legend says so; the newest runs are one by one.
        const chart = '[data-audience=aud-a] figure.chart:first-child';
        const box = (await (await long.page.$(`${chart} .u-over`))!.boundingBox())!;
        const legendTime = async (fraction: number) => {
          await long.page.mouse.move(box.x + box.width * fraction, box.y + box.height / 2);
          return (await cellText(long.page, `${chart} .u-legend .u-series .u-value`))[0];
        };
        expect(await legendTime(0.2)).toMatch(/^2025-\d\d-\d\d, mean of \d run\(s\)$/);
        expect(await legendTime(0.999)).toBe('2026-09-17 21:00');
      } finally {
        await long.page.close();
      }
    });

    it('prints: the print stylesheet applies, charts are resized to the paper and a PDF comes out', async () => {
      const { page, errors } = opened;
      await page.emulateMediaType('print');
      expect(await page.$eval('header', (e) => getComputedStyle(e).backgroundColor)).toBe('rgba(0, 0, 0, 0)');
      // The page's own beforeprint handler runs first; this one records the widths it set.
      await page.evaluate(() => {
        const w = window as unknown as { printedWidths: number[] };
        addEventListener(
          'beforeprint',
          () =>
            (w.printedWidths = [...document.querySelectorAll<HTMLElement>('figure.chart .uplot')].map(
              (e) => e.offsetWidth,
            )),
        );
      });
      const pdf = await page.pdf({ format: 'A4' });
      const widths = await page.evaluate(() => (window as unknown as { printedWidths?: number[] }).printedWidths);
      expect(new Set(widths)).toEqual(new Set([680]));
      expect(await page.$eval('figure.chart .uplot', (e) => (e as HTMLElement).offsetWidth)).toBeGreaterThan(680); // back to the screen's width after
      expect(Buffer.from(pdf).subarray(0, 5).toString()).toBe('%PDF-');
      expect(errors).toEqual([]);
    });
  });
});
