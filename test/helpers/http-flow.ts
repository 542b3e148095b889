// Shared pieces of the HTTP API destination's tests (test/http/): a temp folder with
// snapshots written by the test, an HTTP dataflow config pointing at a real local sink,
// and the real CLI.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll } from 'vitest';
import { stringify as toYaml } from 'yaml';
import { addSnapshot, runCli, type CliResult } from './harness.js';

export const AUDIENCES = [
  { id: 'aud-vip', name: 'VIP Customers', mergePolicyId: 'mp-a', createdAt: 1648553325000, updatedAt: 1648553330000 },
  { id: 'aud-churn', name: 'Churn Risk', mergePolicyId: 'mp-a' },
  { id: 'aud-sf', name: 'Science fiction fans', mergePolicyId: 'mp-a' },
  { id: 'aud-other', name: 'Other policy', mergePolicyId: 'mp-b' },
];

export type Statuses = Record<
  string,
  'realized' | 'existing' | 'exited' | { status: string; lastQualificationTime?: string }
>;

/** A profile with the given memberships (lastQualificationTime 2026-11-19T10:00:00Z unless given). */
export function person(
  id: string,
  memberships: Statuses,
  extra: Record<string, unknown> = {},
): Record<string, unknown> {
  const ups = Object.fromEntries(
    Object.entries(memberships).map(([aud, s]) => [
      aud,
      typeof s === 'string' ? { status: s, lastQualificationTime: '2026-11-19T10:00:00Z' } : s,
    ]),
  );
  return {
    profileId: id,
    identityMap: { email: [{ id: `${id}@example.com` }], ecid: [{ id: `ecid-${id}` }] },
    person: { name: { firstName: `F-${id}`, lastName: `L-${id}` } },
    loyalty: { tier: 'gold', points: 10 },
    segmentMembership: { ups },
    ...extra,
  };
}

export interface HttpWorkspace {
  dir: string;
  snapshots: string;
  /** Adds snapshot `id` at `evaluatedAt` with these profiles. */
  snapshot(
    id: string,
    evaluatedAt: string,
    profiles: (object | string)[],
    audiences?: object[],
    extra?: Record<string, unknown>,
  ): void;
  config(body: Record<string, unknown>, name?: string): string;
  audex(args: string[], env?: Record<string, string>): Promise<CliResult>;
}

export function trackHttpWorkspaces(): () => HttpWorkspace {
  const made: string[] = [];
  afterAll(() => {
    for (const d of made) rmSync(d, { recursive: true, force: true });
  });
  return () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'audex-http-'));
    made.push(dir);
    const snapshots = path.join(dir, 'snapshots');
    return {
      dir,
      snapshots,
      snapshot(id, evaluatedAt, profiles, audiences = AUDIENCES, extra = {}) {
        addSnapshot(snapshots, id, evaluatedAt, profiles, audiences as never);
        if (Object.keys(extra).length) {
          const file = path.join(snapshots, id, '_snapshot.json');
          writeFileSync(file, JSON.stringify({ snapshotId: id, evaluatedAt, audiences, ...extra }));
        }
      },
      config(body, name = 'webhook.yaml') {
        const file = path.join(dir, name);
        writeFileSync(file, toYaml(body));
        return file;
      },
      audex: (args, env = {}) => runCli(args, { cwd: dir, env: { AUDEX_HTTP_BACKOFF_MS: '20', ...env } }),
    };
  };
}

/** An HTTP dataflow to `endpoint` (the sink), with overrides of destination keys and top-level keys. */
export function webhookConfig(
  endpoint: string,
  destination: Record<string, unknown> = {},
  top: Record<string, unknown> = {},
): Record<string, unknown> {
  return {
    name: 'Acme Webhook',
    id: 'acme-http',
    source: { snapshots: './snapshots' },
    state: { path: './state' },
    destination: { type: 'http', endpoint: `${endpoint}/profiles`, ...destination },
    mapping: [{ source: 'person.name.firstName' }, { source: 'person.name.lastName' }, { source: 'loyalty.points' }],
    audiences: [{ id: 'aud-vip' }, { id: 'aud-churn' }],
    ...top,
  };
}

export const AT = '2026-11-30T00:00:00Z';
