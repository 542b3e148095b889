// Turns flag strings into typed options; every mistake is a usage error (exit 2).
import { DateTime } from 'luxon';
import { ConfigError } from '../errors.js';

/** `--at` (or another time flag): an ISO 8601 time; without an offset it is read as UTC. */
export function parseAt(value: string | undefined, wallClock: () => Date, flag = '--at'): Date {
  if (value === undefined) return wallClock();
  const parsed = DateTime.fromISO(value, { zone: 'UTC', setZone: true });
  if (!parsed.isValid) throw new ConfigError(`${flag} ${value}: not an ISO 8601 time; use e.g. 2026-11-20T05:00:00Z`);
  return parsed.toJSDate();
}

export function parseCount(flag: string, value: string, min = 0): number {
  if (!/^\d+$/.test(value) || Number(value) < min) throw new ConfigError(`${flag} ${value}: expected a whole number, ${min} or more`);
  return Number(value);
}

/** `--memory-limit`: a size the engine understands, checked before anything runs. */
export function parseMemoryLimit(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  if (!/^\d+(\.\d+)?\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)$/i.test(value.trim()) || Number.parseFloat(value) === 0) {
    throw new ConfigError(`--memory-limit ${value}: expected a size such as 512MB, 1GB or 2GiB`);
  }
  return value.trim();
}

/** Checks the flags every engine command shares, once, before any dataflow runs. */
export function checkEngineFlags(flags: { at?: string; maxBadRecords?: string; memoryLimit?: string }): void {
  parseAt(flags.at, () => new Date());
  if (flags.maxBadRecords !== undefined) parseCount('--max-bad-records', flags.maxBadRecords);
  parseMemoryLimit(flags.memoryLimit);
}
