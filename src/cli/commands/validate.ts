// `audex validate`: the config (every problem at once, exit 2) and, with --snapshot, that
// the snapshot reads within --max-bad-records and has every mapped audience (exit 4).
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { loadConfig, type LoadedConfig } from '../../config/load.js';
import { loadEncryptionKey } from '../../config/load-encryption-key.js';
import type { Dataflow } from '../../config/schema.js';
import { badRecordsFor, loadSnapshot } from '../../engine/load-snapshot.js';
import { activeMembersSql } from '../../engine/select-rows.js';
import { openEngine } from '../../engine/session.js';
import { buildShape } from '../../engine/shape.js';
import { BadInputError, ConfigError, messageOf } from '../../errors.js';
import { findTemplateProblems, findTimeResolution, TIME_LEVELS, type TimeLevel } from '../../naming/names.js';
import { fetchParts, openLocations } from '../../run/prepare.js';
import { listSnapshots, pickSnapshot, type BrokenSnapshot, type SnapshotInfo } from '../../snapshots/list-snapshots.js';
import type { Reporter } from '../reporter.js';
import type { CommandOptions } from '../program.js';
import { forEachConfig } from '../several-dataflows.js';
import { createScratchDir } from '../../storage/staging.js';
import { validateDatasets } from './datasets.js';

export type ValidateFlags = CommandOptions<'validate'>;

interface SnapshotCheck {
  snapshotId: string;
  profiles: number;
  badRecords: number;
  audiences: {
    id: string;
    name: string | null;
    profileType: string | null;
    activeMembers: number | null;
    badRecords: number;
  }[];
  /** The input does not fit the config (exit 4). */
  errors: string[];
  /** The config does not fit the input's audiences, e.g. incremental on a prospect audience (exit 2). */
  configErrors: string[];
}

/** The date/time levels a schedule's runs need in their names so that none overwrites another. */
function levelsNeeded(schedule: Dataflow['audiences'][number]['schedule']): TimeLevel[] {
  const upTo = (level: TimeLevel) => TIME_LEVELS.slice(0, TIME_LEVELS.indexOf(level) + 1);
  if (schedule.trigger === 'afterEvaluation') return upTo('day');
  switch (schedule.frequency) {
    case 'once':
      return [];
    case 'monthly':
      return upTo('month');
    case 'daily':
    case 'weekly':
      return upTo('day');
    default:
      return upTo('hour');
  }
}

/** Runs whose names differ by less than their schedule's period overwrite each other's files. */
function overwriteWarnings(dataflow: Dataflow): string[] {
  const { levels, literalPatterns } = findTimeResolution(dataflow.folderPath, dataflow.fileName);
  const warnings = literalPatterns.map(
    (p) =>
      `fileName: ${p} holds no date/time letter (YYYY, MM, dd, HH, mm, ss), so it is written literally and tells no two runs apart`,
  );
  if (levels === 'unique' || levels.size === 0) return warnings;
  const missing = (needed: readonly TimeLevel[]) => needed.filter((l) => !levels.has(l));
  const overwrites =
    'each such run overwrites the file of an earlier run, whose manifest then describes a file that is gone';
  dataflow.audiences.forEach((a, i) => {
    const lacking = missing(levelsNeeded(a.schedule));
    if (lacking.length === 0) return;
    const when = a.schedule.trigger === 'afterEvaluation' ? 'after each evaluation' : a.schedule.frequency;
    warnings.push(
      `fileName: folderPath and fileName do not write the ${lacking.join(', ')} of the run time, but audiences[${i}] (${a.id}) runs ${when}: ${overwrites}. Add the missing letters to %DATETIME(...)%, or use %TIMESTAMP% or %RUN_ID%`,
    );
  });
  const lacking = missing(TIME_LEVELS);
  if (lacking.length > 0) {
    warnings.push(
      `fileName: folderPath and fileName do not write the ${lacking.join(', ')} of the run time, so an export-now run can get the name of a scheduled run (or of another export-now): ${overwrites}. Use %DATETIME(YYYYMMdd_HHmmss)%, %TIMESTAMP% or %RUN_ID% to keep every run's file`,
    );
  }
  return warnings;
}

/** Things that are allowed but usually a mistake. */
export function configWarnings(dataflow: Dataflow): string[] {
  const warnings = findTemplateProblems(dataflow.folderPath, dataflow.fileName).warnings.map((w) => `fileName: ${w}`);
  warnings.push(...overwriteWarnings(dataflow));
  const statusMapped = dataflow.mapping.some((m) => m.source === 'segmentMembership.status');
  dataflow.audiences.forEach((a, i) => {
    if (a.mode === 'incremental' && !statusMapped) {
      warnings.push(
        `audiences[${i}]: ${a.id} is incremental but segmentMembership.status is not mapped, so exits are counted (exitsOmitted) but not written`,
      );
    }
  });
  return warnings;
}

export async function validateCommand(flags: ValidateFlags, reporter: Reporter): Promise<number> {
  return forEachConfig('validate', flags, reporter, validateOne);
}

async function validateOne(flags: ValidateFlags & { config: string }, reporter: Reporter): Promise<number> {
  const { maxBadRecords, memoryLimit } = flags;
  const loaded = await loadConfig(flags.config);
  if (loaded.kind === 'datasets') {
    Object.assign(reporter.context, { config: loaded.file, dataflowId: loaded.dataflow.id });
    if (flags.snapshot !== undefined)
      throw new ConfigError(
        `dataflow ${loaded.dataflow.id} exports datasets, which have no snapshots; run \`audex validate\` without --snapshot (it lists the complete batches), or \`audex plan\` to read them`,
      );
    return validateDatasets(loaded, { json: flags.json }, reporter);
  }
  if (loaded.kind === 'http') return (await import('./http.js')).httpValidateCommand(loaded, flags, reporter);
  const config = loaded;
  await loadEncryptionKey(config, new Date());
  const { dataflow } = config;
  Object.assign(reporter.context, { config: config.file, dataflowId: dataflow.id });
  const warnings = configWarnings(dataflow);
  const snapshot =
    flags.snapshot === undefined
      ? null
      : await checkSnapshot(config, flags.snapshot, maxBadRecords, memoryLimit, reporter, warnings);
  const metadata = flags.snapshot === undefined ? await checkMetadata(config, warnings) : null;
  const problems = snapshot ? [...snapshot.configErrors, ...snapshot.errors] : [];
  const configErrors = [...(snapshot?.configErrors ?? []), ...(metadata?.configErrors ?? [])];
  const failure = configErrors.length
    ? new ConfigError(configErrors)
    : snapshot?.errors.length
      ? new BadInputError(snapshot.errors.join('\n'))
      : null;
  const shown = snapshot && {
    snapshotId: snapshot.snapshotId,
    profiles: snapshot.profiles,
    badRecords: snapshot.badRecords,
    audiences: snapshot.audiences,
    errors: problems,
  };
  const result = {
    valid: failure === null,
    config: config.file,
    dataflowId: dataflow.id,
    warnings,
    snapshot: shown,
    ...(metadata ? { latestSnapshot: metadata.latest } : {}),
    ...(failure ? { error: { exitCode: failure.exitCode, message: failure.message } } : {}),
  };
  if (flags.json) reporter.out(JSON.stringify(result, null, 2));
  else {
    const lines = [
      `config ${config.file}: ${failure ? 'INVALID' : 'valid'} (dataflow ${dataflow.id}, ${dataflow.audiences.length} audience(s))`,
    ];
    for (const w of warnings) lines.push(`  warning: ${w}`);
    if (metadata) {
      lines.push(
        metadata.latest
          ? `latest complete snapshot ${metadata.latest} (metadata checked; use --snapshot ${metadata.latest} to read its profiles too)`
          : metadata.note,
      );
      for (const e of metadata.configErrors) lines.push(`  error: ${e}`);
    }
    if (snapshot) {
      lines.push(
        `snapshot ${snapshot.snapshotId}: ${snapshot.profiles} profiles, ${snapshot.badRecords} bad record(s)`,
      );
      for (const a of snapshot.audiences) {
        lines.push(
          `  ${a.id}${a.name ? ` "${a.name}" (${a.profileType})` : ''}: ${a.activeMembers === null ? 'not in this snapshot' : `${a.activeMembers} active members`}${a.badRecords ? `, ${a.badRecords} bad entries` : ''}`,
        );
      }
      for (const e of problems) lines.push(`  error: ${e}`);
    }
    reporter.out(lines.join('\n'));
  }
  if (failure) throw failure;
  return 0;
}

/** The config problems a snapshot's audiences reveal: an audience it does not define, or incremental on a prospect one. */
function audienceProblems(dataflow: Dataflow, info: SnapshotInfo): { missing: string[]; configErrors: string[] } {
  const missing: string[] = [];
  const configErrors: string[] = [];
  dataflow.audiences.forEach((a, i) => {
    const known = info.audiences.find((s) => s.id === a.id);
    if (!known)
      missing.push(
        `audiences[${i}].id: ${a.id} is not in snapshot ${info.snapshotId} (its audiences: ${info.audiences.map((s) => s.id).join(', ') || 'none'})`,
      );
    else if (known.profileType === 'prospect' && a.mode === 'incremental')
      configErrors.push(
        `audiences[${i}].mode: ${a.id} is a prospect audience; prospect audiences export full files only`,
      );
  });
  return { missing, configErrors };
}

/**
 * Without --snapshot: the latest complete snapshot's metadata (its _snapshot.json, never
 * the profiles), when the source can be read, for the config errors only it reveals.
 */
async function checkMetadata(
  config: LoadedConfig,
  warnings: string[],
): Promise<{ latest: string | null; note: string; configErrors: string[] }> {
  const { source } = openLocations(config);
  let snapshots: SnapshotInfo[];
  try {
    snapshots = await listSnapshots(source, (b) =>
      warnings.push(`snapshot folder ${b.folder} is skipped: ${b.message}`),
    );
  } catch (error) {
    return {
      latest: null,
      note: `the snapshot source ${source.root} could not be read (${messageOf(error)}); the config was checked alone`,
      configErrors: [],
    };
  }
  const latest = pickSnapshot(snapshots, new Date());
  if (!latest)
    return {
      latest: null,
      note: `no complete snapshot under ${source.root} yet; the config was checked alone`,
      configErrors: [],
    };
  const { missing, configErrors } = audienceProblems(config.dataflow, latest);
  return { latest: latest.snapshotId, note: '', configErrors: [...missing, ...configErrors] };
}

async function checkSnapshot(
  config: LoadedConfig,
  id: string,
  maxBadRecords: number,
  memoryLimit: string | undefined,
  reporter: Reporter,
  warnings: string[],
): Promise<SnapshotCheck> {
  const { dataflow } = config;
  const { source } = openLocations(config);
  const broken: BrokenSnapshot[] = [];
  const info = pickSnapshot(await listSnapshots(source, (b) => broken.push(b)), new Date(8.64e15), id);
  for (const b of broken) {
    if (b.folder === id || b.snapshotId === id) throw new BadInputError(b.message);
    warnings.push(`snapshot folder ${b.folder} is skipped: ${b.message}`);
  }
  if (!info)
    throw new BadInputError(
      `snapshot ${id} was not found under ${source.root} (or has no _snapshot.json yet); check the id with \`ls\` or your producer's logs`,
    );
  const shape = buildShape(dataflow);
  const scratchDir = await createScratchDir('validate');
  const engine = await openEngine({ tempDirectory: path.join(scratchDir, 'spill'), memoryLimit });
  try {
    const parts = await fetchParts(source, info, scratchDir);
    reporter.progress(`reading snapshot ${info.snapshotId} (${parts.length} part(s))`);
    const loaded = await loadSnapshot(engine, shape, parts, { table: 'snap', scratchDir });
    const [members] = await engine.all<Record<string, string>>(activeMembersSql(shape, 'snap'));
    const { missing: errors, configErrors } = audienceProblems(dataflow, info);
    const audiences = dataflow.audiences.map((a, i) => {
      const known = info.audiences.find((s) => s.id === a.id);
      const bad = badRecordsFor(loaded, a.id);
      if (bad.length > maxBadRecords) {
        const more = bad.length > 10 ? [`    … and ${bad.length - 10} more`] : [];
        errors.push(
          [
            `${a.id}: ${bad.length} bad record(s), more than --max-bad-records ${maxBadRecords}:`,
            ...bad.slice(0, 10).map((b) => `    ${b.file}:${b.line}: ${b.reason}`),
            ...more,
          ].join('\n'),
        );
      }
      return {
        id: a.id,
        name: known?.name ?? null,
        profileType: known?.profileType ?? null,
        activeMembers: known ? Number(members?.[`m${i}`] ?? 0) : null,
        badRecords: bad.length - loaded.badRecords.length,
      };
    });
    return {
      snapshotId: info.snapshotId,
      profiles: loaded.profiles,
      badRecords: loaded.badRecords.length,
      audiences,
      errors,
      configErrors,
    };
  } finally {
    engine.close();
    await rm(scratchDir, { recursive: true, force: true });
  }
}
