// Where a dataset export run's files go (README "Export datasets"):
//   <destination>/<folderPath>/<datasetId>/exportTime=<YYYYMMDDHHmm>/
//     part-<nnnnn>-<hash>-c000<ext>            nnnnn: the part index from 00000
//     manifest-<dataflowId>-<runId>.json       when format.manifest is on
// <hash> is the first 128 bits of sha256(dataflow id, dataset id, export time, part
// index) in UUID form: unique per dataflow, dataset, slot and part, and the same on every
// retry of the run, so a rerun overwrites exactly the files of its first attempt.
import { createHash } from 'node:crypto';
import type { DatasetDataflow } from '../config/dataset-schema.js';
import {
  ENCRYPTED_SUFFIX,
  fileExtension,
  formatDateTimePattern,
  resolveRelativeDir,
  sanitizeSegment,
} from '../naming/names.js';
import { manifestName } from '../run/run-names.js';
import { joinKey } from '../storage/backend.js';

export interface DatasetRunNames {
  folder: string;
  ext: string;
  exportTime: string;
  partName(index: number): string;
  partKey(index: number): string;
  manifestName: string;
  manifestKey: string;
}

/** `YYYYMMDDHHmm` of the slot, in UTC. */
export function exportTimeOf(logicalTime: Date): string {
  return formatDateTimePattern('YYYYMMddHHmm', logicalTime, 'UTC');
}

export function datasetPartHash(dataflowId: string, datasetId: string, exportTime: string, index: number): string {
  const hex = createHash('sha256')
    .update([dataflowId, datasetId, exportTime, String(index)].join('\n'))
    .digest('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20, 32)}`;
}

export function resolveDatasetRunNames(
  dataflow: DatasetDataflow,
  datasetId: string,
  runId: string,
  logicalTime: Date,
): DatasetRunNames {
  const exportTime = exportTimeOf(logicalTime);
  const base = resolveRelativeDir(dataflow.folderPath, {
    destinationName: dataflow.name,
    segmentId: datasetId,
    segmentName: datasetId,
    dataflowId: dataflow.id,
    runId,
    exportMode: 'incremental',
    customText: dataflow.customText ?? '',
    logicalTime,
    timezone: 'UTC',
  });
  const folder = joinKey(base, sanitizeSegment(datasetId), `exportTime=${exportTime}`);
  const ext =
    fileExtension(dataflow.format.type, dataflow.format.compression) +
    (dataflow.format.encryption ? ENCRYPTED_SUFFIX : '');
  const partName = (index: number) =>
    `part-${String(index).padStart(5, '0')}-${datasetPartHash(dataflow.id, datasetId, exportTime, index)}-c000${ext}`;
  const manifest = manifestName(dataflow.id, runId);
  return {
    folder,
    ext,
    exportTime,
    partName,
    partKey: (index) => joinKey(folder, partName(index)),
    manifestName: manifest,
    manifestKey: joinKey(folder, manifest),
  };
}
