// Entry point: parses argv, runs the chosen command, and is the only place that turns an
// outcome into an exit code (SPEC §9).
import { CommanderError } from 'commander';
import { ConfigError, EXIT, exitCodeOf, messageOf } from '../errors.js';
import { buildProgram, type Action } from './program.js';

export async function main(argv: string[]): Promise<number> {
  let action: Action | undefined;
  const program = buildProgram((a) => {
    action = a;
  });
  try {
    await program.parseAsync(argv);
  } catch (error) {
    if (error instanceof CommanderError) {
      return error.exitCode === 0 ? EXIT.ok : EXIT.usage;
    }
    throw error;
  }
  if (!action) return EXIT.ok;
  try {
    return await action();
  } catch (error) {
    const code = exitCodeOf(error);
    const prefix = error instanceof ConfigError ? '' : code === EXIT.runFailed ? 'error: ' : '';
    process.stderr.write(`audex: ${prefix}${messageOf(error)}\n`);
    if (code === EXIT.runFailed && !(error instanceof Error && 'exitCode' in error)) {
      process.stderr.write('audex: this looks like a bug in audex; please report it with the command you ran.\n');
    }
    return code;
  }
}

main(process.argv).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    process.stderr.write(`audex: ${messageOf(error)}\n`);
    process.exitCode = EXIT.runFailed;
  },
);
