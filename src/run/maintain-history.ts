// The run history's upkeep after an invocation's runs (README "What is kept, for how long,
// and how much space"), the same for every kind of dataflow (audiences, datasets, HTTP).
import { messageOf } from '../errors.js';
import type { StateStore } from '../state/state-store.js';
import { crashPoint } from './crash-points.js';
import type { InvocationSettings } from './invocation-settings.js';

/**
 * Under the lock, after the runs: records of the layout before month folders are moved
 * into them, and with `keepDays` records older than that (by logical time) are removed. A
 * failure only warns: every run is committed or recorded already.
 */
export async function maintainHistory(
  state: StateStore,
  /** `state.keepHistoryDays` of the config; undefined keeps every record. */
  keepDays: number | undefined,
  /** The invocation's now (`--at`: the days are counted back from it), progress and warnings. */
  { now, progress, warn }: Pick<InvocationSettings, 'now' | 'progress' | 'warn'>,
): Promise<void> {
  try {
    const moved = await state.migrateLegacyHistory();
    if (moved > 0) progress(`moved ${moved} history record(s) into month folders`);
    if (keepDays !== undefined) {
      const removed = await state.pruneHistory(new Date(now.getTime() - keepDays * 86_400_000), () =>
        crashPoint('in-prune'),
      );
      if (removed > 0) progress(`removed ${removed} history record(s) older than ${keepDays} day(s)`);
    }
  } catch (error) {
    warn(`the runs are recorded, but the history could not be tidied (${messageOf(error)}); the next run tries again`);
  }
}
