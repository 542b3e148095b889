// What the HTTP API destination keeps in the state location (README "Send to an HTTP endpoint"), next to the
// lock, pending records and history that StateStore already manages:
//
//   http/cursor.json                      the commit point: last delivered snapshot, its baseline
//   http/runs/<runId>/requests.ndjson     the outbox: one request body a line, line n = seq n
//   http/runs/<runId>/baseline.parquet    the baseline this run leaves
//   http/runs/<runId>/outbox.json         the seal: written after both, before the first send
//   http/runs/<runId>/acks/<n>.json       the ack log: append-only chunks of settled seqs
//   dead-letter/<runId>-<seq>.json        requests given up on (onExhausted: deadLetter)
//
// Nothing here holds a secret: bodies are profile data; headers are not stored.
import type { StorageBackend } from '../storage/backend.js';
import { StorageError } from '../errors.js';

export const httpKeys = {
  cursor: 'http/cursor.json',
  runsPrefix: 'http/runs',
  runFolder: (runId: string) => `http/runs/${runId}`,
  outbox: (runId: string) => `http/runs/${runId}/requests.ndjson`,
  baseline: (runId: string) => `http/runs/${runId}/baseline.parquet`,
  seal: (runId: string) => `http/runs/${runId}/outbox.json`,
  acksPrefix: (runId: string) => `http/runs/${runId}/acks`,
  ackChunk: (runId: string, n: number) => `http/runs/${runId}/acks/${String(n).padStart(8, '0')}.json`,
  deadLetterPrefix: 'dead-letter',
  deadLetter: (key: string) => `dead-letter/${key}.json`,
};

export interface HttpTriggerCounts {
  entered: number;
  exited: number;
  identity: number;
  attribute: number;
}

export interface HttpCursor {
  runId: string;
  snapshotId: string;
  evaluatedAt: string;
  /** State key of the baseline the run left. */
  baseline: string;
  baselineSize: number;
  /** Mapped audiences and when each was first mapped (epoch ms of that run's evaluatedAt). */
  mappedAt: Record<string, number>;
}

/** Written once the outbox and the baseline are complete; its presence means "sealed". */
export interface OutboxSeal {
  runId: string;
  snapshotId: string;
  evaluatedAt: string;
  messages: number;
  requests: number;
  bytes: number;
  triggers: HttpTriggerCounts;
  baselineSize: number;
  badRecords: number;
  mappedAt: Record<string, number>;
}

export interface AckChunk {
  acked: number[];
  dead: number[];
}

export interface DeadLetter {
  idempotencyKey: string;
  runId: string;
  seq: number;
  /** HTTP status, or null for a network error or timeout. */
  status: number | null;
  error: string;
  /** The first KiB of the response body. */
  response: string;
  attempts: number;
  /** The request body, exactly as sent. */
  body: string;
}

export async function readJsonObject<T>(storage: StorageBackend, key: string): Promise<T | null> {
  const text = await storage.readText(key);
  if (text === null) return null;
  try {
    return JSON.parse(text) as T;
  } catch {
    throw new StorageError(
      `state object ${storage.describe(key)} is not valid JSON; it was changed by hand or damaged. Restore it, or delete it (and the run folder) to build that run again`,
    );
  }
}

export function writeJsonObject(storage: StorageBackend, key: string, value: unknown): Promise<void> {
  return storage.writeText(key, `${JSON.stringify(value, null, 2)}\n`);
}

/** The settled seqs of a run (acknowledged or dead-lettered), from every ack chunk. */
export async function readAcks(
  storage: StorageBackend,
  runId: string,
): Promise<{ acked: Set<number>; dead: Set<number>; chunks: number }> {
  const keys = await storage.list(httpKeys.acksPrefix(runId));
  const acked = new Set<number>();
  const dead = new Set<number>();
  for (const key of keys) {
    const chunk = await readJsonObject<AckChunk>(storage, key);
    for (const s of chunk?.acked ?? []) acked.add(s);
    for (const s of chunk?.dead ?? []) dead.add(s);
  }
  const last = keys.at(-1);
  return { acked, dead, chunks: last ? Number(last.slice(last.lastIndexOf('/') + 1, -'.json'.length)) : 0 };
}

export async function listDeadLetters(storage: StorageBackend): Promise<string[]> {
  return (await storage.list(httpKeys.deadLetterPrefix)).filter((k) => k.endsWith('.json'));
}
