// The page's own script: turns the report's embedded data into uPlot charts. It runs in
// the browser, inlined into the page as this function's source (so it must not use
// anything from outside its body); uPlot does every bit of drawing.
import type uPlotNs from 'uplot';

export interface TimelineData {
  /** Epoch seconds, ascending. */
  x: number[];
  series: Record<string, (number | null)[]>;
  /** Point index → the error of a failed run (or the failures of an aggregated day). */
  failed: Record<number, string>;
  /** Point index → why the slot was skipped. */
  skipped: Record<number, string>;
  /** Point index → how many runs a per-day point stands for (older history, see build-timeline.ts). */
  days: Record<number, number>;
}

export interface ChartSpec {
  /** Id of the element the chart goes into. */
  el: string;
  timeline: number;
  title: string;
  unit: string;
  lines: { key: string; label: string }[];
}

export interface ChartData {
  timelines: TimelineData[];
  charts: ChartSpec[];
}

export function drawCharts(uPlot: typeof uPlotNs, data: ChartData): void {
  // Okabe–Ito: told apart with any common colour-vision deficiency; dashes tell lines apart in print.
  const palette = ['#0072B2', '#E69F00', '#009E73', '#CC79A7', '#56B4E9', '#000000', '#F0E442'];
  const dashes = [[], [8, 4], [2, 3], [10, 3, 2, 3], [4, 4], [1, 2]];
  const failedColour = '#D55E00';
  const skippedColour = '#6B6B6B';
  const printWidth = 680;
  // uPlot's tick-label table (tick spacing in seconds, then the label templates): 24-hour,
  // year-month-day labels instead of the US-style defaults.
  const timeTicks: (string | number | null)[][] = [
    [3600 * 24 * 365, '{YYYY}', null, null, null, null, null, null, 1],
    [3600 * 24 * 28, '{MMM}', '\n{YYYY}', null, null, null, null, null, 1],
    [3600 * 24, '{MM}-{DD}', '\n{YYYY}', null, null, null, null, null, 1],
    [3600, '{HH}:{mm}', '\n{YYYY}-{MM}-{DD}', null, '\n{MM}-{DD}', null, null, null, 1],
    [60, '{HH}:{mm}', '\n{YYYY}-{MM}-{DD}', null, '\n{MM}-{DD}', null, null, null, 1],
    [1, ':{ss}', '\n{YYYY}-{MM}-{DD} {HH}:{mm}', null, '\n{MM}-{DD} {HH}:{mm}', null, '\n{HH}:{mm}', null, 1],
  ];
  const utc = (ts: number) => uPlot.tzDate(new Date(ts * 1000), 'Etc/UTC');
  const runTime = uPlot.fmtDate('{YYYY}-{MM}-{DD} {HH}:{mm}');
  const dayTime = uPlot.fmtDate('{YYYY}-{MM}-{DD}');
  const charts: { plot: uPlotNs; el: HTMLElement }[] = [];
  const widthOf = (el: HTMLElement) => Math.max(320, Math.floor(el.clientWidth));

  for (const spec of data.charts) {
    const el = document.getElementById(spec.el);
    const t = data.timelines[spec.timeline];
    if (!el || !t) continue;
    const single = t.x.length > 0 && t.x[0] === t.x[t.x.length - 1];
    const marks = (notes: Record<number, string>) => t.x.map((_, i) => (notes[i] === undefined ? null : 0));
    const markerSeries = (label: string, notes: Record<number, string>, stroke: string, fill: string): uPlotNs.Series => ({
      label,
      stroke,
      fill,
      paths: () => null,
      points: { show: true, size: 11, width: 2, stroke, fill },
      value: (_u, v, _s, i) => (v === null || i === null ? '' : (notes[i] ?? '')),
    });
    const series: uPlotNs.Series[] = [
      {
        label: 'time (UTC)',
        value: (_u, v, _s, i) => {
          if (v === null) return '--';
          const runs = i === null ? undefined : t.days[i];
          return runs === undefined ? runTime(utc(v)) : `${dayTime(utc(v))}, mean of ${runs} run(s)`;
        },
      },
      ...spec.lines.map((line, i): uPlotNs.Series => ({
        label: line.label,
        stroke: palette[i % palette.length]!,
        width: 2,
        dash: dashes[i % dashes.length]!,
        spanGaps: true,
        points: { size: 6 },
      })),
    ];
    const values: (number | null)[][] = [t.x, ...spec.lines.map((line) => t.series[line.key] ?? t.x.map(() => null))];
    if (Object.keys(t.skipped).length) {
      series.push(markerSeries('skipped slot', t.skipped, skippedColour, '#FFFFFF'));
      values.push(marks(t.skipped));
    }
    if (Object.keys(t.failed).length) {
      series.push(markerSeries('failed run', t.failed, failedColour, failedColour));
      values.push(marks(t.failed));
    }
    const plot = new uPlot(
      {
        title: spec.title,
        width: widthOf(el),
        height: 220,
        tzDate: utc,
        scales: {
          // One run alone still gets a day's width of axis; counts are drawn from zero, where the markers sit.
          x: { time: true, range: (_u, min, max) => (single ? [t.x[0]! - 43_200, t.x[0]! + 43_200] : [min, max]) },
          y: { range: (_u, min, max) => uPlot.rangeNum(Math.min(0, min), Math.max(max, 1), 0.1, true) },
        },
        axes: [{ values: timeTicks }, { label: spec.unit, size: 70 }],
        legend: { live: true },
        series,
      },
      values as uPlotNs.AlignedData,
      el,
    );
    charts.push({ plot, el });
  }

  const fit = (print: boolean) => {
    for (const { plot, el } of charts) plot.setSize({ width: print ? printWidth : widthOf(el), height: 220 });
  };
  let pending = 0;
  window.addEventListener('resize', () => {
    clearTimeout(pending);
    pending = window.setTimeout(() => fit(false), 100);
  });
  window.addEventListener('beforeprint', () => fit(true));
  window.addEventListener('afterprint', () => fit(false));
}
