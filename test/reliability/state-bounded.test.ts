// README "State and safety" "state stays bounded" over many runs: `audex run` stepping --at by 6 hours over
// small generated snapshots (a new one every 12 hours), three incremental audiences
// (every 3, 6 and 24 hours) and a full one, an occasional export-now, and about one
// invocation in four killed at a random crash point (AUDEX_CRASH_AT, seeded). After a last
// clean run, the state location holds exactly a cursor per audience, at most
// state.keepBaselines baselines per incremental audience (the cursor's among them) and the
// history: no pending record, lock, takeover claim, probe object or temp file; the
// destination holds no temp file; the temp folder (TMPDIR) holds no audex scratch folder.
//
// `npm test` runs about 60 runs (~20 s). CI also runs it with AUDEX_STATE_RUNS=1000
// (.ci/run): the same test, a thousand runs.
import { afterAll, describe, expect, it } from 'vitest';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { stringify as toYaml } from 'yaml';
import { listFiles, runCli } from '../helpers/harness.js';
import { describeProc, reliabilityDataflow, seededRandom } from '../helpers/reliability.js';
import { CRASH_POINTS } from '../../src/run/crash-points.js';
import { parseHistoryKey, stateKeys } from '../../src/state/state-keys.js';

const TARGET_RUNS = Number(process.env['AUDEX_STATE_RUNS'] ?? 60);
const START = Date.parse('2026-11-01T00:00:00Z');
const HOUR = 3_600_000;
const STEP_HOURS = 6;
const PROFILES = 30;
const KEEP = 2;
const KEEP_DAYS = 20;
const INCREMENTAL = ['inc-3h', 'inc-6h', 'inc-daily'];
const FULL = 'full-12h';
const AUDIENCES = [...INCREMENTAL, FULL];

const work = mkdtempSync(path.join(tmpdir(), 'audex-bounded-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** A snapshot every 12 hours from START, memberships drifting with a seeded PRNG. */
function writeSnapshots(root: string, count: number): void {
  const random = seededRandom(17);
  const member: Record<string, boolean[]> = Object.fromEntries(
    AUDIENCES.map((a) => [a, Array.from({ length: PROFILES }, () => random() < 0.5)]),
  );
  for (let s = 0; s < count; s++) {
    const evaluatedAt = new Date(START + s * 12 * HOUR).toISOString();
    const id = `snap-${String(s).padStart(4, '0')}`;
    mkdirSync(path.join(root, id, 'profiles'), { recursive: true });
    const lines: string[] = [];
    for (let p = 0; p < PROFILES; p++) {
      const ups: Record<string, unknown> = {};
      for (const a of AUDIENCES) {
        if (random() < 0.15) member[a]![p] = !member[a]![p];
        if (member[a]![p]) ups[a] = { status: 'existing', lastQualificationTime: evaluatedAt };
      }
      lines.push(
        JSON.stringify({
          profileId: `p-${p}`,
          identityMap: { email: [{ id: `p${p}@example.com` }] },
          loyalty: { tier: p % 3 ? 'gold' : 'silver' },
          segmentMembership: { ups },
        }),
      );
    }
    writeFileSync(path.join(root, id, 'profiles', 'part-00000.ndjson'), `${lines.join('\n')}\n`);
    writeFileSync(
      path.join(root, id, '_snapshot.json'),
      JSON.stringify({
        snapshotId: id,
        evaluatedAt,
        audiences: AUDIENCES.map((a) => ({ id: a, name: a, profileType: 'person' })),
      }),
    );
  }
}

describe('state after many runs, some killed', () => {
  it(
    `holds only cursors, at most ${KEEP} baselines per audience and the history after ~${TARGET_RUNS} runs`,
    async () => {
      // Each invocation runs about 2.5 audiences' slots; snapshots cover the whole span.
      const invocations = Math.ceil(TARGET_RUNS / 2.2) + 4;
      const snapshots = path.join(work, 'snapshots');
      writeSnapshots(snapshots, Math.ceil((invocations * STEP_HOURS) / 12) + 2);
      const temp = path.join(work, 'tmp');
      mkdirSync(temp);
      const state = path.join(work, 'state');
      const out = path.join(work, 'out');
      const schedule = (frequency: string) => ({ frequency, startTime: '00:00', startDate: '2026-11-01' });
      const config = path.join(work, 'dataflow.yaml');
      writeFileSync(
        config,
        toYaml(
          reliabilityDataflow({
            name: 'Bounded',
            id: 'bounded',
            snapshots,
            destination: out,
            state: { path: state, keepBaselines: KEEP, keepHistoryDays: KEEP_DAYS },
            columns: { 'identityMap.email': 'email', 'loyalty.tier': 'tier', 'segmentMembership.status': 'status' },
            audiences: [
              { id: 'inc-3h', mode: 'incremental', schedule: schedule('every3Hours') },
              { id: 'inc-6h', mode: 'incremental', schedule: schedule('every6Hours') },
              { id: 'inc-daily', mode: 'incremental', schedule: schedule('daily') },
              { id: FULL, mode: 'full', schedule: schedule('every12Hours') },
            ],
          }),
        ),
      );
      const env = { TMPDIR: temp };
      const random = seededRandom(1000);
      let runs = 0;
      let kills = 0;
      let at = START;
      for (let i = 0; runs < TARGET_RUNS || i < 4; i++) {
        at += STEP_HOURS * HOUR;
        const crash =
          random() < 0.25
            ? `${CRASH_POINTS[Math.floor(random() * CRASH_POINTS.length)]}:${1 + Math.floor(random() * 2)}`
            : null;
        const args =
          i % 9 === 4
            ? [
                'export-now',
                '--config',
                config,
                '--audience',
                'inc-6h',
                '--at',
                new Date(at - HOUR).toISOString(),
                '--json',
                '-q',
              ]
            : ['run', '--config', config, '--at', new Date(at).toISOString(), '--json', '-q'];
        const p = await runCli(args, { cwd: work, env: crash ? { ...env, AUDEX_CRASH_AT: crash } : env });
        if (p.signal === 'SIGKILL') {
          kills += 1;
          continue;
        }
        expect(p.code, `${args.join(' ')} ${crash ?? ''}\n${describeProc(p)}`).toBe(0);
        runs += (JSON.parse(p.stdout) as { runs: { status: string }[] }).runs.filter(
          (r) => r.status === 'success',
        ).length;
      }
      // The last invocation, never killed, finishes whatever the kills left.
      at += STEP_HOURS * HOUR;
      const last = await runCli(['run', '--config', config, '--at', new Date(at).toISOString(), '--json', '-q'], {
        cwd: work,
        env,
      });
      expect(last.code, describeProc(last)).toBe(0);
      expect(kills, 'some invocations were killed').toBeGreaterThan(0);

      const keys = listFiles(state);
      const cursors = Object.fromEntries(
        AUDIENCES.map((a) => [
          a,
          JSON.parse(readFileSync(path.join(state, stateKeys.cursor(a)), 'utf8')) as {
            runId: string;
            baseline?: string;
          },
        ]),
      );
      const history = keys.filter((k) => k.startsWith(`${stateKeys.historyPrefix}/`));
      const baselines = keys.filter((k) => k.startsWith('baselines/'));
      // Exactly: a cursor per audience, baselines, history; nothing else (pending, lock, lock-takeover, lock-probe, temp).
      expect(keys.filter((k) => !history.includes(k) && !baselines.includes(k))).toEqual(
        AUDIENCES.map((a) => stateKeys.cursor(a)).sort(),
      );
      for (const a of INCREMENTAL) {
        const mine = baselines.filter((k) => k.startsWith(`${stateKeys.baselinePrefix(a)}/`));
        expect(mine.length, a).toBeLessThanOrEqual(KEEP);
        expect(mine, a).toContain(cursors[a]!.baseline);
        expect(
          mine.every((k) => /^baselines\/[^/]+\/\d{8}T\d{6}Z-[0-9a-f]{8}\.parquet$/.test(k)),
          a,
        ).toBe(true);
      }
      expect(
        baselines.filter((k) => !INCREMENTAL.some((a) => k.startsWith(`${stateKeys.baselinePrefix(a)}/`))),
      ).toEqual([]);
      // The history: records only (no temp file), none older than keepHistoryDays, and each
      // audience's newest success is the run its cursor names.
      const entries = history.map((k) => parseHistoryKey(k));
      expect(history.filter((_, i) => !entries[i] || entries[i]!.legacy)).toEqual([]);
      const oldest = new Date(at - KEEP_DAYS * 24 * HOUR)
        .toISOString()
        .replace(/[-:]/g, '')
        .replace(/\.\d+Z$/, 'Z');
      expect(entries.filter((e) => e!.runId.slice(0, 16) < oldest).map((e) => e!.key)).toEqual([]);
      for (const a of AUDIENCES) {
        const newest = entries
          .filter((e) => e!.audienceTag === a && e!.status === 'success')
          .map((e) => e!.runId)
          .sort()
          .at(-1);
        const scheduled = history
          .filter((k) => k.includes(`.success.${a}.json`))
          .map((k) => JSON.parse(readFileSync(path.join(state, k), 'utf8')) as { runId: string; trigger: string });
        expect(
          scheduled
            .filter((r) => r.trigger !== 'exportNow')
            .map((r) => r.runId)
            .sort()
            .at(-1),
          a,
        ).toBe(cursors[a]!.runId);
        expect(newest, a).toBeDefined();
      }
      expect(listFiles(out).filter((f) => path.basename(f).startsWith('.'))).toEqual([]);
      expect(readdirSync(temp).filter((name) => name.startsWith('audex-'))).toEqual([]);
    },
    Math.max(120_000, TARGET_RUNS * 2_000),
  );
});
