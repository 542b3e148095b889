// Issue 16: the report's pure parts — which counters are charted and how, the per-day
// aggregation of long histories, escaping, and the size and speed of 10,000 runs.
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { buildTimeline, DETAIL_RUNS } from '../../src/report/build-timeline.js';
import { listCounters } from '../../src/report/list-counters.js';
import type { ChartData } from '../../src/report/draw-charts.js';
import { renderReport, type ReportInput } from '../../src/report/render-report.js';
import type { RunRecord } from '../../src/state/records.js';
import { syntheticHistory } from '../helpers/synthetic-history.js';

const require = createRequire(import.meta.url);
const chartLibrary = {
  script: readFileSync(require.resolve('uplot/dist/uPlot.iife.min.js'), 'utf8'),
  style: readFileSync(require.resolve('uplot/dist/uPlot.min.css'), 'utf8'),
};

const base = {
  profilesReceived: 5,
  rowsWritten: 4,
  excludedMandatory: 1,
  excludedDuplicate: 0,
  exitsOmitted: 0,
  badRecords: 0,
};

function record(
  overrides: Partial<RunRecord> & { logicalTime: string },
  counts: Record<string, unknown> = base,
): RunRecord {
  return {
    runId: `r-${overrides.logicalTime}`,
    audienceId: 'aud-vip',
    mode: 'incremental',
    trigger: 'schedule',
    snapshotId: 's',
    status: 'success',
    files: [],
    durationMs: 1000,
    ...overrides,
    counts: counts as unknown as RunRecord['counts'],
  };
}

function input(history: RunRecord[], extra: Partial<ReportInput> = {}): ReportInput {
  return {
    generatedAt: new Date('2026-11-24T07:00:00Z'),
    since: null,
    chartLibrary,
    dataflows: [{ id: 'acme', name: 'Acme <CRM>', lockHolder: null, audiences: [], history }],
    ...extra,
  };
}

function chartData(html: string): ChartData {
  const json = /<script type="application\/json" id="audex-report-data">(.*?)<\/script>/s.exec(html)![1]!;
  return JSON.parse(json) as ChartData;
}

describe('counters', () => {
  it('charts every numeric counter: known ones under their label in their chart, new ones by name under "Other counters"', () => {
    const counters = listCounters([
      record(
        { logicalTime: '2026-11-20T00:00:00Z' },
        {
          rows: 3,
          batches: 1,
          deadLetters: 0,
          zNew: 2,
          messages: 9,
          requests: 1,
          retries: 2,
          note: 'text',
          nested: {},
        },
      ),
      record({ logicalTime: '2026-11-21T00:00:00Z' }, { ...base, aNew: 1 }),
    ]);
    expect(counters.map((c) => [c.key, c.label, c.group])).toEqual([
      ['profilesReceived', 'profiles received', 'volume'],
      ['rowsWritten', 'rows written', 'volume'],
      ['messages', 'messages', 'volume'],
      ['requests', 'requests', 'volume'],
      ['batches', 'batches', 'volume'],
      ['rows', 'rows', 'volume'],
      ['excludedMandatory', 'excluded: mandatory field missing', 'exclusions'],
      ['excludedDuplicate', 'excluded: duplicate key', 'exclusions'],
      ['exitsOmitted', 'exits omitted', 'exclusions'],
      ['badRecords', 'bad records', 'exclusions'],
      ['retries', 'retries', 'delivery'],
      ['deadLetters', 'dead letters', 'delivery'],
      ['aNew', 'aNew', 'other'],
      ['zNew', 'zNew', 'other'],
    ]);
  });

  it('the page has a chart for HTTP delivery and one for a counter it does not know, with their values', () => {
    const history = [
      record(
        { logicalTime: '2026-11-20T00:00:00Z' },
        { messages: 40, requests: 4, retries: 1, deadLetters: 0, fresh: 7 },
      ),
      record(
        { logicalTime: '2026-11-21T00:00:00Z' },
        { messages: 10, requests: 1, retries: 0, deadLetters: 1, fresh: 8 },
      ),
    ];
    const data = chartData(renderReport(input(history)));
    expect(data.charts.map((c) => [c.title, c.lines.map((l) => l.label)])).toEqual([
      ['Messages and requests', ['messages', 'requests']],
      ['Delivery: retries and dead letters', ['retries', 'dead letters']],
      ['Other counters', ['fresh']],
      ['Run duration', ['duration (s)']],
    ]);
    expect(data.timelines[0]!.series).toEqual({
      messages: [40, 10],
      requests: [4, 1],
      retries: [1, 0],
      deadLetters: [0, 1],
      fresh: [7, 8],
      durationSeconds: [1, 1],
    });
  });
});

describe('timeline', () => {
  it('up to DETAIL_RUNS runs: one point per run; failed and skipped runs are markers with their error, not zeros', () => {
    const t = buildTimeline('aud-vip', [
      record({ logicalTime: '2026-11-21T05:30:00Z', status: 'success', durationMs: 2500 }, { ...base, rowsWritten: 9 }),
      record({
        logicalTime: '2026-11-21T05:30:00Z',
        status: 'failed',
        error: 'tier: not an int64\nmore',
        durationMs: 10,
      }),
      record({ logicalTime: '2026-11-20T05:30:00Z', status: 'skipped', note: 'coalesced', durationMs: undefined }),
    ]);
    expect(t.aggregatedBefore).toBeNull();
    expect(
      t.points.map((p) => [
        new Date(p.time).toISOString(),
        p.kind,
        p.values['rowsWritten'],
        p.durationSeconds,
        p.failure,
        p.skip,
      ]),
    ).toEqual([
      ['2026-11-20T05:30:00.000Z', 'run', null, null, null, 'coalesced'],
      ['2026-11-21T05:30:00.000Z', 'run', null, null, 'tier: not an int64; more', null],
      ['2026-11-21T05:30:00.000Z', 'run', 9, 2.5, null, null],
    ]);
    expect(t.totals).toEqual({ runs: 3, success: 1, failed: 1, skipped: 1 });
  });

  it('older runs are one point per UTC day (mean of its successful runs, marked when one failed or was skipped); none is dropped', () => {
    const runs: RunRecord[] = [];
    // Day 1: three runs (one failed), day 2: two runs (one skipped), then DETAIL_RUNS runs hourly from day 3.
    runs.push(record({ logicalTime: '2026-01-01T01:00:00Z' }, { ...base, rowsWritten: 10 }));
    runs.push(record({ logicalTime: '2026-01-01T02:00:00Z', durationMs: 3000 }, { ...base, rowsWritten: 20 }));
    runs.push(record({ logicalTime: '2026-01-01T03:00:00Z', status: 'failed', error: 'boom' }));
    runs.push(record({ logicalTime: '2026-01-02T01:00:00Z', status: 'skipped', note: 'coalesced' }));
    runs.push(record({ logicalTime: '2026-01-02T02:00:00Z' }, { ...base, rowsWritten: 7 }));
    for (let i = 0; i < DETAIL_RUNS; i++)
      runs.push(record({ logicalTime: new Date(Date.parse('2026-01-03T00:30:00Z') + i * 3_600_000).toISOString() }));
    const t = buildTimeline('aud-vip', runs);
    expect(t.aggregatedBefore).toBe(Date.parse('2026-01-03T00:00:00Z'));
    const days = t.points.filter((p) => p.kind === 'day');
    expect(
      days.map((p) => [
        new Date(p.time).toISOString(),
        p.runs,
        p.values['rowsWritten'],
        p.durationSeconds,
        p.failure,
        p.skip,
      ]),
    ).toEqual([
      ['2026-01-01T00:00:00.000Z', 3, 15, 2, '1 failed run(s) that day; the latest: boom', null],
      ['2026-01-02T00:00:00.000Z', 2, 7, 1, null, '1 skipped slot(s) that day'],
    ]);
    expect(t.points.filter((p) => p.kind === 'run')).toHaveLength(DETAIL_RUNS);
    expect(t.points.reduce((n, p) => n + p.runs, 0)).toBe(runs.length);
  });

  it('the newest DETAIL_RUNS runs stay one by one, and so does the rest of the day the oldest of them is on', () => {
    const runs = Array.from({ length: DETAIL_RUNS + 5 }, (_, i) =>
      record({ logicalTime: new Date(Date.parse('2026-01-01T00:00:00Z') + i * 3_600_000).toISOString() }),
    );
    const t = buildTimeline('aud-vip', runs);
    const firstRun = t.points.find((p) => p.kind === 'run')!;
    expect(new Date(firstRun.time).toISOString().slice(11)).toBe('00:00:00.000Z');
    expect(t.points.filter((p) => p.kind === 'run').length).toBeGreaterThanOrEqual(DETAIL_RUNS);
    expect(t.points.reduce((n, p) => n + p.runs, 0)).toBe(runs.length);
  });
});

describe('renderReport', () => {
  it('escapes names and errors in the page and in its embedded data', () => {
    const evil = '</script><script>alert(1)</script>';
    const html = renderReport(
      input([record({ logicalTime: '2026-11-20T00:00:00Z', status: 'failed', error: evil, audienceId: '<b>x</b>' })]),
    );
    expect(html).not.toContain('<script>alert(1)');
    expect(html).not.toContain('<b>x</b>');
    expect(html).toContain('Acme &lt;CRM&gt;');
    expect(chartData(html).timelines[0]!.failed).toEqual({ 0: evil });
  });

  it('shows configured audiences without runs, and audiences of the history that left the config, marked so', () => {
    const status = {
      audienceId: 'aud-new',
      mode: 'full',
      schedule: 'daily at 06:00 UTC',
      lastSuccess: null,
      nextSlot: '2026-11-25T06:00:00.000Z',
      baselineSize: null,
      pendingRun: null,
      lastError: null,
    };
    const html = renderReport(
      input([record({ logicalTime: '2026-11-20T00:00:00Z', audienceId: 'aud-old' })], {
        dataflows: [
          {
            id: 'acme',
            name: 'Acme',
            lockHolder: null,
            audiences: [status],
            history: [record({ logicalTime: '2026-11-20T00:00:00Z', audienceId: 'aud-old' })],
          },
        ],
      }),
    );
    expect(html).toContain(
      '<section class="audience" data-audience="aud-new"><h3>aud-new</h3><p class="none">No runs recorded in this range.</p></section>',
    );
    expect(html).toContain('<h3>aud-old <span class="sub">(no longer in the config)</span></h3>');
    expect(html).toMatch(
      /<tr data-audience="aud-new">.*<td data-field="lastSuccess">never<\/td><td data-field="nextSlot">2026-11-25 06:00 UTC<\/td>/,
    );
  });

  it('the status table shows a pending run, the last error (first line), a slot due now and the baseline size', () => {
    const status = {
      audienceId: 'aud-vip',
      mode: 'incremental',
      schedule: 'daily at 05:30 UTC',
      nextSlot: '2026-11-24T05:30:00.000Z',
      baselineSize: 6,
      pendingRun: 'r-2',
      lastSuccess: { runId: 'r-1', logicalTime: '2026-11-20T05:30:00.000Z', rowsWritten: 6, files: 1 },
      lastError: {
        runId: 'r-2',
        logicalTime: '2026-11-21T05:30:00.000Z',
        error: 'tier is not int64\nThe run was not committed',
      },
    };
    const html = renderReport(
      input([], { dataflows: [{ id: 'acme', name: 'Acme', lockHolder: null, audiences: [status], history: [] }] }),
    );
    const row = /<tr data-audience="aud-vip">(.*?)<\/tr>/
      .exec(html)![1]!
      .replace(/<[^>]+>/g, '|')
      .replace(/\|+/g, '|');
    expect(row).toBe(
      '|aud-vip|incremental, daily at 05:30 UTC|2026-11-20 05:30 UTC|6 rows in 1 file(s)|2026-11-24 05:30 UTC |(due now)|6 profiles|pending| run |r-2| is finished by the next |audex run|failed| 2026-11-21 05:30 UTC: tier is not int64|',
    );
    expect(html).toContain('No runs recorded');
  });

  it('10,000 runs render into a page under 2 MB in under 2 s, the same bytes every time', () => {
    const history = syntheticHistory(10_000);
    const started = performance.now();
    const html = renderReport(input(history));
    const ms = performance.now() - started;
    const bytes = Buffer.byteLength(html);
    console.log(`10,000 runs: ${(bytes / 1024).toFixed(0)} KiB in ${ms.toFixed(0)} ms`);
    expect(bytes).toBeLessThan(2 * 1024 * 1024);
    expect(ms).toBeLessThan(2000);
    expect(renderReport(input(history))).toBe(html);
    const data = chartData(html);
    // Every run is on the charts: runs one by one or inside a day's point.
    expect(data.timelines).toHaveLength(2);
    expect(html).toContain('are drawn one point per UTC day');
    expect(html).toMatch(/5000 run\(s\): \d+ succeeded, \d+ failed, \d+ skipped/);
  });
});
