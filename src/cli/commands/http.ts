// The commands of an HTTP API dataflow (README "Send to an HTTP endpoint"): run, plan (counts per trigger,
// --show-messages N), status (outbox acknowledged / total, dead letters), validate and
// redrive. `export-now` is refused: every new snapshot is delivered, there is no file.
import { rm } from 'node:fs/promises';
import path from 'node:path';
import type { LoadedHttpConfig } from '../../config/load.js';
import { endpointUrl, headerPairs, messagesPerRequest } from '../../config/http-schema.js';
import { createAuthenticator } from '../../delivery/auth.js';
import { sendRequests, type OutgoingRequest } from '../../delivery/send-requests.js';
import { firstMessages, keepNextBaseline, loadBaseline } from '../../engine/http-diff.js';
import { openEngine } from '../../engine/session.js';
import { ConfigError, EXIT, messageOf } from '../../errors.js';
import {
  audienceLabel,
  buildDiff,
  checkProspects,
  httpShape,
  mappedAtFor,
  messageOptions,
  openHttpLocations,
  planHttpRuns,
} from '../../run/http-build.js';
import { listSnapshots } from '../../snapshots/list-snapshots.js';
import { createScratchDir } from '../../storage/staging.js';
import {
  httpKeys,
  listDeadLetters,
  readAcks,
  readJsonObject,
  type DeadLetter,
  type HttpCursor,
  type OutboxSeal,
} from '../../state/http-state.js';
import { acquireLock, NO_LOCK } from '../../state/lock.js';
import { StateStore } from '../../state/state-store.js';
import type { RunRecord } from '../../state/records.js';
import type { Reporter } from '../reporter.js';
import type { AudienceStatus } from './status.js';

/** The flags of run, plan, status, validate and redrive (program.ts parses and types them). */
interface CommonFlags {
  config: string;
  at?: Date;
  snapshot?: string;
  json?: boolean;
  maxBadRecords?: number;
  memoryLimit?: string;
  lock?: boolean;
  showMessages?: number;
}

export function refuseExportNow(config: LoadedHttpConfig): never {
  throw new ConfigError(
    `export-now does not apply to HTTP API dataflow ${config.dataflow.id} (${config.file}): it delivers profile changes of every new snapshot, there is no file to export. Use \`audex run\``,
  );
}

export async function httpPlanCommand(
  config: LoadedHttpConfig,
  flags: CommonFlags,
  reporter: Reporter,
): Promise<number> {
  const now = flags.at ?? new Date();
  const maxBadRecords = flags.maxBadRecords ?? 0;
  const show = flags.showMessages ?? 0;
  const { dataflow } = config;
  const { source, state: storage } = openHttpLocations(config);
  const snapshots = await listSnapshots(source);
  checkProspects(dataflow, snapshots);
  const cursor = await readJsonObject<HttpCursor>(storage, httpKeys.cursor);
  const pending = (await new StateStore(storage).listPending()).filter((p) => p.folders.includes('http'));
  const plan = planHttpRuns(dataflow, snapshots, cursor, pending, now, flags.snapshot);
  const runs: Record<string, unknown>[] = [];
  const scratchDir = await createScratchDir('plan');
  const engine = await openEngine({ tempDirectory: path.join(scratchDir, 'spill'), memoryLimit: flags.memoryLimit });
  try {
    let mappedAt = cursor?.mappedAt;
    let baseTable: string | null = null;
    for (const [i, run] of plan.runs.entries()) {
      const runMapped = mappedAtFor(dataflow, mappedAt, run.snapshot.evaluatedAt);
      const seal = await readJsonObject<OutboxSeal>(storage, httpKeys.seal(run.runId));
      if (seal) {
        const acks = await readAcks(storage, run.runId);
        runs.push({
          runId: run.runId,
          snapshotId: run.snapshot.snapshotId,
          reason: run.reason,
          sealed: true,
          ...seal.triggers,
          messages: seal.messages,
          requests: seal.requests,
          acknowledged: acks.acked.size,
          deadLetters: acks.dead.size,
        });
        baseTable = null;
      } else {
        const prefix = `p${i}`;
        const built = await buildDiff(
          engine,
          dataflow,
          source,
          run,
          baseTable,
          (key) => storage.fetch(key, scratchDir),
          runMapped,
          {
            scratchDir,
            maxBadRecords,
            prefix,
            progress: (m) => reporter.progress(m),
          },
        );
        const entry: Record<string, unknown> = {
          runId: run.runId,
          snapshotId: run.snapshot.snapshotId,
          reason: run.reason,
          sealed: false,
          entered: built.counts.entered,
          exited: built.counts.exited,
          identity: built.counts.identity,
          attribute: built.counts.attribute,
          messages: built.counts.messages,
          requests: Math.ceil(built.counts.messages / messagesPerRequest(dataflow.destination)),
          baselineSize: built.counts.baselineSize,
          badRecords: built.badRecords.length,
        };
        if (show > 0) {
          const shown = await firstMessages(
            engine,
            httpShape(dataflow),
            built.tables,
            messageOptions(dataflow, run.snapshot, runMapped),
            show,
          );
          entry['shownMessages'] = shown.map((m) => JSON.parse(m) as unknown);
        }
        runs.push(entry);
        baseTable = `${prefix}_next`;
        await keepNextBaseline(engine, built.tables, baseTable);
      }
      if (baseTable === null && i < plan.runs.length - 1) {
        // A sealed run's own baseline feeds the next one's diff.
        baseTable = `p${i}_sealed`;
        await loadBaseline(engine, baseTable, await storage.fetch(httpKeys.baseline(run.runId), scratchDir));
      }
      mappedAt = runMapped;
    }
  } finally {
    engine.close();
    await rm(scratchDir, { recursive: true, force: true });
  }
  const report = {
    dataflowId: dataflow.id,
    at: now.toISOString(),
    destination: 'http',
    endpoint: dataflow.destination.endpoint,
    runs,
    idle: plan.idle,
    problem: plan.problem,
  };
  if (flags.json) reporter.out(JSON.stringify(report, null, 2));
  else {
    const lines = [`dataflow ${dataflow.id} at ${report.at} → ${dataflow.destination.endpoint}`];
    lines.push(
      runs.length
        ? 'would deliver (nothing is sent by plan):'
        : `nothing to deliver: ${plan.idle ?? plan.problem ?? ''}`,
    );
    for (const r of runs) {
      lines.push(
        `  run ${String(r['runId'])} snapshot ${String(r['snapshotId'])}: ${String(r['reason'])}${r['sealed'] ? ' (outbox sealed)' : ''}`,
      );
      lines.push(
        `    entered ${String(r['entered'])}, exited ${String(r['exited'])}, identity ${String(r['identity'])}, attribute ${String(r['attribute'])}`,
      );
      lines.push(
        `    ${String(r['messages'])} message(s) in ${String(r['requests'])} request(s)${r['sealed'] ? `, ${String(r['acknowledged'])} acknowledged` : ''}`,
      );
      for (const m of (r['shownMessages'] as unknown[] | undefined) ?? []) lines.push(`    ${JSON.stringify(m)}`);
    }
    if (plan.problem) lines.push(`would fail: ${plan.problem}`);
    reporter.out(lines.join('\n'));
  }
  return 0;
}

export async function httpStatusCommand(
  config: LoadedHttpConfig,
  flags: CommonFlags,
  reporter: Reporter,
): Promise<number> {
  const now = flags.at ?? new Date();
  const { dataflow } = config;
  const { state: storage } = openHttpLocations(config);
  const state = new StateStore(storage);
  const cursor = await readJsonObject<HttpCursor>(storage, httpKeys.cursor);
  const outboxes = [];
  for (const p of (await state.listPending()).filter((x) => x.folders.includes('http'))) {
    if (cursor?.runId === p.runId) continue;
    const seal = await readJsonObject<OutboxSeal>(storage, httpKeys.seal(p.runId));
    const acks = await readAcks(storage, p.runId);
    outboxes.push({
      runId: p.runId,
      snapshotId: p.snapshotId,
      sealed: seal !== null,
      total: seal?.requests ?? null,
      acknowledged: acks.acked.size,
      deadLettered: acks.dead.size,
    });
  }
  const deadLetters = [];
  for (const key of await listDeadLetters(storage)) {
    const d = await readJsonObject<DeadLetter>(storage, key);
    if (d) deadLetters.push({ idempotencyKey: d.idempotencyKey, status: d.status, error: d.error });
  }
  const history = await state.readHistory();
  const lastSuccess = history.find((r) => r.status === 'success') ?? null;
  const lastError =
    history.find((r) => r.status === 'failed' && (!lastSuccess || r.logicalTime >= lastSuccess.logicalTime)) ?? null;
  const status = {
    dataflowId: dataflow.id,
    at: now.toISOString(),
    destination: 'http',
    endpoint: dataflow.destination.endpoint,
    audiences: dataflow.audiences.map((a) => a.id),
    lastDelivered: cursor
      ? { runId: cursor.runId, snapshotId: cursor.snapshotId, evaluatedAt: cursor.evaluatedAt }
      : null,
    baselineSize: cursor?.baselineSize ?? null,
    outbox: outboxes,
    deadLetters,
    lastError: lastError
      ? { runId: lastError.runId, logicalTime: lastError.logicalTime, error: lastError.error ?? '' }
      : null,
  };
  if (flags.json) reporter.out(JSON.stringify(status, null, 2));
  else {
    const lines = [
      `dataflow ${dataflow.id} at ${status.at} → ${dataflow.destination.endpoint} (audiences ${audienceLabel(dataflow)})`,
    ];
    lines.push(
      `  last delivered: ${cursor ? `snapshot ${cursor.snapshotId} (${cursor.evaluatedAt}), run ${cursor.runId}` : 'nothing yet (the first run is the historical backfill)'}`,
    );
    lines.push(`  baseline:       ${cursor ? `${cursor.baselineSize} profiles` : 'none yet'}`);
    for (const o of outboxes) {
      lines.push(
        `  outbox:         run ${o.runId} (snapshot ${o.snapshotId}): ${o.sealed ? `${o.acknowledged}/${o.total} acknowledged` : 'not sealed yet (rebuilt by the next run)'}${o.deadLettered ? `, ${o.deadLettered} dead-lettered` : ''}; the next \`audex run\` resumes it`,
      );
    }
    if (!outboxes.length) lines.push('  outbox:         empty (nothing in flight)');
    lines.push(
      `  dead letters:   ${deadLetters.length}${
        deadLetters.length
          ? ` (\`audex redrive\` sends them again): ${deadLetters
              .slice(0, 5)
              .map((d) => `${d.idempotencyKey} ${d.error}`)
              .join('; ')}`
          : ''
      }`,
    );
    if (lastError)
      lines.push(
        `  last error:     ${lastError.logicalTime} run ${lastError.runId}: ${(lastError.error ?? '').split('\n')[0]}`,
      );
    reporter.out(lines.join('\n'));
  }
  return 0;
}

export async function httpValidateCommand(
  config: LoadedHttpConfig,
  flags: CommonFlags,
  reporter: Reporter,
): Promise<number> {
  const { dataflow } = config;
  const warnings: string[] = [];
  const errors: string[] = [];
  let snapshotId: string | null = null;
  try {
    const snapshots = await listSnapshots(openHttpLocations(config).source);
    const latest = snapshots.at(-1);
    if (!latest) warnings.push('no complete snapshot yet; the config was checked alone');
    else {
      snapshotId = latest.snapshotId;
      dataflow.audiences.forEach((a, i) => {
        if (!latest.audiences.some((s) => s.id === a.id))
          errors.push(`audiences[${i}].id: ${a.id} is not in snapshot ${latest.snapshotId}`);
      });
    }
    checkProspects(dataflow, snapshots);
  } catch (error) {
    if (error instanceof ConfigError) throw error;
    warnings.push(`could not read the snapshots' metadata (${messageOf(error)}); the config was checked alone`);
  }
  const result = {
    valid: errors.length === 0,
    config: config.file,
    dataflowId: dataflow.id,
    destination: 'http',
    warnings,
    snapshot: snapshotId,
    errors,
  };
  if (flags.json) reporter.out(JSON.stringify(result, null, 2));
  else
    reporter.out(
      [
        `config ${config.file}: valid (HTTP API dataflow ${dataflow.id}, ${dataflow.audiences.length} audience(s))`,
        ...warnings.map((w) => `  warning: ${w}`),
        ...errors.map((e) => `  error: ${e}`),
      ].join('\n'),
    );
  return errors.length ? EXIT.badInput : EXIT.ok;
}

/** `audex redrive`: sends every dead letter again (same body, same Idempotency-Key); delivered ones are removed. */
export async function redriveCommand(
  config: LoadedHttpConfig,
  flags: CommonFlags,
  reporter: Reporter,
): Promise<number> {
  const { dataflow } = config;
  const { state: storage } = openHttpLocations(config);
  const lease = flags.lock === false ? NO_LOCK : await acquireLock(storage, dataflow.id, new Date());
  const d = dataflow.destination;
  let delivered = 0;
  const kept: string[] = [];
  try {
    const auth = await createAuthenticator(d.auth, config.dir, d.timeoutSeconds * 1000);
    const letters = new Map<string, { key: string; letter: DeadLetter }>();
    for (const key of await listDeadLetters(storage)) {
      const letter = await readJsonObject<DeadLetter>(storage, key);
      if (letter) letters.set(letter.idempotencyKey, { key, letter });
    }
    reporter.progress(`redriving ${letters.size} dead letter(s) to ${new URL(d.endpoint).origin}`);
    async function* items(): AsyncGenerator<OutgoingRequest> {
      let seq = 0;
      for (const { letter } of letters.values())
        yield { seq: ++seq, key: letter.idempotencyKey, body: Buffer.from(letter.body, 'utf8') };
    }
    const byIndex = [...letters.values()];
    await sendRequests(
      items(),
      {
        url: endpointUrl(d),
        headers: headerPairs(d),
        timeoutMs: d.timeoutSeconds * 1000,
        concurrency: d.concurrency,
        maxRequestsPerSecond: d.maxRequestsPerSecond,
        auth,
        backoffMs: Number(process.env['AUDEX_HTTP_BACKOFF_MS'] ?? 500),
      },
      {
        onAck: async (seq) => {
          await storage.delete(byIndex[seq - 1]!.key);
          delivered += 1;
        },
        onFailure: (f) => {
          kept.push(`${f.key}: ${f.error}`);
        },
      },
    );
  } finally {
    await lease.release();
  }
  const result = { dataflowId: dataflow.id, redriven: delivered + kept.length, delivered, failed: kept };
  if (flags.json) reporter.out(JSON.stringify(result, null, 2));
  else
    reporter.out(
      [
        `redrive ${dataflow.id}: ${delivered} delivered and removed, ${kept.length} still dead-lettered`,
        ...kept.map((k) => `  ${k}`),
      ].join('\n'),
    );
  return kept.length ? EXIT.runFailed : EXIT.ok;
}

/**
 * An HTTP dataflow as one row of the status table `audex report` shows: it delivers all
 * its audiences together, once per new snapshot.
 */
export async function readHttpAudienceStatus(
  config: LoadedHttpConfig,
  state: StateStore,
  history: RunRecord[],
): Promise<AudienceStatus[]> {
  const { dataflow } = config;
  const cursor = await readJsonObject<HttpCursor>(state.storage, httpKeys.cursor);
  const success = history.find((r) => r.status === 'success');
  const failed = history.find((r) => r.status === 'failed' && (!success || r.logicalTime >= success.logicalTime));
  const pending = (await state.listPending()).find((p) => p.folders.includes('http') && p.runId !== cursor?.runId);
  return [
    {
      audienceId: audienceLabel(dataflow),
      mode: 'http',
      schedule: `every new snapshot, to ${dataflow.destination.endpoint}`,
      lastSuccess: success
        ? {
            runId: success.runId,
            logicalTime: success.logicalTime,
            snapshotId: success.snapshotId,
            rowsWritten: success.counts.rowsWritten,
            files: 0,
          }
        : null,
      nextSlot: null,
      baselineSize: cursor?.baselineSize ?? null,
      keptBaselines: null,
      stateBytes: null,
      pendingRun: pending?.runId ?? null,
      lastError: failed ? { runId: failed.runId, logicalTime: failed.logicalTime, error: failed.error ?? '' } : null,
    },
  ];
}
