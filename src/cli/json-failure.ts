// The --json object of a command that failed before printing its own (README "Running it").

/** The fields a failed command's --json object always has (`runs` holds what ran). */
export const JSON_FIELDS: Record<string, Record<string, unknown>> = {
  run: { runs: [] },
  'export-now': { runs: [] },
  plan: { runs: [] },
  runs: { runs: [] },
  status: { audiences: [] },
  validate: { valid: false },
};

/** --json prints exactly one object on stdout, on every outcome: a failure gets `error`. */
export function jsonFailure(fields: Record<string, unknown>, code: number, message: string): string {
  return JSON.stringify({ ...fields, error: { exitCode: code, message } }, null, 2);
}
