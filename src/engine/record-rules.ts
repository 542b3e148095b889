// The rules that make a profile record bad (README "Inputs"), in one place for both checkers:
// the SQL one (fast, on DuckDB's typed read) and the line scanner (exact file:line, used
// only when the fast path finds something). Both must agree on every rule.

export const VALID_STATUSES = ['realized', 'existing', 'exited'] as const;
export const ACTIVE_STATUSES = ['realized', 'existing'] as const;
/** The snapshot table's status of a membership entry that breaks a rule (its reason is kept apart). */
export const UNREADABLE = 'unreadable';

/** RFC 3339 date-time: seconds and an offset required, fraction optional, fields in range. */
export const QUALIFICATION_TIME_PATTERN =
  '^\\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\\d|3[01])[Tt ]([01]\\d|2[0-3]):[0-5]\\d:([0-5]\\d|60)(\\.\\d+)?([Zz]|[+-]([01]\\d|2[0-3]):[0-5]\\d)$';
const QUALIFICATION_TIME = new RegExp(QUALIFICATION_TIME_PATTERN);

/** The same rule as the SQL checker: the pattern, and a date that exists (no 30 February). */
export function isQualificationTime(value: string): boolean {
  if (!QUALIFICATION_TIME.test(value)) return false;
  const [y, m, d] = value.slice(0, 10).split('-').map(Number) as [number, number, number];
  return new Date(Date.UTC(y, m - 1, d)).getUTCDate() === d;
}

/** JSON types a profile key or an identity id may have. */
export const SCALAR_JSON_TYPES = ['VARCHAR', 'BIGINT', 'UBIGINT', 'DOUBLE', 'BOOLEAN'] as const;

/** DuckDB's read_json refuses larger objects; the scanner applies the same bound. */
export const MAX_RECORD_BYTES = 64 * 1024 * 1024;

export interface RecordRules {
  keyPath: string[];
  namespace: string | null;
  audiences: string[];
  /** Top-level fields the typed reader declares (for the scanner's repeated-key check). */
  readRoots?: string[];
}

const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);
const isScalarText = (v: unknown) => typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean';

/**
 * A record is bad as a whole (no key, not an object, malformed identities or membership
 * container), or has bad entries for some audiences: those concern only that audience, so
 * adding an audience to a dataflow never changes what the others export.
 */
export type Verdict = { bad: string } | { key: string; entryErrors: [audience: string, reason: string][] };

export function checkRecord(record: unknown, rules: RecordRules): Verdict {
  if (!isObject(record)) return { bad: 'the line is not a JSON object' };
  let node: unknown = record;
  for (const part of rules.keyPath) node = isObject(node) ? node[part] : undefined;
  if (!(typeof node === 'string' || typeof node === 'number') || String(node) === '') {
    return { bad: `no profile key at "${rules.keyPath.join('.')}" (a non-empty string or number)` };
  }
  const key = String(node);
  if (rules.namespace !== null && record['identityMap'] != null) {
    const map = record['identityMap'];
    if (!isObject(map)) return { bad: 'identityMap is not an object' };
    const ids = map[rules.namespace];
    if (ids != null) {
      if (!Array.isArray(ids)) return { bad: `identityMap.${rules.namespace} is not an array` };
      for (const entry of ids) {
        if (entry === null) continue;
        if (!isObject(entry) || !isScalarText(entry['id'])) {
          return { bad: `identityMap.${rules.namespace} holds an entry without a scalar "id"` };
        }
      }
    }
  }
  const membership = record['segmentMembership'];
  if (membership == null) return { key, entryErrors: [] };
  if (!isObject(membership)) return { bad: 'segmentMembership is not an object' };
  const ups = membership['ups'];
  if (ups == null) return { key, entryErrors: [] };
  if (!isObject(ups)) return { bad: 'segmentMembership.ups is not an object' };
  const entryErrors: [string, string][] = [];
  for (const audience of rules.audiences) {
    const entry = ups[audience];
    if (entry == null) continue;
    const reason = isObject(entry)
      ? checkMembership(audience, entry['status'], entry['lastQualificationTime'])
      : `segmentMembership.ups.${audience} is not an object`;
    if (reason) entryErrors.push([audience, reason]);
  }
  return { key, entryErrors };
}

function checkMembership(audience: string, status: unknown, time: unknown): string | null {
  if (status !== null && status !== undefined && !isScalarText(status))
    return `segmentMembership.ups.${audience}.status is not a string`;
  if (status == null || !(VALID_STATUSES as readonly string[]).includes(String(status))) {
    return `segmentMembership.ups.${audience}.status is ${JSON.stringify(status ?? null)}; expected realized, existing or exited`;
  }
  if (time == null) return null;
  if (!isScalarText(time) || !isQualificationTime(String(time))) {
    return `segmentMembership.ups.${audience}.lastQualificationTime ${JSON.stringify(time)} is not an RFC 3339 time`;
  }
  return null;
}
