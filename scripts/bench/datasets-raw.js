// The "raw engine" baseline of the dataset benchmark: the same records copied by one
// DuckDB COPY (read_json of the same files → the same format, gzip), with no audex
// semantics (no scan for bad lines, no record-exact JSON, no state, no manifest). Run as
// a child process by scripts/bench/datasets.js so it is measured exactly like audex:
//
//   node scripts/bench/datasets-raw.js '{"files":[...],"format":"json"|"parquet","outDir":"…","tempDir":"…"}'
//
// Prints { "rows": N }.
import { DuckDBInstance } from '@duckdb/node-api';
import path from 'node:path';

const opts = JSON.parse(process.argv[2]);
const q = (s) => `'${String(s).replaceAll("'", "''")}'`;
const db = await DuckDBInstance.create(':memory:', {
  temp_directory: opts.tempDir,
  memory_limit: '1GB',
  preserve_insertion_order: 'true',
});
const c = await db.connect();
const source = `read_json([${opts.files.map(q).join(', ')}], format = 'newline_delimited')`;
const target = path.join(opts.outDir, opts.format === 'json' ? 'part-0.json.gz' : 'part-0.gz.parquet');
const options = opts.format === 'json' ? '(FORMAT json, COMPRESSION gzip)' : '(FORMAT parquet, COMPRESSION gzip)';
const reader = await c.runAndReadAll(`COPY (SELECT * FROM ${source}) TO ${q(target)} ${options}`);
const [row] = reader.getRowObjectsJson();
process.stdout.write(`${JSON.stringify({ rows: Number(row?.Count ?? 0) })}\n`);
c.closeSync();
db.closeSync();
