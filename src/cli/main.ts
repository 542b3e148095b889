// Entry point: parses argv, runs the chosen command, and is the only place that turns an
// outcome into an exit code (SPEC §9).
import { CommanderError } from 'commander';
import { EXIT, exitCodeOf, messageOf } from '../errors.js';
import { initCommand, type InitFlags } from './commands/init.js';
import { planCommand, type PlanFlags } from './commands/plan.js';
import { runCommand, type RunFlags } from './commands/run.js';
import { runsCommand, type RunsFlags } from './commands/runs.js';
import { schemaCommand } from './commands/schema.js';
import { statusCommand, type StatusFlags } from './commands/status.js';
import { validateCommand, type ValidateFlags } from './commands/validate.js';
import { parseCommandLine, type ParsedCommand } from './program.js';
import { createReporter, type Reporter } from './reporter.js';

function dispatch({ command, flags }: ParsedCommand, reporter: Reporter): Promise<number> {
  switch (command) {
    case 'run':
    case 'export-now':
      return runCommand(command, flags as unknown as RunFlags, reporter);
    case 'plan':
      return planCommand(flags as unknown as PlanFlags, reporter);
    case 'status':
      return statusCommand(flags as unknown as StatusFlags, reporter);
    case 'runs':
      return runsCommand(flags as unknown as RunsFlags, reporter);
    case 'validate':
      return validateCommand(flags as unknown as ValidateFlags, reporter);
    case 'init':
      return initCommand(flags as unknown as InitFlags, reporter);
    case 'schema':
      return schemaCommand(reporter);
  }
}

export async function main(argv: string[]): Promise<number> {
  let parsed: ParsedCommand | null;
  try {
    parsed = await parseCommandLine(argv);
  } catch (error) {
    if (error instanceof CommanderError) return error.exitCode === 0 ? EXIT.ok : EXIT.usage;
    throw error;
  }
  if (!parsed) return EXIT.ok;
  const reporter = createReporter({ quiet: Boolean(parsed.flags['quiet']) });
  try {
    return await dispatch(parsed, reporter);
  } catch (error) {
    reporter.close();
    const code = exitCodeOf(error);
    process.stderr.write(`audex: ${messageOf(error)}\n`);
    if (!(error instanceof Error && 'exitCode' in error)) {
      process.stderr.write('audex: this looks like a bug in audex; please report it with the command you ran.\n');
    }
    return code;
  } finally {
    reporter.close();
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
