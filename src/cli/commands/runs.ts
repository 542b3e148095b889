// `audex runs`: the run history, newest first, filterable.
import { loadConfig } from '../../config/load.js';
import { openHttpLocations } from '../../run/http-build.js';
import { openLocations } from '../../run/prepare.js';
import { StateStore } from '../../state/state-store.js';
import type { RunRecord } from '../../state/records.js';
import type { Reporter } from '../reporter.js';
import type { CommandOptions } from '../program.js';

export type RunsFlags = CommandOptions<'runs'>;

export async function runsCommand(flags: RunsFlags, reporter: Reporter): Promise<number> {
  const { limit, since } = flags;
  const config = await loadConfig(flags.config);
  reporter.context['dataflowId'] = config.dataflow.id;
  // Only the records shown are read: the newest month folders first, filtered on names.
  const runs = await new StateStore(
    config.kind === 'http' ? openHttpLocations(config).state : openLocations(config).state,
  ).readHistory({
    limit,
    ...(since ? { since } : {}),
    ...(flags.audience ? { audienceId: flags.audience } : {}),
    ...(flags.status ? { status: flags.status } : {}),
  });
  reporter.out(flags.json ? JSON.stringify({ dataflowId: config.dataflow.id, runs }, null, 2) : formatRuns(runs));
  return 0;
}

function formatRuns(runs: RunRecord[]): string {
  if (runs.length === 0) return 'no runs recorded';
  const rows = runs.map((r) => [
    r.logicalTime,
    r.audienceId,
    r.mode,
    r.trigger,
    r.status,
    r.status === 'success' ? String(r.counts.rowsWritten) : '-',
    r.status === 'success' ? String(r.files.length) : '-',
    r.durationMs === undefined ? '-' : `${(r.durationMs / 1000).toFixed(1)}s`,
    r.runId,
    (r.error ?? r.note ?? '').split('\n')[0]!,
  ]);
  const header = ['logical time', 'audience', 'mode', 'trigger', 'status', 'rows', 'files', 'took', 'run id', 'note'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  return [header, ...rows]
    .map((r) =>
      r
        .map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!)))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}
