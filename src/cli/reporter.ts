// Where output goes: the summary (or --json) on stdout; progress on stderr — an ora spinner
// with each finished step ticked off when stderr is a terminal, one plain line per step
// otherwise (CI logs, cron mail); --quiet silences progress. Warnings always go to stderr.
import ora, { type Ora } from 'ora';

export interface Reporter {
  progress(message: string): void;
  warn(message: string): void;
  out(text: string): void;
  /** Ends the spinner, if any (call before the process exits). */
  close(): void;
}

export interface ReporterOptions {
  quiet: boolean;
  stderr?: NodeJS.WriteStream;
  stdout?: NodeJS.WritableStream;
}

export function createReporter(options: ReporterOptions): Reporter {
  const stderr = options.stderr ?? process.stderr;
  const stdout = options.stdout ?? process.stdout;
  let spinner: Ora | null = null;
  const interactive = Boolean(stderr.isTTY) && !options.quiet;
  const settle = () => {
    if (spinner?.isSpinning) spinner.succeed();
  };
  return {
    progress(message) {
      if (options.quiet) return;
      if (!interactive) {
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
      stdout.write(text.endsWith('\n') ? text : `${text}\n`);
    },
    close() {
      settle();
      spinner = null;
    },
  };
}
