// The command line (SPEC §9): a thin shell over the commands.
import { Command, Option } from 'commander';
import { runCommand, type RunFlags } from './commands/run.js';

export type Action = () => Promise<number>;

function commonRunOptions(command: Command): Command {
  return command
    .requiredOption('-c, --config <file>', 'dataflow config (YAML or JSON)')
    .option('--at <time>', 'logical "now" as ISO 8601 (default: the clock); for replays and tests')
    .option('--snapshot <id>', 'use this snapshot instead of the latest one')
    .option('--json', 'print a machine-readable summary on stdout')
    .option('-q, --quiet', 'no progress on stderr')
    .option('--max-bad-records <n>', 'skip and count up to n bad records per snapshot', '0')
    .addOption(new Option('--memory-limit <size>', 'DuckDB memory limit before spilling to disk').default('1GB'));
}

/** Builds the program; `onAction` receives the chosen command's action. */
export function buildProgram(onAction: (action: Action) => void): Command {
  const program = new Command('audex')
    .description('Export customer-data-platform audiences from profile snapshots to CSV, JSON or Parquet files.')
    .showHelpAfterError()
    .exitOverride();

  commonRunOptions(program.command('run').description('export every audience with a due slot (once, at its latest due slot)'))
    .addHelpText('after', '\nExamples:\n  audex run --config dataflow.yaml\n  audex run --config dataflow.yaml --at 2026-11-20T06:00:00Z --json')
    .action((flags: RunFlags) => onAction(() => runCommand('run', flags)));

  commonRunOptions(program.command('export-now').description('write a full file now for the given audiences (baseline untouched)'))
    .requiredOption('-a, --audience <id...>', 'audience id (repeatable)')
    .addHelpText('after', '\nExamples:\n  audex export-now --config dataflow.yaml --audience aud-vip\n  audex export-now -c dataflow.yaml -a aud-vip -a aud-churn --json')
    .action((flags: RunFlags) => onAction(() => runCommand('export-now', flags)));

  return program;
}
