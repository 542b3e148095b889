// The format registry (writers/formats.ts): the names, content types and part counts of
// every format, and its agreement with naming's extensions (dataset exports still name
// their files with naming/names.ts's fileExtension; both kinds of export must agree).
import { describe, expect, it } from 'vitest';
import { countParts, FORMATS, type Compression, type FormatType } from '../../src/writers/formats.js';
import { ENCRYPTED_SUFFIX, fileExtension, partFileName } from '../../src/naming/names.js';
import type { FormatConfig } from '../../src/config/schema.js';

const types = Object.keys(FORMATS) as FormatType[];
const compressions: Compression[] = ['none', 'gzip'];

describe('FORMATS', () => {
  it('has an entry for every format type of the config', () => {
    expect(types.sort()).toEqual(['csv', 'json', 'parquet']);
  });

  it.each([
    ['csv', 'none', '.csv', 'text/csv'],
    ['csv', 'gzip', '.csv.gz', 'application/gzip'],
    ['json', 'none', '.json', 'application/json'],
    ['json', 'gzip', '.json.gz', 'application/gzip'],
    ['parquet', 'none', '.parquet', 'application/octet-stream'],
    ['parquet', 'gzip', '.gz.parquet', 'application/octet-stream'],
  ] as const)(
    '%s with compression %s: files end in %s and are stored as %s',
    (type, compression, extension, contentType) => {
      expect(FORMATS[type].extension[compression]).toBe(extension);
      expect(FORMATS[type].contentType[compression]).toBe(contentType);
    },
  );

  it('names files as naming does (dataset exports), and every name of every part fits one path segment', () => {
    for (const type of types) {
      for (const compression of compressions) {
        expect(FORMATS[type].extension[compression]).toBe(fileExtension(type, compression));
        // The longest base name naming allows still fits with the part suffix and .gpg.
        expect(() =>
          partFileName('b'.repeat(255 - 6 - 15), `${FORMATS[type].extension[compression]}${ENCRYPTED_SUFFIX}`, 99_999),
        ).not.toThrow();
      }
    }
  });
});

describe('countParts', () => {
  const format = (maxRowsPerFile: number, emptyExport: 'write' | 'skip') =>
    ({ type: 'csv', maxRowsPerFile, emptyExport }) as FormatConfig;
  it.each([
    [0, 5, 'write', 1],
    [0, 5, 'skip', 0],
    [5, 5, 'skip', 1],
    [6, 5, 'write', 2],
    [10, 5, 'write', 2],
    [11, 5, 'write', 3],
  ] as const)('%i rows, at most %i a file, empty export %s: %i file(s)', (rows, max, empty, parts) => {
    expect(countParts(format(max, empty), rows)).toBe(parts);
  });
});
