// Entry point: parses argv, runs the chosen command, and is the only place that turns an
// outcome into an exit code (README "Exit codes").
import { CommanderError } from '@commander-js/extra-typings';
import { EXIT, asAudexError } from '../errors.js';
import { parseCommandLine, type ParsedCommand } from './program.js';
import { createReporter, type Reporter } from './reporter.js';
import { JSON_FIELDS, jsonFailure } from './json-failure.js';

// Commands load lazily, so `--help` or `audex schema` does not load the DuckDB engine.
async function dispatch(parsed: ParsedCommand, reporter: Reporter): Promise<number> {
  switch (parsed.command) {
    case 'run':
    case 'export-now':
      return (await import('./commands/run.js')).runCommand(parsed.command, parsed.flags, reporter);
    case 'plan':
      return (await import('./commands/plan.js')).planCommand(parsed.flags, reporter);
    case 'status':
      return (await import('./commands/status.js')).statusCommand(parsed.flags, reporter);
    case 'runs':
      return (await import('./commands/runs.js')).runsCommand(parsed.flags, reporter);
    case 'report':
      return (await import('./commands/report.js')).reportCommand(parsed.flags, reporter);
    case 'validate':
      return (await import('./commands/validate.js')).validateCommand(parsed.flags, reporter);
    case 'init':
      return (await import('./commands/init.js')).initCommand(parsed.flags, reporter);
    case 'redrive':
      return (await import('./commands/redrive.js')).redriveCommandFor(parsed.flags, reporter);
    case 'reset':
      return (await import('./commands/reset.js')).resetCommand(parsed.flags, reporter);
    case 'schema':
      return (await import('./commands/schema.js')).schemaCommand(reporter, parsed.flags);
  }
}

export async function main(argv: string[]): Promise<number> {
  let parsed: ParsedCommand | null;
  try {
    parsed = await parseCommandLine(argv);
  } catch (error) {
    // Help and the version exit 0. Anything else commander refuses is bad usage (exit 2): an
    // unknown command or flag, a missing one, or a value its parser refused (parse-options.ts).
    if (error instanceof CommanderError) {
      if (error.exitCode === 0) return EXIT.ok;
      if (argv.includes('--json')) process.stdout.write(`${jsonFailure({}, EXIT.usage, error.message)}\n`);
      return EXIT.usage;
    }
    throw error;
  }
  if (!parsed) return EXIT.ok;
  const reporter = await createReporter({ quiet: 'quiet' in parsed.flags && parsed.flags.quiet === true });
  try {
    return await dispatch(parsed, reporter);
  } catch (error) {
    reporter.close(true);
    // Anything not typed is a bug in audex: exit 1, and the message asks for a report.
    const failure = asAudexError(error);
    process.stderr.write(`audex: ${failure.message}\n`);
    if ('json' in parsed.flags && parsed.flags.json && !reporter.printed) {
      reporter.out(
        jsonFailure({ ...reporter.context, ...JSON_FIELDS[parsed.command] }, failure.exitCode, failure.message),
      );
    }
    return failure.exitCode;
  } finally {
    reporter.close();
  }
}

// A reader that stops early (`audex runs | head`) closes the pipe. The rest of the output
// then has nowhere to go, but the command goes on (a run still commits) and exits with its
// own code, instead of dying on the write with a stack trace.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code !== 'EPIPE') throw error;
  });
}

main(process.argv).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    const failure = asAudexError(error);
    process.stderr.write(`audex: ${failure.message}\n`);
    process.exitCode = failure.exitCode;
  },
);
