// Parquet parts of one snapshot must agree on each field's type; when they do not (a map
// in one part, a struct in another), the engine's binder error names neither the parts nor
// the field. This says it in plain words: which field, which parts, what each holds.
import type { Engine } from './session.js';
import { ident, literal } from './sql.js';

interface NamedPart {
  path: string;
  name: string;
}

/** The first field whose Parquet type differs between two parts, in plain words; null when none does. */
export async function describeTypeConflict(engine: Engine, parts: NamedPart[], probe: string): Promise<string | null> {
  const seen = new Map<string, { type: string; part: string }>();
  for (const part of parts) {
    await engine.run(
      `CREATE OR REPLACE TEMP TABLE ${ident(probe)} AS SELECT * FROM read_parquet(${literal(part.path)}) LIMIT 0`,
    );
    const columns = await engine.all<{ column_name: string; column_type: string }>(`DESCRIBE ${ident(probe)}`);
    for (const { column_name: column, column_type: type } of columns) {
      const first = seen.get(column);
      if (!first) seen.set(column, { type, part: part.name });
      else if (first.type !== type) {
        const { path, a, b } = firstDifference(column, first.type, type);
        return `the Parquet parts disagree on the type of ${path}: it is ${a} in ${first.part} but ${b} in ${part.name}. The parts of one snapshot must use one Parquet type for each field (for example a map in every part, or a struct in every part)`;
      }
    }
  }
  return null;
}

/** Where two DuckDB type texts first differ: the field path there and what each side holds. */
function firstDifference(column: string, a: string, b: string): { path: string; a: string; b: string } {
  let i = 0;
  while (i < a.length && a[i] === b[i]) i++;
  // Back up to the start of the type word that differs (STRUCT vs MAP, VARCHAR vs BIGINT…).
  while (i > 0 && /[A-Za-z_]/.test(a[i - 1]!)) i--;
  const names: string[] = [column];
  const stack: number[] = [];
  let last: string | null = null;
  for (let j = 0; j < i;) {
    const c = a[j]!;
    if (c === '"') {
      const end = a.indexOf('"', j + 1);
      last = a.slice(j + 1, end);
      j = end + 1;
    } else if (c === '(') {
      stack.push(names.length);
      last = null;
      j++;
    } else if (c === ')') {
      names.length = stack.pop() ?? names.length;
      j++;
    } else if (c === ',') {
      last = null;
      names.length = stack.at(-1) ?? names.length;
      j++;
    } else if (c === ' ') {
      if (last !== null && a[j - 1] !== ',') names.push(last);
      last = null;
      j++;
    } else {
      const word = /^[A-Za-z0-9_]+/.exec(a.slice(j))?.[0] ?? c;
      last = word;
      j += word.length;
    }
  }
  return { path: names.join('.'), a: kindOf(a.slice(i)), b: kindOf(b.slice(i)) };
}

function kindOf(rest: string): string {
  // `rest` runs to the end of the column's type: keep the one type it starts with.
  let depth = 0;
  let end = 0;
  for (; end < rest.length; end++) {
    if (rest[end] === '(') depth++;
    else if (rest[end] === ')' && --depth < 0) break;
    else if (rest[end] === ',' && depth === 0) break;
  }
  const type = rest.slice(0, end);
  const word = /^[A-Z]+/.exec(type)?.[0] ?? type;
  const kinds: Record<string, string> = {
    STRUCT: 'a struct',
    MAP: 'a map',
    VARCHAR: 'text',
    BOOLEAN: 'a boolean',
    DOUBLE: 'a number',
    FLOAT: 'a number',
    BIGINT: 'a number',
    INTEGER: 'a number',
    JSON: 'JSON',
  };
  return `${kinds[word] ?? word.toLowerCase()} (${type.length > 60 ? `${type.slice(0, 60)}…` : type})`;
}
