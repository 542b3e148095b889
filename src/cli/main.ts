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
    case 'redrive':
      return (await import('./commands/redrive.js')).redriveCommandFor(f, reporter);
    case 'reset':
      return (await import('./commands/reset.js')).resetCommand(f, reporter);
    case 'schema':
      return (await import('./commands/schema.js')).schemaCommand(reporter, f);
  }
}

/** The fields a failed command's --json object always has (SPEC §9: `runs` holds what ran). */
const JSON_FIELDS: Record<string, Record<string, unknown>> = {
  run: { runs: [] }, 'export-now': { runs: [] }, plan: { runs: [] }, runs: { runs: [] }, status: { audiences: [] }, validate: { valid: false },
};

/** --json prints exactly one object on stdout, on every outcome: a failure gets `error`. */
function jsonFailure(fields: Record<string, unknown>, code: number, message: string): string {
  return JSON.stringify({ ...fields, error: { exitCode: code, message } }, null, 2);
}

export async function main(argv: string[]): Promise<number> {
  let parsed: ParsedCommand | null;
  try {
    parsed = await parseCommandLine(argv);
  } catch (error) {
    if (error instanceof CommanderError) {
      if (error.exitCode === 0) return EXIT.ok;
      if (argv.includes('--json')) process.stdout.write(`${jsonFailure({}, EXIT.usage, error.message)}\n`);
      return EXIT.usage;
    }
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
    if (parsed.flags['json'] && !reporter.printed) {
      reporter.out(jsonFailure({ ...reporter.context, ...JSON_FIELDS[parsed.command] }, code, messageOf(error)));
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
