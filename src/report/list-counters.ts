// Which numbers a run report charts. Every numeric field of a run's `counts` is charted:
// the known ones under their label and in their chart, any other (a counter added later,
// by a new kind of destination or input) under its own name in the "Other counters" chart,
// so new counters appear without a change here.
import type { RunRecord } from '../state/records.js';

export type ChartGroup = 'volume' | 'exclusions' | 'delivery' | 'other';

export interface CounterInfo {
  key: string;
  label: string;
  group: ChartGroup;
}

const CHART_TITLES: Record<ChartGroup, string> = {
  volume: 'Volume',
  exclusions: 'Excluded, exits and bad records',
  delivery: 'Delivery: retries and dead letters',
  other: 'Other counters',
};

/** A chart's title: the volume chart is named after what it shows ("Profiles received and rows written"). */
export function chartTitle(group: ChartGroup, labels: string[]): string {
  if (group !== 'volume' || labels.length === 0 || labels.length > 3) return CHART_TITLES[group];
  const text = labels.length === 1 ? labels[0]! : `${labels.slice(0, -1).join(', ')} and ${labels.at(-1)!}`;
  return text.charAt(0).toUpperCase() + text.slice(1);
}

/** Known counters in the order they are listed: files (README "Running it"), HTTP, datasets (README "Export datasets"). */
const KNOWN: CounterInfo[] = [
  { key: 'profilesReceived', label: 'profiles received', group: 'volume' },
  { key: 'rowsWritten', label: 'rows written', group: 'volume' },
  { key: 'messages', label: 'messages', group: 'volume' },
  { key: 'requests', label: 'requests', group: 'volume' },
  { key: 'batches', label: 'batches', group: 'volume' },
  { key: 'rows', label: 'rows', group: 'volume' },
  { key: 'excludedMandatory', label: 'excluded: mandatory field missing', group: 'exclusions' },
  { key: 'excludedDuplicate', label: 'excluded: duplicate key', group: 'exclusions' },
  { key: 'exitsWritten', label: 'exits written', group: 'exclusions' },
  { key: 'exitsOmitted', label: 'exits omitted', group: 'exclusions' },
  { key: 'badRecords', label: 'bad records', group: 'exclusions' },
  { key: 'retries', label: 'retries', group: 'delivery' },
  { key: 'deadLetters', label: 'dead letters', group: 'delivery' },
];

const KNOWN_BY_KEY = new Map(KNOWN.map((c) => [c.key, c]));

/** The numeric counters of a record's counts (anything else in `counts` is ignored). */
export function numericCounts(record: RunRecord): Map<string, number> {
  const out = new Map<string, number>();
  for (const [key, value] of Object.entries(record.counts as unknown as Record<string, unknown>)) {
    if (typeof value === 'number' && Number.isFinite(value)) out.set(key, value);
  }
  return out;
}

/**
 * The counters present in any of the records: known ones in their listed order, then the
 * others by name. A counter is present when at least one record carries it as a number.
 */
export function listCounters(records: RunRecord[]): CounterInfo[] {
  const present = new Set<string>();
  for (const record of records) for (const key of numericCounts(record).keys()) present.add(key);
  const known = KNOWN.filter((c) => present.has(c.key));
  const others = [...present]
    .filter((key) => !KNOWN_BY_KEY.has(key))
    .sort()
    .map((key): CounterInfo => ({ key, label: key, group: 'other' }));
  return [...known, ...others];
}
