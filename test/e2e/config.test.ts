// Dataflow config validation end to end (README "The dataflow config", §9): a bad config exits 2, reports
// every problem at once as `line N: path: message`, and nothing is read or written first.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { createWorkspace, crmConfig, readCsv, type CliResult, type Workspace } from '../helpers/harness.js';

const AT = '2026-11-20T06:00:00Z';

type Config = Record<string, unknown>;
type Mapping = { source: string; target?: string; transform?: string };

const baseMapping = (): Mapping[] => crmConfig()['mapping'] as Mapping[];
const vip = (schedule: Record<string, unknown> = {}, mode = 'incremental') => ({
  id: 'aud-vip',
  mode,
  schedule: { frequency: 'daily', startTime: '05:30', startDate: '2026-11-01', ...schedule },
});
const without = (config: Config, key: string): Config => {
  const copy = { ...config };
  delete copy[key];
  return copy;
};

/** The `- ` problem lines audex printed. */
const problemLines = (stderr: string) => stderr.split('\n').filter((l) => /^\s*- /.test(l));

interface Case {
  name: string;
  config: Config;
  /** Each must appear in one problem line (a `path:` prefix, and optionally more text). */
  expect: (string | RegExp)[];
}

const cases: Case[] = [
  { name: 'unknown top-level key', config: crmConfig({ colour: 'blue' }), expect: [/colour/] },
  {
    name: 'unknown nested key',
    config: crmConfig({ audiences: [{ ...vip(), schedule: { ...vip().schedule, every: 2 } }] }),
    expect: [/audiences\[0\]\.schedule.*every/],
  },
  { name: 'missing required id', config: without(crmConfig(), 'id'), expect: ['id: '] },
  { name: 'missing required format', config: without(crmConfig(), 'format'), expect: ['format: '] },
  {
    name: 'missing required audience mode',
    config: crmConfig({ audiences: [{ id: 'aud-vip', schedule: { frequency: 'daily' } }] }),
    expect: ['audiences[0].mode: '],
  },
  {
    name: 'maxRowsPerFile 0',
    config: crmConfig({ format: { type: 'csv', maxRowsPerFile: 0 } }),
    expect: ['format.maxRowsPerFile: '],
  },
  {
    name: 'maxRowsPerFile 10,000,001',
    config: crmConfig({ format: { type: 'csv', maxRowsPerFile: 10_000_001 } }),
    expect: ['format.maxRowsPerFile: '],
  },
  {
    name: 'two identity namespaces',
    config: crmConfig({ mapping: [...baseMapping(), { source: 'identityMap.ecid', target: 'ecid' }] }),
    expect: [/mapping: .*identityMap\.email.*identityMap\.ecid/],
  },
  {
    name: 'duplicate explicit target names',
    config: crmConfig({ mapping: [...baseMapping(), { source: 'person.name.lastName', target: 'tier' }] }),
    expect: [/mapping\[5\]\.target: .*tier/],
  },
  {
    name: 'duplicate defaulted target names',
    config: crmConfig({ mapping: [...baseMapping(), { source: 'person_name_firstName' }] }),
    expect: [/mapping\[5\]\.target: .*person_name_firstName/],
  },
  {
    name: 'fileName without %SEGMENT_ID%',
    config: crmConfig({ fileName: '%DESTINATION_NAME%_%DATETIME%' }),
    expect: [/fileName: .*%SEGMENT_ID%/],
  },
  {
    name: 'unknown token in fileName',
    config: crmConfig({ fileName: '%SEGMENT_ID%_%FOO%' }),
    expect: [/fileName: .*%FOO%/],
  },
  {
    name: 'unknown token in folderPath',
    config: crmConfig({ folderPath: 'crm/%FOO%' }),
    expect: [/folderPath: .*%FOO%/],
  },
  {
    name: 'dedupKeys naming an attribute while a namespace is mapped',
    config: crmConfig({ dedupKeys: ['loyalty.tier'] }),
    expect: [/dedupKeys.*: .*loyalty\.tier/],
  },
  {
    name: 'mandatory naming an unmapped source',
    config: crmConfig({ mandatory: ['loyalty.status'] }),
    expect: [/mandatory\[0\]: .*loyalty\.status/],
  },
  {
    name: 'incremental with weekly',
    config: crmConfig({ audiences: [vip({ frequency: 'weekly' })] }),
    expect: [/audiences\[0\]\.schedule\.frequency: .*weekly/],
  },
  {
    name: 'afterEvaluation with incremental',
    config: crmConfig({ audiences: [vip({ trigger: 'afterEvaluation' })] }),
    expect: ['audiences[0].schedule.trigger: '],
  },
  {
    name: 'once without startDate',
    config: crmConfig({
      audiences: [{ id: 'aud-promo', mode: 'full', schedule: { frequency: 'once', startTime: '09:00' } }],
    }),
    expect: ['audiences[0].schedule.startDate: '],
  },
  {
    name: 'endDate before startDate',
    config: crmConfig({ audiences: [vip({ startDate: '2026-11-10', endDate: '2026-11-01' })] }),
    expect: ['audiences[0].schedule.endDate: '],
  },
  { name: 'invalid timezone', config: crmConfig({ timezone: 'Mars/Olympus_Mons' }), expect: ['timezone: '] },
  {
    name: "startTime '25:00'",
    config: crmConfig({ audiences: [vip({ startTime: '25:00' })] }),
    expect: ['audiences[0].schedule.startTime: '],
  },
];

describe('invalid configs: exit 2, named problem, nothing written', () => {
  let ws: Workspace;
  beforeAll(() => {
    ws = createWorkspace();
  });
  afterAll(() => ws?.cleanup());

  it.each(cases)('$name', async ({ name, config, expect: expected }) => {
    const file = ws.config(config, `${name.replace(/[^a-z0-9]+/gi, '-')}.yaml`);
    const result = await ws.audex(['run', '--config', file, '--at', AT, '--json']);
    expect(result.code, result.stderr).toBe(2);
    // --json still prints its one object: no run, and the error.
    expect(JSON.parse(result.stdout)).toMatchObject({ runs: [], error: { exitCode: 2 } });
    const lines = problemLines(result.stderr);
    expect(lines.length, result.stderr).toBeGreaterThan(0);
    for (const want of expected) {
      const hit = lines.some((l) => (typeof want === 'string' ? l.includes(want) : want.test(l)));
      expect(hit, `expected a problem matching ${String(want)} in:\n${result.stderr}`).toBe(true);
    }
    // Every problem carries the YAML line.
    for (const l of lines) expect(l, result.stderr).toMatch(/^\s*- line \d+: /);
    expect(existsSync(ws.out), 'out/ must not be created by an invalid config').toBe(false);
  });
});

describe('reporting', () => {
  let ws: Workspace;
  beforeAll(() => {
    ws = createWorkspace();
  });
  afterAll(() => ws?.cleanup());

  const write = (name: string, text: string) => {
    const file = path.join(ws.dir, name);
    writeFileSync(file, text);
    return file;
  };
  const run = (file: string, command = 'run'): Promise<CliResult> =>
    ws.audex(
      command === 'run'
        ? ['run', '--config', file, '--at', AT]
        : ['export-now', '--config', file, '--audience', 'aud-vip', '--at', AT],
    );

  it('reports every problem of a config at once, each as `line N: path: message`', async () => {
    const file = write(
      'many.yaml',
      [
        /* 1 */ 'name: Acme CRM',
        /* 2 */ 'id: acme-crm',
        /* 3 */ 'timezone: Not/AZone',
        /* 4 */ 'source: { snapshots: ./snapshots }',
        /* 5 */ 'destination: { path: ./out }',
        /* 6 */ 'format: { type: csv, maxRowsPerFile: 0 }',
        /* 7 */ 'fileName: "%DESTINATION_NAME%_%FOO%"',
        /* 8 */ 'mapping:',
        /* 9 */ '  - { source: identityMap.email, target: email }',
        /* 10 */ '  - { source: identityMap.ecid, target: email }',
        /* 11 */ '  - { source: loyalty.tier }',
        /* 12 */ 'mandatory: [loyalty.points]',
        /* 13 */ 'audiences:',
        /* 14 */ '  - { id: aud-vip, mode: incremental, schedule: { frequency: weekly, startDate: 2026-11-01, startTime: "25:00" } }',
        /* 15 */ '  - { id: aud-churn, mode: incremental, schedule: { frequency: daily, trigger: afterEvaluation } }',
        /* 16 */ '  - { id: aud-promo, mode: full, schedule: { frequency: once, endDate: 2026-11-01 } }',
        '',
      ].join('\n'),
    );
    const result = await run(file);
    expect(result.code, result.stderr).toBe(2);
    const lines = problemLines(result.stderr);
    const expected: [number[], string, RegExp?][] = [
      [[3], 'timezone'],
      [[6], 'format.maxRowsPerFile'],
      [[7], 'fileName', /%FOO%/],
      [[7], 'fileName', /%SEGMENT_ID%/],
      [[8, 9], 'mapping', /identityMap\.ecid/],
      [[10], 'mapping[1].target', /email/],
      [[12], 'mandatory[0]', /loyalty\.points/],
      [[14], 'audiences[0].schedule.frequency', /weekly/],
      [[14], 'audiences[0].schedule.startTime'],
      [[15], 'audiences[1].schedule.trigger'],
      [[16], 'audiences[2].schedule.startDate'],
    ];
    for (const [allowedLines, p, more] of expected) {
      const hit = lines.find((l) => {
        const m = /^\s*- line (\d+): (.+?): (.*)$/.exec(l);
        return m && m[2] === p && allowedLines.includes(Number(m[1])) && (!more || more.test(m[3]!));
      });
      expect(
        hit,
        `expected "line ${allowedLines.join('|')}: ${p}: …${more ? ` ${String(more)}` : ''}" in:\n${result.stderr}`,
      ).toBeDefined();
    }
    expect(lines, result.stderr).toHaveLength(expected.length);
    expect(result.stderr).toContain('many.yaml');
    expect(existsSync(ws.out)).toBe(false);
  });

  it('a missing or mistyped field does not hide the other problems', async () => {
    const file = write(
      'missing-and-more.yaml',
      [
        /* 1 */ 'id: acme-crm',
        /* 2 */ 'source: { snapshots: ./snapshots }',
        /* 3 */ 'destination: { path: ./out }',
        /* 4 */ 'format: { type: csv }',
        /* 5 */ 'fileName: "%DESTINATION_NAME%"',
        /* 6 */ 'mapping:',
        /* 7 */ '  - { source: identityMap.email, target: 7 }',
        /* 8 */ '  - { source: identityMap.ecid }',
        /* 9 */ 'audiences:',
        /* 10 */ '  - { id: aud-vip, mode: incremental, schedule: { frequency: weekly, startDate: 2026-11-01 } }',
        '',
      ].join('\n'),
    );
    const result = await run(file);
    expect(result.code, result.stderr).toBe(2);
    const lines = problemLines(result.stderr).join('\n');
    expect(lines).toMatch(/line \d+: name: /);
    expect(lines).toMatch(/line 7: mapping\[0\]\.target: /);
    // Cross-field problems must be reported in the same pass.
    expect(lines).toMatch(/line 5: fileName: .*%SEGMENT_ID%/);
    expect(lines).toMatch(/line (6|7): mapping: .*identityMap\.ecid/);
    expect(lines).toMatch(/line 10: audiences\[0\]\.schedule\.frequency: /);
    expect(existsSync(ws.out)).toBe(false);
  });

  it('an unknown key is reported at its own line', async () => {
    const text = [
      'name: Acme CRM',
      'id: acme-crm',
      'source: { snapshots: ./snapshots }',
      'destination: { path: ./out }',
      'format: { type: csv }',
      'mapping:',
      '  - { source: identityMap.email, target: email }',
      'colour: blue', // line 8
      'audiences:',
      '  - { id: aud-vip, mode: full, schedule: { frequency: daily } }',
      '',
    ].join('\n');
    const result = await run(write('unknown-key.yaml', text));
    expect(result.code, result.stderr).toBe(2);
    const lines = problemLines(result.stderr);
    expect(lines, result.stderr).toHaveLength(1);
    expect(lines[0]).toMatch(/^\s*- line 8: .*colour/);
  });

  it('invalid YAML syntax: exit 2 with the line of the error', async () => {
    const file = write('syntax.yaml', 'name: Acme CRM\nid: acme-crm\nmapping: [ { source: a.b }\naudiences: x\n');
    const result = await run(file);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('syntax.yaml');
    // The unclosed flow sequence opens on line 3.
    expect(result.stderr).toMatch(/syntax\.yaml:\d+(:\d+)?|line \d+/);
    const file2 = write('indent.yaml', 'name: Acme CRM\nid: acme-crm\n  source: x\n');
    const result2 = await run(file2);
    expect(result2.code).toBe(2);
    expect(result2.stderr).toMatch(/indent\.yaml:[23](:\d+)?|line [23]\b/);
    expect(existsSync(ws.out)).toBe(false);
  });

  it('export-now validates the config the same way', async () => {
    const result = await run(ws.config(crmConfig({ timezone: 'Nowhere/Town' }), 'export-now.yaml'), 'export-now');
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/line \d+: timezone: /);
    expect(existsSync(ws.out)).toBe(false);
  });

  it('a missing config file exits 2 with a hint about --config', async () => {
    const result = await ws.audex(['run', '--config', path.join(ws.dir, 'nope.yaml'), '--at', AT]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('nope.yaml');
    expect(result.stderr).toContain('--config');
    const noFlag = await ws.audex(['run', '--at', AT]);
    expect(noFlag.code).toBe(2);
    expect(noFlag.stderr).toContain('--config');
    expect(existsSync(ws.out)).toBe(false);
  });

  it('a JSON config with problems is reported with paths and lines', async () => {
    const file = ws.config(
      crmConfig({ format: { type: 'csv', maxRowsPerFile: 0 }, timezone: 'Nope/Nope' }),
      'bad.json',
    );
    const result = await run(file);
    expect(result.code).toBe(2);
    const text = JSON.stringify(
      crmConfig({ format: { type: 'csv', maxRowsPerFile: 0 }, timezone: 'Nope/Nope' }),
      null,
      2,
    ).split('\n');
    const lineOf = (needle: string) => text.findIndex((l) => l.includes(needle)) + 1;
    const lines = problemLines(result.stderr).join('\n');
    expect(lines).toContain(`line ${lineOf('"maxRowsPerFile"')}: format.maxRowsPerFile: `);
    expect(lines).toContain(`line ${lineOf('"timezone"')}: timezone: `);
    expect(existsSync(ws.out)).toBe(false);
  });
});

describe('valid configs', () => {
  it('a JSON config file works like YAML', async () => {
    const ws = createWorkspace();
    try {
      const file = ws.config(crmConfig(), 'dataflow.json');
      const result = await ws.audex(['run', '--config', file, '--at', AT, '--json']);
      expect(result.code, result.stderr).toBe(0);
      const run = result.json().runs[0]!;
      expect(run.counts.rowsWritten).toBe(6);
      expect(readCsv(run.files[0]!.path)).toHaveLength(7);
    } finally {
      ws.cleanup();
    }
  });
});
