// Typed errors carry their exit code (README "Exit codes"). Only cli/main.ts turns them into one.
// Every message says what failed, where, and what to do.

import type { RunRecord } from './state/records.js';

export const EXIT = {
  ok: 0,
  runFailed: 1,
  usage: 2,
  storage: 3,
  badInput: 4,
} as const;

export abstract class AudexError extends Error {
  abstract readonly exitCode: number;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** Bad usage or config (exit 2). `problems` holds every `path: message` found. */
export class ConfigError extends AudexError {
  readonly exitCode = EXIT.usage;
  readonly problems: string[];
  constructor(problems: string[] | string, where?: string) {
    const list = Array.isArray(problems) ? problems : [problems];
    const head = where ? `invalid config ${where}` : 'invalid usage';
    super(list.length === 1 && !where ? list[0]! : `${head}:\n${list.map((p) => `  - ${p}`).join('\n')}`);
    this.problems = list;
  }
}

/** Storage or credentials (exit 3). */
export class StorageError extends AudexError {
  readonly exitCode = EXIT.storage;
}

/** Bad input beyond --max-bad-records (exit 4). */
export class BadInputError extends AudexError {
  readonly exitCode = EXIT.badInput;
}

/** One run failed; the other audiences still ran (exit 1). */
export class RunFailedError extends AudexError {
  readonly exitCode = EXIT.runFailed;
}

/**
 * A bug in audex (exit 1): anything thrown that is not one of the errors above. The
 * message asks for a report; the original error stays the cause.
 */
export class InternalError extends AudexError {
  readonly exitCode = EXIT.runFailed;
  constructor(cause: unknown) {
    super(
      `${cause instanceof Error ? cause.message : String(cause)}\nThis is a bug in audex, please report it with the command you ran.`,
      { cause },
    );
  }
}

/**
 * A failure after a run's commit point: its files were delivered and its cursor advanced,
 * so it is not run again; only its history record or cleanup is missing, and the next
 * invocation completes them. Its exit code is its cause's.
 */
export class CommittedRunError extends AudexError {
  readonly exitCode: number;
  constructor(
    readonly record: RunRecord,
    override readonly cause: unknown,
  ) {
    super(cause instanceof Error ? cause.message : String(cause), { cause });
    this.exitCode = exitCodeOf(cause);
  }
}

/** The typed error for anything thrown: an AudexError as is, anything else an InternalError. */
export function asAudexError(error: unknown): AudexError {
  return error instanceof AudexError ? error : new InternalError(error);
}

export function exitCodeOf(error: unknown): number {
  return error instanceof AudexError ? error.exitCode : EXIT.runFailed;
}

export function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
