// Where each piece of state lives under the state location. Audience ids are encoded so
// any id is one safe path segment.

import { createHash } from 'node:crypto';

/** The run history (README "State and safety"): `runs/<YYYY-MM>/<runId>.<status>.<audience>.json`. */
const HISTORY_PREFIX = 'runs';

export function encodeSegment(value: string): string {
  return value.replace(
    /[^A-Za-z0-9_-]/g,
    (ch) => `%${[...Buffer.from(ch, 'utf8')].map((b) => b.toString(16).toUpperCase().padStart(2, '0')).join('%')}`,
  );
}

export const stateKeys = {
  lock: 'lock.json',
  /** Claim of the takeover of a dead holder's lock (local disk), by that lock's token. */
  lockTakeover: (staleToken: string) => `lock-takeover/${encodeSegment(staleToken || 'untokened')}.json`,
  lockTakeoverPrefix: 'lock-takeover',
  cursor: (audienceId: string) => `cursors/${encodeSegment(audienceId)}.json`,
  cursorPrefix: 'cursors',
  baseline: (audienceId: string, runId: string) => `baselines/${encodeSegment(audienceId)}/${runId}.parquet`,
  pending: (runId: string) => `pending/${runId}.json`,
  pendingPrefix: 'pending',
  baselinePrefix: (audienceId: string) => `baselines/${encodeSegment(audienceId)}`,
  /**
   * One record per run, in a folder per month of its logical time: run ids start with the
   * logical time, so key order is time order, and the newest records are found by listing
   * the newest month only. The name carries the status and the audience, so readers filter
   * on names and read only the records they return. A failed attempt keeps its own record,
   * so the retry that later succeeds does not erase it.
   */
  history: (runId: string, status: string, audienceId: string) =>
    `${HISTORY_PREFIX}/${historyMonth(runId)}/${runId}.${status}.${audienceTag(audienceId)}.json`,
  historyPrefix: HISTORY_PREFIX,
  historyMonthPrefix: (month: string) => `${HISTORY_PREFIX}/${month}`,
  /** The layout before month folders (read, and moved into month folders by the next run). */
  legacyHistoryPrefix: 'history',
};

/** The month folder (`YYYY-MM`, UTC) of a run id (`20261120T060000Z-…`). */
export function historyMonth(runId: string): string {
  return `${runId.slice(0, 4)}-${runId.slice(4, 6)}`;
}

/** The audience part of a history record's name: the encoded id, or a hash of a long one. */
export function audienceTag(audienceId: string): string {
  const encoded = encodeSegment(audienceId);
  return encoded.length <= 64 ? encoded : `~${createHash('sha256').update(audienceId).digest('hex').slice(0, 16)}`;
}

/** What a history key tells without reading the record. */
export interface HistoryEntry {
  key: string;
  runId: string;
  /** Known for month-folder keys; for legacy keys only `failed` is known (else undefined). */
  status?: string;
  audienceTag?: string;
  legacy: boolean;
}

const RUN_ID = String.raw`\d{8}T\d{6}Z-[^.]+`;
const MONTH_NAME = new RegExp(`^${HISTORY_PREFIX}/\\d{4}-\\d{2}/(${RUN_ID})\\.([a-z]+)\\.([^./]+)\\.json$`);
const LEGACY_NAME = new RegExp(`^history/(${RUN_ID})(\\.failed)?\\.json$`);

/** Parses a history key of either layout; null for an object that is not a history record. */
export function parseHistoryKey(key: string): HistoryEntry | null {
  const month = MONTH_NAME.exec(key);
  if (month) return { key, runId: month[1]!, status: month[2]!, audienceTag: month[3]!, legacy: false };
  const legacy = LEGACY_NAME.exec(key);
  if (legacy) return { key, runId: legacy[1]!, ...(legacy[2] ? { status: 'failed' } : {}), legacy: true };
  return null;
}
