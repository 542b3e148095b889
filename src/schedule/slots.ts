/**
 * Schedule slots: the instants at which a dataflow is due.
 *
 * Invariant: slot k (k >= 0) is the local wall-clock time `startDate startTime` advanced by k
 * periods *in wall-clock terms* (N hours, a day, a week, or a calendar month), resolved to an
 * instant in the dataflow's IANA timezone, and slots are non-decreasing in k. Every function
 * here is pure: the clock is always a parameter.
 *
 * Wall-clock to instant: a slot is the EARLIEST instant whose local time is >= the wall time.
 *  - A wall time inside a spring-forward gap (e.g. 02:30 on 2026-03-29 in Europe/Berlin) maps
 *    to the first instant after the gap (03:00 local = 01:00Z).
 *  - An ambiguous wall time in a fall-back overlap uses its first occurrence (earlier offset).
 * Luxon's own DateTime.fromObject does neither (it shifts gap times forward by the gap length
 * and picks the later occurrence of ambiguous times), so the resolution is done here from the
 * zone's offsets. This rule is monotonic, which is what lets us search slots arithmetically.
 *
 * Every-N-hours slots are anchored to wall-clock times (startTime + j·N within each local day;
 * 24 is divisible by every N offered), so they keep their local times across DST changes.
 * Monthly slots fall on the start date's day-of-month, clamped to the month's last day.
 * endDate is exclusive and compared with the slot's nominal local date (its wall-clock date).
 *
 * Named for what it computes rather than for one export: its exports (latestSlotAtOrBefore,
 * nextSlotAfter, slotsBetween, isWithinWindow, describeSchedule) are equal peers over one
 * private SlotGrid, and schedule/slots reads as "the slots of a schedule".
 */
import { FixedOffsetZone, IANAZone, type Zone } from 'luxon';

export type Frequency =
  'once' | 'daily' | 'every3Hours' | 'every6Hours' | 'every8Hours' | 'every12Hours' | 'weekly' | 'monthly';

export interface ScheduleSpec {
  frequency: Frequency;
  /** 'YYYY-MM-DD', local date in the timezone; required for once, weekly and monthly. */
  startDate?: string;
  /** 'HH:mm' local time; default '00:00'. */
  startTime?: string;
  /** 'YYYY-MM-DD', exclusive: no slot whose local date is on or after it. */
  endDate?: string;
}

const MINUTE_MS = 60_000;
const HOUR_MS = 60 * MINUTE_MS;
const DAY_MS = 24 * HOUR_MS;
// Offsets are sampled this far either side of a wall time; wider than any UTC offset (±14h) so
// both offsets around a transition are seen, narrow enough never to span two transitions.
const OFFSET_PROBE_MS = 2 * DAY_MS;
// DST shifts move a slot by at most a day relative to the wall-clock estimate, so the
// correction loops below run a handful of times; the cap only guards against a broken zone.
const MAX_CORRECTION_STEPS = 1_000;
const DEFAULT_LIMIT = 1_000;

const GRID_PERIOD_MS: Record<Exclude<Frequency, 'once' | 'monthly'>, number> = {
  every3Hours: 3 * HOUR_MS,
  every6Hours: 6 * HOUR_MS,
  every8Hours: 8 * HOUR_MS,
  every12Hours: 12 * HOUR_MS,
  daily: DAY_MS,
  weekly: 7 * DAY_MS,
};

const WEEKDAYS = ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday'];

/**
 * A schedule resolved for slot arithmetic: its slot 0 and the bounds of its slot indexes.
 * "Wall" values are local wall-clock times encoded as milliseconds as if the local time were
 * UTC; they have no DST, so plain arithmetic on them is calendar arithmetic in the timezone.
 */
interface SlotGrid {
  frequency: Frequency;
  zone: Zone;
  timezone: string;
  startTime: string;
  startDate: string | undefined;
  endDate: string | undefined;
  /** Wall time of slot 0 (startDate startTime, or 1970-01-01 startTime when unbounded). */
  anchorWall: number;
  anchorYear: number;
  anchorMonth: number; // 1-12
  anchorDay: number;
  minutesOfDay: number;
  /** Smallest valid slot index; -Infinity when there is no startDate. */
  kMin: number;
  /** Largest valid slot index; +Infinity when there is no endDate. */
  kMax: number;
}

/** The latest slot at or before `now`, or null if there is none. */
export function latestSlotAtOrBefore(spec: ScheduleSpec, timezone: string, now: Date): Date | null {
  const grid = buildSlotGrid(spec, timezone);
  const k = Math.min(findLastIndexAtOrBefore(grid, now.getTime()), grid.kMax);
  return k < grid.kMin ? null : new Date(slotInstant(grid, k));
}

/** The first slot strictly after `after`, or null if the schedule has ended. */
export function nextSlotAfter(spec: ScheduleSpec, timezone: string, after: Date): Date | null {
  const grid = buildSlotGrid(spec, timezone);
  const k = Math.max(findLastIndexAtOrBefore(grid, after.getTime()) + 1, grid.kMin);
  return k > grid.kMax ? null : new Date(slotInstant(grid, k));
}

/**
 * Slots s with afterExclusive < s <= upToInclusive, ascending; at most `limit`, keeping the
 * LATEST ones when there are more (missed runs coalesce towards the present).
 */
export function slotsBetween(
  spec: ScheduleSpec,
  timezone: string,
  afterExclusive: Date | null,
  upToInclusive: Date,
  limit: number = DEFAULT_LIMIT,
): Date[] {
  if (!Number.isInteger(limit) || limit < 0) {
    throw new RangeError(`slotsBetween: limit must be a non-negative integer, got ${limit}`);
  }
  const grid = buildSlotGrid(spec, timezone);
  const hi = Math.min(findLastIndexAtOrBefore(grid, upToInclusive.getTime()), grid.kMax);
  let lo = afterExclusive === null ? grid.kMin : findLastIndexAtOrBefore(grid, afterExclusive.getTime()) + 1;
  lo = Math.max(lo, grid.kMin, hi - limit + 1);

  const slots: Date[] = [];
  let previous = Number.NEGATIVE_INFINITY;
  for (let k = lo; k <= hi; k++) {
    const t = slotInstant(grid, k);
    // Two wall times can resolve to the same instant only when a whole DST gap swallows one
    // (e.g. a skipped calendar day); a run is due once, not twice.
    if (t !== previous) slots.push(new Date(t));
    previous = t;
  }
  return slots;
}

/** startDate <= local date of `at` < endDate, with either bound optional. */
export function isWithinWindow(spec: ScheduleSpec, timezone: string, at: Date): boolean {
  const grid = buildSlotGrid(spec, timezone);
  const localDate = formatWallDate(toWall(grid.zone, at.getTime()));
  if (grid.startDate !== undefined && localDate < grid.startDate) return false;
  if (grid.endDate !== undefined && localDate >= grid.endDate) return false;
  return true;
}

/** Human-readable one-liner, e.g. "every 6 hours from 02:00 Europe/Berlin, 2026-11-01 to 2026-12-01 (exclusive)". */
export function describeSchedule(spec: ScheduleSpec, timezone: string): string {
  const grid = buildSlotGrid(spec, timezone);
  const at = `${grid.startTime} ${grid.timezone}`;
  let head: string;
  switch (grid.frequency) {
    case 'once':
      return `once at ${grid.startDate ?? ''} ${at}${
        grid.kMax < grid.kMin ? ` (never: endDate ${grid.endDate ?? ''} is not after startDate)` : ''
      }`;
    case 'daily':
      head = `daily at ${at}`;
      break;
    case 'weekly':
      head = `weekly on ${WEEKDAYS[new Date(grid.anchorWall).getUTCDay()] ?? '?'} at ${at}`;
      break;
    case 'monthly':
      head = `monthly on day ${grid.anchorDay}${grid.anchorDay > 28 ? " (or the month's last day)" : ''} at ${at}`;
      break;
    default:
      head = `every ${GRID_PERIOD_MS[grid.frequency] / HOUR_MS} hours from ${at}`;
  }
  if (grid.startDate !== undefined && grid.endDate !== undefined) {
    return `${head}, ${grid.startDate} to ${grid.endDate} (exclusive)`;
  }
  if (grid.startDate !== undefined) return `${head}, from ${grid.startDate}`;
  if (grid.endDate !== undefined) return `${head}, until ${grid.endDate} (exclusive)`;
  return head;
}

function buildSlotGrid(spec: ScheduleSpec, timezone: string): SlotGrid {
  // IANAZone.create caches per name and checks validity once; isValidZone would build a new
  // Intl.DateTimeFormat on every call, which dominates the cost of a slot query. UTC (the
  // default) needs no time zone data at all: the first Intl.DateTimeFormat of a process
  // costs 20-25 ms of CPU.
  const zone = utcZone(timezone) ?? IANAZone.create(timezone);
  if (!zone.isValid) {
    throw new Error(`Unknown IANA timezone "${timezone}"`);
  }
  const startTime = spec.startTime ?? '00:00';
  const minutesOfDay = parseTime(startTime, 'startTime');
  const start = spec.startDate === undefined ? undefined : parseDate(spec.startDate, 'startDate');
  const end = spec.endDate === undefined ? undefined : parseDate(spec.endDate, 'endDate');

  if (!Object.hasOwn(GRID_PERIOD_MS, spec.frequency) && spec.frequency !== 'once' && spec.frequency !== 'monthly') {
    throw new Error(`Unknown schedule frequency "${String(spec.frequency)}"`);
  }
  if (
    start === undefined &&
    (spec.frequency === 'once' || spec.frequency === 'weekly' || spec.frequency === 'monthly')
  ) {
    throw new Error(`A "${spec.frequency}" schedule requires a startDate (YYYY-MM-DD)`);
  }

  // Without a startDate the grid still needs an origin; 1970-01-01 yields the same times of day
  // because every N-hour period divides 24 hours.
  const [year, month, day] = start ?? [1970, 1, 1];
  const grid: SlotGrid = {
    frequency: spec.frequency,
    zone,
    timezone,
    startTime,
    startDate: spec.startDate,
    endDate: spec.endDate,
    anchorWall: makeWall(year, month, day, minutesOfDay),
    anchorYear: year,
    anchorMonth: month,
    anchorDay: day,
    minutesOfDay,
    kMin: start === undefined ? Number.NEGATIVE_INFINITY : 0,
    kMax: Number.POSITIVE_INFINITY,
  };
  if (spec.frequency === 'once') grid.kMax = 0;
  if (end !== undefined) {
    // endDate cuts in wall-clock space: the last slot is the one before local midnight of endDate.
    grid.kMax = Math.min(grid.kMax, floorIndexByWall(grid, makeWall(end[0], end[1], end[2], 0) - 1));
  }
  return grid;
}

/** Largest k whose instant is <= t (ignoring kMin/kMax; callers clamp). */
function findLastIndexAtOrBefore(grid: SlotGrid, t: number): number {
  if (grid.frequency === 'once') return slotInstant(grid, 0) <= t ? 0 : -1;
  // The wall-clock floor is exact except within a DST shift of a transition; correct from there.
  let k = floorIndexByWall(grid, toWall(grid.zone, t));
  for (let i = 0; i < MAX_CORRECTION_STEPS && slotInstant(grid, k) > t; i++) k--;
  for (let i = 0; i < MAX_CORRECTION_STEPS && slotInstant(grid, k + 1) <= t; i++) k++;
  return k;
}

/** Largest k whose wall time is <= `wall`. */
function floorIndexByWall(grid: SlotGrid, wall: number): number {
  if (grid.frequency === 'once') return wall >= grid.anchorWall ? 0 : -1;
  if (grid.frequency === 'monthly') {
    const d = new Date(wall);
    let k = (d.getUTCFullYear() - grid.anchorYear) * 12 + (d.getUTCMonth() + 1 - grid.anchorMonth);
    if (slotWall(grid, k) > wall) k--;
    return k;
  }
  return Math.floor((wall - grid.anchorWall) / GRID_PERIOD_MS[grid.frequency]);
}

function slotWall(grid: SlotGrid, k: number): number {
  // 'once' only ever asks for k = 0: callers clamp to kMin..kMax before resolving.
  if (grid.frequency === 'once') return grid.anchorWall;
  if (grid.frequency === 'monthly') {
    const monthIndex = grid.anchorMonth - 1 + k;
    const year = grid.anchorYear + Math.floor(monthIndex / 12);
    const month = (((monthIndex % 12) + 12) % 12) + 1;
    const day = Math.min(grid.anchorDay, daysInMonth(year, month));
    return makeWall(year, month, day, grid.minutesOfDay);
  }
  return grid.anchorWall + k * GRID_PERIOD_MS[grid.frequency];
}

function slotInstant(grid: SlotGrid, k: number): number {
  return resolveWall(grid.zone, slotWall(grid, k));
}

/** Earliest instant whose local wall time in `zone` is >= `wall` (see header for why). */
function resolveWall(zone: Zone, wall: number): number {
  const offsets = new Set([zone.offset(wall - OFFSET_PROBE_MS), zone.offset(wall + OFFSET_PROBE_MS)]);
  let best = Number.POSITIVE_INFINITY;
  for (const offset of offsets) {
    const t = wall - offset * MINUTE_MS;
    if (zone.offset(t) === offset && t < best) best = t;
  }
  if (best !== Number.POSITIVE_INFINITY) return best;

  // In a gap: local time jumps over `wall` somewhere between these instants; find where.
  const sorted = [...offsets].sort((a, b) => a - b);
  let lo = wall - (sorted[sorted.length - 1] ?? 0) * MINUTE_MS; // local time < wall here
  let hi = wall - (sorted[0] ?? 0) * MINUTE_MS; // local time > wall here
  while (hi - lo > 1) {
    const mid = lo + Math.floor((hi - lo) / 2);
    if (toWall(zone, mid) >= wall) hi = mid;
    else lo = mid;
  }
  return hi;
}

function toWall(zone: Zone, t: number): number {
  return t + zone.offset(t) * MINUTE_MS;
}

function makeWall(year: number, month: number, day: number, minutesOfDay: number): number {
  // setUTCFullYear rather than Date.UTC so years 0-99 are not remapped to 1900-1999.
  const d = new Date(0);
  d.setUTCFullYear(year, month - 1, day);
  return d.getTime() + minutesOfDay * MINUTE_MS;
}

function daysInMonth(year: number, month: number): number {
  const d = new Date(0);
  d.setUTCFullYear(year, month, 0);
  return d.getUTCDate();
}

function formatWallDate(wall: number): string {
  const d = new Date(wall);
  const pad = (n: number, width: number): string => String(n).padStart(width, '0');
  return `${pad(d.getUTCFullYear(), 4)}-${pad(d.getUTCMonth() + 1, 2)}-${pad(d.getUTCDate(), 2)}`;
}

function parseDate(value: string, field: string): [number, number, number] {
  const match = /^(\d{4})-(\d{2})-(\d{2})$/.exec(value);
  const year = Number(match?.[1]);
  const month = Number(match?.[2]);
  const day = Number(match?.[3]);
  if (match === null || month < 1 || month > 12 || day < 1 || day > daysInMonth(year, month)) {
    throw new Error(`Schedule ${field} must be a valid date YYYY-MM-DD, got "${value}"`);
  }
  return [year, month, day];
}

function parseTime(value: string, field: string): number {
  const match = /^(\d{2}):(\d{2})$/.exec(value);
  const hours = Number(match?.[1]);
  const minutes = Number(match?.[2]);
  if (match === null || hours > 23 || minutes > 59) {
    throw new Error(`Schedule ${field} must be HH:mm (00:00-23:59), got "${value}"`);
  }
  return hours * 60 + minutes;
}

/** The fixed UTC zone for the name `UTC` (luxon's IANAZone would ask Intl for its offsets), else null. */
export function utcZone(timezone: string): Zone | null {
  return timezone === 'UTC' ? FixedOffsetZone.utcInstance : null;
}
