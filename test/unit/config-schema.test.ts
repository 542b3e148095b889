// The config schema in-process (README "The dataflow config"): defaults, boundaries and the cross-field rules,
// fast enough to cover what the e2e tests only sample.
import { describe, expect, it } from 'vitest';
import { stringify as toYaml } from 'yaml';
import { parseConfigText } from '../../src/config/load.js';
import { ConfigError } from '../../src/errors.js';
import { crmConfig } from '../helpers/harness.js';

const FILE = '/tmp/dataflow.yaml';
const parse = (body: Record<string, unknown>) => parseConfigText(toYaml(body), FILE);

function problems(body: Record<string, unknown> | string): string[] {
  try {
    parseConfigText(typeof body === 'string' ? body : toYaml(body), FILE);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as ConfigError).problems;
  }
  throw new Error('expected the config to be rejected');
}

const vip = (schedule: Record<string, unknown> = {}, mode = 'incremental') => ({
  id: 'aud-vip',
  mode,
  schedule: { frequency: 'daily', startTime: '05:30', startDate: '2026-11-01', ...schedule },
});

describe('config schema', () => {
  it('fills the documented defaults', () => {
    const c = parse(crmConfig());
    expect(c.timezone).toBe('UTC');
    expect(c.profileKey).toBe('profileId');
    expect(c.format).toMatchObject({
      compression: 'none',
      maxRowsPerFile: 5_000_000,
      manifest: true,
      emptyExport: 'write',
    });
    expect(c.format.csv).toEqual({
      delimiter: ',',
      quote: '"',
      escape: '\\',
      emptyValue: '',
      nullValue: '',
      header: true,
      quoteAll: false,
    });
    expect(c.dedupKeys).toEqual([]);
    expect(c.audiences[0]!.schedule.trigger).toBe('schedule');
  });

  it('accepts maxRowsPerFile 1 and 10,000,000, rejects 0, 10,000,001 and 2.5', () => {
    for (const n of [1, 10_000_000])
      expect(parse(crmConfig({ format: { type: 'csv', maxRowsPerFile: n } })).format.maxRowsPerFile).toBe(n);
    for (const n of [0, 10_000_001, 2.5]) {
      expect(problems(crmConfig({ format: { type: 'csv', maxRowsPerFile: n } })).join('\n')).toContain(
        'format.maxRowsPerFile: ',
      );
    }
  });

  it('dedupKeys: the mapped namespace itself is fine; one or two mapped attributes without a namespace', () => {
    expect(parse(crmConfig({ dedupKeys: ['identityMap.email'] })).dedupKeys).toEqual(['identityMap.email']);
    const noNs = [
      { source: 'personalEmail.address', target: 'email' },
      { source: 'person.name.firstName' },
      { source: 'person.name.lastName' },
    ];
    expect(
      parse(crmConfig({ mapping: noNs, mandatory: [], dedupKeys: ['personalEmail.address'] })).dedupKeys,
    ).toHaveLength(1);
    expect(
      parse(crmConfig({ mapping: noNs, mandatory: [], dedupKeys: ['person.name.firstName', 'person.name.lastName'] }))
        .dedupKeys,
    ).toHaveLength(2);
    expect(
      problems(
        crmConfig({
          mapping: noNs,
          mandatory: [],
          dedupKeys: ['person.name.firstName', 'person.name.lastName', 'personalEmail.address'],
        }),
      ).join('\n'),
    ).toContain('dedupKeys');
    expect(problems(crmConfig({ mapping: noNs, mandatory: [], dedupKeys: ['loyalty.tier'] })).join('\n')).toMatch(
      /dedupKeys\[0\]: .*loyalty\.tier/,
    );
    expect(problems(crmConfig({ dedupKeys: ['identityMap.ecid'] })).join('\n')).toMatch(/dedupKeys.*identityMap\.ecid/);
  });

  it('schedule rules', () => {
    expect(problems(crmConfig({ audiences: [vip({ frequency: 'monthly' })] })).join('\n')).toContain(
      'audiences[0].schedule.frequency: ',
    );
    expect(parse(crmConfig({ audiences: [vip({ frequency: 'every3Hours' })] })).audiences).toHaveLength(1);
    expect(
      problems(
        crmConfig({
          audiences: [
            vip({ trigger: 'afterEvaluation' }, 'full'),
            vip({ frequency: 'weekly', trigger: 'afterEvaluation' }, 'full'),
          ],
        }),
      ).join('\n'),
    ).toContain('audiences[1].schedule.trigger: ');
    expect(
      problems(crmConfig({ audiences: [{ id: 'w', mode: 'full', schedule: { frequency: 'weekly' } }] })).join('\n'),
    ).toContain('audiences[0].schedule.startDate: ');
    expect(
      problems(crmConfig({ audiences: [vip({ startDate: '2026-11-05', endDate: '2026-11-05' })] })).join('\n'),
    ).toContain('audiences[0].schedule.endDate: ');
    expect(problems(crmConfig({ audiences: [vip({ startDate: '2026-02-30' })] })).join('\n')).toContain(
      'audiences[0].schedule.startDate: ',
    );
    for (const t of ['25:00', '5:30', '12:60']) {
      expect(problems(crmConfig({ audiences: [vip({ startTime: t })] })).join('\n')).toContain(
        'audiences[0].schedule.startTime: ',
      );
    }
    expect(problems(crmConfig({ audiences: [vip(), vip()] })).join('\n')).toContain('audiences[1].id: ');
  });

  it('reads JSON text too', () => {
    const c = parseConfigText(JSON.stringify(crmConfig({ timezone: 'Europe/Berlin' }), null, 2), '/tmp/dataflow.json');
    expect(c.timezone).toBe('Europe/Berlin');
    expect(c.mapping).toHaveLength(5);
  });

  it('every problem has a line, a path and a message', () => {
    const list = problems(
      crmConfig({ timezone: 'X/Y', mandatory: ['nope'], fileName: 'x', audiences: [vip({ frequency: 'weekly' })] }),
    );
    expect(list).toHaveLength(4);
    for (const p of list) expect(p).toMatch(/^line \d+: [A-Za-z][\w.[\]]*: \S/);
  });
});
