// Where output goes: the summary (or --json) on stdout, progress on stderr. Progress is
// one plain line per step, so CI logs read well; --quiet silences it.

export interface Reporter {
  progress(message: string): void;
  warn(message: string): void;
  out(text: string): void;
}

export function createReporter(options: { quiet: boolean }): Reporter {
  return {
    progress(message) {
      if (!options.quiet) process.stderr.write(`audex: ${message}\n`);
    },
    warn(message) {
      process.stderr.write(`audex: warning: ${message}\n`);
    },
    out(text) {
      process.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
    },
  };
}
