// Turns flag strings into typed options while commander parses argv (program.ts hands each
// to an option's argParser): a bad value is commander's InvalidArgumentError, a usage
// error (exit 2) before any command runs. Each message names the flag and the value.
import { InvalidArgumentError } from '@commander-js/extra-typings';
import { DateTime } from 'luxon';

/** `--at`, `--since`: an ISO 8601 time; without an offset it is read as UTC. */
export function parseTime(flag: string, value: string): Date {
  const parsed = DateTime.fromISO(value, { zone: 'UTC', setZone: true, locale: 'en-US' }); // no system locale lookup (names.ts)
  if (!parsed.isValid)
    throw new InvalidArgumentError(
      `${flag} ${value}: not an ISO 8601 time; use e.g. 2026-11-20T05:00:00Z or 2026-11-20 (UTC when it has no offset)`,
    );
  return parsed.toJSDate();
}

/** `--max-bad-records`, `--limit`, `--show-messages`: a whole number, `min` or more. */
export function parseCount(flag: string, value: string, min: number): number {
  if (!/^\d+$/.test(value) || Number(value) < min)
    throw new InvalidArgumentError(`${flag} ${value}: expected a whole number, ${min} or more`);
  return Number(value);
}

/** `--memory-limit`: a size the engine understands. */
export function parseMemoryLimit(flag: string, value: string): string {
  if (!/^\d+(\.\d+)?\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)$/i.test(value.trim()) || Number.parseFloat(value) === 0) {
    throw new InvalidArgumentError(`${flag} ${value}: expected a size such as 512MB, 1GB or 2GiB`);
  }
  return value.trim();
}

/** `--status`: one of a fixed list. */
export function parseChoice<const T extends string>(flag: string, value: string, choices: readonly T[]): T {
  const choice = choices.find((c) => c === value);
  if (choice === undefined) throw new InvalidArgumentError(`${flag} ${value}: expected one of ${choices.join(', ')}`);
  return choice;
}
