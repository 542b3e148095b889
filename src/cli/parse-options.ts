// Turns flag strings into typed options; every mistake is a usage error (exit 2).
import { DateTime } from 'luxon';
import { ConfigError } from '../errors.js';

/** `--at`: an ISO 8601 time; without an offset it is read as UTC. */
export function parseAt(value: string | undefined, wallClock: () => Date): Date {
  if (value === undefined) return wallClock();
  const parsed = DateTime.fromISO(value, { zone: 'UTC', setZone: true });
  if (!parsed.isValid) throw new ConfigError(`--at ${value}: not an ISO 8601 time; use e.g. 2026-11-20T05:00:00Z`);
  return parsed.toJSDate();
}

export function parseCount(flag: string, value: string): number {
  if (!/^\d+$/.test(value)) throw new ConfigError(`${flag} ${value}: expected a whole number, 0 or more`);
  return Number(value);
}
