// The command line (README "Running it"): commander parses argv into a command name and its flags;
// main.ts runs the command. Kept apart so the argv → options mapping is testable.
//
// Each command's options are declared once, below; the type of its flags (CommandOptions)
// is inferred from that declaration (@commander-js/extra-typings), and numbers, times and
// sizes are parsed there (parse-options.ts), so a bad value is a usage error before any
// command runs and the commands receive typed values.
import { Command, Option, type OptionValues } from '@commander-js/extra-typings';
import type { RunStatus } from '../state/records.js';
import { parseChoice, parseCount, parseMemoryLimit, parseTime } from './parse-options.js';

// ── Options more than one command takes. An Option belongs to one command, hence factories.

const CONFIG_FLAGS = '-c, --config <file>';
const configOption = () => new Option(CONFIG_FLAGS, 'dataflow config (YAML or JSON)').makeOptionMandatory();

/** `--config` of the commands that take several dataflows: repeat it, or name a folder of configs. */
const configsOption = () =>
  new Option(CONFIG_FLAGS, 'dataflow config (YAML or JSON), or a folder of them; repeat for several dataflows')
    .argParser(collectConfigs)
    .makeOptionMandatory();

/** One --config stays a string (as before); repeated, the values become a list. */
function collectConfigs(value: string, previous: string | string[] | undefined): string | string[] {
  return previous === undefined ? value : [...(Array.isArray(previous) ? previous : [previous]), value];
}

function timeOption<const F extends string>(flags: F, description: string) {
  const option = new Option(flags, description);
  return option.argParser((value) => parseTime(option.long ?? flags, value));
}

function countOption<const F extends string>(flags: F, description: string, min: number) {
  const option = new Option(flags, description);
  return option.argParser((value) => parseCount(option.long ?? flags, value, min));
}

const atOption = (description = 'logical "now" as ISO 8601 (default: the clock; no offset means UTC)') =>
  timeOption('--at <time>', description);
const sinceOption = () =>
  timeOption('--since <time>', 'only runs whose logical time is at or after this ISO 8601 time');
const jsonOption = () => new Option('--json', 'print a machine-readable result on stdout');
const quietOption = () => new Option('-q, --quiet', 'no progress on stderr');
const noLockOption = (description = 'do not take the dataflow lock (see README)') =>
  new Option('--no-lock', description);

/** The flags of every command that reads snapshots through the engine. */
function engineOptions<O extends OptionValues>(command: Command<[], O>) {
  const memoryLimit = new Option('--memory-limit <size>', 'DuckDB memory before spilling to disk');
  return command
    .option('--snapshot <id>', 'use this snapshot instead of the latest one')
    .addOption(countOption('--max-bad-records <n>', 'skip and count up to n bad records per run', 0).default(0))
    .addOption(memoryLimit.argParser((value) => parseMemoryLimit('--memory-limit', value)).default('1GB'));
}

function examples(...lines: string[]): string {
  return `\nExamples:\n${lines.map((l) => `  $ ${l}`).join('\n')}\n`;
}

const RUN_STATUSES = ['success', 'failed', 'skipped', 'reset'] as const satisfies readonly RunStatus[];

// ── The commands, one declaration each.

const COMMANDS = {
  run: (program: Command) =>
    engineOptions(
      program.command('run').description('export every audience with a due slot, once, at its latest due slot'),
    )
      .addOption(configsOption())
      .addOption(atOption())
      .addOption(jsonOption())
      .addOption(quietOption())
      .addOption(
        noLockOption('do not take the dataflow lock (only for stores that cannot do conditional writes; see README)'),
      )
      .addHelpText(
        'after',
        examples(
          'audex run --config dataflow.yaml',
          'audex run -c dataflow.yaml --at 2026-11-20T06:00:00Z --json',
          'audex run -c crm.yaml -c lake.yaml',
          'audex run -c dataflows/',
        ),
      ),

  'export-now': (program: Command) =>
    engineOptions(
      program
        .command('export-now')
        .description('write a full file now for the given audiences (schedule and baseline untouched)'),
    )
      .addOption(configOption())
      .requiredOption('-a, --audience <id...>', 'audience id (repeatable)')
      .addOption(atOption())
      .addOption(jsonOption())
      .addOption(quietOption())
      .addOption(noLockOption())
      .addHelpText(
        'after',
        examples(
          'audex export-now -c dataflow.yaml --audience aud-vip',
          'audex export-now -c dataflow.yaml -a aud-vip -a aud-churn --json',
        ),
      ),

  plan: (program: Command) =>
    engineOptions(
      program
        .command('plan')
        .description('show what is due now and why, with the rows each run would write; writes nothing'),
    )
      .addOption(configsOption())
      .addOption(atOption())
      .addOption(jsonOption())
      .addOption(quietOption())
      .addOption(
        countOption('--show-messages <n>', 'HTTP API dataflows: print the first n message bodies (nothing is sent)', 0),
      )
      .addHelpText(
        'after',
        examples('audex plan -c dataflow.yaml', 'audex plan -c dataflow.yaml --at 2026-11-23T06:00:00Z --json'),
      ),

  status: (program: Command) =>
    program
      .command('status')
      .description('per audience: last successful run, next slot, baseline size, last error')
      .addOption(configsOption())
      .addOption(atOption())
      .addOption(jsonOption())
      .addHelpText('after', examples('audex status -c dataflow.yaml', 'audex status -c dataflow.yaml --json')),

  runs: (program: Command) => {
    const status = new Option('--status <status>', 'only success, failed, skipped or reset records');
    return program
      .command('runs')
      .description('the run history, newest first')
      .addOption(configOption())
      .option('-a, --audience <id...>', 'only these audiences')
      .addOption(sinceOption())
      .addOption(status.argParser((value) => parseChoice('--status', value, RUN_STATUSES)))
      .addOption(countOption('-n, --limit <n>', 'at most n runs', 1).default(20))
      .addOption(jsonOption())
      .addHelpText(
        'after',
        examples('audex runs -c dataflow.yaml', 'audex runs -c dataflow.yaml -a aud-vip --since 2026-11-01 --json'),
      );
  },

  report: (program: Command) =>
    program
      .command('report')
      .description(
        'write one self-contained HTML page of the run history: charts per audience, failures, current status',
      )
      .requiredOption('-c, --config <file...>', 'dataflow config (YAML or JSON); repeat for several dataflows')
      .addOption(sinceOption())
      .option('-o, --out <file>', 'where to write the page', 'report.html')
      .addOption(atOption())
      .addOption(jsonOption())
      .addOption(quietOption())
      .addHelpText(
        'after',
        examples(
          'audex report -c dataflow.yaml',
          'audex report -c crm.yaml -c lake.yaml --since 2026-11-01 --out out/report.html',
        ),
      ),

  reset: (program: Command) =>
    program
      .command('reset')
      .description(
        "make an incremental audience's next run a full backfill, or (--to) a diff against a kept earlier baseline",
      )
      .addOption(configOption())
      .requiredOption('-a, --audience <id>', 'the audience to reset')
      .option('--to <runId>', 'diff the next run against the baseline this run left (while it is kept)')
      .addOption(atOption('the time recorded for the reset (default: the clock)'))
      .addOption(jsonOption())
      .addHelpText(
        'after',
        examples(
          'audex reset -c dataflow.yaml --audience aud-vip',
          'audex reset -c dataflow.yaml -a aud-vip --to 20261120T053000Z-9e9a9e25',
        ),
      ),

  validate: (program: Command) =>
    engineOptions(
      program
        .command('validate')
        .description('check the config (and, with --snapshot, that the snapshot reads and has the mapped audiences)'),
    )
      .addOption(configsOption())
      .addOption(jsonOption())
      .addOption(quietOption())
      .addHelpText(
        'after',
        examples('audex validate -c dataflow.yaml', 'audex validate -c dataflow.yaml --snapshot snap-20261120'),
      ),

  redrive: (program: Command) =>
    program
      .command('redrive')
      .description('HTTP API dataflows: send the dead-lettered requests again (same body, same Idempotency-Key)')
      .addOption(configOption())
      .addOption(jsonOption())
      .addOption(quietOption())
      .addOption(noLockOption())
      .addHelpText('after', examples('audex redrive -c webhook.yaml')),

  init: (program: Command) =>
    program
      .command('init')
      .description('write a commented starter config and a tiny sample snapshot')
      .option('-d, --dir <folder>', 'where to write them', '.')
      .option('--datasets', 'a dataset export starter (README "Export datasets") and a sample dataset batch instead')
      .addHelpText(
        'after',
        examples('audex init', 'audex init --dir my-dataflow', 'audex init --datasets --dir my-datasets'),
      ),

  schema: (program: Command) =>
    program
      .command('schema')
      .description('print the JSON Schema of the config, for editor completion')
      .option('--datasets', 'the schema of a dataset dataflow (README "Export datasets") instead')
      .option('--http', 'the schema of an HTTP API dataflow (README "Send to an HTTP endpoint") instead')
      .addHelpText(
        'after',
        examples(
          'audex schema > audex.schema.json',
          'audex schema --datasets > audex-datasets.schema.json',
          'audex schema --http > audex-http.schema.json',
        ),
      ),
};

export type CommandName = keyof typeof COMMANDS;

/** The flags of `command` as its declaration above types them. */
export type CommandOptions<K extends CommandName> = ReturnType<ReturnType<(typeof COMMANDS)[K]>['opts']>;

/** A command and its flags, as one union: switching on `command` types `flags`. */
export type ParsedCommand = { [K in CommandName]: { command: K; flags: CommandOptions<K> } }[CommandName];

export function buildProgram(onParsed: (parsed: ParsedCommand) => void): Command {
  const program = new Command('audex')
    .description('Export customer-data-platform audiences from profile snapshots to CSV, JSON or Parquet files.')
    .showHelpAfterError()
    .exitOverride();
  COMMANDS.run(program).action((flags) => onParsed({ command: 'run', flags }));
  COMMANDS['export-now'](program).action((flags) => onParsed({ command: 'export-now', flags }));
  COMMANDS.plan(program).action((flags) => onParsed({ command: 'plan', flags }));
  COMMANDS.status(program).action((flags) => onParsed({ command: 'status', flags }));
  COMMANDS.runs(program).action((flags) => onParsed({ command: 'runs', flags }));
  COMMANDS.report(program).action((flags) => onParsed({ command: 'report', flags }));
  COMMANDS.reset(program).action((flags) => onParsed({ command: 'reset', flags }));
  COMMANDS.validate(program).action((flags) => onParsed({ command: 'validate', flags }));
  COMMANDS.redrive(program).action((flags) => onParsed({ command: 'redrive', flags }));
  COMMANDS.init(program).action((flags) => onParsed({ command: 'init', flags }));
  COMMANDS.schema(program).action((flags) => onParsed({ command: 'schema', flags }));
  return program;
}

/** Parses argv (with the node and script entries). Null when help or the version was shown. */
export async function parseCommandLine(
  argv: string[],
  configure?: (program: Command) => void,
): Promise<ParsedCommand | null> {
  let parsed: ParsedCommand | null = null;
  const program = buildProgram((p) => {
    parsed = p;
  });
  configure?.(program);
  await program.parseAsync(argv);
  return parsed;
}
