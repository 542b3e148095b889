// Entry point: parses argv, runs the chosen command, and is the only place that turns an
// outcome into an exit code (SPEC §9).
import { CommanderError } from 'commander';
import { EXIT, exitCodeOf, messageOf } from '../errors.js';
import { parseCommandLine, type ParsedCommand } from './program.js';
import { createReporter, type Reporter } from './reporter.js';

// Commands load lazily, so `--help` or `audex schema` does not load the DuckDB engine.
async function dispatch({ command, flags }: ParsedCommand, reporter: Reporter): Promise<number> {
  const f = flags as never;
  switch (command) {
    case 'run':
    case 'export-now':
      return (await import('./commands/run.js')).runCommand(command, f, reporter);
    case 'plan':
      return (await import('./commands/plan.js')).planCommand(f, reporter);
    case 'status':
      return (await import('./commands/status.js')).statusCommand(f, reporter);
    case 'runs':
      return (await import('./commands/runs.js')).runsCommand(f, reporter);
    case 'report':
      return (await import('./commands/report.js')).reportCommand(f, reporter);
    case 'validate':
      return (await import('./commands/validate.js')).validateCommand(f, reporter);
    case 'init':
      return (await import('./commands/init.js')).initCommand(f, reporter);
    case 'schema':
      return (await import('./commands/schema.js')).schemaCommand(reporter, f);
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
    reporter.close(true);
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
