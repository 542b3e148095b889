// `audex reset`: makes an incremental audience's next run a full backfill, or (`--to`)
// a diff against a kept earlier baseline. Takes the dataflow lock, so it refuses while a
// run holds it. See state/reset-audience.ts.
import { userInfo, hostname } from 'node:os';
import path from 'node:path';
import { rm } from 'node:fs/promises';
import { loadConfig } from '../../config/load.js';
import { countParquetRows } from '../../engine/count-rows.js';
import { openEngine } from '../../engine/session.js';
import { ConfigError, RunFailedError, exitCodeOf, messageOf } from '../../errors.js';
import { openLocations } from '../../run/prepare.js';
import { createScratchDir } from '../../storage/staging.js';
import { resetAudience } from '../../state/reset-audience.js';
import { acquireLock, NO_LOCK, type Lease } from '../../state/lock.js';
import { StateStore } from '../../state/state-store.js';
import type { Reporter } from '../reporter.js';
import type { CommandOptions } from '../program.js';

export type ResetFlags = CommandOptions<'reset'>;

export async function resetCommand(flags: ResetFlags, reporter: Reporter): Promise<number> {
  try {
    return await resetOne(flags, reporter);
  } catch (error) {
    // --json prints one object on every outcome; main.ts still reports the error and sets the exit code.
    if (flags.json)
      reporter.out(
        JSON.stringify(
          { audienceId: flags.audience, error: { exitCode: exitCodeOf(error), message: messageOf(error) } },
          null,
          2,
        ),
      );
    throw error;
  }
}

async function resetOne(flags: ResetFlags, reporter: Reporter): Promise<number> {
  const now = flags.at ?? new Date();
  const config = await loadConfig(flags.config);
  if (config.kind === 'datasets')
    throw new ConfigError(
      `dataflow ${config.dataflow.id} exports datasets (${config.file}); audex reset is for incremental audiences`,
    );
  if (config.kind === 'http')
    throw new ConfigError(
      `dataflow ${config.dataflow.id} sends to an HTTP endpoint (${config.file}); audex reset is for incremental file audiences`,
    );
  const { dataflow } = config;
  const audience = dataflow.audiences.find((a) => a.id === flags.audience);
  if (!audience)
    throw new ConfigError(
      `--audience ${flags.audience}: not mapped in dataflow ${dataflow.id} (${config.file}); mapped: ${dataflow.audiences.map((a) => a.id).join(', ')}`,
    );
  const scratchDir = await createScratchDir('reset');
  let lease: Lease = NO_LOCK;
  try {
    const locations = openLocations(config, path.join(scratchDir, 'staging'));
    const state = new StateStore(locations.state);
    try {
      lease = await acquireLock(locations.state, dataflow.id, new Date());
    } catch (error) {
      if (!(error instanceof RunFailedError)) throw error;
      throw new RunFailedError(
        `cannot reset ${flags.audience} while a run holds the dataflow lock; nothing was reset. ${messageOf(error).replace(/; nothing was exported/, '')}`,
      );
    }
    const record = await resetAudience(state, {
      dataflowId: dataflow.id,
      audienceId: audience.id,
      mode: audience.mode,
      now,
      ...whoAsked(),
      assertLockHeld: () => lease.assertHeld(),
      ...(flags.to ? { to: flags.to } : {}),
      countBaseline: async (key) => {
        const engine = await openEngine({ tempDirectory: path.join(scratchDir, 'spill'), threads: 1 });
        try {
          return await countParquetRows(engine, await state.storage.fetch(key, scratchDir));
        } finally {
          engine.close();
        }
      },
    });
    if (flags.json)
      reporter.out(
        JSON.stringify(
          { dataflowId: dataflow.id, at: now.toISOString(), audienceId: audience.id, reset: record },
          null,
          2,
        ),
      );
    else if (!record)
      reporter.out(`${audience.id}: never exported; its next run is a full backfill already (nothing to reset)`);
    else
      reporter.out(
        `${audience.id}: ${record.note}. Recorded in the history as run ${record.runId}; the cursor set aside is kept in that record`,
      );
    return 0;
  } finally {
    await lease.release();
    await rm(scratchDir, { recursive: true, force: true });
  }
}

/** The user and host names from the environment; never anything else of it. */
function whoAsked(): { user: string; host: string } {
  let user = process.env['USER'] ?? process.env['LOGNAME'] ?? process.env['USERNAME'];
  if (!user) {
    try {
      user = userInfo().username;
    } catch {
      user = 'unknown';
    }
  }
  return { user, host: hostname() };
}
