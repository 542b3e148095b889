// The record rule of dataset batches (README "Export datasets"): every non-blank NDJSON line must be a
// JSON object (strict JSON: what JSON.parse accepts), valid UTF-8, at most
// MAX_RECORD_BYTES. A line that is not is a bad record, named by file and line. Used in
// the main thread and in scan workers (scan-records-worker.ts), so it imports no engine.
import { MAX_RECORD_BYTES } from './record-rules.js';
import { forEachLine, type BadRecord } from './scan-lines.js';

const utf8 = new TextDecoder('utf-8', { fatal: true });
const CR = 0x0d;

/** A line that carries no record: empty, or only white space. */
export function isBlankLine(bytes: Buffer, length: number): boolean {
  if (length === 0) return true;
  if (length > 64) return false;
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i]!;
    if (b !== 0x20 && b !== 0x09 && b !== CR) return false;
  }
  return true;
}

export interface RecordScan {
  records: number;
  bad: BadRecord[];
}

/** Counts the records of one NDJSON file (gzip when it ends in .gz) and names its bad lines. */
export async function scanRecordLines(file: string, name: string): Promise<RecordScan> {
  const bad: BadRecord[] = [];
  let line = 0;
  let records = 0;
  const fail = (reason: string) => {
    bad.push({ file: name, line, reason });
  };
  await forEachLine(file, (bytes, length) => {
    line += 1;
    if (isBlankLine(bytes, length)) return;
    if (length > MAX_RECORD_BYTES) return fail(`the record is longer than ${MAX_RECORD_BYTES / 1024 / 1024} MiB`);
    let text: string;
    try {
      text = utf8.decode(bytes);
    } catch {
      return fail('the line is not valid UTF-8');
    }
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (error) {
      return fail(`not valid JSON (${(error as Error).message})`);
    }
    if (value === null || typeof value !== 'object' || Array.isArray(value))
      return fail('the line is not a JSON object');
    records += 1;
  });
  return { records, bad };
}
