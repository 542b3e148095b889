// The sha256 transform normalises exactly as JavaScript's `text.trim().toLowerCase()`:
// checked over every cased character the JS engine knows (so a newer engine or Node whose
// Unicode tables differ is caught here), over every whitespace trim() removes, and over
// the context-dependent final sigma.
import { describe, expect, it } from 'vitest';
import { DuckDBInstance } from '@duckdb/node-api';
import { jsLowerTrim } from '../../src/engine/select-rows.js';
import { literal } from '../../src/engine/sql.js';

const SPACES = [
  '\t',
  '\n',
  '\v',
  '\f',
  '\r',
  ' ',
  '\u00a0',
  '\u1680',
  '\u2000',
  '\u200a',
  '\u2028',
  '\u2029',
  '\u202f',
  '\u205f',
  '\u3000',
  '\ufeff',
];

function samples(): string[] {
  const out: string[] = [];
  for (let cp = 0x41; cp < 0x30000; cp++) {
    if (cp >= 0xd800 && cp <= 0xdfff) continue;
    const ch = String.fromCodePoint(cp);
    if (ch.toLowerCase() !== ch || ch.toUpperCase() !== ch) out.push(`x${ch}Y`);
  }
  out.push(...SPACES.map((s, i) => `${s}${SPACES[(i + 3) % SPACES.length]}Mail@X.Com${s}`));
  out.push('ΟΔΟΣ', 'ΣΑΣ Σ', 'ΑΣ.', 'Σ', 'ΑΣΑ', 'İstanbul', 'plain@x.com', ' TAB\t');
  return out;
}

describe('sha256 normalisation (trim + toLowerCase, as JavaScript does)', () => {
  it('matches text.trim().toLowerCase() for every cased character, every trimmed space and final sigma', async () => {
    const db = await DuckDBInstance.create(':memory:');
    const c = await db.connect();
    try {
      const values = samples();
      await c.run(
        `CREATE TABLE t AS SELECT * FROM (VALUES ${values.map((v, i) => `(${i}, ${literal(v)})`).join(', ')}) v(i, x)`,
      );
      const rows = (
        await c.runAndReadAll(`SELECT i, ${jsLowerTrim('x')} AS y FROM t ORDER BY i`)
      ).getRowObjectsJson() as { i: number; y: string }[];
      const wrong = rows
        .filter((r) => r.y !== values[Number(r.i)]!.trim().toLowerCase())
        .map((r) => `${JSON.stringify(values[Number(r.i)])} → ${JSON.stringify(r.y)}`);
      expect(wrong).toEqual([]);
      expect(rows.length).toBeGreaterThan(2500);
    } finally {
      c.closeSync();
      db.closeSync();
    }
  });
});
