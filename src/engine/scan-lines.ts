// The exact checker for NDJSON parts: reads line by line (bytes, so invalid UTF-8 is
// caught), names every bad record by file and line, and writes the good lines to a clean
// copy that DuckDB's typed reader can then read. Only used when the fast path found
// something, because JSON.parse per line is several times slower than DuckDB.
import { createReadStream, createWriteStream } from 'node:fs';
import { once } from 'node:events';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { incompleteGzip } from '../snapshots/verify-gzip-parts.js';
import { findUnreadable, structKeys } from './find-unreadable.js';
import { checkRecord, MAX_RECORD_BYTES, type RecordRules } from './record-rules.js';

export interface BadRecord {
  file: string;
  line: number;
  reason: string;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Fields the clean copy carries so SQL can still name the original line and bad entries. */
export const LINE_FIELD = '__audex_line';
export const ENTRY_ERRORS_FIELD = '__audex_entry_errors';

/** Adds the original line number as the first field of a JSON object line. */
function stampLine(text: string, line: number): string {
  const inner = text.trim().slice(1).trimStart();
  return inner.startsWith('}') ? `{"${LINE_FIELD}":${line}}` : `{"${LINE_FIELD}":${line},${inner}`;
}

/** A record with bad membership entries: those entries are dropped and their reasons stamped. */
function stampEntryErrors(record: Record<string, unknown>, line: number, errors: [string, string][]): string {
  const ups = (record['segmentMembership'] as { ups: Record<string, unknown> }).ups;
  for (const [audience] of errors) delete ups[audience];
  return JSON.stringify({ [LINE_FIELD]: line, [ENTRY_ERRORS_FIELD]: Object.fromEntries(errors), ...record });
}

/**
 * Calls `handle` with every line of `input` (NDJSON, gzip when it ends in `.gz`), without
 * its `\n`, in order. A line longer than MAX_RECORD_BYTES comes with its length only (the
 * bytes given are cut), so one huge line cannot exhaust memory. A broken gzip part is
 * bad input naming `displayName`.
 */
export async function forEachLine(
  input: string,
  handle: (bytes: Buffer, length: number) => Promise<void> | void,
  displayName: string = input,
): Promise<void> {
  try {
    await readLines(input, handle);
  } catch (error) {
    throw incompleteGzip(error, displayName);
  }
}

async function readLines(
  input: string,
  handle: (bytes: Buffer, length: number) => Promise<void> | void,
): Promise<void> {
  const source = createReadStream(input, { highWaterMark: 1 << 20 });
  const gunzip = input.endsWith('.gz') ? createGunzip() : null;
  // A read error of the file ends the gunzip stream with that error, so the loop sees it.
  const piped = gunzip ? pipeline(source, gunzip) : null;
  piped?.catch(() => undefined);
  const stream = gunzip ?? source;
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    let start = 0;
    for (let i = chunk.indexOf(0x0a); i !== -1; i = chunk.indexOf(0x0a, start)) {
      const piece = chunk.subarray(start, i);
      const length = pendingBytes + piece.length;
      const line = pending.length && length <= MAX_RECORD_BYTES ? Buffer.concat([...pending, piece]) : piece;
      pending = [];
      pendingBytes = 0;
      await handle(line, length);
      start = i + 1;
    }
    if (start < chunk.length) {
      // Past the limit only the length matters: stop keeping the bytes of an over-long line.
      const rest = chunk.subarray(start);
      if (pendingBytes + rest.length <= MAX_RECORD_BYTES) pending.push(rest);
      pendingBytes += rest.length;
    }
  }
  if (pendingBytes > 0) await handle(Buffer.concat(pending), pendingBytes);
  await piped;
}

/**
 * Scans `input` (NDJSON, optionally gzip) and returns the records bad as a whole; writes
 * the others to `cleanOutput`, each stamped with its line (and bad entries, if any).
 */
export async function scanNdjson(
  input: string,
  displayName: string,
  cleanOutput: string,
  rules: RecordRules,
  seenKeys: Map<string, string>,
): Promise<BadRecord[]> {
  const bad: BadRecord[] = [];
  const structs = structKeys(rules, [...(rules.readRoots ?? []), LINE_FIELD, ENTRY_ERRORS_FIELD]);
  const out = createWriteStream(cleanOutput);
  let lineNo = 0;
  let batch: string[] = [];

  const flush = async () => {
    if (batch.length === 0) return;
    if (!out.write(batch.join(''))) await once(out, 'drain');
    batch = [];
  };
  const handle = async (bytes: Buffer, length: number) => {
    lineNo += 1;
    if (length === 0 || (length === 1 && bytes[0] === 0x0d)) return;
    const where = `${displayName}:${lineNo}`;
    if (length > MAX_RECORD_BYTES) {
      bad.push({
        file: displayName,
        line: lineNo,
        reason: `the record is longer than ${MAX_RECORD_BYTES / 1024 / 1024} MiB`,
      });
      return;
    }
    let text: string;
    try {
      text = utf8.decode(bytes);
    } catch {
      bad.push({ file: displayName, line: lineNo, reason: 'the line is not valid UTF-8' });
      return;
    }
    if (text.trim() === '') return;
    let record: unknown;
    try {
      record = JSON.parse(text);
    } catch (error) {
      bad.push({ file: displayName, line: lineNo, reason: `not valid JSON (${(error as Error).message})` });
      return;
    }
    const verdict = checkRecord(record, rules);
    if ('bad' in verdict) {
      bad.push({ file: displayName, line: lineNo, reason: verdict.bad });
      return;
    }
    const unreadable = findUnreadable(text, structs);
    if (unreadable) {
      bad.push({ file: displayName, line: lineNo, reason: unreadable });
      return;
    }
    const first = seenKeys.get(verdict.key);
    if (first !== undefined) {
      bad.push({
        file: displayName,
        line: lineNo,
        reason: `duplicate profile key "${verdict.key}" (first at ${first})`,
      });
      return;
    }
    seenKeys.set(verdict.key, where);
    // Bad membership entries are stamped into the copy; SQL reports them with the others.
    const stamped = verdict.entryErrors.length
      ? stampEntryErrors(record as Record<string, unknown>, lineNo, verdict.entryErrors)
      : stampLine(text, lineNo);
    batch.push(`${stamped}\n`);
    if (batch.length >= 2048) await flush();
  };

  try {
    await forEachLine(input, handle, displayName);
  } catch (error) {
    out.destroy();
    throw error;
  }
  await flush();
  out.end();
  await once(out, 'close');
  return bad;
}
