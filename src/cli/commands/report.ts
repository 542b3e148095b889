// `audex report` (README "Run report"): reads each dataflow's run history and status, renders one
// self-contained HTML page (src/report/) and writes it under a temp name, then renames it,
// so a failed report never leaves a partial file under the final name.
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { resolveConfigPaths } from '../../config/config-paths.js';
import { loadConfig } from '../../config/load.js';
import { StorageError, exitCodeOf, messageOf } from '../../errors.js';
import { renderReport, type ReportDataflow } from '../../report/render-report.js';
import { openLocations } from '../../run/prepare.js';
import { readLockHolder } from '../../state/lock.js';
import { StateStore } from '../../state/state-store.js';
import type { Reporter } from '../reporter.js';
import type { CommandOptions } from '../program.js';
import { readAudienceStatuses } from './status.js';
import { readHttpAudienceStatus } from './http.js';
import { openHttpLocations } from '../../run/http-build.js';

export type ReportFlags = CommandOptions<'report'>;

/** uPlot's minified script and stylesheet, inlined into the page (no network needed to view it). */
async function readChartLibrary(): Promise<{ script: string; style: string }> {
  const require = createRequire(import.meta.url);
  try {
    const [script, style] = await Promise.all([
      readFile(require.resolve('uplot/dist/uPlot.iife.min.js'), 'utf8'),
      readFile(require.resolve('uplot/dist/uPlot.min.css'), 'utf8'),
    ]);
    return { script, style };
  } catch (error) {
    throw new StorageError(
      `cannot read the chart library uPlot that the report inlines (${(error as Error).message}); reinstall audex (npm install)`,
    );
  }
}

export async function reportCommand(flags: ReportFlags, reporter: Reporter): Promise<number> {
  try {
    return await writeReport(flags, reporter);
  } catch (error) {
    // --json prints one object on every outcome; main.ts still reports the error and sets the exit code.
    if (flags.json)
      reporter.out(JSON.stringify({ error: { exitCode: exitCodeOf(error), message: messageOf(error) } }, null, 2));
    throw error;
  }
}

async function writeReport(flags: ReportFlags, reporter: Reporter): Promise<number> {
  const now = flags.at ?? new Date();
  const since = flags.since ?? null;
  const configs = [];
  for (const file of (await resolveConfigPaths(flags.config)).files) configs.push(await loadConfig(file));
  const dataflows: ReportDataflow[] = [];
  for (const config of configs) {
    const { dataflow } = config;
    reporter.progress(`${dataflow.id}: reading run history and status`);
    const state = new StateStore(
      config.kind === 'http' ? openHttpLocations(config).state : openLocations(config).state,
    );
    const history = await state.readHistory();
    dataflows.push({
      id: dataflow.id,
      name: dataflow.name,
      lockHolder: await readLockHolder(state.storage, new Date()),
      // Dataset dataflows (README "Export datasets"): their runs are in the history; the status section is per audience.
      audiences:
        config.kind === 'datasets'
          ? []
          : config.kind === 'http'
            ? await readHttpAudienceStatus(config, state, history)
            : await readAudienceStatuses(config, state, history, now),
      history,
    });
  }
  const html = renderReport({ generatedAt: now, since, dataflows, chartLibrary: await readChartLibrary() });
  const out = path.resolve(flags.out);
  const temp = `${out}.${process.pid}.tmp`;
  try {
    await mkdir(path.dirname(out), { recursive: true });
    await writeFile(temp, html);
    await rename(temp, out);
  } catch (error) {
    await rm(temp, { force: true });
    throw new StorageError(
      `cannot write the report to ${out}: ${(error as Error).message}; check that the folder is writable, or choose another --out`,
    );
  }
  const bytes = Buffer.byteLength(html);
  const runs = dataflows.map((df) => ({
    dataflowId: df.id,
    runs: df.history.filter((r) => since === null || Date.parse(r.logicalTime) >= since.getTime()).length,
  }));
  reporter.out(
    flags.json
      ? JSON.stringify({ at: now.toISOString(), out, bytes, dataflows: runs }, null, 2)
      : `wrote ${out} (${runs.map((r) => `${r.dataflowId}: ${r.runs} run(s)`).join(', ')}; ${Math.ceil(bytes / 1024)} KiB)`,
  );
  return 0;
}
