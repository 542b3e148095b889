// One `audex run` of an HTTP API dataflow (README "Send to an HTTP endpoint"). Per snapshot, oldest first:
//
//   pending record → outbox (request bodies, staged then published) → new baseline → seal
//   → send, recording each acknowledgement (append-only ack chunks) → pending record with
//   the run's outcome → cursor (the commit point) → history → pending removed → cleanup
//
// A run killed before its seal is built again from the same snapshot and baseline (the
// same bytes); after its seal, only its unacknowledged requests are sent again, byte for
// byte, with the same Idempotency-Key. The cursor moves only when every request is
// acknowledged (or dead-lettered): delivery is at least once, and nothing is skipped.
import type { InvocationSettings } from './invocation-settings.js';
import { createWriteStream } from 'node:fs';
import { once } from 'node:events';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import type { LoadedHttpConfig } from '../config/load.js';
import { endpointUrl, headerPairs, messagesPerRequest, type HttpDataflow } from '../config/http-schema.js';
import { createAuthenticator, type Authenticator } from '../delivery/auth.js';
import { outboxRequests, sendRequests, type Failure } from '../delivery/send-requests.js';
import { writeNextBaseline } from '../engine/http-diff.js';
import { openEngine, type Engine } from '../engine/session.js';
import { RunFailedError, asAudexError, messageOf } from '../errors.js';
import { listSnapshots } from '../snapshots/list-snapshots.js';
import type { StorageBackend } from '../storage/backend.js';
import { createScratchDir } from '../storage/staging.js';
import {
  httpKeys,
  readAcks,
  readJsonObject,
  writeJsonObject,
  type DeadLetter,
  type HttpCursor,
  type OutboxSeal,
} from '../state/http-state.js';
import type { PendingRun, RunCounts, RunRecord } from '../state/records.js';
import { lockDataflow, NO_LOCK, type Lease } from '../state/lock.js';
import { StateStore } from '../state/state-store.js';
import { crashPoint } from './crash-points.js';
import { maintainHistory } from './maintain-history.js';
import type { InvocationResult } from './invoke.js';
import { failed, SUCCEEDED, type Outcome } from './outcome.js';
import {
  audienceLabel,
  buildDiff,
  checkProspects,
  dropBuilt,
  mappedAtFor,
  openHttpLocations,
  planHttpRuns,
  type HttpPlannedRun,
} from './http-build.js';

export interface HttpInvokeOptions extends InvocationSettings {
  config: LoadedHttpConfig;
  pinnedSnapshot?: string;
}

/** RunCounts plus the HTTP destination's own counters (every one a number, for the report). */
export interface HttpRunCounts extends RunCounts {
  messages: number;
  requests: number;
  acknowledged: number;
  retries: number;
  deadLetters: number;
  entered: number;
  exited: number;
  identity: number;
  attribute: number;
  baselineSize: number;
}

const zeroHttpCounts = (): HttpRunCounts => ({
  profilesReceived: 0,
  rowsWritten: 0,
  excludedMandatory: 0,
  excludedDuplicate: 0,
  exitsOmitted: 0,
  badRecords: 0,
  messages: 0,
  requests: 0,
  acknowledged: 0,
  retries: 0,
  deadLetters: 0,
  entered: 0,
  exited: 0,
  identity: 0,
  attribute: 0,
  baselineSize: 0,
});

interface HttpContext {
  dataflow: HttpDataflow;
  config: LoadedHttpConfig;
  source: StorageBackend;
  storage: StorageBackend;
  state: StateStore;
  lease: Lease;
  engine: Engine;
  scratchDir: string;
  auth: Authenticator;
  options: HttpInvokeOptions;
}

/**
 * Delivers every due snapshot, oldest first. Like the file runs it returns one outcome per
 * record (cli/exit-codes.ts turns them into the exit code); what fails before any run
 * (config, lock, storage) is thrown.
 */
export async function invokeHttp(options: HttpInvokeOptions): Promise<InvocationResult> {
  const { dataflow } = options.config;
  const scratchDir = await createScratchDir('run');
  let lease: Lease = NO_LOCK;
  const records: RunRecord[] = [];
  const outcomes: Outcome[] = [];
  try {
    const { source, state: storage } = openHttpLocations(options.config, path.join(scratchDir, 'staging'));
    const state = new StateStore(storage);
    const snapshots = await listSnapshots(source);
    checkProspects(dataflow, snapshots);
    lease = await lockDataflow(storage, dataflow.id, options);
    const cursor = await readJsonObject<HttpCursor>(storage, httpKeys.cursor);
    const pending = (await state.listPending()).filter(
      (p) => p.audienceId === audienceLabel(dataflow) || p.folders.includes('http'),
    );
    const plan = planHttpRuns(dataflow, snapshots, cursor, pending, options.now, options.pinnedSnapshot);
    for (const p of plan.committed) {
      if (p.outcome) await state.appendHistory(p.outcome);
      await state.deletePending(p.runId);
      options.progress(
        `run ${p.runId} was committed by an earlier invocation; its history record and cleanup are done now`,
      );
    }
    if (plan.runs.length) {
      const auth = await createAuthenticator(
        dataflow.destination.auth,
        options.config.dir,
        dataflow.destination.timeoutSeconds * 1000,
      );
      const engine = await openEngine({
        tempDirectory: path.join(scratchDir, 'spill'),
        memoryLimit: options.memoryLimit,
      });
      const ctx: HttpContext = {
        dataflow,
        config: options.config,
        source,
        storage,
        state,
        lease,
        engine,
        scratchDir,
        auth,
        options,
      };
      try {
        let mappedAt = cursor?.mappedAt;
        for (const run of plan.runs) {
          const started = performance.now();
          const counts = zeroHttpCounts();
          try {
            const { record, outcome } = await executeHttpRun(ctx, run, mappedAt, counts);
            records.push(record);
            outcomes.push(outcome);
            mappedAt = mappedAtFor(dataflow, mappedAt, run.snapshot.evaluatedAt);
          } catch (error) {
            const record = baseRecord(dataflow, run, 'failed', counts);
            record.durationMs = Math.round(performance.now() - started);
            record.error = `${auth.scrub(messageOf(error))}\nThe run was not committed; the next \`audex run\` resumes it (only unacknowledged requests are sent again).`;
            records.push(record);
            outcomes.push(failed(asAudexError(error)));
            await state.appendHistory(record);
            break;
          }
        }
      } finally {
        engine.close();
      }
    }
    if (plan.problem) {
      // Not a run of its own: shown in this invocation's summary, not kept in history.
      records.push({
        runId: '-',
        audienceId: audienceLabel(dataflow),
        mode: 'incremental',
        trigger: 'afterEvaluation',
        logicalTime: options.now.toISOString(),
        snapshotId: null,
        status: 'failed',
        counts: zeroHttpCounts(),
        files: [],
        error: plan.problem,
      });
      outcomes.push(failed(new RunFailedError(plan.problem)));
    }
    await maintainHistory(state, dataflow.state.keepHistoryDays, options);
    return { dataflowId: dataflow.id, at: options.now.toISOString(), runs: records, outcomes };
  } finally {
    await lease.release();
    await rm(scratchDir, { recursive: true, force: true });
  }
}

function baseRecord(
  dataflow: HttpDataflow,
  run: HttpPlannedRun,
  status: RunRecord['status'],
  counts: HttpRunCounts,
): RunRecord & { destination: 'http' } {
  return {
    runId: run.runId,
    audienceId: audienceLabel(dataflow),
    mode: 'incremental',
    trigger: 'afterEvaluation',
    logicalTime: run.snapshot.evaluatedAt.toISOString(),
    snapshotId: run.snapshot.snapshotId,
    status,
    counts,
    files: [],
    destination: 'http',
    ...(run.previousBaseline ? {} : { note: 'first run: historical backfill' }),
  };
}

/**
 * Write-behind ack log: acknowledgements gathered while one chunk is being written go
 * into the next, so a fast endpoint costs few state writes and a slow one loses little
 * on a kill (an ack not yet written only means that request is sent again).
 */
class AckLog {
  private acked: number[] = [];
  private dead: number[] = [];
  private writing: Promise<void> | null = null;
  private failure: unknown = null;
  constructor(
    private readonly storage: StorageBackend,
    private readonly runId: string,
    private chunk: number,
  ) {}

  add(seq: number, kind: 'acked' | 'dead'): void {
    (kind === 'acked' ? this.acked : this.dead).push(seq);
    if (!this.writing) this.writing = this.drain();
  }

  private async drain(): Promise<void> {
    try {
      while (this.acked.length || this.dead.length) {
        const body = { acked: this.acked, dead: this.dead };
        this.acked = [];
        this.dead = [];
        this.chunk += 1;
        await writeJsonObject(this.storage, httpKeys.ackChunk(this.runId, this.chunk), body);
        crashPoint('http-acked');
      }
    } catch (error) {
      this.failure ??= error;
    } finally {
      this.writing = null;
    }
  }

  async flush(): Promise<void> {
    while (this.writing) await this.writing;
    if (this.acked.length || this.dead.length) {
      this.writing = this.drain();
      await this.writing;
    }
    if (this.failure) throw this.failure;
  }
}

async function executeHttpRun(
  ctx: HttpContext,
  run: HttpPlannedRun,
  previousMappedAt: Record<string, number> | undefined,
  counts: HttpRunCounts,
): Promise<{ record: RunRecord; outcome: Outcome }> {
  const started = performance.now();
  const { dataflow, storage, state, options } = ctx;
  const pending: PendingRun = {
    runId: run.runId,
    audienceId: audienceLabel(dataflow),
    mode: 'incremental',
    trigger: 'afterEvaluation',
    logicalTime: run.snapshot.evaluatedAt.toISOString(),
    snapshotId: run.snapshot.snapshotId,
    folders: ['http'],
  };
  let seal = await readJsonObject<OutboxSeal>(storage, httpKeys.seal(run.runId));
  if (!seal)
    seal = await buildOutbox(ctx, run, mappedAtFor(dataflow, previousMappedAt, run.snapshot.evaluatedAt), pending);
  else
    options.progress(
      `resuming run ${run.runId}: its outbox (${seal.requests} request(s)) was sealed by an earlier invocation`,
    );
  Object.assign(counts, {
    profilesReceived: seal.messages,
    rowsWritten: seal.messages,
    badRecords: seal.badRecords,
    messages: seal.messages,
    requests: seal.requests,
    baselineSize: seal.baselineSize,
    ...seal.triggers,
  });

  // Delivery: only what is not settled yet.
  const settled = await readAcks(storage, run.runId);
  const done = new Set([...settled.acked, ...settled.dead]);
  counts.acknowledged = settled.acked.size;
  counts.deadLetters = settled.dead.size;
  const failures: Failure[] = [];
  if (done.size < seal.requests) {
    const log = new AckLog(storage, run.runId, settled.chunks);
    const local = await storage.fetch(httpKeys.outbox(run.runId), ctx.scratchDir);
    options.progress(
      `sending ${seal.requests - done.size} of ${seal.requests} request(s) to ${new URL(dataflow.destination.endpoint).origin}`,
    );
    const d = dataflow.destination;
    let stats;
    try {
      stats = await sendRequests(
        outboxRequests(local, run.runId, done),
        {
          url: endpointUrl(d),
          headers: headerPairs(d),
          timeoutMs: d.timeoutSeconds * 1000,
          concurrency: d.concurrency,
          maxRequestsPerSecond: d.maxRequestsPerSecond,
          auth: ctx.auth,
          backoffMs: Number(process.env['AUDEX_HTTP_BACKOFF_MS'] ?? 500),
          stopOnFailure: d.onExhausted === 'fail',
        },
        {
          onAck: (seq) => {
            crashPoint('http-sent');
            counts.acknowledged += 1;
            log.add(seq, 'acked');
          },
          onFailure: async (failure) => {
            if (d.onExhausted === 'deadLetter') {
              const key = failure.key;
              const letter: DeadLetter = {
                idempotencyKey: key,
                runId: run.runId,
                seq: failure.seq,
                status: failure.status,
                error: failure.error,
                response: failure.response,
                attempts: failure.attempts,
                body: failure.body.toString('utf8'),
              };
              await writeJsonObject(storage, httpKeys.deadLetter(key), letter);
              counts.deadLetters += 1;
              log.add(failure.seq, 'dead');
            } else failures.push(failure);
          },
        },
      );
    } finally {
      await log.flush();
    }
    counts.retries = stats.retries;
  }
  if (failures.length) {
    const shown = failures
      .slice(0, 5)
      .map((f) => `  request ${run.runId}-${f.seq}: ${f.error}${f.response ? ` — ${f.response.slice(0, 200)}` : ''}`);
    throw new RunFailedError(
      [
        `${failures.length} request(s) to ${dataflow.destination.endpoint} could not be delivered (retries exhausted or refused); ${counts.acknowledged} of ${seal.requests} are acknowledged, sending stopped:`,
        ...shown,
        'With onExhausted: fail the run is not committed; the next `audex run` sends the unacknowledged requests again (same bodies, same Idempotency-Key). Set onExhausted: deadLetter to set them aside and go on.',
      ].join('\n'),
    );
  }
  crashPoint('http-all-acked');
  const record = baseRecord(dataflow, run, 'success', counts);
  record.durationMs = Math.round(performance.now() - started);
  if (counts.deadLetters)
    record.error = `${counts.deadLetters} request(s) were dead-lettered under ${storage.describe(httpKeys.deadLetterPrefix)}; \`audex redrive\` sends them again`;
  ctx.lease.assertHeld();
  await state.writePending({ ...pending, outcome: record });
  const cursor: HttpCursor = {
    runId: run.runId,
    snapshotId: run.snapshot.snapshotId,
    evaluatedAt: run.snapshot.evaluatedAt.toISOString(),
    baseline: httpKeys.baseline(run.runId),
    baselineSize: seal.baselineSize,
    mappedAt: seal.mappedAt,
  };
  ctx.lease.assertHeld();
  await writeJsonObject(storage, httpKeys.cursor, cursor);
  crashPoint('after-cursor');
  await state.appendHistory(record);
  await state.deletePending(run.runId);
  await cleanupRuns(storage, run.runId, run.previousBaseline);
  options.progress(
    `run ${run.runId}: ${counts.acknowledged} of ${seal.requests} request(s) acknowledged (${seal.messages} message(s))${counts.deadLetters ? `, ${counts.deadLetters} dead-lettered` : ''}`,
  );
  // Dead letters: the run committed, and the invocation still exits 1 (README "Exit codes").
  return { record, outcome: record.error ? failed(new RunFailedError(record.error)) : SUCCEEDED };
}

/** Builds, writes and seals the outbox and the new baseline; nothing is sent before the seal. */
async function buildOutbox(
  ctx: HttpContext,
  run: HttpPlannedRun,
  mappedAt: Record<string, number>,
  pending: PendingRun,
): Promise<OutboxSeal> {
  const { dataflow, storage, state, engine, options } = ctx;
  const prefix = 'h0';
  try {
    const built = await buildDiff(
      engine,
      dataflow,
      ctx.source,
      run,
      null,
      (key) => storage.fetch(key, ctx.scratchDir),
      mappedAt,
      {
        scratchDir: ctx.scratchDir,
        maxBadRecords: options.maxBadRecords,
        prefix,
        progress: options.progress,
      },
    );
    await state.writePending(pending);
    const staged = await storage.stage(httpKeys.outbox(run.runId));
    const out = createWriteStream(staged);
    let bytes = 0;
    const crashAt = Math.max(1, Math.ceil(built.counts.messages / messagesPerRequest(dataflow.destination) / 2));
    let written = 0;
    const { requests, messages } = await built.requests(async (body) => {
      bytes += body.length + 1;
      out.write(body);
      if (!out.write(NEWLINE)) await once(out, 'drain');
      if (++written === crashAt) crashPoint('http-outbox-part');
    });
    out.end();
    await once(out, 'close');
    options.progress(`run ${run.runId}: outbox written (${requests} request(s), ${(bytes / 1e6).toFixed(1)} MB)`);
    await storage.publish(staged, httpKeys.outbox(run.runId));
    const baselineKey = httpKeys.baseline(run.runId);
    const stagedBase = await storage.stage(baselineKey);
    await writeNextBaseline(engine, built.tables, stagedBase);
    await storage.publish(stagedBase, baselineKey);
    const seal: OutboxSeal = {
      runId: run.runId,
      snapshotId: run.snapshot.snapshotId,
      evaluatedAt: run.snapshot.evaluatedAt.toISOString(),
      messages,
      requests,
      bytes,
      triggers: {
        entered: built.counts.entered,
        exited: built.counts.exited,
        identity: built.counts.identity,
        attribute: built.counts.attribute,
      },
      baselineSize: built.counts.baselineSize,
      badRecords: built.badRecords.length,
      mappedAt,
    };
    await writeJsonObject(storage, httpKeys.seal(run.runId), seal);
    crashPoint('http-sealed');
    options.progress(`run ${run.runId}: outbox sealed, ${messages} message(s) in ${requests} request(s)`);
    return seal;
  } finally {
    await dropBuilt(engine, prefix);
  }
}

const NEWLINE = Buffer.from('\n');

/**
 * After a commit: the committed run's outbox and acks are no longer needed, and of the
 * baselines only this run's and the one before are kept.
 */
async function cleanupRuns(storage: StorageBackend, runId: string, previousBaseline: string | null): Promise<void> {
  const keep = new Set([httpKeys.baseline(runId), ...(previousBaseline ? [previousBaseline] : [])]);
  for (const key of await storage.list(httpKeys.runsPrefix)) {
    if (keep.has(key)) continue;
    const mine = key.startsWith(`${httpKeys.runFolder(runId)}/`);
    // Other runs' folders: only those older than this one (a later run never exists uncommitted here).
    if (mine || key.slice(httpKeys.runsPrefix.length + 1) < runId) await storage.delete(key);
  }
}
