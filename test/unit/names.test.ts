import { describe, expect, it } from 'vitest';
import {
  KNOWN_TOKENS,
  expandTemplate,
  fileExtension,
  findTemplateProblems,
  formatDateTimePattern,
  partFileName,
  resolveBaseName,
  resolveRelativeDir,
  sanitizeSegment,
} from '../../src/naming/names.js';
import type { Compression, FileFormat, NameContext } from '../../src/naming/names.js';

// 14:07:09 UTC is 09:07:09 in New York (EST, before the March DST switch)
// and 19:37:09 in Kolkata (+05:30).
const AT = new Date('2024-03-05T14:07:09Z');

function makeContext(overrides: Partial<NameContext> = {}): NameContext {
  return {
    destinationName: 'CRM Weekly Export',
    segmentId: 'seg-123',
    segmentName: 'High Value',
    dataflowId: 'df-42',
    runId: 'run-7',
    exportMode: 'full',
    customText: 'acme',
    logicalTime: AT,
    timezone: 'UTC',
    ...overrides,
  };
}

function bytes(s: string): number {
  return Buffer.byteLength(s, 'utf8');
}

function expectSafeSegment(segment: string): void {
  expect(segment).not.toBe('');
  expect(segment).not.toBe('.');
  expect(segment).not.toBe('..');
  expect(segment).not.toMatch(/[/\\\u0000-\u001f\u007f]/);
  expect(bytes(segment)).toBeLessThanOrEqual(255);
}

describe('expandTemplate: every token', () => {
  const cases: [string, string][] = [
    ['%DESTINATION_NAME%', 'CRM_Weekly_Export'],
    ['%SEGMENT_ID%', 'seg-123'],
    ['%SEGMENT_NAME%', 'High Value'],
    ['%DESTINATION_INSTANCE_ID%', 'df-42'],
    ['%DATETIME%', '20240305_140709'],
    ['%DATETIME(YYYY-MM-dd)%', '2024-03-05'],
    ['%TIMESTAMP%', '1709647629'],
    ['%RUN_ID%', 'run-7'],
    ['%EXPORT_MODE%', 'full'],
    ['%CUSTOM_TEXT%', 'acme'],
    ['%SEGMENT_ID%_%DATETIME%', 'seg-123_20240305_140709'],
    ['literal only', 'literal only'],
    ['50%_%SEGMENT_ID%', '50%_seg-123'],
  ];
  it.each(cases)('%s → %s', (template, expected) => {
    expect(expandTemplate(template, makeContext())).toBe(expected);
  });

  it('covers every known token', () => {
    const covered = new Set(cases.flatMap(([t]) => [...t.matchAll(/%([A-Z_]+)/g)].map((m) => m[1])));
    for (const token of KNOWN_TOKENS) expect(covered.has(token)).toBe(true);
  });

  it('uses an empty string when there is no custom text', () => {
    expect(expandTemplate('a%CUSTOM_TEXT%b', makeContext({ customText: undefined }))).toBe('ab');
  });

  it('does not re-expand tokens that appear inside values', () => {
    expect(expandTemplate('%SEGMENT_NAME%', makeContext({ segmentName: '%RUN_ID%' }))).toBe('%RUN_ID%');
  });

  it('rejects unknown, lower-case and malformed tokens', () => {
    expect(() => expandTemplate('%NOPE%', makeContext())).toThrow(/unknown token/);
    expect(() => expandTemplate('%segment_id%', makeContext())).toThrow(/unknown token/);
    expect(() => expandTemplate('%DATETIME()%', makeContext())).toThrow(/pattern/);
    expect(() => expandTemplate('%RUN_ID(x)%', makeContext())).toThrow(/argument/);
  });

  it('rejects an invalid timezone and an invalid date', () => {
    expect(() => expandTemplate('%DATETIME%', makeContext({ timezone: 'Mars/Olympus' }))).toThrow(/timezone/);
    expect(() => expandTemplate('%TIMESTAMP%', makeContext({ logicalTime: new Date(NaN) }))).toThrow(/date/);
  });
});

describe('formatDateTimePattern', () => {
  const patterns: [string, string][] = [
    ['YYYYMMdd_HHmmss', '20240305_140709'],
    ['yyyy-MM-DD', '2024-03-05'],
    ['YYYY-MM-dd', '2024-03-05'],
    ["YYYY-MM-dd'T'HH", "2024-03-05'T'14"],
    ['HH:mm:ss', '14:07:09'],
    ['YY M d H m s', 'YY M d H m s'],
    ['Q W a z', 'Q W a z'],
    ['MMM', '03M'],
    ['run at HH', 'run at 14'],
  ];
  it.each(patterns)('%s → %s', (pattern, expected) => {
    expect(formatDateTimePattern(pattern, AT, 'UTC')).toBe(expected);
  });

  const zones: [string, Date, string][] = [
    ['UTC', AT, '2024-03-05 14:07:09'],
    ['America/New_York', AT, '2024-03-05 09:07:09'],
    ['America/New_York', new Date('2024-07-01T02:30:00Z'), '2024-06-30 22:30:00'],
    ['Asia/Kolkata', AT, '2024-03-05 19:37:09'],
    ['Asia/Kolkata', new Date('2024-12-31T18:45:00Z'), '2025-01-01 00:15:00'],
  ];
  it.each(zones)('renders in %s', (zone, at, expected) => {
    expect(formatDateTimePattern('YYYY-MM-dd HH:mm:ss', at, zone)).toBe(expected);
  });

  it('renders %DATETIME% in the dataflow timezone', () => {
    expect(expandTemplate('%DATETIME%', makeContext({ timezone: 'America/New_York' }))).toBe('20240305_090709');
    expect(expandTemplate('%DATETIME%', makeContext({ timezone: 'Asia/Kolkata' }))).toBe('20240305_193709');
  });

  it('%TIMESTAMP% is 10 digits whatever the timezone', () => {
    for (const timezone of ['UTC', 'America/New_York', 'Asia/Kolkata']) {
      expect(expandTemplate('%TIMESTAMP%', makeContext({ timezone }))).toBe('1709647629');
    }
    expect(expandTemplate('%TIMESTAMP%', makeContext({ logicalTime: new Date('1999-01-01T00:00:00Z') }))).toMatch(
      /^\d{10}$/,
    );
    expect(expandTemplate('%TIMESTAMP%', makeContext({ logicalTime: new Date('2024-03-05T14:07:09.999Z') }))).toBe(
      '1709647629',
    );
  });
});

describe('sanitizeSegment', () => {
  const cases: [string, string][] = [
    ['plain', 'plain'],
    ['../../etc', '.._.._etc'],
    ['a/b', 'a_b'],
    ['..', '__'],
    ['.', '_'],
    ['C:\\x', 'C:_x'],
    ['tab\there', 'tab_here'],
    ['nul\u0000bell\u0007del\u007fnl\n', 'nul_bell_del_nl_'],
    ['a..b', 'a..b'],
  ];
  it.each(cases)('%j → %j', (input, expected) => {
    expect(sanitizeSegment(input)).toBe(expected);
    expectSafeSegment(sanitizeSegment(input));
  });

  it('cuts a 300-byte multibyte name at a character boundary and keeps a hash of the whole name', () => {
    const name = 'é'.repeat(150); // 2 bytes each
    expect(bytes(name)).toBe(300);
    const out = sanitizeSegment(name);
    expect(bytes(out)).toBeLessThanOrEqual(255);
    expect(out).toMatch(/^(é){123}~[0-9a-f]{8}$/);

    const emoji = '😀'.repeat(75); // 4 bytes each, surrogate pairs in JS
    const cut = sanitizeSegment(emoji);
    expect(bytes(cut)).toBeLessThanOrEqual(255);
    expect(cut).toMatch(/^(😀){61}~[0-9a-f]{8}$/u);

    // Two long names that differ only past the cut stay apart.
    expect(sanitizeSegment(`${name}a`)).not.toBe(sanitizeSegment(`${name}b`));
  });
});

describe('hostile segment names stay inside one segment', () => {
  const hostile: [string, string][] = [
    ['parent traversal', '../../etc'],
    ['slash', 'a/b'],
    ['dot-dot', '..'],
    ['dot', '.'],
    ['backslash', 'C:\\x'],
    ['control characters', 'x\u0000y\u001fz\u007f\r\n'],
    ['300-byte multibyte', '日本'.repeat(50)],
    ['absolute', '/etc/passwd'],
  ];

  it.each(hostile)('file name: %s', (_label, segmentName) => {
    const base = resolveBaseName('%SEGMENT_NAME%_%SEGMENT_ID%', makeContext({ segmentName }));
    expectSafeSegment(base);
    expectSafeSegment(partFileName(base, '.gz.parquet', 99_999));
  });

  it.each(hostile)('folder crm/%%SEGMENT_NAME%%: %s', (_label, segmentName) => {
    const dir = resolveRelativeDir('crm/%SEGMENT_NAME%', makeContext({ segmentName }));
    const segments = dir.split('/');
    expect(segments).toHaveLength(2);
    expect(segments[0]).toBe('crm');
    for (const s of segments) expectSafeSegment(s);
  });

  it('a 300-byte name fits a segment in both places', () => {
    const segmentName = '日本'.repeat(50); // 3 bytes per character
    expect(bytes(segmentName)).toBe(300);
    const dir = resolveRelativeDir('%SEGMENT_NAME%', makeContext({ segmentName }));
    expect(bytes(dir)).toBe(255);
    const base = resolveBaseName('%SEGMENT_NAME%', makeContext({ segmentName }));
    expect(bytes(base)).toBeLessThanOrEqual(255 - '_99999'.length - '.gz.parquet'.length);
  });
});

describe('resolveRelativeDir', () => {
  const cases: [string, string][] = [
    ['', ''],
    ['/', ''],
    ['crm', 'crm'],
    ['/crm/%SEGMENT_ID%/', 'crm/seg-123'],
    ['crm//%SEGMENT_ID%', 'crm/seg-123'],
    ['%DESTINATION_NAME%/%DATETIME(YYYY)%/%DATETIME(MM)%', 'CRM_Weekly_Export/2024/03'],
    ['crm/%CUSTOM_TEXT%/x', 'crm/acme/x'],
    // A `/` inside a DATETIME pattern is a value character, not a separator.
    ['%DATETIME(YYYY/MM)%', '2024_03'],
    // Second line of defence for templates that skipped validation.
    ['../a/./b', '__/a/_/b'],
    ['a\\..\\b', 'a_.._b'],
  ];
  it.each(cases)('%j → %j', (template, expected) => {
    expect(resolveRelativeDir(template, makeContext())).toBe(expected);
  });

  it('drops a folder whose value is empty', () => {
    expect(resolveRelativeDir('crm/%CUSTOM_TEXT%/x', makeContext({ customText: '' }))).toBe('crm/x');
  });

  it('turns a segment that becomes `..` only after substitution into `__`', () => {
    expect(resolveRelativeDir('crm/.%CUSTOM_TEXT%', makeContext({ customText: '.' }))).toBe('crm/._');
    expect(resolveRelativeDir('crm/.%CUSTOM_TEXT%', makeContext({ customText: '' }))).toBe('crm/_');
    expect(resolveRelativeDir('crm/%CUSTOM_TEXT%.', makeContext({ customText: '.' }))).toBe('crm/_.');
    expect(resolveRelativeDir('crm/.%CUSTOM_TEXT%.', makeContext({ customText: '' }))).toBe('crm/__');
  });
});

describe('resolveBaseName', () => {
  it('expands a typical template', () => {
    expect(resolveBaseName('%DESTINATION_NAME%_%SEGMENT_ID%_%DATETIME%', makeContext())).toBe(
      'CRM_Weekly_Export_seg-123_20240305_140709',
    );
  });

  it('never creates a folder, even from literal slashes', () => {
    expect(resolveBaseName('a/%SEGMENT_ID%\\b', makeContext())).toBe('a_seg-123_b');
  });

  it('leaves room for the longest part suffix and extension, encrypted included', () => {
    const base = resolveBaseName('%SEGMENT_ID%', makeContext({ segmentId: 'x'.repeat(400) }));
    expect(bytes(base)).toBe(255 - 6 - 15);
    expect(bytes(partFileName(base, `${fileExtension('parquet', 'gzip')}.gpg`, 99_999))).toBe(255);
  });

  it('rejects a name that expands to nothing', () => {
    expect(() => resolveBaseName('%CUSTOM_TEXT%', makeContext({ customText: '' }))).toThrow(/empty/);
  });
});

describe('fileExtension', () => {
  const cases: [FileFormat, Compression, string][] = [
    ['csv', 'none', '.csv'],
    ['csv', 'gzip', '.csv.gz'],
    ['json', 'none', '.json'],
    ['json', 'gzip', '.json.gz'],
    ['parquet', 'none', '.parquet'],
    ['parquet', 'gzip', '.gz.parquet'],
  ];
  it.each(cases)('%s + %s → %s', (format, compression, expected) => {
    expect(fileExtension(format, compression)).toBe(expected);
  });
});

describe('partFileName', () => {
  const cases: [string, string, number, string][] = [
    ['name', '.csv.gz', 1, 'name.csv.gz'],
    ['name', '.csv.gz', 2, 'name_2.csv.gz'],
    ['name', '.csv.gz', 3, 'name_3.csv.gz'],
    ['name', '.gz.parquet', 1, 'name.gz.parquet'],
    ['name', '.gz.parquet', 2, 'name_2.gz.parquet'],
    ['name', '.json', 12, 'name_12.json'],
  ];
  it.each(cases)('%s + %s part %i → %s', (base, ext, part, expected) => {
    expect(partFileName(base, ext, part)).toBe(expected);
  });

  it('rejects part numbers that are not positive integers', () => {
    for (const part of [0, -1, 1.5, Number.NaN]) {
      expect(() => partFileName('name', '.csv', part)).toThrow(/part number/);
    }
  });
});

describe('findTemplateProblems', () => {
  const GOOD_FILE = '%SEGMENT_ID%_%DATETIME%';

  it('accepts good templates', () => {
    expect(findTemplateProblems('crm/%DESTINATION_NAME%/%SEGMENT_NAME%', GOOD_FILE)).toEqual({
      errors: [],
      warnings: [],
    });
    expect(findTemplateProblems('', '%SEGMENT_ID%_%TIMESTAMP%')).toEqual({ errors: [], warnings: [] });
    expect(findTemplateProblems('/', '%SEGMENT_ID%_%DATETIME(YYYY-MM-dd)%').errors.map((e) => e.message)).toEqual([
      expect.stringMatching(/relative/),
    ]);
  });

  const errorCases: [string, string, string, 'folderPath' | 'fileName', RegExp][] = [
    ['unknown token in folderPath', 'crm/%NOPE%', GOOD_FILE, 'folderPath', /unknown token %NOPE%/],
    ['unknown token in fileName', '', '%SEGMENT_ID%_%NOPE%_%DATETIME%', 'fileName', /unknown token %NOPE%/],
    ['lower-case token', '', '%SEGMENT_ID%_%datetime%', 'fileName', /case-sensitive.*%DATETIME%/],
    ['empty DATETIME pattern', '', '%SEGMENT_ID%_%DATETIME()%', 'fileName', /empty pattern/],
    ['argument on a plain token', '%RUN_ID(x)%', GOOD_FILE, 'folderPath', /does not take an argument/],
    ['fileName without SEGMENT_ID', '', '%SEGMENT_NAME%_%DATETIME%', 'fileName', /%SEGMENT_ID%/],
    ['slash in fileName', '', 'crm/%SEGMENT_ID%_%DATETIME%', 'fileName', /`\/`/],
    ['backslash in fileName', '', 'crm\\%SEGMENT_ID%_%DATETIME%', 'fileName', /`\\`/],
    ['.. in folderPath', 'crm/../x', GOOD_FILE, 'folderPath', /`\.\.`/],
    ['.. with backslashes', 'crm\\..\\x', GOOD_FILE, 'folderPath', /`\.\.`/],
    ['. in folderPath', './crm', GOOD_FILE, 'folderPath', /`\.` segments/],
    ['absolute folderPath', '/srv/crm', GOOD_FILE, 'folderPath', /relative/],
    ['drive folderPath', 'C:\\exports', GOOD_FILE, 'folderPath', /relative/],
  ];
  it.each(errorCases)('%s', (_label, folderPath, fileName, field, message) => {
    const { errors } = findTemplateProblems(folderPath, fileName);
    expect(errors).toHaveLength(1);
    expect(errors[0]?.field).toBe(field);
    expect(errors[0]?.message).toMatch(message);
  });

  it('reports every problem, not just the first', () => {
    const { errors } = findTemplateProblems('/a/../%X%', 'b/%Y%');
    expect(errors.filter((e) => e.field === 'folderPath')).toHaveLength(3);
    expect(errors.filter((e) => e.field === 'fileName')).toHaveLength(3);
  });

  it('warns when fileName has no date/time token', () => {
    const { errors, warnings } = findTemplateProblems('crm', '%SEGMENT_ID%');
    expect(errors).toEqual([]);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/overwrites/);
  });

  it('does not warn when a date/time token is present', () => {
    for (const fileName of ['%SEGMENT_ID%_%DATETIME%', '%SEGMENT_ID%_%DATETIME(HH)%', '%SEGMENT_ID%_%TIMESTAMP%']) {
      expect(findTemplateProblems('', fileName).warnings).toEqual([]);
    }
  });
});
