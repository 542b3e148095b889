// `audex report` (README "Run report"): one self-contained HTML page from run history and status.
// Pure: the same input gives the same bytes. The caller reads the history, the status and
// the chart library (uPlot's minified script and stylesheet), and writes the page.
import type { RunRecord } from '../state/records.js';
import { buildTimeline, DETAIL_RUNS, sortRuns, type AudienceTimeline } from './build-timeline.js';
import { chartTitle, numericCounts, type ChartGroup } from './list-counters.js';
import { pageScript, type ChartData, type ChartSpec, type TimelineData } from './draw-charts.js';
import { REPORT_STYLE } from './report-style.js';

/** What the page shows of an audience's status (the fields of `audex status`). */
export interface ReportAudienceStatus {
  audienceId: string;
  mode: string;
  schedule: string;
  lastSuccess: { runId: string; logicalTime: string; rowsWritten: number; files: number } | null;
  nextSlot: string | null;
  baselineSize: number | null;
  pendingRun: string | null;
  lastError: { runId: string; logicalTime: string; error: string } | null;
}

export interface ReportDataflow {
  id: string;
  name: string;
  /** Who holds the dataflow's lock, or null when it is free. */
  lockHolder: string | null;
  audiences: ReportAudienceStatus[];
  /** The dataflow's run history, any order. */
  history: RunRecord[];
}

export interface ReportInput {
  /** When the report was made (the invocation's --at, or the clock). */
  generatedAt: Date;
  /** Only runs whose logical time is at or after this. */
  since: Date | null;
  dataflows: ReportDataflow[];
  chartLibrary: { script: string; style: string };
}

/** Rows of the "latest runs" and "failed and skipped" tables per audience. */
export const LATEST_RUNS = 20;
export const LISTED_PROBLEMS = 50;
/** A failure or skip note on a chart's legend is cut here; the table has it whole. */
const NOTE_CHARS = 160;

const GROUPS: ChartGroup[] = ['volume', 'exclusions', 'delivery', 'other'];

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

/** `2026-11-20 05:30 UTC` (seconds only when they are not zero). */
export function formatTime(time: string | number | Date): string {
  const iso = new Date(time).toISOString();
  const seconds = iso.slice(17, 19) === '00' ? '' : iso.slice(16, 19);
  return `${iso.slice(0, 10)} ${iso.slice(11, 16)}${seconds} UTC`;
}

function formatDuration(ms: number | undefined): string {
  return ms === undefined ? '–' : `${(ms / 1000).toFixed(ms < 1000 ? 2 : 1)} s`;
}

function cut(text: string): string {
  return text.length > NOTE_CHARS ? `${text.slice(0, NOTE_CHARS - 1)}…` : text;
}

function timelineData(t: AudienceTimeline): TimelineData {
  const series: Record<string, (number | null)[]> = {};
  for (const c of t.counters) series[c.key] = t.points.map((p) => p.values[c.key] ?? null);
  series['durationSeconds'] = t.points.map((p) => p.durationSeconds);
  const failed: Record<number, string> = {};
  const skipped: Record<number, string> = {};
  const days: Record<number, number> = {};
  t.points.forEach((p, i) => {
    if (p.kind === 'day') days[i] = p.runs;
    if (p.failure !== null) failed[i] = cut(p.failure);
    if (p.skip !== null) skipped[i] = cut(p.skip);
  });
  return { x: t.points.map((p) => p.time / 1000), series, failed, skipped, days };
}

function chartSpecs(t: AudienceTimeline, timeline: number, elPrefix: string): ChartSpec[] {
  const specs: ChartSpec[] = [];
  for (const group of GROUPS) {
    const lines = t.counters.filter((c) => c.group === group).map((c) => ({ key: c.key, label: c.label }));
    if (lines.length)
      specs.push({
        el: `${elPrefix}-${group}`,
        timeline,
        title: chartTitle(
          group,
          lines.map((l) => l.label),
        ),
        unit: 'count',
        lines,
      });
  }
  if (t.points.some((p) => p.durationSeconds !== null)) {
    specs.push({
      el: `${elPrefix}-duration`,
      timeline,
      title: 'Run duration',
      unit: 'seconds',
      lines: [{ key: 'durationSeconds', label: 'duration (s)' }],
    });
  }
  return specs;
}

function statusTable(df: ReportDataflow, now: Date): string {
  const rows = df.audiences.map((a) => {
    const success = a.lastSuccess
      ? `${escapeHtml(formatTime(a.lastSuccess.logicalTime))}<br><span class="sub">${a.lastSuccess.rowsWritten} rows in ${a.lastSuccess.files} file(s)</span>`
      : 'never';
    const due = a.nextSlot !== null && Date.parse(a.nextSlot) <= now.getTime() ? ' <strong>(due now)</strong>' : '';
    const next = a.nextSlot
      ? `${escapeHtml(formatTime(a.nextSlot))}${due}`
      : a.schedule.startsWith('after')
        ? 'the next snapshot'
        : 'none (schedule ended)';
    const baseline =
      a.mode === 'incremental' ? (a.baselineSize === null ? 'none yet' : `${a.baselineSize} profiles`) : '–';
    const pending = a.pendingRun
      ? `<span class="flag warn">pending</span> run <code>${escapeHtml(a.pendingRun)}</code> is finished by the next <code>audex run</code>`
      : 'none';
    const error = a.lastError
      ? `<span class="flag bad">failed</span> ${escapeHtml(formatTime(a.lastError.logicalTime))}: ${escapeHtml(a.lastError.error.split('\n')[0]!)}`
      : 'none';
    return (
      `<tr data-audience="${escapeHtml(a.audienceId)}"><th scope="row">${escapeHtml(a.audienceId)}<br><span class="sub">${escapeHtml(a.mode)}, ${escapeHtml(a.schedule)}</span></th>` +
      `<td data-field="lastSuccess">${success}</td><td data-field="nextSlot">${next}</td><td data-field="baseline">${baseline}</td>` +
      `<td data-field="pending">${pending}</td><td data-field="lastError">${error}</td></tr>`
    );
  });
  const lock = df.lockHolder
    ? `<span class="flag warn">locked</span> by ${escapeHtml(df.lockHolder)}`
    : 'free (no run in progress)';
  return `<p class="lock" data-field="lock">Lock: ${lock}</p>
<table class="status"><caption>Current status</caption>
<thead><tr><th scope="col">audience</th><th scope="col">last success</th><th scope="col">next slot</th><th scope="col">baseline</th><th scope="col">pending run</th><th scope="col">last error since then</th></tr></thead>
<tbody>${rows.join('\n') || '<tr><td colspan="6">no audiences in the config</td></tr>'}</tbody></table>`;
}

function problemsTable(records: RunRecord[]): string {
  const problems = records.filter((r) => r.status !== 'success').reverse();
  if (problems.length === 0) return '<p class="none">No failed runs or skipped slots.</p>';
  const listed = problems.slice(0, LISTED_PROBLEMS);
  const rows = listed.map(
    (r) =>
      `<tr data-run-id="${escapeHtml(r.runId)}" data-status="${r.status}"><td>${escapeHtml(formatTime(r.logicalTime))}</td>` +
      `<td><span class="flag ${r.status === 'failed' ? 'bad' : 'skip'}">${r.status}</span></td><td><code>${escapeHtml(r.runId)}</code></td>` +
      `<td class="message">${escapeHtml(r.error ?? r.note ?? '')}</td></tr>`,
  );
  const more =
    problems.length > listed.length
      ? `<p class="sub">and ${problems.length - listed.length} earlier ones (<code>audex runs --status failed</code> lists them)</p>`
      : '';
  return `<table class="problems"><caption>Failed runs and skipped slots, newest first</caption>
<thead><tr><th scope="col">logical time</th><th scope="col">status</th><th scope="col">run id</th><th scope="col">error or note</th></tr></thead>
<tbody>${rows.join('\n')}</tbody></table>${more}`;
}

function latestTable(t: AudienceTimeline, records: RunRecord[]): string {
  const latest = records.slice(-LATEST_RUNS).reverse();
  const head = t.counters.map((c) => `<th scope="col">${escapeHtml(c.label)}</th>`).join('');
  const rows = latest.map((r) => {
    const counts = numericCounts(r);
    const cells = t.counters
      .map((c) => {
        const v = counts.get(c.key);
        return `<td class="num" data-counter="${escapeHtml(c.key)}">${r.status === 'success' && v !== undefined ? String(v) : '–'}</td>`;
      })
      .join('');
    return (
      `<tr data-run-id="${escapeHtml(r.runId)}" data-status="${r.status}"><td>${escapeHtml(formatTime(r.logicalTime))}</td><td>${r.status}</td>` +
      `<td>${escapeHtml(r.trigger)}, ${escapeHtml(r.mode)}</td>${cells}<td class="num" data-counter="durationMs">${formatDuration(r.durationMs)}</td>` +
      `<td class="num" data-counter="files">${r.status === 'success' ? r.files.length : '–'}</td></tr>`
    );
  });
  return `<table class="runs"><caption>Latest ${latest.length} run(s), newest first</caption>
<thead><tr><th scope="col">logical time</th><th scope="col">status</th><th scope="col">trigger, mode</th>${head}<th scope="col">duration</th><th scope="col">files</th></tr></thead>
<tbody>${rows.join('\n')}</tbody></table>`;
}

function audienceSection(t: AudienceTimeline, records: RunRecord[], specs: ChartSpec[], configured: boolean): string {
  const id = escapeHtml(t.audienceId);
  if (t.totals.runs === 0)
    return `<section class="audience" data-audience="${id}"><h3>${id}</h3><p class="none">No runs recorded in this range.</p></section>`;
  const { runs, success, failed, skipped } = t.totals;
  const range = `${escapeHtml(formatTime(t.first!))} to ${escapeHtml(formatTime(t.last!))}`;
  const aggregated =
    t.aggregatedBefore !== null
      ? `<p class="note">Runs before ${escapeHtml(formatTime(t.aggregatedBefore))} are drawn one point per UTC day (the mean of that day's successful runs; a day with a failed or skipped run is marked); the newest ${DETAIL_RUNS} runs one point per run.</p>`
      : '';
  const charts = specs
    .map((s) => `<figure class="chart" id="${escapeHtml(s.el)}" data-chart="${escapeHtml(s.title)}"></figure>`)
    .join('\n');
  return `<section class="audience" data-audience="${id}">
<h3>${id}${configured ? '' : ' <span class="sub">(no longer in the config)</span>'}</h3>
<p class="summary">${runs} run(s): ${success} succeeded, ${failed} failed, ${skipped} skipped; logical times ${range}.</p>
${aggregated}
<div class="charts">${charts}</div>
${problemsTable(records)}
${latestTable(t, records)}
</section>`;
}

export function renderReport(input: ReportInput): string {
  const since = input.since?.getTime() ?? null;
  const data: ChartData = { timelines: [], charts: [] };
  const sections: string[] = [];
  const overview: string[] = [];
  let first: number | null = null;
  let last: number | null = null;
  for (const [d, df] of input.dataflows.entries()) {
    const history = df.history.filter((r) => since === null || Date.parse(r.logicalTime) >= since);
    const configured = df.audiences.map((a) => a.audienceId);
    const ids = [
      ...configured,
      ...[...new Set(history.map((r) => r.audienceId))].filter((id) => !configured.includes(id)).sort(),
    ];
    const audienceHtml = ids.map((audienceId, a) => {
      const records = sortRuns(history.filter((r) => r.audienceId === audienceId));
      const timeline = buildTimeline(audienceId, records);
      if (timeline.first !== null) first = Math.min(first ?? timeline.first, timeline.first);
      if (timeline.last !== null) last = Math.max(last ?? timeline.last, timeline.last);
      const specs = timeline.points.length ? chartSpecs(timeline, data.timelines.length, `chart-${d}-${a}`) : [];
      if (timeline.points.length) data.timelines.push(timelineData(timeline));
      data.charts.push(...specs);
      // A dataflow without configured audiences (datasets, say) has no status rows to miss.
      return audienceSection(timeline, records, specs, configured.length === 0 || configured.includes(audienceId));
    });
    const count = (status: string) => history.filter((r) => r.status === status).length;
    overview.push(
      `<li><a href="#dataflow-${d}">${escapeHtml(df.name)}</a>: ${history.length} run(s), ${count('success')} succeeded, ${count('failed')} failed, ${count('skipped')} skipped</li>`,
    );
    sections.push(`<section class="dataflow" id="dataflow-${d}" data-dataflow="${escapeHtml(df.id)}">
<h2>${escapeHtml(df.name)} <span class="sub">${escapeHtml(df.id)}</span></h2>
${statusTable(df, input.generatedAt)}
${audienceHtml.join('\n')}
</section>`);
  }
  const names = input.dataflows.map((df) => escapeHtml(df.name)).join(', ');
  const range =
    first !== null && last !== null
      ? `Runs from ${escapeHtml(formatTime(first))} to ${escapeHtml(formatTime(last))}`
      : 'No runs recorded';
  const sinceText = input.since ? ` (runs since ${escapeHtml(formatTime(input.since))})` : '';
  const json = JSON.stringify(data).replace(/</g, '\\u003c');
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="audex report">
<title>audex run report: ${names}</title>
<style>${input.chartLibrary.style}</style>
<style>${REPORT_STYLE}</style>
</head>
<body>
<header>
<h1>Run report: ${names}</h1>
<p class="range" data-field="range">${range}${sinceText}</p>
<ul class="overview" data-field="overview">${overview.join('')}</ul>
<p class="made" data-field="generatedAt">Made at ${escapeHtml(formatTime(input.generatedAt))} by <code>audex report</code>. Times are UTC.</p>
</header>
<main>
${sections.join('\n')}
</main>
<script type="application/json" id="audex-report-data">${json}</script>
<script>${input.chartLibrary.script}</script>
<script>${pageScript('audex-report-data')}</script>
</body>
</html>
`;
}
