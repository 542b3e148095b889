// The slot the next `audex run` exports for a scheduled audience or dataset: one already
// due and not exported yet, else the next one to come. Pure; `audex status` shows it.
import { latestSlotAtOrBefore, nextSlotAfter } from '../schedule/slots.js';

export function nextExportSlot(
  schedule: Parameters<typeof nextSlotAfter>[0],
  timezone: string,
  now: Date,
  lastExported: Date | null,
): Date | null {
  const due = latestSlotAtOrBefore(schedule, timezone, now);
  if (due && (!lastExported || due.getTime() > lastExported.getTime())) return due;
  return nextSlotAfter(schedule, timezone, now);
}
