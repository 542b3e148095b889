// Issue 3 / README "Running it" and README "Running it": the operator commands through the real binary — plan, status,
// runs, validate, init, schema, --help — and the output discipline cron and CI rely on
// (--json alone on stdout, plain `audex:` progress lines on stderr, --quiet), plus --at replays.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import {
  ROOT,
  addSnapshot,
  crmConfig,
  listFiles,
  readCsv,
  readParquet,
  readText,
  runCli,
  trackWorkspaces,
  type CliResult,
  type Workspace,
} from '../helpers/harness.js';

const workspace = trackWorkspaces();

const DAY1 = '2026-11-20T06:00:00Z'; // aud-vip slot 2026-11-20T05:30, snapshot snap-20261120: 6-row backfill
const DAY2 = '2026-11-21T06:00:00Z'; // aud-vip slot 2026-11-21T05:30, snapshot snap-20261121: 4-row diff
const DAY4 = '2026-11-23T06:00:00Z'; // slot 2026-11-23T05:30; 21st and 22nd missed; latest snapshot still snap-20261121

const VIP = {
  id: 'aud-vip',
  mode: 'incremental',
  schedule: { frequency: 'daily', startTime: '05:30', startDate: '2026-11-01' },
};
const CHURN = { id: 'aud-churn', mode: 'full', schedule: { frequency: 'daily', trigger: 'afterEvaluation' } };
const PROMO = {
  id: 'aud-promo',
  mode: 'full',
  schedule: { frequency: 'once', startDate: '2026-11-25', startTime: '09:00' },
};

/** The demo CRM dataflow with all three kinds of schedule (as fixtures/demo/acme-crm.yaml). */
const threeAudiences = (overrides: Record<string, unknown> = {}) =>
  crmConfig({ audiences: [VIP, CHURN, PROMO], ...overrides });

const PLAN_KEYS = ['dataflowId', 'at', 'latestSnapshot', 'runs', 'idle', 'problems'];
const PLANNED_RUN_KEYS = [
  'runId',
  'audienceId',
  'mode',
  'trigger',
  'logicalTime',
  'snapshotId',
  'selection',
  'reason',
  'resumed',
  'skippedSlots',
  'counts',
  'files',
];
const COUNT_KEYS = [
  'profilesReceived',
  'rowsWritten',
  'excludedMandatory',
  'excludedDuplicate',
  'exitsOmitted',
  'exitsWritten',
  'badRecords',
];

interface PlanJson {
  dataflowId: string;
  at: string;
  latestSnapshot: string | null;
  runs: {
    runId: string;
    audienceId: string;
    mode: string;
    trigger: string;
    logicalTime: string;
    snapshotId: string;
    selection: string;
    reason: string;
    resumed: boolean;
    skippedSlots: string[];
    counts: Record<string, number>;
    files: string[];
  }[];
  idle: { audienceId: string; reason: string; nextSlot: string | null }[];
  problems: { audienceId: string; error: string }[];
}

const json = <T>(r: CliResult): T => r.json() as unknown as T;
const sorted = (keys: string[]) => [...keys].sort();

/** Every file under a folder with its bytes (hex), for "nothing changed" comparisons. */
function tree(root: string): Record<string, string> {
  return Object.fromEntries(listFiles(root).map((rel) => [rel, readFileSync(path.join(root, rel)).toString('hex')]));
}

/** Data rows in an exported CSV part (header excluded). */
const csvRows = (file: string) => readCsv(file).length - 1;

/** Every stderr line is a plain `audex: …` line: no spinner frames, no escape codes, no \r. */
function expectPlainProgress(stderr: string): void {
  expect(stderr).not.toMatch(/[\r\u001B]/);
  const lines = stderr.split('\n').filter((l) => l !== '');
  expect(lines.length).toBeGreaterThan(0);
  for (const line of lines) expect(line).toMatch(/^audex: \S/);
}

function ok(r: CliResult): CliResult {
  expect(r.code, `exit ${r.code}\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`).toBe(0);
  return r;
}

// Independent workspaces, so the groups run side by side (the history steps stay in order).
describe.concurrent('operator commands', () => {
  // ---------------------------------------------------------------------------------------
  describe('audex plan', () => {
    it('on a fresh workspace writes nothing and lists the due runs with slot, trigger, snapshot, mode, why and counts', async () => {
      const w = workspace();
      const config = w.config(threeAudiences());
      const before = tree(w.dir);
      const [text, asJson] = (
        await Promise.all([
          w.audex(['plan', '--config', config, '--at', DAY1]),
          w.audex(['plan', '--config', config, '--at', DAY1, '--json']),
        ])
      ).map(ok) as [CliResult, CliResult];
      // Nothing at all was written: no out/ folder, no state, no other file in the workspace.
      expect(existsSync(w.out)).toBe(false);
      expect(tree(w.dir)).toEqual(before);

      const vipLine = text.stdout.split('\n').find((l) => l.includes('aud-vip') && l.includes('slot'));
      expect(vipLine, text.stdout).toBeDefined();
      for (const part of ['incremental', 'schedule', '2026-11-20T05:30:00.000Z', 'snap-20261120'])
        expect(vipLine).toContain(part);
      expect(vipLine).toMatch(/backfill/);
      const churnLine = text.stdout.split('\n').find((l) => l.includes('aud-churn') && l.includes('slot'));
      for (const part of ['full', 'afterEvaluation', '2026-11-20T05:00:00.000Z', 'snap-20261120'])
        expect(churnLine).toContain(part);
      expect(text.stdout).toMatch(/why: slot 2026-11-20T05:30:00\.000Z is due/);
      expect(text.stdout).toMatch(/why: new snapshot snap-20261120/);
      expect(text.stdout).toMatch(/6 rows from 9 profiles \(excluded: 2 mandatory, 1 duplicate/);
      expect(text.stdout).toMatch(/aud-promo: no slot due yet; next slot 2026-11-25T09:00:00\.000Z/);
      // Without a TTY and without --json, progress is still one plain `audex:` line per step, on stderr.
      expectPlainProgress(text.stderr);
      expect(text.stdout).not.toMatch(/^audex:/m);

      const plan = json<PlanJson>(asJson);
      expect(sorted(Object.keys(plan))).toEqual(sorted(PLAN_KEYS));
      expect(plan).toMatchObject({
        dataflowId: 'acme-crm',
        at: '2026-11-20T06:00:00.000Z',
        latestSnapshot: 'snap-20261120',
        problems: [],
      });
      expect(plan.runs.map((r) => r.audienceId)).toEqual(['aud-vip', 'aud-churn']);
      for (const run of plan.runs) {
        expect(sorted(Object.keys(run))).toEqual(sorted(PLANNED_RUN_KEYS));
        expect(sorted(Object.keys(run.counts))).toEqual(sorted(COUNT_KEYS));
      }
      expect(plan.runs[0]).toMatchObject({
        runId: '20261120T053000Z-9e9a9e25',
        mode: 'incremental',
        trigger: 'schedule',
        logicalTime: '2026-11-20T05:30:00.000Z',
        snapshotId: 'snap-20261120',
        selection: 'backfill',
        resumed: false,
        skippedSlots: [],
        counts: {
          profilesReceived: 9,
          rowsWritten: 6,
          excludedMandatory: 2,
          excludedDuplicate: 1,
          exitsOmitted: 0,
          exitsWritten: 0,
          badRecords: 0,
        },
      });
      expect(plan.runs[0]!.reason).toMatch(/due/);
      expect(plan.runs[1]).toMatchObject({
        mode: 'full',
        trigger: 'afterEvaluation',
        logicalTime: '2026-11-20T05:00:00.000Z',
        snapshotId: 'snap-20261120',
        selection: 'full',
      });
      expect(plan.idle).toEqual([
        { audienceId: 'aud-promo', reason: expect.any(String), nextSlot: '2026-11-25T09:00:00.000Z' },
      ]);
    });

    it('predicts exactly what the following runs write: counts, file paths (parts too), coalesced missed slots', async () => {
      const w = workspace();
      // Four rows a part, so the 6-row backfill is split: the plan must name every part.
      const config = w.config(threeAudiences({ format: { type: 'csv', compression: 'gzip', maxRowsPerFile: 4 } }));

      const plan1 = json<PlanJson>(ok(await w.audex(['plan', '-c', config, '--at', DAY1, '--json'])));
      const run1 = ok(await w.audex(['run', '-c', config, '--at', DAY1, '--json'])).json();
      expect(run1.runs.map((r) => [r.audienceId, r.status])).toEqual([
        ['aud-vip', 'success'],
        ['aud-churn', 'success'],
      ]);
      expect(plan1.runs.map((r) => r.runId)).toEqual(run1.runs.map((r) => r.runId));
      for (const [i, planned] of plan1.runs.entries()) {
        const actual = run1.runs[i]!;
        expect(planned.counts, planned.audienceId).toEqual(actual.counts);
        expect(planned.files, planned.audienceId).toEqual(actual.files.map((f) => f.path));
        expect(planned.logicalTime).toBe(actual.logicalTime);
        expect(planned.snapshotId).toBe(actual.snapshotId);
        // …and the files on disk hold those rows.
        expect(planned.files.reduce((n, f) => n + csvRows(f), 0)).toBe(planned.counts.rowsWritten);
      }
      expect(plan1.runs[0]!.files.map((f) => path.basename(f))).toEqual([
        'Acme_CRM_aud-vip_20261120_053000.csv.gz',
        'Acme_CRM_aud-vip_20261120_053000_2.csv.gz',
      ]);
      const dataFiles = w.files().filter((f) => !path.basename(f).startsWith('manifest-'));
      expect(dataFiles.map((f) => path.join(w.out, f)).sort()).toEqual(plan1.runs.flatMap((r) => r.files).sort());

      // Three days later: one diff run at the latest slot, the two missed slots coalesced.
      const [planText, plan4Json] = await Promise.all([
        w.audex(['plan', '-c', config, '--at', DAY4]),
        w.audex(['plan', '-c', config, '--at', DAY4, '--json']),
      ]);
      expect(ok(planText).stdout).toMatch(
        /coalesced missed slots: 2026-11-21T05:30:00\.000Z, 2026-11-22T05:30:00\.000Z/,
      );
      expect(planText.stdout).toMatch(/diff against the last baseline/);
      const plan4 = json<PlanJson>(ok(plan4Json));
      const vip = plan4.runs.find((r) => r.audienceId === 'aud-vip')!;
      expect(vip).toMatchObject({
        logicalTime: '2026-11-23T05:30:00.000Z',
        snapshotId: 'snap-20261121',
        selection: 'diff',
        resumed: false,
        skippedSlots: ['2026-11-21T05:30:00.000Z', '2026-11-22T05:30:00.000Z'],
      });
      expect(vip.counts.rowsWritten).toBe(4);
      expect(plan4.runs.find((r) => r.audienceId === 'aud-churn')).toMatchObject({
        logicalTime: '2026-11-21T05:00:00.000Z',
        snapshotId: 'snap-20261121',
      });
      const stateBefore = tree(path.join(w.out, '_audex'));

      const run4 = ok(await w.audex(['run', '-c', config, '--at', DAY4, '--json'])).json();
      expect(stateBefore).not.toEqual(tree(path.join(w.out, '_audex'))); // the run (not the plan) moved the state
      const done = run4.runs.filter((r) => r.status === 'success');
      expect(done.map((r) => r.runId)).toEqual(plan4.runs.map((r) => r.runId));
      for (const [i, planned] of plan4.runs.entries()) {
        expect(planned.counts, planned.audienceId).toEqual(done[i]!.counts);
        expect(planned.files, planned.audienceId).toEqual(done[i]!.files.map((f) => f.path));
        expect(planned.files.reduce((n, f) => n + csvRows(f), 0)).toBe(planned.counts.rowsWritten);
      }
      const skipped = run4.runs.filter((r) => r.status === 'skipped');
      expect(skipped.map((r) => [r.audienceId, r.logicalTime])).toEqual(vip.skippedSlots.map((s) => ['aud-vip', s]));
    });

    it('lists an audience missing from the snapshot under problems, and still plans the others', async () => {
      const w = workspace();
      const config = w.config(
        crmConfig({
          audiences: [
            VIP,
            {
              ...PROMO,
              id: 'aud-ghost',
              schedule: { frequency: 'daily', startTime: '05:30', startDate: '2026-11-01' },
            },
          ],
        }),
      );
      const asJson = await w.audex(['plan', '-c', config, '--at', DAY1, '--json']);
      const plan = json<PlanJson>(asJson);
      expect(plan.runs.map((r) => r.audienceId)).toEqual(['aud-vip']);
      expect(plan.problems).toHaveLength(1);
      expect(plan.problems[0]!.audienceId).toBe('aud-ghost');
      expect(plan.problems[0]!.error).toMatch(/aud-ghost is not in snapshot snap-20261120/);
      expect(existsSync(w.out)).toBe(false);
    });
  });

  // ---------------------------------------------------------------------------------------
  describe('a failed run in status and runs', () => {
    it("status shows the failed run's error as the last error; runs --status failed lists it", async () => {
      const f = workspace();
      const failing = f.config(
        crmConfig({
          id: 'acme-fail',
          format: { type: 'parquet', compression: 'none' },
          mapping: [
            { source: 'identityMap.email', target: 'email' },
            { source: 'loyalty.tier', target: 'tier', type: 'int64' },
            { source: 'segmentMembership.status', target: 'status' },
          ],
        }),
      );
      const run = await f.audex(['run', '-c', failing, '--at', DAY1, '--json', '-q']);
      expect(run.code).toBe(4); // values that do not fit their Parquet column type
      const failed = run.json().runs[0]!;
      expect(failed.status).toBe('failed');

      const [asJson, text, history] = await Promise.all([
        f.audex(['status', '-c', failing, '--at', '2026-11-20T07:00:00Z', '--json']),
        f.audex(['status', '-c', failing, '--at', '2026-11-20T07:00:00Z']),
        f.audex(['runs', '-c', failing, '--status', 'failed', '--json']),
      ]);
      const vip = json<{ audiences: Record<string, any>[] }>(ok(asJson)).audiences[0]!;
      expect(vip['lastSuccess']).toBeNull();
      expect(vip['lastError']).toMatchObject({ runId: failed.runId, logicalTime: '2026-11-20T05:30:00.000Z' });
      expect(vip['lastError'].error).toMatch(/int64/);
      // It failed on its input: not kept pending, the next run plans afresh.
      expect(vip['pendingRun']).toBeNull();
      expect(ok(text).stdout).toMatch(new RegExp(`last error:\\s+2026-11-20T05:30:00\\.000Z run ${failed.runId}: `));
      expect(text.stdout).toMatch(/last success: never/);

      const records = ok(history).json().runs;
      expect(records.map((r) => [r.runId, r.status])).toEqual([[failed.runId, 'failed']]);
      expect(records[0]!.error).toMatch(/int64/);
    });
  });

  // ---------------------------------------------------------------------------------------
  describe('audex validate', () => {
    let w: Workspace;
    beforeAll(() => {
      w = workspace();
      // Extra snapshots are added before the tests, which run side by side and list the folder.
      const member = {
        profileId: 'p-1',
        identityMap: { email: [{ id: 'a@example.com' }] },
        loyalty: { tier: 'gold' },
        segmentMembership: {
          ups: { 'aud-vip': { status: 'realized', lastQualificationTime: '2026-11-19T04:00:00Z' } },
        },
      };
      // Persons only (no prospect audience listed).
      addSnapshot(w.snapshots, 'snap-persons', '2026-11-19T05:00:00Z', [member]);
      // Line 2 is not JSON, line 3 has no profile key.
      addSnapshot(w.snapshots, 'snap-bad', '2026-11-19T06:00:00Z', [member, 'this is not json', { noKey: true }]);
    });

    it('accepts a valid config: exit 0, "valid", nothing written', async () => {
      const r = ok(await w.audex(['validate', '-c', w.config(threeAudiences())]));
      expect(r.stdout).toMatch(/valid/);
      expect(r.stdout).not.toMatch(/warning/);
      expect(existsSync(w.out)).toBe(false);
    });

    it('reports every config error at once with its path, exit 2', async () => {
      const config = w.config(
        {
          ...crmConfig(),
          id: 'bad id!',
          format: { type: 'xml', compression: 'zip' },
          fileName: 'no-segment-token',
          mapping: [{ source: 'loyalty.tier', target: 'tier', type: 'float' }],
          mandatory: ['foo.bar'],
          audiences: [VIP, { id: 'aud-x', mode: 'sideways', schedule: { frequency: 'hourly' } }],
        },
        'broken.yaml',
      );
      const r = await w.audex(['validate', '-c', config]);
      expect(r.code).toBe(2);
      for (const where of [
        'id',
        'format.type',
        'format.compression',
        'fileName',
        'mapping[0].type',
        'mandatory[0]',
        'audiences[1].mode',
        'audiences[1].schedule.frequency',
      ]) {
        expect(r.stderr, where).toMatch(new RegExp(`(^|\\s)${where.replace(/[[\].]/g, '\\$&')}: `, 'm'));
      }
      expect(existsSync(w.out)).toBe(false);
    });

    it('warns when fileName has no date/time token and when an incremental audience cannot write exits', async () => {
      const config = w.config(
        crmConfig({
          fileName: '%DESTINATION_NAME%_%SEGMENT_ID%',
          mapping: [
            { source: 'identityMap.email', target: 'email' },
            { source: 'loyalty.tier', target: 'tier' },
          ],
        }),
        'warn.yaml',
      );
      const [text, asJsonResult] = await Promise.all([
        w.audex(['validate', '-c', config]),
        w.audex(['validate', '-c', config, '--json']),
      ]);
      expect(ok(text).stdout).toMatch(/valid/);
      expect(text.stdout).toMatch(/warning: fileName: .*(date|time|DATETIME|TIMESTAMP).*overwrites/i);
      expect(text.stdout).toMatch(
        /warning: audiences\[0\]: aud-vip is incremental but segmentMembership\.status is not mapped/,
      );
      const asJson = json<{ valid: boolean; warnings: string[] }>(ok(asJsonResult));
      expect(asJson.valid).toBe(true);
      expect(asJson.warnings).toHaveLength(2);
      expect(asJson.warnings[0]).toMatch(/^fileName: /);
      expect(asJson.warnings[1]).toMatch(/^audiences\[0\]: /);
    });

    it('with a good --snapshot lists the profiles and the active members per audience (text and --json)', async () => {
      const config = w.config(threeAudiences(), 'three.yaml');
      // Count independently from the fixture parts.
      const folder = path.join(w.snapshots, 'snap-20261120', 'profiles');
      const records = readdirSync(folder).flatMap((f) =>
        readText(path.join(folder, f))
          .split('\n')
          .filter(Boolean)
          .map((l) => JSON.parse(l) as Record<string, any>),
      );
      const active = (id: string) =>
        records.filter((p) => ['realized', 'existing'].includes(p['segmentMembership']?.['ups']?.[id]?.['status']))
          .length;

      const [text, r] = await Promise.all([
        w.audex(['validate', '-c', config, '--snapshot', 'snap-20261120']),
        w.audex(['validate', '-c', config, '--snapshot', 'snap-20261120', '--json']),
      ]);
      expect(ok(text).stdout).toContain(`snapshot snap-20261120: ${records.length} profiles, 0 bad record(s)`);
      for (const id of ['aud-vip', 'aud-churn', 'aud-promo'])
        expect(text.stdout).toMatch(new RegExp(`${id} .*: ${active(id)} active members`));

      const result = json<Record<string, any>>(ok(r));
      expect(sorted(Object.keys(result))).toEqual(['config', 'dataflowId', 'snapshot', 'valid', 'warnings']);
      expect(result).toMatchObject({ valid: true, dataflowId: 'acme-crm', config, warnings: [] });
      expect(sorted(Object.keys(result['snapshot']))).toEqual([
        'audiences',
        'badRecords',
        'errors',
        'profiles',
        'snapshotId',
      ]);
      expect(result['snapshot']).toMatchObject({
        snapshotId: 'snap-20261120',
        profiles: records.length,
        badRecords: 0,
        errors: [],
      });
      expect(result['snapshot'].audiences).toEqual([
        {
          id: 'aud-vip',
          name: 'VIP Customers',
          profileType: 'person',
          activeMembers: active('aud-vip'),
          badRecords: 0,
        },
        {
          id: 'aud-churn',
          name: 'Churn Risk',
          profileType: 'person',
          activeMembers: active('aud-churn'),
          badRecords: 0,
        },
        {
          id: 'aud-promo',
          name: 'Winter Promo',
          profileType: 'person',
          activeMembers: active('aud-promo'),
          badRecords: 0,
        },
      ]);
      expect(existsSync(w.out)).toBe(false);
    });

    it('exits 4 for an unknown --snapshot', async () => {
      const config = w.config(crmConfig(), 'plain.yaml');
      const unknown = await w.audex(['validate', '-c', config, '--snapshot', 'snap-29991231']);
      expect(unknown.code).toBe(4);
      expect(unknown.stderr).toMatch(/snap-29991231 was not found/);
    });

    it('exits 4 naming an audience that is not in the snapshot (snapshot without a prospect audience)', async () => {
      const config = w.config(crmConfig({ audiences: [VIP, { ...VIP, id: 'aud-ghost' }] }), 'ghost1.yaml');
      const r = await w.audex(['validate', '-c', config, '--snapshot', 'snap-persons']);
      expect(r.code).toBe(4);
      expect(r.stderr).toMatch(/aud-ghost is not in snapshot snap-persons/);
    });

    it('exits 4 naming an audience that is not in the snapshot (fixture snapshot, which also lists aud-prospects)', async () => {
      const config = w.config(crmConfig({ audiences: [VIP, { ...VIP, id: 'aud-ghost' }] }), 'ghost2.yaml');
      const r = await w.audex(['validate', '-c', config, '--snapshot', 'snap-20261120']);
      expect(r.stderr).toMatch(/aud-ghost is not in snapshot snap-20261120/);
      expect(r.stdout).toMatch(/aud-ghost: not in this snapshot/);
      // A missing audience is bad input (exit 4), not bad usage: the config itself is fine.
      expect(r.code).toBe(4);
    });

    it('exits 4 with file:line when bad records exceed --max-bad-records, 0 within it', async () => {
      const config = w.config(crmConfig(), 'bad-input.yaml');
      const [strict, lenient] = await Promise.all([
        w.audex(['validate', '-c', config, '--snapshot', 'snap-bad']),
        w.audex(['validate', '-c', config, '--snapshot', 'snap-bad', '--max-bad-records', '2', '--json']),
      ]);
      expect(strict.code).toBe(4);
      const part = path.join('snap-bad', 'profiles', 'part-00000.ndjson');
      expect(strict.stderr).toContain(`${part}:2: `);
      expect(strict.stderr).toContain(`${part}:3: `);
      expect(json<Record<string, any>>(ok(lenient))['snapshot']).toMatchObject({
        profiles: 1,
        badRecords: 2,
        errors: [],
      });
    });

    it('exits 2 for a prospect audience set to incremental', async () => {
      const config = w.config(crmConfig({ audiences: [{ ...VIP, id: 'aud-prospects' }] }), 'prospect.yaml');
      const r = await w.audex(['validate', '-c', config, '--snapshot', 'snap-20261120']);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(/aud-prospects is a prospect audience/);
    });
  });

  // ---------------------------------------------------------------------------------------
  describe('audex init', () => {
    const dirs: string[] = [];
    afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

    it('writes a starter config and sample snapshot that validate and run accept; a second init changes nothing', async () => {
      const dir = mkdtempSync(path.join(tmpdir(), 'audex-init-'));
      dirs.push(dir);
      const init = ok(await runCli(['init'], { cwd: dir }));
      expect(listFiles(dir)).toEqual([
        'audex.yaml',
        'snapshots/sample-20260101/_snapshot.json',
        'snapshots/sample-20260101/profiles/part-00000.ndjson',
      ]);
      expect(readFileSync(path.join(dir, 'audex.yaml'), 'utf8')).toMatch(/^#/m); // commented
      expect(init.stdout).toContain('audex.yaml');

      ok(await runCli(['validate', '--config', 'audex.yaml', '--snapshot', 'sample-20260101'], { cwd: dir }));
      const run = ok(
        await runCli(['run', '--config', 'audex.yaml', '--at', '2026-11-20T07:00:00Z', '--json'], { cwd: dir }),
      ).json();
      expect(run.runs.map((r) => r.status)).toEqual(['success']);
      const written = listFiles(dir).filter((f) => f.endsWith('.csv.gz'));
      expect(written).toHaveLength(1);
      expect(run.runs[0]!.files[0]!.path).toBe(path.join(dir, written[0]!));
      expect(csvRows(path.join(dir, written[0]!))).toBe(run.runs[0]!.counts.rowsWritten);
      expect(run.runs[0]!.counts.rowsWritten).toBeGreaterThan(0);

      const before = tree(dir);
      const again = await runCli(['init'], { cwd: dir });
      expect(again.code).toBe(2);
      expect(again.stderr).toMatch(/already exists/);
      expect(tree(dir)).toEqual(before);
    });
  });

  // ---------------------------------------------------------------------------------------
  describe('audex schema', () => {
    it('prints a draft 2020-12 JSON Schema covering every key of the README example config', async () => {
      const r = ok(await runCli(['schema'], { cwd: ROOT }));
      const schema = JSON.parse(r.stdout) as {
        $schema: string;
        type: string;
        properties: Record<
          string,
          { properties?: Record<string, unknown>; items?: { properties?: Record<string, unknown> } }
        >;
      };
      expect(schema.$schema).toBe('https://json-schema.org/draft/2020-12/schema');
      expect(schema.type).toBe('object');

      const readme = readFileSync(path.join(ROOT, 'README.md'), 'utf8');
      const block = /## The dataflow config[\s\S]*?```yaml\n([\s\S]*?)```/.exec(readme);
      expect(block, 'README has the example config').not.toBeNull();
      const example = parseYaml(block![1]!) as Record<string, any>;
      expect(Object.keys(example).length).toBeGreaterThan(10);
      for (const key of Object.keys(example)) expect(Object.keys(schema.properties), key).toContain(key);
      for (const key of Object.keys(example['format']))
        expect(Object.keys(schema.properties['format']!.properties ?? {}), `format.${key}`).toContain(key);
      for (const m of example['mapping'])
        for (const key of Object.keys(m))
          expect(Object.keys(schema.properties['mapping']!.items?.properties ?? {}), `mapping.${key}`).toContain(key);
      for (const a of example['audiences'])
        for (const key of Object.keys(a))
          expect(Object.keys(schema.properties['audiences']!.items?.properties ?? {}), `audiences.${key}`).toContain(
            key,
          );
      expect(r.stderr).toBe('');
    });

    it('--http prints the HTTP API dataflow schema covering every key of the README example, every auth type with its fields', async () => {
      type Node = { properties?: Record<string, Node>; oneOf?: Node[]; const?: string; items?: Node };
      const schema = JSON.parse(ok(await runCli(['schema', '--http'], { cwd: ROOT })).stdout) as Node & {
        $schema: string;
      };
      expect(schema.$schema).toBe('https://json-schema.org/draft/2020-12/schema');
      const readme = readFileSync(path.join(ROOT, 'README.md'), 'utf8');
      const example = parseYaml(
        /## Send to an HTTP endpoint[\s\S]*?```yaml\n([\s\S]*?)```/.exec(readme)![1]!,
      ) as Record<string, any>;
      for (const key of Object.keys(example)) expect(Object.keys(schema.properties!), key).toContain(key);
      const destination = schema.properties!['destination']!.properties!;
      for (const key of Object.keys(example['destination']))
        expect(Object.keys(destination), `destination.${key}`).toContain(key);
      expect(destination['type']!.const).toBe('http');
      const auth = Object.fromEntries(
        destination['auth']!.oneOf!.map((o) => [o.properties!['type']!.const!, Object.keys(o.properties!)]),
      );
      expect(auth).toEqual({
        none: ['type'],
        bearer: ['type', 'token'],
        oauth2ClientCredentials: ['type', 'tokenUrl', 'clientId', 'clientSecret', 'clientCredentialsType', 'scope'],
        oauth2Password: ['type', 'tokenUrl', 'clientId', 'clientSecret', 'username', 'password', 'scope'],
      });
      expect(Object.keys(schema.properties!['mapping']!.items!.properties!)).toEqual(['source']);
      expect(Object.keys(schema.properties!)).not.toContain('format');
      const both = await runCli(['schema', '--http', '--datasets'], { cwd: ROOT });
      expect(both.code).toBe(2);
      expect(both.stderr).toContain('give --datasets or --http, not both');
    });
  });

  // ---------------------------------------------------------------------------------------
  describe('--help', () => {
    it.concurrent.each(['run', 'export-now', 'plan', 'status', 'runs', 'validate', 'init', 'schema'])(
      'audex %s --help exits 0 with examples',
      async (command) => {
        const r = ok(await runCli([command, '--help'], { cwd: ROOT }));
        expect(r.stdout).toContain(`Usage: audex ${command}`);
        expect(r.stdout).toContain('Examples');
        expect(r.stdout).toContain(`$ audex ${command}`);
      },
    );
  });

  // ---------------------------------------------------------------------------------------
  describe('output discipline', () => {
    it('--json: stdout is exactly one JSON document; progress only on stderr, as plain `audex:` lines', async () => {
      const w = workspace();
      const config = w.config(threeAudiences());
      const run = ok(await w.audex(['run', '-c', config, '--at', DAY1, '--json']));
      expect(() => JSON.parse(run.stdout)).not.toThrow();
      expect(run.stdout.trim().startsWith('{') && run.stdout.trim().endsWith('}')).toBe(true);
      expect(run.stdout).not.toMatch(/audex:/);
      expectPlainProgress(run.stderr);
      expect(run.stderr).toMatch(/^audex: reading snapshot snap-20261120/m);
      expect(run.stderr).toMatch(/^audex: aud-vip: wrote 6 rows/m);

      const [plan, validate] = await Promise.all([
        w.audex(['plan', '-c', config, '--at', DAY2, '--json']),
        w.audex(['validate', '-c', config, '--snapshot', 'snap-20261121', '--json']),
      ]);
      const exportNow = await w.audex([
        'export-now',
        '-c',
        config,
        '-a',
        'aud-churn',
        '--at',
        DAY2,
        '--json',
        '--no-lock',
      ]);
      for (const [name, r] of Object.entries({ plan, validate, exportNow })) {
        expect(r.code, `${name}: ${r.stderr}`).toBe(0);
        expect(() => JSON.parse(r.stdout), name).not.toThrow();
        expect(r.stdout, name).not.toMatch(/^audex:/m);
        if (r.stderr) expectPlainProgress(r.stderr);
      }
      expectPlainProgress(plan.stderr);
      expectPlainProgress(validate.stderr);
    });

    it('a reader that closes the pipe early (`| true`) does not stop a run: it commits and exits 0, with no stack trace', async () => {
      const w = workspace();
      const config = w.config(threeAudiences());
      // The reader exits at once, so every write to the pipe fails with EPIPE.
      const intoClosedPipe = (argv: string[]) => ['bash', '-c', 'set -o pipefail; "$@" | true', 'audex', ...argv];
      const run = await runCli(['run', '-c', config, '--at', DAY1, '--json'], { cwd: w.dir, wrap: intoClosedPipe });
      expect(run.code, run.stderr).toBe(0);
      expect(run.stderr).not.toMatch(/EPIPE|at .*\.js:\d+/);
      expect(w.files().filter((f) => f.endsWith('.csv'))).toHaveLength(2);
      // The next run sees the first one committed: nothing is due again.
      const again = ok(await w.audex(['run', '-c', config, '--at', DAY1, '--json'])).json();
      expect(again.runs.filter((r) => r.status === 'success')).toHaveLength(0);
      const schema = await runCli(['schema'], { cwd: w.dir, wrap: intoClosedPipe });
      expect(schema.code, schema.stderr).toBe(0);
      expect(schema.stderr).toBe('');
    });

    it('--quiet leaves stderr empty on success', async () => {
      const w = workspace();
      const config = w.config(threeAudiences());
      const run = ok(await w.audex(['run', '-c', config, '--at', DAY1, '--quiet']));
      expect(run.stderr).toBe('');
      expect(run.stdout).toMatch(/aud-vip/);
      const [plan, validate] = await Promise.all([
        w.audex(['plan', '-c', config, '--at', DAY2, '-q', '--json']),
        w.audex(['validate', '-c', config, '--snapshot', 'snap-20261120', '-q']),
      ]);
      const exportNow = await w.audex(['export-now', '-c', config, '-a', 'aud-vip', '--at', DAY2, '-q']);
      for (const [name, r] of Object.entries({ plan, validate, exportNow })) {
        expect(r.code, `${name}: ${r.stderr}`).toBe(0);
        expect(r.stderr, name).toBe('');
        expect(r.stdout, name).not.toBe('');
      }
    });
  });

  // ---------------------------------------------------------------------------------------
  describe('--at replays', () => {
    it('the same --at twice: the second run exports nothing, changes nothing and exits 0', async () => {
      const w = workspace();
      const config = w.config(threeAudiences());
      const first = ok(await w.audex(['run', '-c', config, '--at', DAY1, '--json'])).json();
      expect(first.runs.filter((r) => r.status === 'success')).toHaveLength(2);
      const before = tree(w.out);
      const second = ok(await w.audex(['run', '-c', config, '--at', DAY1, '--json'])).json();
      expect(second).toEqual({ dataflowId: 'acme-crm', at: '2026-11-20T06:00:00.000Z', runs: [] });
      expect(tree(w.out)).toEqual(before);
    });

    it('--at without an offset is read as UTC, whatever the machine zone; an offset is honoured', async () => {
      const w = workspace();
      const config = w.config(crmConfig());
      // In Kiritimati (UTC+14) a local reading would be 2026-11-19T16:00Z: before any snapshot.
      const run = ok(
        await w.audex(['run', '-c', config, '--at', '2026-11-20T06:00:00', '--json'], { TZ: 'Pacific/Kiritimati' }),
      ).json();
      expect(run.at).toBe('2026-11-20T06:00:00.000Z');
      expect(run.runs).toHaveLength(1);
      expect(run.runs[0]).toMatchObject({
        status: 'success',
        logicalTime: '2026-11-20T05:30:00.000Z',
        snapshotId: 'snap-20261120',
      });
      expect(path.basename(run.runs[0]!.files[0]!.path)).toBe('Acme_CRM_aud-vip_20261120_053000.csv');
      const [withOffset, invalid] = await Promise.all([
        w.audex(['plan', '-c', config, '--at', '2026-11-21T07:00:00+01:00', '--json'], { TZ: 'Pacific/Kiritimati' }),
        w.audex(['plan', '-c', config, '--at', 'tomorrow']),
      ]);
      expect(json<PlanJson>(ok(withOffset)).at).toBe('2026-11-21T06:00:00.000Z');
      expect(json<PlanJson>(withOffset).runs[0]).toMatchObject({
        logicalTime: '2026-11-21T05:30:00.000Z',
        selection: 'diff',
      });
      expect(invalid.code).toBe(2);
    });
  });

  // ---------------------------------------------------------------------------------------
  // status and runs read the state that runs leave: one workspace, steps in order.
  describe.sequential('audex status and audex runs', () => {
    const STATUS_KEYS = [
      'audienceId',
      'mode',
      'schedule',
      'lastSuccess',
      'nextSlot',
      'baselineSize',
      'keptBaselines',
      'stateBytes',
      'pendingRun',
      'lastError',
    ];
    interface StatusJson {
      dataflowId: string;
      at: string;
      audiences: {
        audienceId: string;
        mode: string;
        schedule: string;
        nextSlot: string | null;
        baselineSize: number | null;
        pendingRun: string | null;
        lastSuccess: {
          runId: string;
          logicalTime: string;
          snapshotId: string | null;
          rowsWritten: number;
          files: number;
        } | null;
        lastError: { runId: string; logicalTime: string; error: string } | null;
      }[];
    }
    let w: Workspace;
    let config: string;
    let day1: ReturnType<CliResult['json']>;
    let day2: ReturnType<CliResult['json']>;
    beforeAll(() => {
      w = workspace();
      config = w.config(threeAudiences());
    });

    it('status before any run: never run, no baseline, the first slot next', async () => {
      const [text, asJson] = await Promise.all([
        w.audex(['status', '-c', config, '--at', '2026-10-31T12:00:00Z']),
        w.audex(['status', '-c', config, '--at', '2026-10-31T12:00:00Z', '--json']),
      ]);
      expect(ok(text).stdout).toMatch(/aud-vip[\s\S]*last success: never/);
      expect(text.stdout).toMatch(/baseline:\s+none/);
      const status = json<StatusJson>(ok(asJson));
      expect(sorted(Object.keys(status))).toEqual(['at', 'audiences', 'dataflowId', 'lockHolder']);
      expect(status).toMatchObject({ dataflowId: 'acme-crm', at: '2026-10-31T12:00:00.000Z' });
      expect(status.audiences.map((a) => a.audienceId)).toEqual(['aud-vip', 'aud-churn', 'aud-promo']);
      for (const a of status.audiences) {
        expect(sorted(Object.keys(a))).toEqual(sorted(STATUS_KEYS));
        expect(a).toMatchObject({
          lastSuccess: null,
          baselineSize: null,
          keptBaselines: 0,
          stateBytes: 0,
          lastError: null,
          pendingRun: null,
        });
      }
      expect(status.audiences[0]!.nextSlot).toBe('2026-11-01T05:30:00.000Z');
      expect(status.audiences[2]!.nextSlot).toBe('2026-11-25T09:00:00.000Z');
      expect(existsSync(w.out)).toBe(false); // status reads only
    });

    it('status after the day-1 run: last success, next slot, baseline of the 6 exported members', async () => {
      day1 = ok(await w.audex(['run', '-c', config, '--at', DAY1, '--json', '-q'])).json();
      const status = json<StatusJson>(
        ok(await w.audex(['status', '-c', config, '--at', '2026-11-20T07:00:00Z', '--json'])),
      );
      expect(status.audiences[0]).toMatchObject({
        lastSuccess: {
          runId: day1.runs[0]!.runId,
          logicalTime: '2026-11-20T05:30:00.000Z',
          snapshotId: 'snap-20261120',
          rowsWritten: 6,
          files: 1,
        },
        nextSlot: '2026-11-21T05:30:00.000Z',
        baselineSize: 6,
      });
    });

    it('status after the day-2 run (two slots late): baseline size 6, next slot, no error', async () => {
      // Three days later, with snap-20261121 the latest: the day-2 diff, slots 21st and 22nd coalesced.
      day2 = ok(await w.audex(['run', '-c', config, '--at', DAY4, '--json', '-q'])).json();
      const vipRun = day2.runs.find((r) => r.audienceId === 'aud-vip' && r.status === 'success')!;
      expect(vipRun).toMatchObject({ snapshotId: 'snap-20261121', counts: { rowsWritten: 4 } });
      const [asJson, text] = await Promise.all([
        w.audex(['status', '-c', config, '--at', '2026-11-23T07:00:00Z', '--json']),
        w.audex(['status', '-c', config, '--at', '2026-11-23T07:00:00Z']),
      ]);
      const status = json<StatusJson>(ok(asJson));
      const [vip, churn, promo] = status.audiences;
      expect(vip).toMatchObject({
        audienceId: 'aud-vip',
        mode: 'incremental',
        lastSuccess: {
          runId: vipRun.runId,
          logicalTime: '2026-11-23T05:30:00.000Z',
          snapshotId: 'snap-20261121',
          rowsWritten: 4,
          files: 1,
        },
        nextSlot: '2026-11-24T05:30:00.000Z',
        // 6 exported on day 1, bob and ivy exited, finn and june entered: still 6 members sent.
        baselineSize: 6,
        lastError: null,
        pendingRun: null,
      });
      // The baseline object really holds that many profiles.
      const baseline = await readParquet(
        path.join(w.out, '_audex', 'acme-crm', 'baselines', 'aud-vip', `${vipRun.runId}.parquet`),
      );
      expect(baseline.rows).toHaveLength(vip!.baselineSize!);
      expect(churn).toMatchObject({
        mode: 'full',
        lastSuccess: { logicalTime: '2026-11-21T05:00:00.000Z', rowsWritten: 4 },
        lastError: null,
      });
      expect(promo).toMatchObject({ lastSuccess: null, nextSlot: '2026-11-25T09:00:00.000Z' });

      expect(ok(text).stdout).toContain(`last success: 2026-11-23T05:30:00.000Z run ${vipRun.runId}, 4 rows`);
      expect(text.stdout).toMatch(/next slot:\s+2026-11-24T05:30:00\.000Z/);
      expect(text.stdout).toMatch(/baseline:\s+6 profiles/);
      expect(text.stdout).not.toMatch(/last error/);
    });

    // Six records: churn and vip on the 20th, churn on the 21st, vip skipped 21st and 22nd, vip on the 23rd.
    const all = () => [...day1.runs, ...day2.runs].sort((a, b) => b.logicalTime.localeCompare(a.logicalTime));

    it('runs lists the whole history newest first, with the same record as the run summary (--json and table)', async () => {
      const [asJson, text] = await Promise.all([
        w.audex(['runs', '-c', config, '--json']),
        w.audex(['runs', '-c', config]),
      ]);
      const history = ok(asJson).json();
      expect(history.dataflowId).toBe('acme-crm');
      expect(history.runs.map((r) => [r.logicalTime, r.audienceId, r.status])).toEqual([
        ['2026-11-23T05:30:00.000Z', 'aud-vip', 'success'],
        ['2026-11-22T05:30:00.000Z', 'aud-vip', 'skipped'],
        ['2026-11-21T05:30:00.000Z', 'aud-vip', 'skipped'],
        ['2026-11-21T05:00:00.000Z', 'aud-churn', 'success'],
        ['2026-11-20T05:30:00.000Z', 'aud-vip', 'success'],
        ['2026-11-20T05:00:00.000Z', 'aud-churn', 'success'],
      ]);
      expect(history.runs.map((r) => r.runId)).toEqual(all().map((r) => r.runId));
      for (const record of history.runs) {
        const fromRun = all().find((r) => r.runId === record.runId)!;
        expect(record).toMatchObject({
          audienceId: fromRun.audienceId,
          mode: fromRun.mode,
          trigger: fromRun.trigger,
          snapshotId: fromRun.snapshotId,
          status: fromRun.status,
          counts: fromRun.counts,
          files: fromRun.files,
        });
      }
      for (const s of history.runs.filter((r) => r.status === 'skipped')) {
        expect(s).toMatchObject({ audienceId: 'aud-vip', snapshotId: null, files: [] });
        expect(JSON.stringify(s)).toContain(history.runs[0]!.runId); // "coalesced into run …"
      }

      const lines = ok(text).stdout.trim().split('\n');
      expect(lines[0]).toMatch(/logical time\s+audience/);
      expect(lines.slice(1).map((l) => l.slice(0, 24))).toEqual(all().map((r) => r.logicalTime));
      expect(lines[2]).toMatch(/aud-vip .*skipped.*coalesced/);
    });

    it('runs filters by --audience, --since (UTC when no offset), --status and --limit', async () => {
      const [byAudience, sinceDate, sinceTime, bySkipped, combined] = await Promise.all([
        w.audex(['runs', '-c', config, '--audience', 'aud-churn', '--json']),
        // Read as UTC even where the machine's zone is behind UTC (08:00Z would drop the 21st's runs).
        w.audex(['runs', '-c', config, '--since', '2026-11-21', '--json'], { TZ: 'America/Los_Angeles' }),
        w.audex(['runs', '-c', config, '--since', '2026-11-21T05:30:00Z', '--limit', '2', '--json']),
        w.audex(['runs', '-c', config, '--status', 'skipped', '--json']),
        w.audex(['runs', '-c', config, '-a', 'aud-vip', '--status', 'success', '-n', '1', '--json']),
      ]);
      const ids = (r: CliResult) =>
        ok(r)
          .json()
          .runs.map((x) => `${x.audienceId}@${x.logicalTime}:${x.status}`);
      expect(ids(byAudience)).toEqual([
        'aud-churn@2026-11-21T05:00:00.000Z:success',
        'aud-churn@2026-11-20T05:00:00.000Z:success',
      ]);
      expect(ids(sinceDate)).toEqual([
        'aud-vip@2026-11-23T05:30:00.000Z:success',
        'aud-vip@2026-11-22T05:30:00.000Z:skipped',
        'aud-vip@2026-11-21T05:30:00.000Z:skipped',
        'aud-churn@2026-11-21T05:00:00.000Z:success',
      ]);
      // At or after 05:30 on the 21st (the churn run at 05:00 is out), at most two: the newest.
      expect(ids(sinceTime)).toEqual([
        'aud-vip@2026-11-23T05:30:00.000Z:success',
        'aud-vip@2026-11-22T05:30:00.000Z:skipped',
      ]);
      expect(ids(bySkipped)).toEqual([
        'aud-vip@2026-11-22T05:30:00.000Z:skipped',
        'aud-vip@2026-11-21T05:30:00.000Z:skipped',
      ]);
      expect(ids(combined)).toEqual(['aud-vip@2026-11-23T05:30:00.000Z:success']);
    });

    it('runs refuses a bad --status or --limit with exit 2', async () => {
      const [status, limit] = await Promise.all([
        w.audex(['runs', '-c', config, '--status', 'succeeded']),
        w.audex(['runs', '-c', config, '--limit', 'ten']),
      ]);
      expect(status.code).toBe(2);
      expect(status.stderr).toMatch(/--status succeeded: expected one of success, failed, skipped/);
      expect(status.stdout).toBe('');
      expect(limit.code).toBe(2);
    });
  });
});
