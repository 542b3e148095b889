// README "Send to an HTTP endpoint" (triggers, message, requests) through the CLI against a real recording endpoint on 127.0.0.1: what
// triggers a message (one profile per rule), what a message holds (seed 003's shape),
// aggregation, envelopes, headers and query parameters, determinism, and `plan`.
import { describe, expect, it } from 'vitest';
import { readFileSync, rmSync } from 'node:fs';
import { DuckDBInstance } from '@duckdb/node-api';
import path from 'node:path';
import { AT, person, trackHttpWorkspaces, webhookConfig, type HttpWorkspace } from '../helpers/http-flow.js';
import { useHttpSink } from '../helpers/http-sink.js';

const sink = useHttpSink();
const workspace = trackHttpWorkspaces();

const S1 = '2026-11-20T05:00:00Z';
const S2 = '2026-11-21T05:00:00Z';
const S3 = '2026-11-22T05:00:00Z';

const snapshot1 = () => [
  person('p01', { 'aud-vip': 'realized', 'aud-sf': 'existing', 'aud-other': 'realized' }),
  person('p02', { 'aud-churn': 'existing' }),
  person('p03', { 'aud-vip': 'exited' }),
  person('p04', { 'aud-sf': 'realized' }),
  person('p05', { 'aud-vip': 'realized' }),
  person('p06', { 'aud-vip': 'realized' }),
  person('p07', { 'aud-vip': 'realized' }),
  person('p08', { 'aud-vip': 'realized' }),
  person('p09', { 'aud-vip': 'realized' }),
  person('p10', { 'aud-vip': 'realized' }),
  person('p11', { 'aud-churn': 'realized' }),
  person('p12', { 'aud-vip': 'realized' }),
  person('p13', { 'aud-vip': 'realized' }, { person: { name: { firstName: 'F-p13' } } }),
  person('p14', { 'aud-vip': 'realized', 'aud-sf': 'realized' }),
];

const snapshot2 = () =>
  [
    person('p01', { 'aud-vip': 'realized', 'aud-sf': 'existing', 'aud-other': 'realized' }),
    person('p02', { 'aud-churn': 'existing' }),
    person('p03', { 'aud-vip': 'exited' }),
    person('p04', { 'aud-sf': 'exited' }), // unmapped audience changes: nothing
    // p05 vanished: an exit with the baseline's identityMap
    // realized → existing, and the same identities in another order: nothing
    person(
      'p06',
      { 'aud-vip': 'existing' },
      { identityMap: { ecid: [{ id: 'ecid-p06' }], email: [{ id: 'p06@example.com' }, { id: 'p06@example.com' }] } },
    ),
    person(
      'p07',
      { 'aud-vip': 'realized' },
      { identityMap: { email: [{ id: 'p07@example.com' }], ecid: [{ id: 'ecid-p07' }, { id: 'ecid-new' }] } },
    ),
    person('p08', { 'aud-vip': 'realized' }, { person: { name: { firstName: 'Changed', lastName: 'L-p08' } } }),
    person('p09', { 'aud-vip': 'realized' }, { loyalty: { tier: 'platinum', points: 10 } }), // unmapped attribute: nothing
    person('p10', { 'aud-vip': { status: 'exited', lastQualificationTime: '2026-11-21T01:00:00Z' } }),
    person('p11', {}), // the entry is dropped: an exit
    person('p12', { 'aud-vip': 'realized' }, { loyalty: { tier: 'gold', points: 10.0 } }),
    person('p13', { 'aud-vip': 'realized' }), // lastName appears: absent → present
    person('p14', { 'aud-vip': 'realized', 'aud-sf': 'exited' }),
    person('p15', { 'aud-churn': 'realized' }),
  ].map((p) => (p['profileId'] === 'p12' ? JSON.stringify(p).replace('"points":10}', '"points":10.0}') : p));

type Msg = {
  person?: unknown;
  loyalty?: unknown;
  segmentMembership: { ups: Record<string, Record<string, unknown>> };
  identityMap: Record<string, { id: string }[]>;
};
let s1Bodies: Buffer[] = [];

const byEmail = (messages: Record<string, unknown>[]) =>
  new Map(messages.map((m) => [((m as Msg).identityMap['email']?.[0]?.id ?? '').split('@')[0]!, m as Msg]));

describe('HTTP API destination: triggers and contents', () => {
  let ws: HttpWorkspace;

  it('first run: the historical backfill, one message per active member of a mapped audience, in profile key order', async () => {
    ws = workspace();
    ws.snapshot('s1', S1, snapshot1());
    ws.config(webhookConfig(sink.url, { headers: { 'X-Tenant': 'acme' }, queryParameters: 'source=audex&v=2' }));
    sink.reset();
    const r = await ws.audex(['run', '-c', 'webhook.yaml', '--at', AT, '--json']);
    expect(r.code, r.stderr).toBe(0);
    const run = r.json().runs[0]!;
    expect(run.counts).toMatchObject({
      messages: 12,
      requests: 2,
      acknowledged: 2,
      entered: 12,
      exited: 0,
      identity: 0,
      attribute: 0,
    });
    expect(sink.requests).toHaveLength(2);
    const [first, second] = sink.requests;
    expect(first!.method).toBe('POST');
    expect(first!.path).toBe('/profiles');
    expect(first!.headers['content-type']).toBe('application/json');
    expect(first!.headers['x-tenant']).toBe('acme');
    expect(Object.fromEntries(first!.query)).toEqual({ source: 'audex', v: '2' });
    expect([first!.key, second!.key]).toEqual([`${run.runId}-1`, `${run.runId}-2`]);
    // bestEffort, maxUsersPerRequest 10 by default: 10 + 2, ordered by profile key.
    const bodies = sink.requests.map((q) => JSON.parse(q.body.toString()) as Msg[]);
    expect(bodies.map((b) => b.length)).toEqual([10, 2]);
    const order = bodies.flat().map((m) => m.identityMap['email']![0]!.id.split('@')[0]);
    expect(order).toEqual(['p01', 'p02', 'p05', 'p06', 'p07', 'p08', 'p09', 'p10', 'p11', 'p12', 'p13', 'p14']);
    // Seed 003's shape: mapped attributes nested by path, in mapping order; ups; the whole identityMap.
    const p01 = byEmail(sink.ackedMessages()).get('p01')!;
    expect(Object.keys(p01)).toEqual(['person', 'loyalty', 'segmentMembership', 'identityMap']);
    expect(p01).toEqual({
      person: { name: { firstName: 'F-p01', lastName: 'L-p01' } },
      loyalty: { points: 10 },
      segmentMembership: {
        ups: {
          // mergePolicy (default): the unmapped aud-sf shares mp-a with aud-vip; aud-other (mp-b) does not.
          'aud-sf': { lastQualificationTime: '2026-11-19T10:00:00Z', status: 'existing' },
          'aud-vip': { lastQualificationTime: '2026-11-19T10:00:00Z', status: 'realized' },
        },
      },
      identityMap: { email: [{ id: 'p01@example.com' }], ecid: [{ id: 'ecid-p01' }] },
    });
    // An absent mapped attribute is left out, not sent as null.
    expect(byEmail(sink.ackedMessages()).get('p13')!.person).toEqual({ name: { firstName: 'F-p13' } });
    s1Bodies = sink.requests.map((q) => q.body);
  });

  it('plan counts each trigger and shows message bodies, sending nothing', async () => {
    ws.snapshot('s2', S2, snapshot2());
    sink.reset();
    const r = await ws.audex(['plan', '-c', 'webhook.yaml', '--at', AT, '--json', '--show-messages', '2']);
    expect(r.code, r.stderr).toBe(0);
    const plan = JSON.parse(r.stdout) as { runs: Record<string, unknown>[] };
    expect(plan.runs).toHaveLength(1);
    expect(plan.runs[0]).toMatchObject({
      snapshotId: 's2',
      entered: 1,
      exited: 3,
      identity: 1,
      attribute: 2,
      messages: 7,
      requests: 1,
    });
    expect(plan.runs[0]!['shownMessages']).toHaveLength(2);
    const text = await ws.audex(['plan', '-c', 'webhook.yaml', '--at', AT, '--show-messages', '1']);
    expect(text.stdout).toContain('entered 1, exited 3, identity 1, attribute 2');
    expect(text.stdout).toContain('7 message(s) in 1 request(s)');
    expect(sink.requests).toHaveLength(0);
  });

  it('next snapshot: entries, exits (exited status, dropped entry, vanished member), identity and mapped-attribute changes only', async () => {
    sink.reset();
    const r = await ws.audex(['run', '-c', 'webhook.yaml', '--at', AT, '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.json().runs[0]!.counts).toMatchObject({ messages: 7, entered: 1, exited: 3, identity: 1, attribute: 2 });
    const got = byEmail(sink.ackedMessages());
    expect([...got.keys()]).toEqual(['p05', 'p07', 'p08', 'p10', 'p11', 'p13', 'p15']);
    // Vanished: status exited at the snapshot's evaluatedAt, the identityMap kept in the baseline, no attributes.
    expect(got.get('p05')).toEqual({
      segmentMembership: { ups: { 'aud-vip': { lastQualificationTime: S2, status: 'exited' } } },
      identityMap: { email: [{ id: 'p05@example.com' }], ecid: [{ id: 'ecid-p05' }] },
    });
    expect(got.get('p07')!.identityMap).toEqual({
      email: [{ id: 'p07@example.com' }],
      ecid: [{ id: 'ecid-p07' }, { id: 'ecid-new' }],
    });
    expect(got.get('p08')!.person).toEqual({ name: { firstName: 'Changed', lastName: 'L-p08' } });
    expect(got.get('p10')!.segmentMembership.ups['aud-vip']).toEqual({
      lastQualificationTime: '2026-11-21T01:00:00Z',
      status: 'exited',
    });
    expect(got.get('p11')!.segmentMembership.ups).toEqual({
      'aud-churn': { lastQualificationTime: S2, status: 'exited' },
    });
    expect(got.get('p13')!.person).toEqual({ name: { firstName: 'F-p13', lastName: 'L-p13' } });
    expect(got.get('p15')!.segmentMembership.ups).toEqual({
      'aud-churn': { lastQualificationTime: '2026-11-19T10:00:00Z', status: 'realized' },
    });
    // Nothing more to send for the same snapshot.
    sink.reset();
    const again = await ws.audex(['run', '-c', 'webhook.yaml', '--at', AT, '--json']);
    expect(again.code).toBe(0);
    expect(again.json().runs).toHaveLength(0);
    expect(sink.requests).toHaveLength(0);
  });

  it('a newly mapped audience backfills only itself', async () => {
    ws.snapshot('s3', S3, [...snapshot2(), person('p16', { 'aud-sf': 'realized' })]);
    ws.config(
      webhookConfig(
        sink.url,
        { headers: { 'X-Tenant': 'acme' } },
        { audiences: [{ id: 'aud-vip' }, { id: 'aud-churn' }, { id: 'aud-sf' }] },
      ),
    );
    sink.reset();
    const r = await ws.audex(['run', '-c', 'webhook.yaml', '--at', AT, '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.json().runs[0]!.counts).toMatchObject({ messages: 2, entered: 2, exited: 0, identity: 0, attribute: 0 });
    expect([...byEmail(sink.ackedMessages()).keys()]).toEqual(['p01', 'p16']);
  });

  it('runs and report show one record per delivered snapshot with the HTTP counters', async () => {
    const runs = await ws.audex(['runs', '-c', 'webhook.yaml', '--json']);
    expect(
      (JSON.parse(runs.stdout) as { runs: { snapshotId: string; counts: Record<string, number> }[] }).runs.map((r) => [
        r.snapshotId,
        r.counts['messages'],
      ]),
    ).toEqual([
      ['s3', 2],
      ['s2', 7],
      ['s1', 12],
    ]);
    const report = await ws.audex(['report', '-c', 'webhook.yaml', '--out', 'report.html', '--at', AT, '--json']);
    expect(report.code, report.stderr).toBe(0);
    const html = readFileSync(path.join(ws.dir, 'report.html'), 'utf8');
    for (const text of ['acme-http', 'aud-vip,aud-churn', 'messages', 'requests', 'deadLetters'])
      expect(html).toContain(text);
  });

  it('the same snapshots give byte-identical request bodies and keys (fresh state)', async () => {
    const other = workspace();
    other.snapshot('s1', S1, snapshot1());
    other.config(webhookConfig(sink.url, { headers: 'X-Tenant:acme', queryParameters: { source: 'audex', v: 2 } }));
    sink.reset();
    const r = await other.audex(['run', '-c', 'webhook.yaml', '--at', AT]);
    expect(r.code, r.stderr).toBe(0);
    expect(sink.requests.map((q) => q.body)).toEqual(s1Bodies);
    // The seed's string form of headers and the map form of query parameters.
    expect(sink.requests[0]!.headers['x-tenant']).toBe('acme');
    expect(Object.fromEntries(sink.requests[0]!.query)).toEqual({ source: 'audex', v: '2' });
  });
});

describe('HTTP API destination: Parquet snapshots', () => {
  it('give the same request bodies as NDJSON', async () => {
    const ws = workspace();
    ws.snapshot('s1', S1, snapshot1());
    const dir = path.join(ws.snapshots, 's1', 'profiles');
    const db = await DuckDBInstance.create(':memory:');
    const c = await db.connect();
    await c.run(
      `COPY (SELECT * FROM read_json('${dir}/part-00000.ndjson', format = 'newline_delimited')) TO '${dir}/part-00000.parquet' (FORMAT parquet)`,
    );
    c.closeSync();
    db.closeSync();
    rmSync(path.join(dir, 'part-00000.ndjson'));
    ws.config(webhookConfig(sink.url));
    sink.reset();
    const r = await ws.audex(['run', '-c', 'webhook.yaml', '--at', AT]);
    expect(r.code, r.stderr).toBe(0);
    expect(sink.requests.map((q) => q.body.toString())).toEqual(s1Bodies.map((b) => b.toString()));
  });
});

describe('HTTP API destination: message options and aggregation', () => {
  it('segmentMembership: all, includeSegmentNames and includeSegmentTimestamps; envelope single', async () => {
    const ws = workspace();
    ws.snapshot('s1', S1, snapshot1().slice(0, 3));
    ws.config(
      webhookConfig(sink.url, {
        segmentMembership: 'all',
        includeSegmentNames: true,
        includeSegmentTimestamps: true,
        envelope: 'single',
      }),
    );
    sink.reset();
    const r = await ws.audex(['run', '-c', 'webhook.yaml', '--at', AT, '--json']);
    expect(r.code, r.stderr).toBe(0);
    // One bare object per request.
    expect(sink.requests).toHaveLength(2);
    const p01 = JSON.parse(sink.requests[0]!.body.toString()) as Msg;
    const mappedAt = Date.parse(S1);
    expect(p01.segmentMembership.ups).toEqual({
      'aud-other': { lastQualificationTime: '2026-11-19T10:00:00Z', status: 'realized', name: 'Other policy' },
      'aud-sf': { lastQualificationTime: '2026-11-19T10:00:00Z', status: 'existing', name: 'Science fiction fans' },
      'aud-vip': {
        lastQualificationTime: '2026-11-19T10:00:00Z',
        status: 'realized',
        createdAt: 1648553325000,
        updatedAt: 1648553330000,
        mappingCreatedAt: mappedAt,
        mappingUpdatedAt: mappedAt,
        name: 'VIP Customers',
      },
    });
    expect(Object.keys(p01.segmentMembership.ups['aud-vip']!)).toEqual([
      'lastQualificationTime',
      'status',
      'createdAt',
      'updatedAt',
      'mappingCreatedAt',
      'mappingUpdatedAt',
      'name',
    ]);
  });

  it('segmentMembership: mapped; configurable aggregation with maxRecords', async () => {
    const ws = workspace();
    ws.snapshot('s1', S1, snapshot1());
    ws.config(
      webhookConfig(sink.url, { segmentMembership: 'mapped', aggregation: { policy: 'configurable', maxRecords: 5 } }),
    );
    sink.reset();
    const r = await ws.audex(['run', '-c', 'webhook.yaml', '--at', AT, '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(sink.requests.map((q) => (JSON.parse(q.body.toString()) as unknown[]).length)).toEqual([5, 5, 2]);
    expect(byEmail(sink.ackedMessages()).get('p01')!.segmentMembership.ups).toEqual({
      'aud-vip': { lastQualificationTime: '2026-11-19T10:00:00Z', status: 'realized' },
    });
  });
});

describe('HTTP API destination: unreadable records', () => {
  it('a bad record with a key is skipped with --max-bad-records: neither sent nor exited, its baseline kept for the next snapshot', async () => {
    const ws = workspace();
    const members = () => [person('p01', { 'aud-vip': 'realized' }), person('p02', { 'aud-vip': 'realized' })];
    ws.snapshot('s1', S1, members());
    ws.config(webhookConfig(sink.url));
    expect((await ws.audex(['run', '-c', 'webhook.yaml', '--at', AT])).code).toBe(0);
    // s2: p01's mapped entry has a status that is not one of realized/existing/exited; p02 changes a mapped attribute.
    ws.snapshot('s2', S2, [
      person('p01', { 'aud-vip': { status: 'bogus' } }),
      person('p02', { 'aud-vip': 'realized' }, { person: { name: { firstName: 'New' } } }),
    ]);
    sink.reset();
    const refused = await ws.audex(['run', '-c', 'webhook.yaml', '--at', AT]);
    expect(refused.code).toBe(4);
    expect(refused.stdout).toMatch(/part-00000\.ndjson:1: .*segmentMembership\.ups\.aud-vip\.status is .*bogus/);
    const r = await ws.audex(['run', '-c', 'webhook.yaml', '--at', AT, '--json', '--max-bad-records', '1']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.json().runs[0]!.counts).toMatchObject({
      messages: 1,
      exited: 0,
      attribute: 1,
      badRecords: 1,
      baselineSize: 2,
    });
    expect([...byEmail(sink.ackedMessages()).keys()]).toEqual(['p02']);
    // s3: p01 readable again and as it was in s1: nothing to send (its baseline was carried over).
    ws.snapshot('s3', S3, [
      person('p01', { 'aud-vip': 'existing' }),
      person('p02', { 'aud-vip': 'realized' }, { person: { name: { firstName: 'New' } } }),
    ]);
    sink.reset();
    const next = await ws.audex(['run', '-c', 'webhook.yaml', '--at', AT, '--json']);
    expect(next.code, next.stderr).toBe(0);
    expect(next.json().runs[0]!.counts).toMatchObject({ messages: 0, baselineSize: 2 });
    expect(sink.requests).toHaveLength(0);
  });

  it('state.keepHistoryDays removes older history records after the runs, as for files', async () => {
    const ws = workspace();
    ws.snapshot('s1', S1, snapshot1());
    ws.config(webhookConfig(sink.url));
    expect((await ws.audex(['run', '-c', 'webhook.yaml', '--at', S2])).code).toBe(0);
    ws.snapshot('s3', S3, snapshot2());
    // At AT (30 November), 8 days back reaches the 22nd: s1's record (evaluated on the 20th)
    // goes, the new one of s3 (the 22nd, 05:00) stays.
    ws.config(webhookConfig(sink.url, {}, { state: { path: './state', keepHistoryDays: 8 } }));
    const r = await ws.audex(['run', '-c', 'webhook.yaml', '--at', '2026-11-30T04:00:00Z']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain('removed 1 history record(s) older than 8 day(s)');
    const runs = JSON.parse((await ws.audex(['runs', '-c', 'webhook.yaml', '--json'])).stdout) as {
      runs: { snapshotId: string }[];
    };
    expect(runs.runs.map((x) => x.snapshotId)).toEqual(['s3']);
  });
});
