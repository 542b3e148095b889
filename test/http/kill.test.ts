// Never lost (README "Send to an HTTP endpoint", delivery guarantee): audex killed with SIGKILL at every step of an HTTP run (outbox
// half written, sealed, mid-delivery, after an ack, after the last ack, after the cursor),
// then run again. The distinct acknowledged Idempotency-Keys equal a clean run's, every
// resend is byte-identical to the clean run's body for that key, and the resumed run
// sends only what was not acknowledged. Also: two runs at once, and state on S3.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { listFiles } from '../helpers/harness.js';
import { AT, person, trackHttpWorkspaces, webhookConfig, type HttpWorkspace } from '../helpers/http-flow.js';
import { useHttpSink } from '../helpers/http-sink.js';
import { audexProc, describeProc } from '../helpers/reliability.js';
import { startS3, type S3Test } from '../helpers/s3-server.js';

const sink = useHttpSink();
const workspace = trackHttpWorkspaces();

const S1 = '2026-11-20T05:00:00Z';
const profiles = Array.from({ length: 10 }, (_, i) =>
  person(`p${String(i + 1).padStart(2, '0')}`, { 'aud-vip': 'realized' }),
);
const destination = { aggregation: { policy: 'bestEffort', maxUsersPerRequest: 2 }, concurrency: 1 };
const ENV = { AUDEX_HTTP_BACKOFF_MS: '20' };

function setUp(): HttpWorkspace {
  const ws = workspace();
  ws.snapshot('s1', S1, profiles);
  ws.config(webhookConfig(sink.url, destination));
  return ws;
}

const run = (ws: HttpWorkspace, env: Record<string, string> = {}) =>
  audexProc(['run', '-c', 'webhook.yaml', '--at', AT, '--json'], { cwd: ws.dir, env: { ...ENV, ...env } });

let clean: Map<string, string>;

/** The Idempotency-Keys the killed run recorded as acknowledged (its ack chunks in local state). */
function recordedAcks(ws: HttpWorkspace): Set<string> {
  const root = path.join(ws.dir, 'state', 'http', 'runs');
  const keys = new Set<string>();
  for (const f of listFiles(root).filter((x) => x.includes('/acks/') && !path.basename(x).startsWith('.'))) {
    const runId = f.split('/')[0]!;
    for (const seq of (JSON.parse(readFileSync(path.join(root, f), 'utf8')) as { acked: number[] }).acked)
      keys.add(`${runId}-${seq}`);
  }
  return keys;
}

describe('HTTP API destination: kill -9 at every step', () => {
  it('a clean run: the reference keys and bodies', async () => {
    sink.reset();
    const p = await run(setUp());
    expect(p.code, describeProc(p)).toBe(0);
    clean = new Map(sink.requests.map((q) => [q.key, q.body.toString('hex')]));
    expect(clean.size).toBe(5);
  });

  const points: [string, string][] = [
    ['http-outbox-part', 'outbox half written'],
    ['http-sealed', 'outbox sealed, nothing sent'],
    ['http-sent:2', 'mid-delivery: a request answered 2xx, its ack not recorded'],
    ['http-acked:2', 'after an ack'],
    ['http-all-acked', 'after the last ack'],
    ['after-cursor', 'after the cursor'],
  ];
  it.each(points)('killed at %s (%s): the rerun completes, no key lost, resends byte-identical', async (point) => {
    const ws = setUp();
    sink.reset();
    const killed = await run(ws, { AUDEX_CRASH_AT: point });
    expect(killed.signal, describeProc(killed)).toBe('SIGKILL');
    const beforeRerun = sink.requests.length;
    const recorded = recordedAcks(ws);
    const rerun = await run(ws);
    expect(rerun.code, describeProc(rerun)).toBe(0);
    // Same set of distinct acknowledged keys as the clean run; every body equals the clean one.
    expect(new Set(sink.ackedKeys())).toEqual(new Set(clean.keys()));
    for (const q of sink.requests) expect(q.body.toString('hex'), q.key).toBe(clean.get(q.key));
    // The rerun sends exactly the requests whose acknowledgement was not recorded, once each.
    const resent = sink.requests.slice(beforeRerun).map((q) => q.key);
    expect(resent.sort()).toEqual([...clean.keys()].filter((k) => !recorded.has(k)).sort());
    if (point === 'after-cursor' || point === 'http-all-acked') expect(resent).toEqual([]);
    if (point.startsWith('http-acked')) expect(recorded.size).toBeGreaterThan(0);
    // Committed exactly once (killed after its commit point too); a further run has nothing to send.
    if (point === 'after-cursor' || point === 'http-sealed') {
      const again = await run(ws);
      expect(again.code).toBe(0);
      expect((JSON.parse(again.stdout) as { runs: unknown[] }).runs).toHaveLength(0);
      const history = await audexProc(['runs', '-c', 'webhook.yaml', '--json', '--status', 'success'], { cwd: ws.dir });
      expect((JSON.parse(history.stdout) as { runs: unknown[] }).runs).toHaveLength(1);
    }
  });

  it('two runs at once: the second exits 1 naming the lock holder, the first delivers', async () => {
    const ws = workspace();
    ws.snapshot('s1', S1, profiles);
    ws.config(webhookConfig(sink.url, destination));
    sink.reset();
    sink.script = [{ status: 200, delayMs: 2500 }]; // the first run holds its lock while the first request hangs
    let second: Promise<Awaited<ReturnType<typeof run>>> | null = null;
    sink.onRequest = () => {
      second ??= run(ws);
    };
    const first = await run(ws);
    expect(first.code, describeProc(first)).toBe(0);
    const other = await second!;
    expect(other.code).toBe(1);
    expect(other.stderr + other.stdout).toMatch(/locked by another audex run \(pid \d+/);
    expect(new Set(sink.ackedKeys()).size).toBe(5);
  });
});

describe('HTTP API destination: state on S3', () => {
  let s3: S3Test;
  beforeAll(async () => {
    s3 = await startS3(['hooks']);
  }, 60_000);
  afterAll(async () => {
    await s3?.stop();
  });

  it('delivers, resumes after a kill and commits with its state on S3', async () => {
    const ws = workspace();
    ws.snapshot('s1', S1, profiles);
    ws.config(
      webhookConfig(sink.url, destination, {
        state: {
          path: 's3://hooks/state/acme-http',
          s3: { endpoint: s3.endpoint, forcePathStyle: true, region: 'us-east-1' },
        },
      }),
    );
    sink.reset();
    const killed = await run(ws, { ...s3.env(), AUDEX_CRASH_AT: 'http-acked:2' });
    expect(killed.signal, describeProc(killed)).toBe('SIGKILL');
    // The killed run's lease would block the next for a minute: expire it, as time would.
    const lockKey = 'state/acme-http/lock.json';
    const lease = JSON.parse(
      await (await s3.client.send(new GetObjectCommand({ Bucket: 'hooks', Key: lockKey }))).Body!.transformToString(),
    ) as Record<string, unknown>;
    await s3.client.send(
      new PutObjectCommand({
        Bucket: 'hooks',
        Key: lockKey,
        Body: JSON.stringify({ ...lease, expiresAt: new Date(Date.now() - 1000).toISOString() }),
      }),
    );
    const rerun = await run(ws, s3.env());
    expect(rerun.code, describeProc(rerun)).toBe(0);
    expect(new Set(sink.ackedKeys())).toEqual(new Set(clean.keys()));
    const keys = await s3.listKeys('hooks', 'state/acme-http/');
    expect(keys.some((k) => k.endsWith('http/cursor.json'))).toBe(true);
    expect(keys.some((k) => k.includes('/baseline.parquet'))).toBe(true);
    expect(keys.some((k) => k.includes('requests.ndjson') || k.includes('/pending/') || k.endsWith('lock.json'))).toBe(
      false,
    );
  });
});
