// What a mapping `source` (or a mandatory / dedup entry) refers to. One parser, so the
// schema's cross-field rules and the engine agree on what a path means.

export type SourceRef =
  | { kind: 'attribute'; path: string[] }
  | { kind: 'identity'; namespace: string }
  | { kind: 'status' }
  | { kind: 'qualificationTime' };

const SEGMENT = /^[^.\s]+$/;

/** Parses a dotted source path; returns an error message instead when it is not one. */
export function parseSourcePath(source: string): SourceRef | string {
  const parts = source.split('.');
  if (parts.some((p) => !SEGMENT.test(p))) {
    return `"${source}" is not a dotted field path (segments without spaces, like person.name.firstName)`;
  }
  const [head, ...rest] = parts;
  if (head === 'identityMap') {
    if (rest.length !== 1) return `"${source}" must name one identity namespace, like identityMap.email`;
    return { kind: 'identity', namespace: rest[0]! };
  }
  if (head === 'segmentMembership') {
    if (rest.length === 1 && rest[0] === 'status') return { kind: 'status' };
    if (rest.length === 1 && rest[0] === 'lastQualificationTime') return { kind: 'qualificationTime' };
    return `"${source}": only segmentMembership.status and segmentMembership.lastQualificationTime can be mapped`;
  }
  return { kind: 'attribute', path: parts };
}

export function defaultTargetName(source: string): string {
  return source.split('.').join('_');
}
