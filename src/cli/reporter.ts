// Where output goes: the summary (or --json) on stdout; progress on stderr — an ora spinner
// with each finished step ticked off when stderr is a terminal, one plain line per step
// otherwise (CI logs, cron mail); --quiet silences progress. Warnings always go to stderr.
import type * as OraModule from 'ora';

export interface Reporter {
  progress(message: string): void;
  warn(message: string): void;
  out(text: string): void;
  /** Whether anything was printed on stdout (so --json printed its one object). */
  readonly printed: boolean;
  /**
   * What the command knows of its invocation so far (dataflowId, at): the fields of the
   * one --json object main.ts prints when the command fails before printing its own.
   */
  context: Record<string, unknown>;
  /** Ends the spinner, if any: the step in progress is ticked off, or marked failed. */
  close(failed?: boolean): void;
}

export interface ReporterOptions {
  quiet: boolean;
  stderr?: NodeJS.WriteStream;
  stdout?: NodeJS.WritableStream;
  env?: NodeJS.ProcessEnv;
}

/**
 * A spinner only on a real, sized terminal: a pseudo-terminal with no size (script(1),
 * `docker run -t` from cron) would make the spinner's redraw loop forever, and CI logs or
 * TERM=dumb want plain lines.
 */
function isInteractive(stream: NodeJS.WriteStream, env: NodeJS.ProcessEnv): boolean {
  return Boolean(stream.isTTY) && (stream.columns ?? 0) > 0 && !env['CI'] && env['TERM'] !== 'dumb';
}

export async function createReporter(options: ReporterOptions): Promise<Reporter> {
  const stderr = options.stderr ?? process.stderr;
  const stdout = options.stdout ?? process.stdout;
  let spinner: OraModule.Ora | null = null;
  let printed = false;
  const env = options.env ?? process.env;
  // The spinner's library is loaded only where a spinner can start: cron, CI and --quiet
  // runs skip 0.05 CPU s of loading it.
  const ora: typeof OraModule.default | null =
    !options.quiet && isInteractive(stderr, env) ? (await import('ora')).default : null;
  const settle = () => {
    if (spinner?.isSpinning) spinner.succeed();
  };
  return {
    progress(message) {
      if (options.quiet) return;
      // Checked at every step: a spinner must never start on a terminal with no width.
      if (!ora || !isInteractive(stderr, env)) {
        settle();
        stderr.write(`audex: ${message}\n`);
        return;
      }
      settle();
      spinner = ora({ text: message, stream: stderr }).start();
    },
    warn(message) {
      if (spinner?.isSpinning) spinner.stop();
      stderr.write(`audex: warning: ${message}\n`);
    },
    out(text) {
      settle();
      printed = true;
      stdout.write(text.endsWith('\n') ? text : `${text}\n`);
    },
    get printed() {
      return printed;
    },
    context: {},
    close(failed = false) {
      if (failed && spinner?.isSpinning) spinner.fail();
      else settle();
      spinner = null;
    },
  };
}
