// Folder and file names of an export run (README "Files, names and the manifest").
//
// Invariant: nothing produced here can leave the destination. Every relative
// directory is a list of non-empty POSIX segments, none of them `.` or `..`,
// none containing `/`, `\` or a control character, each at most 255 UTF-8
// bytes; every file name is a single such segment. Token values are made safe
// before they are substituted, and the expanded result is checked again, so
// neither a hostile audience name nor a careless template can escape.
//
// Time is always a parameter (the run's logical time), never the clock.

import { createHash } from 'node:crypto';
import { DateTime } from 'luxon';

export interface NameContext {
  destinationName: string;
  segmentId: string;
  segmentName: string;
  dataflowId: string;
  runId: string;
  exportMode: string;
  customText?: string;
  logicalTime: Date;
  timezone: string;
}

export type FileFormat = 'csv' | 'json' | 'parquet';
export type Compression = 'none' | 'gzip';

/** Token names as written between `%…%` (case-sensitive). DATETIME also accepts `%DATETIME(pattern)%`. */
export const KNOWN_TOKENS: readonly string[] = Object.freeze([
  'DESTINATION_NAME',
  'SEGMENT_ID',
  'SEGMENT_NAME',
  'DESTINATION_INSTANCE_ID',
  'DATETIME',
  'TIMESTAMP',
  'RUN_ID',
  'EXPORT_MODE',
  'CUSTOM_TEXT',
]);

const MAX_SEGMENT_BYTES = 255;
const DEFAULT_DATETIME_PATTERN = 'YYYYMMdd_HHmmss';

/** Appended after the extension of an encrypted file (README "Encrypted files"): `….csv.gz.gpg`. */
export const ENCRYPTED_SUFFIX = '.gpg';

// The longest suffix partFileName can add: '_' + a 5-digit part number + the
// longest extension ('.gz.parquet.gpg'). Base names are cut so that every part of
// every format still fits in one 255-byte segment.
const MAX_PART_DIGITS = 5;
const LONGEST_EXTENSION_BYTES =
  Math.max(
    ...(['csv', 'json', 'parquet'] as const).flatMap((f) =>
      (['none', 'gzip'] as const).map((c) => utf8Length(fileExtension(f, c))),
    ),
  ) + ENCRYPTED_SUFFIX.length;
const MAX_BASE_NAME_BYTES = MAX_SEGMENT_BYTES - 1 - MAX_PART_DIGITS - LONGEST_EXTENSION_BYTES;

// A token name starts with a letter so that a stray `%` in literal text (e.g.
// `50%_%SEGMENT_ID%`) does not swallow the next real token. Lower-case names
// are matched on purpose: they are then reported as unknown instead of being
// silently kept as literal text. The optional argument cannot contain `%`.
function createTokenPattern(): RegExp {
  return /%([A-Za-z][A-Za-z0-9_]*)(?:\(([^%]*)\))?%/g;
}

// Forbidden anywhere in a segment: both separators, C0 and C1 controls and DEL.
// Two copies because a global regex is stateful under .test().
const FORBIDDEN_CHARS = /[/\\\u0000-\u001f\u007f-\u009f]/g;
const FORBIDDEN_CHAR = /[/\\\u0000-\u001f\u007f-\u009f]/;

// Longest-first so that e.g. `YYYY` is not read as something shorter; every
// letter sequence not listed here is kept literally.
const DATETIME_FIELDS: readonly (readonly [string, (dt: DateTime) => string])[] = [
  ['YYYY', (dt) => pad(dt.year, 4)],
  ['yyyy', (dt) => pad(dt.year, 4)],
  ['MM', (dt) => pad(dt.month, 2)],
  ['dd', (dt) => pad(dt.day, 2)],
  ['DD', (dt) => pad(dt.day, 2)],
  ['HH', (dt) => pad(dt.hour, 2)],
  ['mm', (dt) => pad(dt.minute, 2)],
  ['ss', (dt) => pad(dt.second, 2)],
];

function pad(n: number, width: number): string {
  return String(n).padStart(width, '0');
}

function utf8Length(s: string): number {
  return Buffer.byteLength(s, 'utf8');
}

// Cuts at a code-point boundary so a multibyte character (or surrogate pair)
// is never split into invalid UTF-8.
function truncateUtf8(s: string, maxBytes: number): string {
  if (utf8Length(s) <= maxBytes) return s;
  let out = '';
  let used = 0;
  for (const ch of s) {
    const n = utf8Length(ch);
    if (used + n > maxBytes) break;
    out += ch;
    used += n;
  }
  return out;
}

function toZonedTime(at: Date, timezone: string): DateTime {
  if (Number.isNaN(at.getTime())) {
    throw new Error('logical time is not a valid date');
  }
  // A fixed locale: luxon would otherwise ask Intl for the system's (20-25 ms of CPU for the
  // first Intl object of a process), and no field rendered here depends on a locale.
  const dt = DateTime.fromMillis(at.getTime(), { zone: timezone, locale: 'en-US' });
  if (!dt.isValid) {
    throw new Error(
      `invalid timezone ${JSON.stringify(timezone)}: ${dt.invalidExplanation ?? dt.invalidReason ?? 'unknown reason'}`,
    );
  }
  return dt;
}

/**
 * Renders `pattern` at `at` in `timezone`. Only YYYY/yyyy, MM, dd/DD, HH, mm, ss
 * are fields; every other character is literal. Rendered by hand rather than
 * by luxon's formatter, whose letters mean other things (`DD`, `YYYY`, `'…'`).
 */
export function formatDateTimePattern(pattern: string, at: Date, timezone: string): string {
  const dt = toZonedTime(at, timezone);
  let out = '';
  let i = 0;
  outer: while (i < pattern.length) {
    for (const [field, render] of DATETIME_FIELDS) {
      if (pattern.startsWith(field, i)) {
        out += render(dt);
        i += field.length;
        continue outer;
      }
    }
    out += pattern[i];
    i += 1;
  }
  return out;
}

/**
 * Makes one value safe as (part of) a single path segment: separators and
 * control characters become `_`, `.`/`..` become `_`/`__`, and the result is
 * cut to 255 UTF-8 bytes.
 */
export function sanitizeSegment(value: string): string {
  let s = value.replace(FORBIDDEN_CHARS, '_');
  s = shortenValue(s, MAX_SEGMENT_BYTES);
  if (s === '.') return '_';
  if (s === '..') return '__';
  return s;
}

function tokenValue(name: string, arg: string | undefined, ctx: NameContext): string {
  if (arg !== undefined && name !== 'DATETIME') {
    throw new Error(`token %${name}% does not take an argument`);
  }
  switch (name) {
    case 'DESTINATION_NAME':
      return ctx.destinationName.replace(/ /g, '_');
    case 'SEGMENT_ID':
      return ctx.segmentId;
    case 'SEGMENT_NAME':
      return ctx.segmentName;
    case 'DESTINATION_INSTANCE_ID':
      return ctx.dataflowId;
    case 'DATETIME':
      if (arg !== undefined && arg.trim() === '') throw new Error('%DATETIME()% needs a pattern');
      return formatDateTimePattern(arg ?? DEFAULT_DATETIME_PATTERN, ctx.logicalTime, ctx.timezone);
    case 'TIMESTAMP': {
      // Validates the date the same way DATETIME does, so both fail alike.
      toZonedTime(ctx.logicalTime, ctx.timezone);
      return pad(Math.floor(ctx.logicalTime.getTime() / 1000), 10);
    }
    case 'RUN_ID':
      return ctx.runId;
    case 'EXPORT_MODE':
      return ctx.exportMode;
    case 'CUSTOM_TEXT':
      return ctx.customText ?? '';
    default:
      throw new Error(`unknown token %${name}%`);
  }
}

/**
 * Substitutes every token of `template` with its sanitised value; literal text
 * is left untouched. Values are substituted in one pass, so a value containing
 * `%…%` is never expanded again. Throws on an unknown token (validation with
 * findTemplateProblems is expected to have rejected it earlier).
 */
export function expandTemplate(template: string, ctx: NameContext, caps: Partial<Record<string, number>> = {}): string {
  return template.replace(createTokenPattern(), (_match, name: string, arg: string | undefined) => {
    const value = sanitizeSegment(tokenValue(name, arg, ctx));
    const cap = caps[name];
    return cap === undefined ? value : shortenValue(value, cap);
  });
}

// A value cut to fit keeps a hash of the whole value, so two long names that differ
// only at the end still give different paths.
const HASH_SUFFIX_BYTES = 9;
function shortenValue(value: string, maxBytes: number): string {
  if (utf8Length(value) <= maxBytes) return value;
  const hash = createHash('sha256')
    .update(value)
    .digest('hex')
    .slice(0, HASH_SUFFIX_BYTES - 1);
  return `${truncateUtf8(value, Math.max(0, maxBytes - HASH_SUFFIX_BYTES))}~${hash}`;
}

// Free-text values shrink first when a file name is too long; ids, dates and run ids stay whole.
const SHRINKABLE_TOKENS = ['SEGMENT_NAME', 'DESTINATION_NAME', 'CUSTOM_TEXT'] as const;

// Second line of defence over a whole expanded string: whatever the literal
// template contained, each segment comes out safe or the call fails.
function assertSafeSegment(segment: string): void {
  if (
    segment === '' ||
    segment === '.' ||
    segment === '..' ||
    FORBIDDEN_CHAR.test(segment) ||
    utf8Length(segment) > MAX_SEGMENT_BYTES
  ) {
    throw new Error(`unsafe path segment ${JSON.stringify(segment)}`);
  }
}

/**
 * The run's directory relative to the destination, as `a/b/c` (POSIX
 * separators) or `''` for the destination root. Empty segments (from `//`,
 * leading/trailing slashes or empty values) are dropped.
 */
export function resolveRelativeDir(folderTemplate: string, ctx: NameContext): string {
  const expanded = expandTemplate(folderTemplate, ctx);
  // Only a literal `/` from the template separates folders (values had theirs
  // replaced already). A literal `\` is not a separator here; sanitizeSegment
  // turns it into `_` so it cannot act as one on Windows either.
  const segments = expanded
    .split('/')
    .filter((s) => s !== '')
    .map(sanitizeSegment)
    .filter((s) => s !== '');
  for (const s of segments) assertSafeSegment(s);
  return segments.join('/');
}

/**
 * The file name without extension: one safe segment, short enough that any
 * part suffix (`_99999`) and any extension still fit in 255 bytes.
 */
export function resolveBaseName(fileTemplate: string, ctx: NameContext): string {
  const caps: Partial<Record<string, number>> = {};
  let expanded = expandTemplate(fileTemplate, ctx, caps);
  // Shrink the longest free-text value by the overflow, a few times at most (a token may
  // appear more than once), so %SEGMENT_ID% and the date survive.
  for (let round = 0; round < 4 && utf8Length(expanded) > MAX_BASE_NAME_BYTES; round++) {
    const overflow = utf8Length(expanded) - MAX_BASE_NAME_BYTES;
    const lengths = SHRINKABLE_TOKENS.map((t) => [t, utf8Length(expandTemplate(`%${t}%`, ctx, caps))] as const);
    const [token, length] = lengths.reduce((a, b) => (b[1] > a[1] ? b : a));
    if (length <= HASH_SUFFIX_BYTES + 1) break;
    caps[token] = Math.max(HASH_SUFFIX_BYTES + 1, length - overflow);
    expanded = expandTemplate(fileTemplate, ctx, caps);
  }
  // The literal template text is sanitised as a whole here, so a `/` that
  // slipped past validation cannot create a folder.
  const base = shortenValue(sanitizeSegment(expanded), MAX_BASE_NAME_BYTES);
  if (base === '') {
    throw new Error(`file name template ${JSON.stringify(fileTemplate)} expanded to an empty name`);
  }
  assertSafeSegment(base);
  return base;
}

export function fileExtension(format: FileFormat, compression: Compression): string {
  const gzip = compression === 'gzip';
  switch (format) {
    case 'csv':
      return gzip ? '.csv.gz' : '.csv';
    case 'json':
      return gzip ? '.json.gz' : '.json';
    case 'parquet':
      // Spark/Hadoop convention: the codec goes before `.parquet` so readers
      // still recognise the file as Parquet (it is not a gzip stream).
      return gzip ? '.gz.parquet' : '.parquet';
  }
}

/** `name.ext` for part 1, `name_2.ext`, `name_3.ext`… for later parts. */
export function partFileName(baseName: string, ext: string, partNumber: number): string {
  if (!Number.isInteger(partNumber) || partNumber < 1) {
    throw new Error(`part number must be a positive integer, got ${partNumber}`);
  }
  const name = partNumber === 1 ? `${baseName}${ext}` : `${baseName}_${partNumber}${ext}`;
  assertSafeSegment(name);
  return name;
}

type TemplateField = 'folderPath' | 'fileName';
interface TemplateError {
  field: TemplateField;
  message: string;
}

function findTokenProblems(field: TemplateField, template: string): TemplateError[] {
  const errors: TemplateError[] = [];
  for (const m of template.matchAll(createTokenPattern())) {
    const name = m[1] ?? '';
    const arg = m[2];
    if (!KNOWN_TOKENS.includes(name)) {
      const upper = name.toUpperCase();
      const hint = KNOWN_TOKENS.includes(upper) ? ` (token names are case-sensitive: did you mean %${upper}%?)` : '';
      errors.push({
        field,
        message: `unknown token ${m[0]}${hint}; known tokens: ${KNOWN_TOKENS.map((t) => `%${t}%`).join(', ')}`,
      });
    } else if (arg !== undefined && name !== 'DATETIME') {
      errors.push({ field, message: `token %${name}% does not take an argument (${m[0]})` });
    } else if (name === 'DATETIME' && arg !== undefined && arg.trim() === '') {
      errors.push({
        field,
        message: `${m[0]} has an empty pattern; use %DATETIME% for the default ${DEFAULT_DATETIME_PATTERN}`,
      });
    }
  }
  return errors;
}

function hasToken(template: string, names: readonly string[]): boolean {
  for (const m of template.matchAll(createTokenPattern())) {
    if (names.includes(m[1] ?? '')) return true;
  }
  return false;
}

/**
 * Validates the literal templates from config. Errors make the config
 * invalid; warnings are worth telling the user but allowed.
 */
export function findTemplateProblems(
  folderPath: string,
  fileName: string,
): { errors: { field: 'folderPath' | 'fileName'; message: string }[]; warnings: string[] } {
  const errors: TemplateError[] = [];
  const warnings: string[] = [];

  errors.push(...findTokenProblems('folderPath', folderPath));
  // Absolute POSIX/UNC paths and Windows drive paths (`C:`, `C:\`, `C:/`).
  if (/^[/\\]/.test(folderPath) || /^[A-Za-z]:/.test(folderPath)) {
    errors.push({
      field: 'folderPath',
      message: `folderPath must be relative to the destination, got ${JSON.stringify(folderPath)}`,
    });
  }
  // `\` is split on too: it is not a separator on POSIX, but `a\..\b` is
  // plainly meant as traversal and would be one on Windows.
  const literalSegments = folderPath.split(/[/\\]/);
  if (literalSegments.includes('..')) {
    errors.push({ field: 'folderPath', message: 'folderPath must not contain `..` segments' });
  }
  if (literalSegments.includes('.')) {
    // Would otherwise be rewritten to a folder named `_`, which nobody wants.
    errors.push({ field: 'folderPath', message: 'folderPath must not contain `.` segments' });
  }

  errors.push(...findTokenProblems('fileName', fileName));
  if (!hasToken(fileName, ['SEGMENT_ID'])) {
    // Without it, every audience of a run writes to the same file.
    errors.push({ field: 'fileName', message: 'fileName must contain %SEGMENT_ID%' });
  }
  if (/[/\\]/.test(fileName)) {
    errors.push({ field: 'fileName', message: 'fileName must not contain `/` or `\\`; put folders in folderPath' });
  }
  if (!hasToken(fileName, ['DATETIME', 'TIMESTAMP'])) {
    warnings.push('fileName has no %DATETIME…% or %TIMESTAMP% token: each run overwrites the previous file');
  }

  return { errors, warnings };
}

export type TimeLevel = 'year' | 'month' | 'day' | 'hour' | 'minute' | 'second';
export const TIME_LEVELS: readonly TimeLevel[] = ['year', 'month', 'day', 'hour', 'minute', 'second'];
const LEVEL_OF_FIELD: Record<string, TimeLevel> = {
  YYYY: 'year',
  yyyy: 'year',
  MM: 'month',
  dd: 'day',
  DD: 'day',
  HH: 'hour',
  mm: 'minute',
  ss: 'second',
};

/**
 * How finely the names of two runs differ by time: the date/time levels the templates'
 * `%DATETIME(...)%` patterns write (`%TIMESTAMP%` writes every level), or 'unique' when
 * `%RUN_ID%` makes every run's name its own. Also the patterns that hold no date letter
 * at all (written literally, so they tell runs apart by nothing).
 */
export function findTimeResolution(...templates: string[]): {
  levels: Set<TimeLevel> | 'unique';
  literalPatterns: string[];
} {
  const levels = new Set<TimeLevel>();
  const literalPatterns: string[] = [];
  let unique = false;
  for (const template of templates) {
    for (const m of template.matchAll(createTokenPattern())) {
      if (m[1] === 'RUN_ID') unique = true;
      if (m[1] === 'TIMESTAMP') TIME_LEVELS.forEach((l) => levels.add(l));
      if (m[1] !== 'DATETIME') continue;
      const pattern = m[2] ?? DEFAULT_DATETIME_PATTERN;
      const found = new Set<TimeLevel>();
      for (let i = 0; i < pattern.length;) {
        const field = DATETIME_FIELDS.find(([f]) => pattern.startsWith(f, i))?.[0];
        if (field) found.add(LEVEL_OF_FIELD[field]!);
        i += field ? field.length : 1;
      }
      if (found.size === 0) literalPatterns.push(m[0]);
      found.forEach((l) => levels.add(l));
    }
  }
  return { levels: unique ? 'unique' : levels, literalPatterns };
}
