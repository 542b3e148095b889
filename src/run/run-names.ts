// Where one run's files go: folder, base name, extension and each part's key, all from the
// run's logical time (README "Files, names and the manifest"). Used by the run itself and by `audex plan`.
import type { Dataflow } from '../config/schema.js';
import { ENCRYPTED_SUFFIX, partFileName, resolveBaseName, resolveRelativeDir } from '../naming/names.js';
import type { PlannedRun } from '../plan/plan-runs.js';
import { joinKey } from '../storage/backend.js';
import { formatOf } from '../writers/formats.js';

export interface RunNames {
  folder: string;
  baseName: string;
  ext: string;
  /** Destination key of part n (1-based). */
  partKey(n: number): string;
  manifestName: string;
  manifestKey: string;
}

export function manifestName(dataflowId: string, runId: string): string {
  return `manifest-${dataflowId}-${runId}.json`;
}

export function resolveRunNames(dataflow: Dataflow, run: PlannedRun): RunNames {
  const names = {
    destinationName: dataflow.name,
    segmentId: run.audienceId,
    segmentName: run.audienceName,
    dataflowId: dataflow.id,
    runId: run.runId,
    exportMode: run.mode,
    customText: dataflow.customText ?? '',
    logicalTime: run.logicalTime,
    timezone: dataflow.timezone,
  };
  const folder = resolveRelativeDir(dataflow.folderPath, names);
  const baseName = resolveBaseName(dataflow.fileName, names);
  const ext =
    formatOf(dataflow.format).extension[dataflow.format.compression] +
    (dataflow.format.encryption ? ENCRYPTED_SUFFIX : '');
  const manifest = manifestName(dataflow.id, run.runId);
  return {
    folder,
    baseName,
    ext,
    partKey: (n) => joinKey(folder, partFileName(baseName, ext, n)),
    manifestName: manifest,
    manifestKey: joinKey(folder, manifest),
  };
}
