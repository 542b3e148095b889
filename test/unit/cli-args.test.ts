// README "Running it" / issue 3: the argv → options mapping of every command, as a table, through
// commander exactly as bin/audex.js parses it (parseCommandLine), without running anything.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { CommanderError, type Command } from '@commander-js/extra-typings';
import { buildProgram, parseCommandLine, type ParsedCommand } from '../../src/cli/program.js';

/** Keeps commander's help and error text out of the test output (on every subcommand too). */
function quiet(program: Command): void {
  const silent = { writeOut: () => {}, writeErr: () => {} };
  program.configureOutput(silent);
  for (const command of program.commands) command.configureOutput(silent);
}

const parse = (...args: string[]): Promise<ParsedCommand | null> => parseCommandLine(['node', 'audex', ...args], quiet);

async function parseError(...args: string[]): Promise<CommanderError> {
  try {
    await parse(...args);
  } catch (error) {
    expect(error).toBeInstanceOf(CommanderError);
    return error as CommanderError;
  }
  throw new Error(`expected commander to reject: audex ${args.join(' ')}`);
}

/** Defaults every engine command (run, export-now, plan, validate) carries. */
const ENGINE = { maxBadRecords: 0, memoryLimit: '1GB' };

const cases: { argv: string[]; command: ParsedCommand['command']; flags: Record<string, unknown> }[] = [
  // run: every flag, long and short
  { argv: ['run', '--config', 'df.yaml'], command: 'run', flags: { config: 'df.yaml', ...ENGINE, lock: true } },
  { argv: ['run', '-c', 'df.yaml'], command: 'run', flags: { config: 'df.yaml', ...ENGINE, lock: true } },
  { argv: ['run', '--config=df.yaml'], command: 'run', flags: { config: 'df.yaml', ...ENGINE, lock: true } },
  // several dataflows: a repeated --config is a list (one stays a string)
  {
    argv: ['run', '-c', 'a.yaml', '--config', 'b.yaml', '-c', 'flows/'],
    command: 'run',
    flags: { config: ['a.yaml', 'b.yaml', 'flows/'], ...ENGINE, lock: true },
  },
  {
    argv: ['plan', '-c', 'a.yaml', '-c', 'b.yaml'],
    command: 'plan',
    flags: { config: ['a.yaml', 'b.yaml'], ...ENGINE },
  },
  {
    argv: ['validate', '-c', 'a.yaml', '-c', 'b.yaml'],
    command: 'validate',
    flags: { config: ['a.yaml', 'b.yaml'], ...ENGINE },
  },
  { argv: ['status', '-c', 'a.yaml', '-c', 'b.yaml'], command: 'status', flags: { config: ['a.yaml', 'b.yaml'] } },
  {
    argv: [
      'run',
      '-c',
      'df.yaml',
      '--at',
      '2026-11-20T06:00:00Z',
      '--snapshot',
      'snap-20261120',
      '--json',
      '--quiet',
      '--max-bad-records',
      '5',
      '--memory-limit',
      '512MB',
      '--no-lock',
    ],
    command: 'run',
    flags: {
      config: 'df.yaml',
      at: new Date('2026-11-20T06:00:00Z'),
      snapshot: 'snap-20261120',
      json: true,
      quiet: true,
      maxBadRecords: 5,
      memoryLimit: '512MB',
      lock: false,
    },
  },
  {
    argv: ['run', '-c', 'df.yaml', '-q'],
    command: 'run',
    flags: { config: 'df.yaml', quiet: true, ...ENGINE, lock: true },
  },
  {
    argv: ['run', '-c', 'df.yaml', '--at', '2026-11-20T06:00:00'],
    command: 'run',
    flags: { config: 'df.yaml', at: new Date('2026-11-20T06:00:00Z'), ...ENGINE, lock: true },
  },
  // export-now: --audience / -a repeatable and variadic
  {
    argv: ['export-now', '-c', 'df.yaml', '--audience', 'aud-vip'],
    command: 'export-now',
    flags: { config: 'df.yaml', audience: ['aud-vip'], ...ENGINE, lock: true },
  },
  {
    argv: ['export-now', '-c', 'df.yaml', '-a', 'aud-vip', '-a', 'aud-churn', '--audience', 'aud-promo'],
    command: 'export-now',
    flags: { config: 'df.yaml', audience: ['aud-vip', 'aud-churn', 'aud-promo'], ...ENGINE, lock: true },
  },
  {
    argv: ['export-now', '-c', 'df.yaml', '-a', 'aud-vip', 'aud-churn'],
    command: 'export-now',
    flags: { config: 'df.yaml', audience: ['aud-vip', 'aud-churn'], ...ENGINE, lock: true },
  },
  {
    argv: [
      'export-now',
      '-a',
      'aud-vip',
      '--config',
      'df.yaml',
      '--at',
      '2026-11-20T06:00:00Z',
      '--snapshot',
      's1',
      '--json',
      '-q',
      '--max-bad-records',
      '3',
      '--memory-limit',
      '2GB',
      '--no-lock',
    ],
    command: 'export-now',
    flags: {
      config: 'df.yaml',
      audience: ['aud-vip'],
      at: new Date('2026-11-20T06:00:00Z'),
      snapshot: 's1',
      json: true,
      quiet: true,
      maxBadRecords: 3,
      memoryLimit: '2GB',
      lock: false,
    },
  },
  // plan: the engine flags, no lock
  { argv: ['plan', '-c', 'df.yaml'], command: 'plan', flags: { config: 'df.yaml', ...ENGINE } },
  {
    argv: [
      'plan',
      '--config',
      'df.yaml',
      '--at',
      '2026-11-23T06:00:00Z',
      '--snapshot',
      's2',
      '--json',
      '--quiet',
      '--max-bad-records',
      '1',
      '--memory-limit',
      '256MB',
    ],
    command: 'plan',
    flags: {
      config: 'df.yaml',
      at: new Date('2026-11-23T06:00:00Z'),
      snapshot: 's2',
      json: true,
      quiet: true,
      maxBadRecords: 1,
      memoryLimit: '256MB',
    },
  },
  // status
  { argv: ['status', '-c', 'df.yaml'], command: 'status', flags: { config: 'df.yaml' } },
  {
    argv: ['status', '--config', 'df.yaml', '--at', '2026-11-21T07:00:00Z', '--json'],
    command: 'status',
    flags: { config: 'df.yaml', at: new Date('2026-11-21T07:00:00Z'), json: true },
  },
  // runs: filters and the limit (default 20)
  { argv: ['runs', '-c', 'df.yaml'], command: 'runs', flags: { config: 'df.yaml', limit: 20 } },
  {
    argv: [
      'runs',
      '-c',
      'df.yaml',
      '--audience',
      'aud-vip',
      '--since',
      '2026-11-21',
      '--status',
      'failed',
      '--limit',
      '5',
      '--json',
    ],
    command: 'runs',
    flags: {
      config: 'df.yaml',
      audience: ['aud-vip'],
      since: new Date('2026-11-21T00:00:00Z'),
      status: 'failed',
      limit: 5,
      json: true,
    },
  },
  {
    argv: ['runs', '-c', 'df.yaml', '-a', 'aud-vip', '-a', 'aud-churn', '-n', '2'],
    command: 'runs',
    flags: { config: 'df.yaml', audience: ['aud-vip', 'aud-churn'], limit: 2 },
  },
  // validate
  { argv: ['validate', '-c', 'df.yaml'], command: 'validate', flags: { config: 'df.yaml', ...ENGINE } },
  {
    argv: [
      'validate',
      '--config',
      'df.yaml',
      '--snapshot',
      'snap-20261120',
      '--json',
      '-q',
      '--max-bad-records',
      '2',
      '--memory-limit',
      '64MB',
    ],
    command: 'validate',
    flags: {
      config: 'df.yaml',
      snapshot: 'snap-20261120',
      json: true,
      quiet: true,
      maxBadRecords: 2,
      memoryLimit: '64MB',
    },
  },
  // report: --config repeatable, --out default report.html
  { argv: ['report', '-c', 'a.yaml'], command: 'report', flags: { config: ['a.yaml'], out: 'report.html' } },
  {
    argv: [
      'report',
      '-c',
      'a.yaml',
      '--config',
      'b.yaml',
      '--since',
      '2026-11-01',
      '-o',
      'out/r.html',
      '--at',
      '2026-11-24T07:00:00Z',
      '--json',
      '-q',
    ],
    command: 'report',
    flags: {
      config: ['a.yaml', 'b.yaml'],
      since: new Date('2026-11-01T00:00:00Z'),
      out: 'out/r.html',
      at: new Date('2026-11-24T07:00:00Z'),
      json: true,
      quiet: true,
    },
  },
  // plan --show-messages (HTTP API dataflows): a number
  {
    argv: ['plan', '-c', 'df.yaml', '--show-messages', '2'],
    command: 'plan',
    flags: { config: 'df.yaml', showMessages: 2, ...ENGINE },
  },
  // reset: one audience, --to, --at
  {
    argv: ['reset', '-c', 'df.yaml', '-a', 'aud-vip'],
    command: 'reset',
    flags: { config: 'df.yaml', audience: 'aud-vip' },
  },
  {
    argv: [
      'reset',
      '-c',
      'df.yaml',
      '--audience',
      'aud-vip',
      '--to',
      '20261120T053000Z-9e9a9e25',
      '--at',
      '2026-11-21T07:00:00Z',
      '--json',
    ],
    command: 'reset',
    flags: {
      config: 'df.yaml',
      audience: 'aud-vip',
      to: '20261120T053000Z-9e9a9e25',
      at: new Date('2026-11-21T07:00:00Z'),
      json: true,
    },
  },
  // redrive
  { argv: ['redrive', '-c', 'hook.yaml'], command: 'redrive', flags: { config: 'hook.yaml', lock: true } },
  {
    argv: ['redrive', '-c', 'hook.yaml', '--json', '-q', '--no-lock'],
    command: 'redrive',
    flags: { config: 'hook.yaml', json: true, quiet: true, lock: false },
  },
  // init (--dir, default '.') and schema (no flags)
  { argv: ['init'], command: 'init', flags: { dir: '.' } },
  { argv: ['init', '--dir', 'my-dataflow'], command: 'init', flags: { dir: 'my-dataflow' } },
  { argv: ['init', '-d', 'x/y'], command: 'init', flags: { dir: 'x/y' } },
  { argv: ['init', '--datasets'], command: 'init', flags: { dir: '.', datasets: true } },
  { argv: ['schema'], command: 'schema', flags: {} },
  { argv: ['schema', '--datasets'], command: 'schema', flags: { datasets: true } },
];

describe('argv → command and options', () => {
  it.each(cases)('audex $argv', async ({ argv, command, flags }) => {
    const parsed = await parse(...argv);
    expect(parsed).not.toBeNull();
    expect(parsed!.command).toBe(command);
    // Exactly these keys: no flag leaks from another command, none is dropped.
    expect(parsed!.flags).toEqual(flags);
  });

  it('commands without a lock flag do not get one', async () => {
    for (const argv of [
      ['plan', '-c', 'f'],
      ['status', '-c', 'f'],
      ['runs', '-c', 'f'],
      ['validate', '-c', 'f'],
    ]) {
      expect((await parse(...argv))!.flags).not.toHaveProperty('lock');
    }
  });
});

describe('argv that commander rejects', () => {
  const rejected: { argv: string[]; code: string }[] = [
    { argv: ['bogus'], code: 'commander.unknownCommand' },
    { argv: ['exportnow', '-c', 'df.yaml'], code: 'commander.unknownCommand' },
    { argv: ['run', '-c', 'df.yaml', '--bogus'], code: 'commander.unknownOption' },
    { argv: ['status', '-c', 'df.yaml', '--quiet'], code: 'commander.unknownOption' },
    { argv: ['schema', '--config', 'df.yaml'], code: 'commander.unknownOption' },
    { argv: ['init', '--json'], code: 'commander.unknownOption' },
    { argv: ['run'], code: 'commander.missingMandatoryOptionValue' },
    { argv: ['run', '--json'], code: 'commander.missingMandatoryOptionValue' },
    { argv: ['export-now', '--audience', 'aud-vip'], code: 'commander.missingMandatoryOptionValue' },
    { argv: ['plan'], code: 'commander.missingMandatoryOptionValue' },
    { argv: ['status'], code: 'commander.missingMandatoryOptionValue' },
    { argv: ['runs'], code: 'commander.missingMandatoryOptionValue' },
    { argv: ['validate', '--snapshot', 's1'], code: 'commander.missingMandatoryOptionValue' },
    { argv: ['export-now', '-c', 'df.yaml'], code: 'commander.missingMandatoryOptionValue' },
    { argv: ['run', '-c'], code: 'commander.optionMissingArgument' },
    { argv: ['run', '-c', 'df.yaml', '--at'], code: 'commander.optionMissingArgument' },
  ];

  it.each(rejected)('audex $argv → $code', async ({ argv, code }) => {
    const error = await parseError(...argv);
    expect(error.code).toBe(code);
    expect(error.exitCode).not.toBe(0);
  });

  // Numbers, times, sizes and choices are parsed with argv: a bad value is refused before
  // any command runs (main.ts: exit 2), and the message names the flag and the value.
  const badValues: { argv: string[]; message: string }[] = [
    {
      argv: ['run', '-c', 'df.yaml', '--max-bad-records', 'many'],
      message: '--max-bad-records many: expected a whole number, 0 or more',
    },
    {
      argv: ['validate', '-c', 'df.yaml', '--max-bad-records', '1.5'],
      message: '--max-bad-records 1.5: expected a whole number, 0 or more',
    },
    {
      argv: ['plan', '-c', 'df.yaml', '--memory-limit', '0GB'],
      message: '--memory-limit 0GB: expected a size such as 512MB, 1GB or 2GiB',
    },
    {
      argv: ['export-now', '-c', 'df.yaml', '-a', 'x', '--memory-limit', 'lots'],
      message: '--memory-limit lots: expected a size such as 512MB',
    },
    {
      argv: ['plan', '-c', 'df.yaml', '--show-messages', 'all'],
      message: '--show-messages all: expected a whole number, 0 or more',
    },
    { argv: ['status', '-c', 'df.yaml', '--at', 'tomorrow'], message: '--at tomorrow: not an ISO 8601 time' },
    {
      argv: ['reset', '-c', 'df.yaml', '-a', 'x', '--at', '2026-13-01'],
      message: '--at 2026-13-01: not an ISO 8601 time',
    },
    { argv: ['runs', '-c', 'df.yaml', '--since', 'yesterday'], message: '--since yesterday: not an ISO 8601 time' },
    { argv: ['report', '-c', 'df.yaml', '--since', 'yesterday'], message: '--since yesterday: not an ISO 8601 time' },
    { argv: ['runs', '-c', 'df.yaml', '--limit', '0'], message: '--limit 0: expected a whole number, 1 or more' },
    {
      argv: ['runs', '-c', 'df.yaml', '--status', 'succeeded'],
      message: '--status succeeded: expected one of success, failed, skipped, reset',
    },
  ];

  it.each(badValues)('audex $argv → commander.invalidArgument naming the flag', async ({ argv, message }) => {
    const error = await parseError(...argv);
    expect(error.code).toBe('commander.invalidArgument');
    expect(error.exitCode).not.toBe(0);
    expect(error.message).toContain(message);
  });

  it('no command at all is an error (help is shown on stderr), not a silent success', async () => {
    const error = await parseError();
    expect(error.exitCode).not.toBe(0);
  });
});

describe('--help', () => {
  const commands = ['run', 'export-now', 'plan', 'status', 'runs', 'validate', 'init', 'schema', 'report'];

  it.each(commands)('audex %s --help is a CommanderError with exit code 0 and examples', async (command) => {
    let help = '';
    const error = await (async () => {
      try {
        await parseCommandLine(['node', 'audex', command, '--help'], (p) => {
          const capture = { writeOut: (s: string) => void (help += s), writeErr: (s: string) => void (help += s) };
          p.configureOutput(capture);
          for (const c of p.commands) c.configureOutput(capture);
        });
      } catch (e) {
        return e;
      }
      return null;
    })();
    expect(error).toBeInstanceOf(CommanderError);
    expect((error as CommanderError).exitCode).toBe(0);
    expect(help).toContain(`audex ${command}`);
    expect(help).toContain('Examples');
  });

  it('-h and the top-level --help also exit 0', async () => {
    for (const argv of [['--help'], ['run', '-h'], ['help', 'run']]) {
      const error = await parseError(...argv);
      expect(error.exitCode, argv.join(' ')).toBe(0);
    }
  });

  it('the documented form with quiet output configured on the program only still exits 0', async () => {
    const error = await parseCommandLine(['node', 'audex', '--help'], (p) =>
      p.configureOutput({ writeOut: () => {}, writeErr: () => {} }),
    ).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CommanderError);
    expect((error as CommanderError).exitCode).toBe(0);
  });
});

describe('README "Running it"', () => {
  it('lists every command with every option it takes', () => {
    const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
    const block = readme.slice(readme.indexOf('## Running it')).split('```')[1]!;
    for (const command of buildProgram(() => {}).commands) {
      const line = block.split('\n').find((l) => l.startsWith(`audex ${command.name()} `));
      expect(line, `README has no line for audex ${command.name()}`).toBeDefined();
      for (const option of command.options) expect(line, `audex ${command.name()}`).toContain(option.long!);
    }
  });
});
