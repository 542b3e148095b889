// The page's own script: turns the report's embedded data into uPlot charts. It runs in
// the browser, inlined into the page as the source of the functions pageScript lists (so
// each may use only its parameters and the others of that list); uPlot does every bit
// of drawing.
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

/** How the charts look: colours, dashes, widths, the time axis and its labels. */
interface ChartStyle {
  palette: string[];
  dashes: number[][];
  failedColour: string;
  skippedColour: string;
  height: number;
  printWidth: number;
  timeTicks: (string | number | null)[][];
  utc: (ts: number) => Date;
  runTime: (date: Date) => string;
  dayTime: (date: Date) => string;
  widthOf: (el: HTMLElement) => number;
}

/** Draws every chart of the page, then keeps them fitted to the window and to print. */
export function drawCharts(uPlot: typeof uPlotNs, data: ChartData): void {
  const style = chartStyle(uPlot);
  const charts: { plot: uPlotNs; el: HTMLElement }[] = [];
  for (const spec of data.charts) {
    const el = document.getElementById(spec.el);
    const t = data.timelines[spec.timeline];
    if (el && t) charts.push({ plot: drawChart(uPlot, spec, t, el, style), el });
  }
  keepChartsFitted(charts, style);
}

function chartStyle(uPlot: typeof uPlotNs): ChartStyle {
  return {
    // Okabe–Ito: told apart with any common colour-vision deficiency; dashes tell lines apart in print.
    palette: ['#0072B2', '#E69F00', '#009E73', '#CC79A7', '#56B4E9', '#000000', '#F0E442'],
    dashes: [[], [8, 4], [2, 3], [10, 3, 2, 3], [4, 4], [1, 2]],
    failedColour: '#D55E00',
    skippedColour: '#6B6B6B',
    height: 220,
    printWidth: 680,
    // uPlot's tick-label table (tick spacing in seconds, then the label templates): 24-hour,
    // year-month-day labels instead of the US-style defaults.
    timeTicks: [
      [3600 * 24 * 365, '{YYYY}', null, null, null, null, null, null, 1],
      [3600 * 24 * 28, '{MMM}', '\n{YYYY}', null, null, null, null, null, 1],
      [3600 * 24, '{MM}-{DD}', '\n{YYYY}', null, null, null, null, null, 1],
      [3600, '{HH}:{mm}', '\n{YYYY}-{MM}-{DD}', null, '\n{MM}-{DD}', null, null, null, 1],
      [60, '{HH}:{mm}', '\n{YYYY}-{MM}-{DD}', null, '\n{MM}-{DD}', null, null, null, 1],
      [1, ':{ss}', '\n{YYYY}-{MM}-{DD} {HH}:{mm}', null, '\n{MM}-{DD} {HH}:{mm}', null, '\n{HH}:{mm}', null, 1],
    ],
    utc: (ts) => uPlot.tzDate(new Date(ts * 1000), 'Etc/UTC'),
    runTime: uPlot.fmtDate('{YYYY}-{MM}-{DD} {HH}:{mm}'),
    dayTime: uPlot.fmtDate('{YYYY}-{MM}-{DD}'),
    widthOf: (el) => Math.max(320, Math.floor(el.clientWidth)),
  };
}

/** One chart's series and values: the time axis, a line per spec line, then the skipped and failed markers. */
function chartSeries(
  spec: ChartSpec,
  t: TimelineData,
  style: ChartStyle,
): { series: uPlotNs.Series[]; values: (number | null)[][] } {
  const marks = (notes: Record<number, string>) => t.x.map((_, i) => (notes[i] === undefined ? null : 0));
  const markerSeries = (
    label: string,
    notes: Record<number, string>,
    stroke: string,
    fill: string,
  ): uPlotNs.Series => ({
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
        return runs === undefined
          ? style.runTime(style.utc(v))
          : `${style.dayTime(style.utc(v))}, mean of ${runs} run(s)`;
      },
    },
    ...spec.lines.map((line, i): uPlotNs.Series => ({
      label: line.label,
      stroke: style.palette[i % style.palette.length]!,
      width: 2,
      dash: style.dashes[i % style.dashes.length]!,
      spanGaps: true,
      points: { size: 6 },
    })),
  ];
  const values: (number | null)[][] = [t.x, ...spec.lines.map((line) => t.series[line.key] ?? t.x.map(() => null))];
  if (Object.keys(t.skipped).length) {
    series.push(markerSeries('skipped slot', t.skipped, style.skippedColour, '#FFFFFF'));
    values.push(marks(t.skipped));
  }
  if (Object.keys(t.failed).length) {
    series.push(markerSeries('failed run', t.failed, style.failedColour, style.failedColour));
    values.push(marks(t.failed));
  }
  return { series, values };
}

function drawChart(
  uPlot: typeof uPlotNs,
  spec: ChartSpec,
  t: TimelineData,
  el: HTMLElement,
  style: ChartStyle,
): uPlotNs {
  const single = t.x.length > 0 && t.x[0] === t.x[t.x.length - 1];
  const { series, values } = chartSeries(spec, t, style);
  return new uPlot(
    {
      title: spec.title,
      width: style.widthOf(el),
      height: style.height,
      tzDate: style.utc,
      scales: {
        // One run alone still gets a day's width of axis; counts are drawn from zero, where the markers sit.
        x: { time: true, range: (_u, min, max) => (single ? [t.x[0]! - 43_200, t.x[0]! + 43_200] : [min, max]) },
        y: { range: (_u, min, max) => uPlot.rangeNum(Math.min(0, min), Math.max(max, 1), 0.1, true) },
      },
      axes: [{ values: style.timeTicks }, { label: spec.unit, size: 70 }],
      legend: { live: true },
      series,
    },
    values as uPlotNs.AlignedData,
    el,
  );
}

/** Resizes the charts with the window (debounced), and to the page width while printing. */
function keepChartsFitted(charts: { plot: uPlotNs; el: HTMLElement }[], style: ChartStyle): void {
  const fit = (print: boolean) => {
    for (const { plot, el } of charts)
      plot.setSize({ width: print ? style.printWidth : style.widthOf(el), height: style.height });
  };
  let pending = 0;
  window.addEventListener('resize', () => {
    clearTimeout(pending);
    pending = window.setTimeout(() => fit(false), 100);
  });
  window.addEventListener('beforeprint', () => fit(true));
  window.addEventListener('afterprint', () => fit(false));
}

/** The page's script: these functions' sources, then the call that draws the charts. */
export function pageScript(dataElementId: string): string {
  const functions = [drawCharts, chartStyle, chartSeries, drawChart, keepChartsFitted]
    .map((f) => f.toString())
    .join('\n');
  return `(() => {\n${functions}\ndrawCharts(uPlot, JSON.parse(document.getElementById(${JSON.stringify(dataElementId)}).textContent));\n})();`;
}
