// `audex validate`: the config (every problem at once, exit 2) and, with --snapshot, that
// the snapshot reads within --max-bad-records and has every mapped audience (exit 4).
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { loadConfig, type LoadedConfig } from '../../config/load.js';
import { loadEncryptionKey } from '../../config/load-encryption-key.js';
import type { Dataflow } from '../../config/schema.js';
import { badRecordsFor, loadSnapshot, type PartFile } from '../../engine/load-snapshot.js';
import { activeMembersSql } from '../../engine/select-rows.js';
import { openEngine } from '../../engine/session.js';
import { buildShape } from '../../engine/shape.js';
import { BadInputError, ConfigError } from '../../errors.js';
import { findTemplateProblems } from '../../naming/names.js';
import { openLocations } from '../../run/prepare.js';
import { listParts, listSnapshots, pickSnapshot } from '../../snapshots/list-snapshots.js';
import type { Reporter } from '../reporter.js';
import { parseCount } from '../parse-options.js';
import { createScratchDir } from '../../storage/staging.js';
import { validateDatasets } from './datasets.js';

export interface ValidateFlags {
  config: string;
  snapshot?: string;
  json?: boolean;
  maxBadRecords: string;
  memoryLimit?: string;
}

interface SnapshotCheck {
  snapshotId: string;
  profiles: number;
  badRecords: number;
  audiences: { id: string; name: string | null; profileType: string | null; activeMembers: number | null; badRecords: number }[];
  /** The input does not fit the config (exit 4). */
  errors: string[];
  /** The config does not fit the input's audiences, e.g. incremental on a prospect audience (exit 2). */
  configErrors: string[];
}

/** Things that are allowed but usually a mistake. */
export function configWarnings(dataflow: Dataflow): string[] {
  const warnings = findTemplateProblems(dataflow.folderPath, dataflow.fileName).warnings.map((w) => `fileName: ${w}`);
  const statusMapped = dataflow.mapping.some((m) => m.source === 'segmentMembership.status');
  dataflow.audiences.forEach((a, i) => {
    if (a.mode === 'incremental' && !statusMapped) {
      warnings.push(`audiences[${i}]: ${a.id} is incremental but segmentMembership.status is not mapped, so exits are counted (exitsOmitted) but not written`);
    }
  });
  return warnings;
}

export async function validateCommand(flags: ValidateFlags, reporter: Reporter): Promise<number> {
  const maxBadRecords = parseCount('--max-bad-records', flags.maxBadRecords);
  const loaded = await loadConfig(flags.config);
  if (loaded.kind === 'datasets') {
    if (flags.snapshot !== undefined) throw new ConfigError(`dataflow ${loaded.dataflow.id} exports datasets, which have no snapshots; run \`audex validate\` without --snapshot (it lists the complete batches), or \`audex plan\` to read them`);
    return validateDatasets(loaded, { json: flags.json }, reporter);
  }
  const config = loaded;
  await loadEncryptionKey(config, new Date());
  const { dataflow } = config;
  const warnings = configWarnings(dataflow);
  const snapshot = flags.snapshot === undefined ? null : await checkSnapshot(config, flags.snapshot, maxBadRecords, flags.memoryLimit, reporter);
  const problems = snapshot ? [...snapshot.configErrors, ...snapshot.errors] : [];
  const shown = snapshot && { snapshotId: snapshot.snapshotId, profiles: snapshot.profiles, badRecords: snapshot.badRecords, audiences: snapshot.audiences, errors: problems };
  const result = { valid: problems.length === 0, config: config.file, dataflowId: dataflow.id, warnings, snapshot: shown };
  if (flags.json) reporter.out(JSON.stringify(result, null, 2));
  else {
    const lines = [`config ${config.file}: valid (dataflow ${dataflow.id}, ${dataflow.audiences.length} audience(s))`];
    for (const w of warnings) lines.push(`  warning: ${w}`);
    if (snapshot) {
      lines.push(`snapshot ${snapshot.snapshotId}: ${snapshot.profiles} profiles, ${snapshot.badRecords} bad record(s)`);
      for (const a of snapshot.audiences) {
        lines.push(`  ${a.id}${a.name ? ` "${a.name}" (${a.profileType})` : ''}: ${a.activeMembers === null ? 'not in this snapshot' : `${a.activeMembers} active members`}${a.badRecords ? `, ${a.badRecords} bad entries` : ''}`);
      }
      for (const e of problems) lines.push(`  error: ${e}`);
    }
    reporter.out(lines.join('\n'));
  }
  if (snapshot?.configErrors.length) throw new ConfigError(snapshot.configErrors);
  if (snapshot?.errors.length) throw new BadInputError(snapshot.errors.join('\n'));
  return 0;
}

async function checkSnapshot(
  config: LoadedConfig,
  id: string,
  maxBadRecords: number,
  memoryLimit: string | undefined,
  reporter: Reporter,
): Promise<SnapshotCheck> {
  const { dataflow } = config;
  const { source } = openLocations(config);
  const info = pickSnapshot(await listSnapshots(source), new Date(8.64e15), id);
  if (!info) throw new BadInputError(`snapshot ${id} was not found under ${source.root} (or has no _snapshot.json yet); check the id with \`ls\` or your producer's logs`);
  const shape = buildShape(dataflow);
  const scratchDir = await createScratchDir('validate');
  const engine = await openEngine({ tempDirectory: path.join(scratchDir, 'spill'), memoryLimit });
  try {
    const parts: PartFile[] = [];
    for (const part of await listParts(source, info)) parts.push({ path: await source.fetch(part.key, scratchDir), name: source.describe(part.key), kind: part.kind });
    reporter.progress(`reading snapshot ${info.snapshotId} (${parts.length} part(s))`);
    const loaded = await loadSnapshot(engine, shape, parts, { table: 'snap', scratchDir });
    const [members] = await engine.all<Record<string, string>>(activeMembersSql(shape, 'snap'));
    const errors: string[] = [];
    const configErrors: string[] = [];
    const audiences = dataflow.audiences.map((a, i) => {
      const known = info.audiences.find((s) => s.id === a.id);
      const bad = badRecordsFor(loaded, a.id);
      if (!known) errors.push(`audiences[${i}].id: ${a.id} is not in snapshot ${info.snapshotId} (its audiences: ${info.audiences.map((s) => s.id).join(', ') || 'none'})`);
      else if (known.profileType === 'prospect' && a.mode === 'incremental') configErrors.push(`audiences[${i}].mode: ${a.id} is a prospect audience; prospect audiences export full files only`);
      if (bad.length > maxBadRecords) {
        errors.push(`${a.id}: ${bad.length} bad record(s), more than --max-bad-records ${maxBadRecords}:\n${bad.slice(0, 10).map((b) => `    ${b.file}:${b.line}: ${b.reason}`).join('\n')}`);
      }
      return { id: a.id, name: known?.name ?? null, profileType: known?.profileType ?? null, activeMembers: known ? Number(members?.[`m${i}`] ?? 0) : null, badRecords: bad.length - loaded.badRecords.length };
    });
    return { snapshotId: info.snapshotId, profiles: loaded.profiles, badRecords: loaded.badRecords.length, audiences, errors, configErrors };
  } finally {
    engine.close();
    await rm(scratchDir, { recursive: true, force: true });
  }
}
