// Shared pieces of the dataset export tests (README "Export datasets"): a dataset dataflow config, batch
// folders as a producer writes them, and the file names audex must give, computed here
// from the documented rule (README "Export datasets"), not from audex's code.
import { createHash } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';

export const DATAFLOW_ID = 'acme-ds';

export function datasetConfig(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    name: 'Acme Datasets',
    id: DATAFLOW_ID,
    source: { datasets: './datasets' },
    destination: { path: './out' },
    format: { type: 'json', compression: 'none', manifest: true },
    folderPath: 'aep',
    datasets: [
      { id: 'ds-orders', schedule: { frequency: 'every6Hours', startTime: '00:00', startDate: '2026-11-20' } },
    ],
    ...overrides,
  };
}

/** One record line of batch `batch`, record `i` (a fixed, readable shape). */
export const orderLine = (batch: string, i: number): string =>
  JSON.stringify({ orderId: `${batch}-${i}`, total: i * 1.5, paid: i % 2 === 0, items: [{ sku: `s${i}`, qty: i }] });

/**
 * Writes `<root>/<datasetId>/<folder>/` with its parts and, unless `complete` is false,
 * `_batch.json` last (as a producer does).
 */
export function addBatch(
  root: string,
  datasetId: string,
  folder: string,
  committedAt: string,
  parts: Record<string, string | Buffer>,
  complete = true,
): void {
  const dir = path.join(root, datasetId, folder);
  mkdirSync(dir, { recursive: true });
  for (const [name, body] of Object.entries(parts)) writeFileSync(path.join(dir, name), body);
  if (complete) writeFileSync(path.join(dir, '_batch.json'), JSON.stringify({ batchId: folder, committedAt }));
}

/** `n` NDJSON record lines of a batch, newline-terminated. */
export const batchLines = (batch: string, n: number, from = 1): string =>
  Array.from({ length: n }, (_, k) => orderLine(batch, from + k)).join('\n') + '\n';

/** The documented name: part-<index, 5 digits>-<sha256(dataflow, dataset, exportTime, index) as a UUID>-c000<ext>. */
export function expectedPartName(
  datasetId: string,
  exportTime: string,
  index: number,
  ext: string,
  dataflowId = DATAFLOW_ID,
): string {
  const h = createHash('sha256')
    .update([dataflowId, datasetId, exportTime, String(index)].join('\n'))
    .digest('hex');
  return `part-${String(index).padStart(5, '0')}-${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}-c000${ext}`;
}
