// The command line (README "Running it"): commander parses argv into a command name and its flags;
// main.ts runs the command. Kept apart so the argv → options mapping is testable.
import { Command, Option } from 'commander';

export type CommandName = 'run' | 'export-now' | 'plan' | 'status' | 'runs' | 'validate' | 'init' | 'schema' | 'report' | 'redrive' | 'reset';

export interface ParsedCommand {
  command: CommandName;
  flags: Record<string, unknown>;
}

const CONFIG = ['-c, --config <file>', 'dataflow config (YAML or JSON)'] as const;
/** `--config` of the commands that take several dataflows: repeat it, or name a folder of configs. */
const CONFIGS = ['-c, --config <file>', 'dataflow config (YAML or JSON), or a folder of them; repeat for several dataflows', collectConfigs] as const;

/** One --config stays a string (as before); repeated, the values become a list. */
function collectConfigs(value: string, previous: string | string[] | undefined): string | string[] {
  return previous === undefined ? value : [...(Array.isArray(previous) ? previous : [previous]), value];
}
const AT = ['--at <time>', 'logical "now" as ISO 8601 (default: the clock; no offset means UTC)'] as const;
const JSON_FLAG = ['--json', 'print a machine-readable result on stdout'] as const;
const QUIET = ['-q, --quiet', 'no progress on stderr'] as const;

function engineOptions(command: Command): Command {
  return command
    .option('--snapshot <id>', 'use this snapshot instead of the latest one')
    .option('--max-bad-records <n>', 'skip and count up to n bad records per run', '0')
    .addOption(new Option('--memory-limit <size>', 'DuckDB memory before spilling to disk').default('1GB'));
}

function examples(...lines: string[]): string {
  return `\nExamples:\n${lines.map((l) => `  $ ${l}`).join('\n')}\n`;
}

export function buildProgram(onParsed: (parsed: ParsedCommand) => void): Command {
  const program = new Command('audex')
    .description('Export customer-data-platform audiences from profile snapshots to CSV, JSON or Parquet files.')
    .showHelpAfterError()
    .exitOverride();
  const done = (command: CommandName) => (flags: Record<string, unknown>) => onParsed({ command, flags });

  engineOptions(program.command('run').description('export every audience with a due slot, once, at its latest due slot'))
    .requiredOption(...CONFIGS).option(...AT).option(...JSON_FLAG).option(...QUIET)
    .option('--no-lock', 'do not take the dataflow lock (only for stores that cannot do conditional writes; see README)')
    .addHelpText('after', examples('audex run --config dataflow.yaml', 'audex run -c dataflow.yaml --at 2026-11-20T06:00:00Z --json', 'audex run -c crm.yaml -c lake.yaml', 'audex run -c dataflows/'))
    .action(done('run'));

  engineOptions(program.command('export-now').description('write a full file now for the given audiences (schedule and baseline untouched)'))
    .requiredOption(...CONFIG).requiredOption('-a, --audience <id...>', 'audience id (repeatable)')
    .option(...AT).option(...JSON_FLAG).option(...QUIET)
    .option('--no-lock', 'do not take the dataflow lock (see README)')
    .addHelpText('after', examples('audex export-now -c dataflow.yaml --audience aud-vip', 'audex export-now -c dataflow.yaml -a aud-vip -a aud-churn --json'))
    .action(done('export-now'));

  engineOptions(program.command('plan').description('show what is due now and why, with the rows each run would write; writes nothing'))
    .requiredOption(...CONFIGS).option(...AT).option(...JSON_FLAG).option(...QUIET)
    .option('--show-messages <n>', 'HTTP API dataflows: print the first n message bodies (nothing is sent)')
    .addHelpText('after', examples('audex plan -c dataflow.yaml', 'audex plan -c dataflow.yaml --at 2026-11-23T06:00:00Z --json'))
    .action(done('plan'));

  program
    .command('status')
    .description('per audience: last successful run, next slot, baseline size, last error')
    .requiredOption(...CONFIGS).option(...AT).option(...JSON_FLAG)
    .addHelpText('after', examples('audex status -c dataflow.yaml', 'audex status -c dataflow.yaml --json'))
    .action(done('status'));

  program
    .command('runs')
    .description('the run history, newest first')
    .requiredOption(...CONFIG)
    .option('-a, --audience <id...>', 'only these audiences')
    .option('--since <time>', 'only runs whose logical time is at or after this ISO 8601 time')
    .option('--status <status>', 'only success, failed, skipped or reset records')
    .option('-n, --limit <n>', 'at most n runs', '20')
    .option(...JSON_FLAG)
    .addHelpText('after', examples('audex runs -c dataflow.yaml', 'audex runs -c dataflow.yaml -a aud-vip --since 2026-11-01 --json'))
    .action(done('runs'));

  program
    .command('report')
    .description('write one self-contained HTML page of the run history: charts per audience, failures, current status')
    .requiredOption('-c, --config <file...>', 'dataflow config (YAML or JSON); repeat for several dataflows')
    .option('--since <time>', 'only runs whose logical time is at or after this ISO 8601 time')
    .option('-o, --out <file>', 'where to write the page', 'report.html')
    .option(...AT).option(...JSON_FLAG).option(...QUIET)
    .addHelpText('after', examples('audex report -c dataflow.yaml', 'audex report -c crm.yaml -c lake.yaml --since 2026-11-01 --out out/report.html'))
    .action(done('report'));

  program
    .command('reset')
    .description("make an incremental audience's next run a full backfill, or (--to) a diff against a kept earlier baseline")
    .requiredOption(...CONFIG)
    .requiredOption('-a, --audience <id>', 'the audience to reset')
    .option('--to <runId>', 'diff the next run against the baseline this run left (while it is kept)')
    .option('--at <time>', 'the time recorded for the reset (default: the clock)')
    .option(...JSON_FLAG)
    .addHelpText('after', examples('audex reset -c dataflow.yaml --audience aud-vip', 'audex reset -c dataflow.yaml -a aud-vip --to 20261120T053000Z-9e9a9e25'))
    .action(done('reset'));

  engineOptions(program.command('validate').description('check the config (and, with --snapshot, that the snapshot reads and has the mapped audiences)'))
    .requiredOption(...CONFIGS).option(...JSON_FLAG).option(...QUIET)
    .addHelpText('after', examples('audex validate -c dataflow.yaml', 'audex validate -c dataflow.yaml --snapshot snap-20261120'))
    .action(done('validate'));

  program
    .command('redrive')
    .description('HTTP API dataflows: send the dead-lettered requests again (same body, same Idempotency-Key)')
    .requiredOption(...CONFIG).option(...JSON_FLAG).option(...QUIET)
    .option('--no-lock', 'do not take the dataflow lock (see README)')
    .addHelpText('after', examples('audex redrive -c webhook.yaml'))
    .action(done('redrive'));

  program
    .command('init')
    .description('write a commented starter config and a tiny sample snapshot')
    .option('-d, --dir <folder>', 'where to write them', '.')
    .option('--datasets', 'a dataset export starter (README "Export datasets") and a sample dataset batch instead')
    .addHelpText('after', examples('audex init', 'audex init --dir my-dataflow', 'audex init --datasets --dir my-datasets'))
    .action(done('init'));

  program
    .command('schema')
    .description('print the JSON Schema of the config, for editor completion')
    .option('--datasets', 'the schema of a dataset dataflow (README "Export datasets") instead')
    .addHelpText('after', examples('audex schema > audex.schema.json', 'audex schema --datasets > audex-datasets.schema.json'))
    .action(done('schema'));

  return program;
}

/** Parses argv (with the node and script entries). Null when help or the version was shown. */
export async function parseCommandLine(argv: string[], configure?: (program: Command) => void): Promise<ParsedCommand | null> {
  let parsed: ParsedCommand | null = null;
  const program = buildProgram((p) => {
    parsed = p;
  });
  configure?.(program);
  await program.parseAsync(argv);
  return parsed;
}
