// The one rule that turns outcomes into the process exit code (README "Exit codes"): the
// invocation exits with the most severe code any outcome has, in this order. Bad input
// comes first (data must be fixed before anything retries), then storage or credentials,
// then usage or config, then a failed run (a bug in audex is exit 1 too).
import { EXIT, asAudexError } from '../errors.js';
import type { Outcome } from '../run/outcome.js';

/** Most severe first. */
export const EXIT_PRECEDENCE: readonly number[] = [EXIT.badInput, EXIT.storage, EXIT.usage, EXIT.runFailed];

/** The exit code of a set of exit codes: the first of EXIT_PRECEDENCE present, else 0. */
export function mostSevere(codes: Iterable<number>): number {
  const present = new Set(codes);
  return EXIT_PRECEDENCE.find((code) => present.has(code)) ?? EXIT.ok;
}

export function exitCodeOfOutcomes(outcomes: readonly Outcome[]): number {
  return mostSevere(outcomes.map((o) => (o.status === 'failed' ? o.error.exitCode : EXIT.ok)));
}

/** The exit code of anything thrown out of a command. */
export function exitCodeOfError(error: unknown): number {
  return asAudexError(error).exitCode;
}
