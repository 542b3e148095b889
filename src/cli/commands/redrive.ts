// `audex redrive`: an HTTP API dataflow's dead letters sent again (see commands/http.ts).
import { loadConfig } from '../../config/load.js';
import { ConfigError } from '../../errors.js';
import type { Reporter } from '../reporter.js';

export async function redriveCommandFor(
  flags: { config: string; json?: boolean; lock?: boolean },
  reporter: Reporter,
): Promise<number> {
  const config = await loadConfig(flags.config);
  if (config.kind !== 'http')
    throw new ConfigError(
      `redrive applies to HTTP API dataflows (destination.type: http); ${config.file} is a file dataflow`,
    );
  return (await import('./http.js')).redriveCommand(config, flags, reporter);
}
