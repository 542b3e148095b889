// What a run (or a step of an invocation outside any run) came to. Runs return outcomes;
// only cli/ turns them into an exit code, with one precedence table (cli/exit-codes.ts).
import type { AudexError } from '../errors.js';

export type Outcome = { status: 'success' | 'skipped' } | { status: 'failed'; error: AudexError };

export const SUCCEEDED: Outcome = { status: 'success' };
export const SKIPPED: Outcome = { status: 'skipped' };

export function failed(error: AudexError): Outcome {
  return { status: 'failed', error };
}
