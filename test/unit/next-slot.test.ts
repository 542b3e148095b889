// The next slot `audex status` shows: one due and not exported yet, else the next to come.
import { describe, expect, it } from 'vitest';
import { nextExportSlot } from '../../src/plan/next-slot.js';
import type { ScheduleSpec } from '../../src/schedule/slots.js';

const daily = { frequency: 'daily', startDate: '2026-11-01', startTime: '05:30' } as ScheduleSpec;
const once = { frequency: 'once', startDate: '2026-11-25', startTime: '09:00' } as ScheduleSpec;
const at = (iso: string) => new Date(iso);

describe('nextExportSlot', () => {
  it.each([
    {
      name: 'never exported: today’s slot is due',
      spec: daily,
      now: '2026-11-20T06:00:00Z',
      last: null,
      next: '2026-11-20T05:30:00.000Z',
    },
    {
      name: 'due slot not exported yet',
      spec: daily,
      now: '2026-11-21T06:00:00Z',
      last: '2026-11-20T05:30:00Z',
      next: '2026-11-21T05:30:00.000Z',
    },
    {
      name: 'due slot exported: the next one',
      spec: daily,
      now: '2026-11-20T06:00:00Z',
      last: '2026-11-20T05:30:00Z',
      next: '2026-11-21T05:30:00.000Z',
    },
    {
      name: 'before the first slot',
      spec: daily,
      now: '2026-10-30T00:00:00Z',
      last: null,
      next: '2026-11-01T05:30:00.000Z',
    },
    {
      name: 'a once schedule already exported: none',
      spec: once,
      now: '2026-11-26T00:00:00Z',
      last: '2026-11-25T09:00:00Z',
      next: null,
    },
  ])('$name', ({ spec, now, last, next }) => {
    expect(nextExportSlot(spec, 'UTC', at(now), last ? at(last) : null)?.toISOString() ?? null).toBe(next);
  });
});
