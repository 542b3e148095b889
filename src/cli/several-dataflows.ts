// A command given several dataflows (`--config a.yaml --config b.yaml`, or `--config
// folder/`): the command runs once per dataflow, in order; one failing does not stop the
// others. --json prints `{ "dataflows": [ <the command's object per dataflow, with its
// config> ] }`; text output is each dataflow's, one after the other. The exit code is the
// most severe (cli/exit-codes.ts). See README "Several dataflows in one invocation".
import { resolveConfigPaths } from '../config/config-paths.js';
import { asAudexError } from '../errors.js';
import { mostSevere } from './exit-codes.js';
import { JSON_FIELDS } from './json-failure.js';
import type { Reporter } from './reporter.js';

/** One dataflow's part of the invocation: what it printed, or its error, and its exit code. */
export interface DataflowEntry {
  config: string;
  code: number;
  /** Its --json object (with `config` first), or its text summary. */
  output: Record<string, unknown> | string;
}

/** A reporter for one dataflow: progress and warnings go through, stdout is kept. */
function captureReporter(parent: Reporter, prefix: string): Reporter & { text: string | null } {
  const sub = {
    text: null as string | null,
    progress: (message: string) => parent.progress(`${prefix}: ${message}`),
    warn: (message: string) => parent.warn(`${prefix}: ${message}`),
    out(text: string) {
      sub.text = text;
    },
    get printed() {
      return sub.text !== null;
    },
    context: {} as Record<string, unknown>,
    close: () => {},
  };
  return sub;
}

/** Runs `command` for each config file, each with its own reporter. */
export async function runPerDataflow(
  command: string,
  files: string[],
  json: boolean,
  reporter: Reporter,
  run: (file: string, sub: Reporter) => Promise<number>,
): Promise<number> {
  const entries: DataflowEntry[] = [];
  for (const file of files) entries.push(await captureDataflow(command, file, json, reporter, (sub) => run(file, sub)));
  printEntries(entries, json, reporter);
  return mostSevere(entries.map((e) => e.code));
}

/** Runs one dataflow's command with its own reporter; its error stays its entry's. */
export async function captureDataflow(
  command: string,
  file: string,
  json: boolean,
  reporter: Reporter,
  run: (sub: Reporter) => Promise<number>,
): Promise<DataflowEntry> {
  const sub = captureReporter(reporter, file);
  let code: number;
  let failure: string | null = null;
  try {
    code = await run(sub);
  } catch (error) {
    const typed = asAudexError(error);
    code = typed.exitCode;
    failure = typed.message;
    reporter.warn(`${file}: ${typed.message}`);
  }
  return entryOf(command, file, code, failure, sub, json);
}

export function entryOf(
  command: string,
  file: string,
  code: number,
  failure: string | null,
  sub: { text: string | null; context: Record<string, unknown> },
  json: boolean,
): DataflowEntry {
  if (json) {
    const printed = sub.text === null ? null : (JSON.parse(sub.text) as Record<string, unknown>);
    const error = failure === null ? {} : { error: { exitCode: code, message: failure } };
    return {
      config: file,
      code,
      output: { config: file, ...(printed ?? { ...sub.context, ...JSON_FIELDS[command], ...error }) },
    };
  }
  const text = sub.text ?? '';
  return {
    config: file,
    code,
    output: failure === null ? text : `${text ? `${text}\n` : ''}config ${file}: failed (exit ${code}): ${failure}`,
  };
}

export function printEntries(entries: DataflowEntry[], json: boolean, reporter: Reporter): void {
  if (json) reporter.out(JSON.stringify({ dataflows: entries.map((e) => e.output) }, null, 2));
  else reporter.out(entries.map((e) => e.output as string).join('\n\n'));
}

/**
 * The entry of plan, status and validate: one config (a file) runs the command as
 * before; several (repeated --config, or a folder) run it per dataflow. The flags were
 * parsed once already, with argv (program.ts), so a bad flag is one usage error.
 */
export async function forEachConfig<F extends { config: string | string[]; json?: boolean }>(
  command: string,
  flags: F,
  reporter: Reporter,
  one: (flags: F & { config: string }, reporter: Reporter) => Promise<number>,
): Promise<number> {
  const { files, several } = await resolveConfigPaths(flags.config);
  if (!several) return one({ ...flags, config: files[0]! }, reporter);
  return runPerDataflow(command, files, Boolean(flags.json), reporter, (file, sub) =>
    one({ ...flags, config: file }, sub),
  );
}
