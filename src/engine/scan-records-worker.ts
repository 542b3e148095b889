// A worker thread that scans NDJSON batch files (scan-records.ts) for the main thread:
// it receives { id, file, name } messages and answers { id, result } or { id, error }.
import { parentPort } from 'node:worker_threads';
import { scanRecordLines } from './scan-records.js';

parentPort?.on('message', (job: { id: number; file: string; name: string }) => {
  scanRecordLines(job.file, job.name).then(
    (result) => parentPort?.postMessage({ id: job.id, result }),
    (error: unknown) =>
      parentPort?.postMessage({ id: job.id, error: error instanceof Error ? error.message : String(error) }),
  );
});
