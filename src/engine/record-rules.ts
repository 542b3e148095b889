// The rules that make a profile record bad (SPEC §2.2), in one place for both checkers:
// the SQL one (fast, on DuckDB's typed read) and the line scanner (exact file:line, used
// only when the fast path finds something). Both must agree on every rule.

export const VALID_STATUSES = ['realized', 'existing', 'exited'] as const;
export const ACTIVE_STATUSES = ['realized', 'existing'] as const;

/** RFC 3339 date-time (seconds required, fraction and offset optional). */
export const QUALIFICATION_TIME_PATTERN = '^\\d{4}-\\d{2}-\\d{2}[T ]\\d{2}:\\d{2}:\\d{2}(\\.\\d+)?(Z|[+-]\\d{2}:?\\d{2})?$';
const QUALIFICATION_TIME = new RegExp(QUALIFICATION_TIME_PATTERN);

/** DuckDB's read_json refuses larger objects; the scanner applies the same bound. */
export const MAX_RECORD_BYTES = 64 * 1024 * 1024;

export interface RecordRules {
  keyPath: string[];
  namespace: string | null;
  audiences: string[];
}

const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);
const isScalarText = (v: unknown) => typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean';

/** Returns the profile key, or a reason the record is bad. */
export function checkRecord(record: unknown, rules: RecordRules): { key: string } | { bad: string } {
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
        if (!isObject(entry) || (entry['id'] != null && !isScalarText(entry['id']))) {
          return { bad: `identityMap.${rules.namespace} holds an entry without a scalar "id"` };
        }
      }
    }
  }
  const membership = record['segmentMembership'];
  if (membership == null) return { key };
  if (!isObject(membership)) return { bad: 'segmentMembership is not an object' };
  const ups = membership['ups'];
  if (ups == null) return { key };
  if (!isObject(ups)) return { bad: 'segmentMembership.ups is not an object' };
  for (const audience of rules.audiences) {
    const entry = ups[audience];
    if (entry == null) continue;
    if (!isObject(entry)) return { bad: `segmentMembership.ups.${audience} is not an object` };
    const reason = checkMembership(audience, entry['status'], entry['lastQualificationTime']);
    if (reason) return { bad: reason };
  }
  return { key };
}

function checkMembership(audience: string, status: unknown, time: unknown): string | null {
  if (status !== null && status !== undefined && !isScalarText(status)) return `segmentMembership.ups.${audience}.status is not a string`;
  if (status == null || !(VALID_STATUSES as readonly string[]).includes(String(status))) {
    return `segmentMembership.ups.${audience}.status is ${JSON.stringify(status ?? null)}; expected realized, existing or exited`;
  }
  if (time == null) return null;
  if (!isScalarText(time) || !QUALIFICATION_TIME.test(String(time))) {
    return `segmentMembership.ups.${audience}.lastQualificationTime ${JSON.stringify(time)} is not an RFC 3339 time`;
  }
  return null;
}
