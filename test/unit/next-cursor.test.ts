// The cursor as a reducer: what an audience's cursor becomes after a run, table-tested.
import { describe, expect, it } from 'vitest';
import { nextCursor, type CursorOutcome, type CursorRun } from '../../src/plan/next-cursor.js';
import type { Cursor } from '../../src/state/records.js';

const previous: Cursor = {
  audienceId: 'vip',
  lastSlot: '2026-11-20T05:30:00.000Z',
  runId: 'run-1',
  snapshotId: 's20',
  mode: 'incremental',
  baseline: 'baselines/vip/run-1.parquet',
  baselineSize: 6,
};
const run = (over: Partial<CursorRun> = {}): CursorRun => ({
  audienceId: 'vip',
  runId: 'run-2',
  mode: 'incremental',
  logicalTime: new Date('2026-11-21T05:30:00Z'),
  snapshotId: 's21',
  advancesCursor: true,
  ...over,
});
const moved = { audienceId: 'vip', lastSlot: '2026-11-21T05:30:00.000Z', runId: 'run-2', snapshotId: 's21' };

describe('nextCursor', () => {
  const cases: {
    name: string;
    previous: Cursor | undefined;
    run: CursorRun;
    outcome: CursorOutcome;
    next: Cursor | undefined;
  }[] = [
    {
      name: 'incremental success: slot, snapshot and its own baseline with its size',
      previous,
      run: run(),
      outcome: { status: 'success', baselineSize: 4 },
      next: { ...moved, mode: 'incremental', baseline: 'baselines/vip/run-2.parquet', baselineSize: 4 },
    },
    {
      name: 'incremental success, size not known yet (the planner’s stand-in)',
      previous,
      run: run(),
      outcome: { status: 'success' },
      next: { ...moved, mode: 'incremental', baseline: 'baselines/vip/run-2.parquet' },
    },
    {
      name: 'first run (no cursor yet)',
      previous: undefined,
      run: run(),
      outcome: { status: 'success', baselineSize: 6 },
      next: { ...moved, mode: 'incremental', baseline: 'baselines/vip/run-2.parquet', baselineSize: 6 },
    },
    {
      name: 'full success: no baseline',
      previous,
      run: run({ mode: 'full' }),
      outcome: { status: 'success', baselineSize: 9 },
      next: { ...moved, mode: 'full' },
    },
    { name: 'failed: unchanged', previous, run: run(), outcome: { status: 'failed' }, next: previous },
    { name: 'skipped: unchanged', previous, run: run(), outcome: { status: 'skipped' }, next: previous },
    {
      name: 'export-now success: unchanged',
      previous,
      run: run({ advancesCursor: false, mode: 'full' }),
      outcome: { status: 'success' },
      next: previous,
    },
    {
      name: 'export-now with no cursor: still none',
      previous: undefined,
      run: run({ advancesCursor: false }),
      outcome: { status: 'success' },
      next: undefined,
    },
  ];
  it.each(cases)('$name', ({ previous: before, run: r, outcome, next }) => {
    expect(nextCursor(before, r, outcome)).toEqual(next);
  });

  it('keeps the field order of the cursor file (its bytes stay as before)', () => {
    expect(Object.keys(nextCursor(undefined, run(), { status: 'success', baselineSize: 1 })!)).toEqual([
      'audienceId',
      'lastSlot',
      'runId',
      'snapshotId',
      'mode',
      'baseline',
      'baselineSize',
    ]);
  });
});
