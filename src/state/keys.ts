// Where each piece of state lives under the state location. Audience ids are encoded so
// any id is one safe path segment.

export function encodeSegment(value: string): string {
  return value.replace(/[^A-Za-z0-9_-]/g, (ch) => `%${[...Buffer.from(ch, 'utf8')].map((b) => b.toString(16).toUpperCase().padStart(2, '0')).join('%')}`);
}

export const stateKeys = {
  lock: 'lock.json',
  /** Claim of the takeover of a dead holder's lock (local disk), by that lock's token. */
  lockTakeover: (staleToken: string) => `lock-takeover/${encodeSegment(staleToken || 'untokened')}.json`,
  cursor: (audienceId: string) => `cursors/${encodeSegment(audienceId)}.json`,
  baseline: (audienceId: string, runId: string) => `baselines/${encodeSegment(audienceId)}/${runId}.parquet`,
  pending: (runId: string) => `pending/${runId}.json`,
  pendingPrefix: 'pending',
  /**
   * Run ids start with the logical time, so key order is time order. A failed attempt
   * keeps its own record, so the retry that later succeeds does not erase it.
   */
  history: (runId: string, status: string) => `history/${runId}${status === 'failed' ? '.failed' : ''}.json`,
  historyPrefix: 'history',
};
