// Finds what makes a line that JSON.parse accepts unreadable to the engine's typed NDJSON
// reader, so the exact scanner reports it as a bad record at its real file:line instead
// of the whole snapshot failing: a key repeated in an object the reader turns into a
// struct (the record, identityMap, its entries, segmentMembership, ups, the entries of
// mapped audiences; repeated keys elsewhere are read as the reader reads them, the first
// one), and a lone UTF-16 surrogate escape (`"\ud800"`), which is not Unicode text.
import type { RecordRules } from './record-rules.js';

/** The declared keys of one struct-read object, and the trees of its children. */
interface KeyTree {
  keys: Set<string>;
  children: Map<string, KeyTree>;
  /** For an array value: the tree of each element. */
  items?: KeyTree;
}

const tree = (keys: Iterable<string>, children: [string, KeyTree][] = []): KeyTree => ({
  keys: new Set(keys),
  children: new Map(children),
});

/** The objects the reader reads as structs for these rules; `roots` are every top-level column it declares. */
export function structKeys(rules: RecordRules, roots: readonly string[]): KeyTree {
  const children: [string, KeyTree][] = [];
  if (rules.namespace !== null) {
    const entries: KeyTree = { ...tree([]), items: tree(['id']) };
    children.push(['identityMap', tree([rules.namespace], [[rules.namespace, entries]])]);
  }
  const audiences = tree(
    rules.audiences,
    rules.audiences.map((a) => [a, tree(['status', 'lastQualificationTime'])]),
  );
  children.push(['segmentMembership', tree(['ups'], [['ups', audiences]])]);
  return tree(roots, children);
}

/** The first problem found, or null. `text` must be valid JSON (JSON.parse accepted it). */
export function findUnreadable(text: string, keys: KeyTree): string | null {
  let i = 0;
  const space = () => {
    while (i < text.length && (text[i] === ' ' || text[i] === '\t' || text[i] === '\n' || text[i] === '\r')) i++;
  };
  const string = (): string => {
    const start = i++;
    let escaped = false;
    for (; text[i] !== '"'; i++) {
      if (text[i] === '\\') {
        escaped = true;
        i++;
      }
    }
    i++;
    const raw = text.slice(start, i);
    return escaped ? (JSON.parse(raw) as string) : raw.slice(1, -1);
  };
  const value = (where: string, node: KeyTree | undefined): string | null => {
    space();
    const c = text[i];
    if (c === '"') {
      return hasLoneSurrogate(string())
        ? `${where} holds a lone UTF-16 surrogate escape, which is not Unicode text`
        : null;
    }
    if (c === '{') {
      i++;
      const seen = new Set<string>();
      space();
      if (text[i] === '}') {
        i++;
        return null;
      }
      for (;;) {
        space();
        const key = string();
        if (hasLoneSurrogate(key))
          return `a key in ${where} holds a lone UTF-16 surrogate escape, which is not Unicode text`;
        if (node?.keys.has(key)) {
          if (seen.has(key)) return `${where} has the key ${JSON.stringify(key)} twice`;
          seen.add(key);
        }
        space();
        i++; // ':'
        const problem = value(
          where === 'the record' ? key : `${where}.${key}`,
          node?.keys.has(key) ? node.children.get(key) : undefined,
        );
        if (problem) return problem;
        space();
        if (text[i++] === '}') return null;
      }
    }
    if (c === '[') {
      i++;
      space();
      if (text[i] === ']') {
        i++;
        return null;
      }
      for (let n = 0; ; n++) {
        const problem = value(`${where}[${n}]`, node?.items);
        if (problem) return problem;
        space();
        if (text[i++] === ']') return null;
      }
    }
    while (i < text.length && !',]} \t\r\n'.includes(text[i]!)) i++;
    return null;
  };
  return value('the record', keys);
}

const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;
function hasLoneSurrogate(text: string): boolean {
  return LONE_SURROGATE.test(text);
}
