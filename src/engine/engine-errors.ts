// Which engine failures are the user's input and which are audex's own SQL. DuckDB names
// the kind of every error in the first words of its message. Reading the user's parts
// fails with "Invalid Input Error" (malformed JSON, a value the typed read cannot take,
// not a Parquet file), "IO Error" (a file that cannot be read) or "Conversion Error"; a
// query that does not bind, parse or find its table or function is a bug in the SQL audex
// built, whatever the input: an internal error (exit 1, "please report"), never bad input.
import { InternalError, messageOf } from '../errors.js';

const AUDEX_SQL_ERROR = /^(Binder Error|Parser Error|Catalog Error|INTERNAL Error)\b/;
/** Every engine error starts with its kind ("IO Error: …"); audex's own code throws without one. */
const ENGINE_ERROR = /^[A-Z][A-Za-z ]* Error: /;

/** True when the engine rejected the query itself rather than the data it read, or audex's code threw. */
export function isAudexSqlError(error: unknown): boolean {
  const message = messageOf(error);
  return AUDEX_SQL_ERROR.test(message) || !ENGINE_ERROR.test(message);
}

/** The internal error for audex's own SQL failing while it did `what` (e.g. "load snapshot parts a, b"). */
export function internalSqlError(what: string, error: unknown): InternalError {
  return new InternalError(
    new Error(`the engine rejected audex's query to ${what}: ${messageOf(error).split('\n')[0]}`, { cause: error }),
  );
}
