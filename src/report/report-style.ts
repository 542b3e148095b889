// The report page's stylesheet (screen and print). Status is always spelled out in words;
// colours come from the Okabe–Ito palette, so nothing relies on telling red from green.
export const REPORT_STYLE = `
:root { --ink: #1a1a1a; --muted: #5a5a5a; --rule: #d0d0d0; --band: #f4f6f8; --bad: #D55E00; --warn: #E69F00; --skip: #6B6B6B; --accent: #0072B2; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; color: var(--ink); background: #fff; }
header { padding: 18px 28px 12px; border-bottom: 3px solid var(--accent); background: var(--band); }
h1 { margin: 0 0 4px; font-size: 22px; }
header p { margin: 2px 0; color: var(--muted); }
.overview { margin: 4px 0; padding-left: 18px; }
.overview a { color: var(--accent); font-weight: 600; }
main { padding: 8px 28px 40px; max-width: 1280px; }
h2 { margin: 28px 0 6px; font-size: 19px; border-bottom: 1px solid var(--rule); padding-bottom: 4px; }
h3 { margin: 26px 0 4px; font-size: 16px; }
.sub { color: var(--muted); font-weight: normal; font-size: 12.5px; }
code { font: 12px ui-monospace, "DejaVu Sans Mono", monospace; }
table { border-collapse: collapse; width: 100%; margin: 10px 0 14px; font-size: 13px; }
caption { text-align: left; font-weight: 600; padding: 4px 0; }
th, td { border-bottom: 1px solid var(--rule); padding: 5px 8px; text-align: left; vertical-align: top; }
thead th { background: var(--band); font-weight: 600; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.message { white-space: pre-wrap; word-break: break-word; max-width: 640px; }
.flag { display: inline-block; padding: 0 6px; border-radius: 3px; font-size: 12px; font-weight: 600; border: 1.5px solid; }
.flag.bad { color: #fff; background: var(--bad); border-color: var(--bad); }
.flag.warn { color: #000; background: #fff; border-color: var(--warn); border-style: dashed; }
.flag.skip { color: var(--skip); background: #fff; border-color: var(--skip); }
.lock { margin: 6px 0; }
.summary { margin: 2px 0 8px; }
.note, .none { color: var(--muted); }
.charts { display: grid; grid-template-columns: repeat(auto-fit, minmax(520px, 1fr)); gap: 10px 22px; }
figure.chart { margin: 0; min-width: 0; }
.uplot .u-title { font-size: 14px; font-weight: 600; text-align: left; }
.uplot .u-legend { font-size: 12px; text-align: left; }
.uplot .u-legend .u-value { max-width: 520px; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
@media print {
  @page { margin: 14mm 12mm; }
  body { font-size: 11px; }
  table { font-size: 10.5px; }
  figure.chart { margin-bottom: 10px; }
  header { background: none; border-bottom-width: 2px; padding: 0 0 6px; }
  main { padding: 0; max-width: none; }
  .charts { display: block; }
  figure.chart, table, tr, .audience > h3 { break-inside: avoid; }
  .audience { break-before: auto; }
  h2, h3 { break-after: avoid; }
  .dataflow + .dataflow { break-before: page; }
  .uplot .u-legend .u-value { max-width: 420px; }
  thead th { background: none; border-bottom: 1.5px solid #000; }
  .flag.bad { color: #000; background: none; }
  a { color: inherit; text-decoration: none; }
}
`;
