import { describe, expect, it } from 'vitest';
import { parseConfigText } from '../../src/config/load.js';
import { deriveRunId, planExportNow, planScheduledRuns } from '../../src/plan/plan-runs.js';
import type { SnapshotInfo } from '../../src/snapshots/list-snapshots.js';
import type { Cursor, PendingRun } from '../../src/state/records.js';

const dataflow = parseConfigText(
  `
name: Plan Test
id: plan-test
source: { snapshots: ./s }
destination: { path: ./o }
format: { type: csv }
mapping: [{ source: identityMap.email }, { source: segmentMembership.status }]
audiences:
  - { id: vip, mode: incremental, schedule: { frequency: daily, startTime: "05:30", startDate: 2026-11-01 } }
  - { id: churn, mode: full, schedule: { frequency: daily, trigger: afterEvaluation } }
  - { id: promo, mode: full, schedule: { frequency: once, startDate: 2026-11-25, startTime: "09:00", endDate: 2026-11-26 } }
`,
  'plan.yaml',
);

const audiences = [
  { id: 'vip', name: 'VIP', profileType: 'person' as const },
  { id: 'churn', name: 'Churn', profileType: 'person' as const },
  { id: 'promo', name: 'Promo', profileType: 'person' as const },
];
const snap = (id: string, at: string): SnapshotInfo => ({
  folder: id,
  snapshotId: id,
  evaluatedAt: new Date(at),
  audiences,
});
const snapshots = [snap('s20', '2026-11-20T05:00:00Z'), snap('s21', '2026-11-21T05:00:00Z')];
const at = (iso: string) => new Date(iso);
const cursor = (audienceId: string, lastSlot: string, extra: Partial<Cursor> = {}): Cursor => ({
  audienceId,
  lastSlot,
  runId: deriveRunId('plan-test', audienceId, 'incremental', 'schedule', new Date(lastSlot)),
  snapshotId: 's20',
  mode: 'incremental',
  ...extra,
});

describe('planScheduledRuns', () => {
  it('backfills on the first run, at the latest due slot, with the latest snapshot not after now', () => {
    const plan = planScheduledRuns({
      dataflow,
      snapshots,
      cursors: new Map(),
      pending: [],
      now: at('2026-11-20T06:00:00Z'),
    });
    const vip = plan.runs.find((r) => r.audienceId === 'vip')!;
    expect(vip.logicalTime.toISOString()).toBe('2026-11-20T05:30:00.000Z');
    expect(vip.snapshot.snapshotId).toBe('s20');
    expect(vip.selection).toEqual({ kind: 'backfill' });
    expect(vip.skippedSlots).toEqual([]);
    const churn = plan.runs.find((r) => r.audienceId === 'churn')!;
    expect(churn.trigger).toBe('afterEvaluation');
    expect(churn.logicalTime.toISOString()).toBe('2026-11-20T05:00:00.000Z');
    expect(plan.idle.map((i) => i.audienceId)).toEqual(['promo']);
  });

  it('diffs against the cursor baseline and coalesces missed slots into the latest one', () => {
    const cursors = new Map([
      ['vip', cursor('vip', '2026-11-20T05:30:00.000Z', { baseline: 'baselines/vip/x.parquet' })],
    ]);
    const plan = planScheduledRuns({ dataflow, snapshots, cursors, pending: [], now: at('2026-11-23T06:00:00Z') });
    const vip = plan.runs.find((r) => r.audienceId === 'vip')!;
    expect(vip.logicalTime.toISOString()).toBe('2026-11-23T05:30:00.000Z');
    expect(vip.selection).toEqual({ kind: 'diff', baselineKey: 'baselines/vip/x.parquet' });
    expect(vip.skippedSlots.map((d) => d.toISOString())).toEqual([
      '2026-11-21T05:30:00.000Z',
      '2026-11-22T05:30:00.000Z',
    ]);
  });

  it('is idle when the latest slot was exported, and names the next slot', () => {
    const cursors = new Map([['vip', cursor('vip', '2026-11-21T05:30:00.000Z', { baseline: 'b' })]]);
    const plan = planScheduledRuns({ dataflow, snapshots, cursors, pending: [], now: at('2026-11-21T23:00:00Z') });
    const idle = plan.idle.find((i) => i.audienceId === 'vip')!;
    expect(idle.nextSlot?.toISOString()).toBe('2026-11-22T05:30:00.000Z');
    expect(plan.runs.some((r) => r.audienceId === 'vip')).toBe(false);
  });

  it('finishes an interrupted run first, exactly as it started, then the newly due slot against its baseline', () => {
    const pending: PendingRun = {
      runId: deriveRunId('plan-test', 'vip', 'incremental', 'schedule', at('2026-11-20T05:30:00Z')),
      audienceId: 'vip',
      mode: 'incremental',
      trigger: 'schedule',
      logicalTime: '2026-11-20T05:30:00.000Z',
      snapshotId: 's20',
      folders: [''],
    };
    const plan = planScheduledRuns({
      dataflow,
      snapshots,
      cursors: new Map(),
      pending: [pending],
      now: at('2026-11-21T06:00:00Z'),
    });
    const vip = plan.runs.filter((r) => r.audienceId === 'vip');
    expect(vip.map((r) => [r.runId, r.snapshot.snapshotId, r.resumed, r.selection.kind])).toEqual([
      [pending.runId, 's20', true, 'backfill'],
      [deriveRunId('plan-test', 'vip', 'incremental', 'schedule', at('2026-11-21T05:30:00Z')), 's21', false, 'diff'],
    ]);
    expect(vip[1]!.selection).toEqual({ kind: 'diff', baselineKey: `baselines/vip/${pending.runId}.parquet` });
  });

  it('drops a pending record whose cursor was already written instead of running it again', () => {
    const runId = deriveRunId('plan-test', 'vip', 'incremental', 'schedule', at('2026-11-21T05:30:00Z'));
    const pending: PendingRun = {
      runId,
      audienceId: 'vip',
      mode: 'incremental',
      trigger: 'schedule',
      logicalTime: '2026-11-21T05:30:00.000Z',
      snapshotId: 's21',
      folders: [''],
    };
    const cursors = new Map([
      ['vip', cursor('vip', '2026-11-21T05:30:00.000Z', { baseline: `baselines/vip/${runId}.parquet` })],
    ]);
    const plan = planScheduledRuns({
      dataflow,
      snapshots,
      cursors,
      pending: [pending],
      now: at('2026-11-21T06:00:00Z'),
    });
    expect(plan.committedPending.map((p) => p.runId)).toEqual([runId]);
    expect(plan.runs.filter((r) => r.audienceId === 'vip')).toEqual([]);
  });

  it('reports a run whose pending snapshot is gone instead of exporting other data under its name', () => {
    const pending: PendingRun = {
      runId: 'r',
      audienceId: 'vip',
      mode: 'incremental',
      trigger: 'schedule',
      logicalTime: '2026-11-20T05:30:00.000Z',
      snapshotId: 'gone',
      folders: [''],
    };
    const plan = planScheduledRuns({
      dataflow,
      snapshots,
      cursors: new Map(),
      pending: [pending],
      now: at('2026-11-21T06:00:00Z'),
    });
    expect(plan.problems.find((p) => p.audienceId === 'vip')?.error).toMatch(/snapshot gone.*pending\/r\.json/);
  });

  it('runs afterEvaluation audiences once per new snapshot', () => {
    const cursors = new Map([['churn', cursor('churn', '2026-11-21T05:00:00.000Z', { mode: 'full' })]]);
    const plan = planScheduledRuns({ dataflow, snapshots, cursors, pending: [], now: at('2026-11-22T00:00:00Z') });
    expect(plan.runs.some((r) => r.audienceId === 'churn')).toBe(false);
    const next = planScheduledRuns({
      dataflow,
      snapshots: [...snapshots, snap('s22', '2026-11-22T05:00:00Z')],
      cursors,
      pending: [],
      now: at('2026-11-22T06:00:00Z'),
    });
    expect(next.runs.find((r) => r.audienceId === 'churn')?.snapshot.snapshotId).toBe('s22');
  });

  it('fails a due run when no snapshot is old enough, and a prospect incremental audience as a config error', () => {
    const early = planScheduledRuns({
      dataflow,
      snapshots,
      cursors: new Map(),
      pending: [],
      now: at('2026-11-19T06:00:00Z'),
    });
    expect(early.problems.find((p) => p.audienceId === 'vip')?.error).toMatch(/no complete snapshot/);
    const prospects = [snap('p', '2026-11-20T05:00:00Z')].map((s) => ({
      ...s,
      audiences: [{ ...audiences[0]!, profileType: 'prospect' as const }],
    }));
    const plan = planScheduledRuns({
      dataflow,
      snapshots: prospects,
      cursors: new Map(),
      pending: [],
      now: at('2026-11-20T06:00:00Z'),
    });
    const problem = plan.problems.find((p) => p.audienceId === 'vip')!;
    expect(problem.kind).toBe('config');
    expect(problem.error).toMatch(/audiences\[0\]\.mode/);
  });
});

describe('planExportNow', () => {
  it('plans a full export-now run that never advances the cursor', () => {
    const plan = planExportNow({ dataflow, snapshots, audienceIds: ['vip'], now: at('2026-11-21T12:00:00Z') });
    expect(plan.refusals).toEqual([]);
    expect(plan.runs[0]).toMatchObject({
      mode: 'full',
      trigger: 'exportNow',
      advancesCursor: false,
      selection: { kind: 'full' },
    });
    expect(plan.runs[0]!.snapshot.snapshotId).toBe('s21');
  });

  it('refuses unmapped audiences and audiences outside their window', () => {
    const plan = planExportNow({
      dataflow,
      snapshots,
      audienceIds: ['nope', 'promo'],
      now: at('2026-11-21T12:00:00Z'),
    });
    expect(plan.refusals).toHaveLength(2);
    expect(plan.refusals[0]).toMatch(/nope is not mapped/);
    expect(plan.refusals[1]).toMatch(/promo.*outside its schedule window/);
  });
});

describe('deriveRunId', () => {
  it('is stable and distinguishes every input', () => {
    const base = deriveRunId('df', 'a', 'full', 'schedule', at('2026-11-20T05:30:00Z'));
    expect(base).toMatch(/^20261120T053000Z-[0-9a-f]{8}$/);
    expect(deriveRunId('df', 'a', 'full', 'schedule', at('2026-11-20T05:30:00Z'))).toBe(base);
    const others = [
      deriveRunId('df2', 'a', 'full', 'schedule', at('2026-11-20T05:30:00Z')),
      deriveRunId('df', 'b', 'full', 'schedule', at('2026-11-20T05:30:00Z')),
      deriveRunId('df', 'a', 'incremental', 'schedule', at('2026-11-20T05:30:00Z')),
      deriveRunId('df', 'a', 'full', 'exportNow', at('2026-11-20T05:30:00Z')),
      deriveRunId('df', 'a', 'full', 'schedule', at('2026-11-20T05:31:00Z')),
    ];
    expect(new Set([base, ...others]).size).toBe(6);
  });
});
