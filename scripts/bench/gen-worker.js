// Worker: writes part `index` of both snapshots (profiles [start, end)). Each line is
// encoded straight into a 4 MiB buffer per snapshot (no per-line garbage kept alive) and
// the buffer is written with one syscall when full, so generation is CPU-bound.
import { closeSync, openSync, writeSync } from 'node:fs';
import { parentPort } from 'node:worker_threads';
import { profileLines } from './profiles.js';

const SIZE = 1 << 22;

export function writePart({ seed, start, end, files }) {
  const fds = files.map((f) => openSync(f, 'w'));
  const buffers = files.map(() => Buffer.allocUnsafe(SIZE));
  const offsets = [0, 0];
  const counts = [0, 0];
  const bytes = [0, 0];
  const flush = (s) => {
    let done = 0;
    while (done < offsets[s]) done += writeSync(fds[s], buffers[s], done, offsets[s] - done);
    bytes[s] += offsets[s];
    offsets[s] = 0;
  };
  try {
    for (let i = start; i < end; i++) {
      const lines = profileLines(seed, i);
      for (let s = 0; s < 2; s++) {
        const line = lines[s];
        if (line === null) continue;
        // 3 bytes per UTF-16 unit is the UTF-8 worst case, plus the newline.
        if (offsets[s] + line.length * 3 + 1 > SIZE) flush(s);
        offsets[s] += buffers[s].utf8Write(line, offsets[s]);
        buffers[s][offsets[s]++] = 10;
        counts[s]++;
      }
    }
    flush(0);
    flush(1);
  } finally {
    fds.forEach((fd) => closeSync(fd));
  }
  return { counts, bytes };
}

if (parentPort) {
  parentPort.on('message', (task) => {
    try {
      parentPort.postMessage({ id: task.id, result: writePart(task) });
    } catch (error) {
      parentPort.postMessage({ id: task.id, error: String(error && error.stack ? error.stack : error) });
    }
  });
}
