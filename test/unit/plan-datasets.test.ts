// Pure planning of dataset exports (README "Export datasets"): which batches each due slot exports, from
// the batches found, the exported set in the cursor, pending records and now.
import { describe, expect, it } from 'vitest';
import { parseAnyConfigText } from '../../src/config/load.js';
import type { DatasetDataflow } from '../../src/config/dataset-schema.js';
import type { BatchInfo } from '../../src/datasets/list-batches.js';
import {
  deriveDatasetRunId,
  planDatasetRuns,
  type DatasetCursor,
  type DatasetPending,
} from '../../src/datasets/plan-datasets.js';

const parsed = parseAnyConfigText(
  JSON.stringify({
    name: 'P',
    id: 'p',
    source: { datasets: './d' },
    destination: { path: './o' },
    format: { type: 'json' },
    datasets: [{ id: 'ds', schedule: { frequency: 'every6Hours', startTime: '00:00', startDate: '2026-11-20' } }],
  }),
  '/tmp/p.json',
);
if (parsed.kind !== 'datasets') throw new Error('expected a dataset dataflow');
const dataflow: DatasetDataflow = parsed.dataflow;

const batch = (id: string, committedAt: string): BatchInfo => ({
  datasetId: 'ds',
  folder: id,
  batchId: id,
  committedAt: new Date(committedAt),
  parts: [],
});
const cursor = (lastSlot: string, exported: string[]): DatasetCursor => ({
  audienceId: 'ds',
  datasetId: 'ds',
  lastSlot,
  runId: deriveDatasetRunId('p', 'ds', new Date(lastSlot)),
  snapshotId: '',
  mode: 'incremental',
  exportedBatches: exported,
});
const plan = (batches: BatchInfo[], now: string, c?: DatasetCursor, pending: DatasetPending[] = []) =>
  planDatasetRuns({
    dataflow,
    batches: new Map([['ds', batches]]),
    cursors: new Map(c ? [['ds', c]] : []),
    pending,
    now: new Date(now),
  });
const summary = (p: ReturnType<typeof plan>) =>
  p.runs.map((r) => [r.logicalTime.toISOString(), r.batches.map((b) => b.batchId), r.skippedSlots.length, r.resumed]);

describe('planDatasetRuns', () => {
  const b1 = batch('b1', '2026-11-20T01:00:00Z');
  const b2 = batch('b2', '2026-11-20T08:00:00Z');
  const late = batch('late', '2026-11-20T03:00:00Z');

  it.each([
    {
      name: 'nothing due before the first slot',
      batches: [b1],
      now: '2026-11-19T23:00:00Z',
      cursor: undefined,
      runs: [],
    },
    {
      name: 'the first run is a backfill of every batch committed by now',
      batches: [b1, b2],
      now: '2026-11-20T06:30:00Z',
      cursor: undefined,
      runs: [['2026-11-20T06:00:00.000Z', ['b1'], 0, false]],
    },
    {
      name: 'a later run takes only batches not yet exported, a late one included',
      batches: [b1, late, b2],
      now: '2026-11-20T12:00:00Z',
      cursor: cursor('2026-11-20T06:00:00Z', ['b1']),
      runs: [['2026-11-20T12:00:00.000Z', ['late', 'b2'], 0, false]],
    },
    {
      name: 'a slot already exported is idle',
      batches: [b1, b2],
      now: '2026-11-20T11:59:00Z',
      cursor: cursor('2026-11-20T06:00:00Z', ['b1']),
      runs: [],
    },
    {
      name: 'missed slots coalesce into the latest',
      batches: [b1, b2],
      now: '2026-11-21T07:00:00Z',
      cursor: cursor('2026-11-20T06:00:00Z', ['b1']),
      runs: [['2026-11-21T06:00:00.000Z', ['b2'], 3, false]],
    },
    {
      name: 'an empty increment is still a run',
      batches: [b1],
      now: '2026-11-20T12:00:00Z',
      cursor: cursor('2026-11-20T06:00:00Z', ['b1']),
      runs: [['2026-11-20T12:00:00.000Z', [], 0, false]],
    },
  ])('$name', ({ batches, now, cursor: c, runs }) => {
    expect(summary(plan(batches, now, c))).toEqual(runs);
  });

  it('an interrupted run is finished with its own batches first; newer batches go to the next due slot', () => {
    const pending: DatasetPending = {
      runId: deriveDatasetRunId('p', 'ds', new Date('2026-11-20T06:00:00Z')),
      audienceId: 'ds',
      datasetId: 'ds',
      mode: 'incremental',
      trigger: 'schedule',
      logicalTime: '2026-11-20T06:00:00.000Z',
      snapshotId: '',
      folders: [],
      batchIds: ['b1'],
    };
    const p = plan([b1, late, b2], '2026-11-20T12:30:00Z', undefined, [pending]);
    expect(summary(p)).toEqual([
      ['2026-11-20T06:00:00.000Z', ['b1'], 0, true],
      ['2026-11-20T12:00:00.000Z', ['late', 'b2'], 0, false],
    ]);
    expect(p.runs[1]!.exportedBefore).toEqual(['b1']);
  });

  it('a pending run whose cursor was written is committed; one whose batch is gone is a problem', () => {
    const base = {
      audienceId: 'ds',
      datasetId: 'ds',
      mode: 'incremental' as const,
      trigger: 'schedule' as const,
      snapshotId: '',
      folders: [],
    };
    const done: DatasetPending = { ...base, runId: 'r1', logicalTime: '2026-11-20T06:00:00.000Z', batchIds: ['b1'] };
    expect(
      plan([b1], '2026-11-20T07:00:00Z', cursor('2026-11-20T06:00:00Z', ['b1']), [done]).committedPending.map(
        (x) => x.runId,
      ),
    ).toEqual(['r1']);
    const gone: DatasetPending = {
      ...base,
      runId: 'r2',
      logicalTime: '2026-11-20T06:00:00.000Z',
      batchIds: ['b-gone'],
    };
    const p = plan([b1], '2026-11-20T07:00:00Z', undefined, [gone]);
    expect(p.runs).toEqual([]);
    expect(p.problems[0]!.error).toMatch(/exported batch\(es\) b-gone, which are gone/);
  });
});
