// Config errors of an HTTP dataflow (README "Send to an HTTP endpoint"): exit 2, every problem at once, before
// anything is read or sent; prospect audiences and export-now refused.
import { describe, expect, it } from 'vitest';
import { crmConfig } from '../helpers/harness.js';
import { AT, person, trackHttpWorkspaces, webhookConfig } from '../helpers/http-flow.js';
import { useHttpSink } from '../helpers/http-sink.js';

const sink = useHttpSink();
const workspace = trackHttpWorkspaces();

describe('HTTP API destination: config', () => {
  it('lists every problem at once, with its line, and exits 2', async () => {
    const ws = workspace();
    const bad = webhookConfig(
      'https://hooks.example.com',
      {
        endpoint: 'http://hooks.example.com/profiles',
        aggregation: { policy: 'configurable', maxRecords: 20000 },
        auth: {
          type: 'oauth2ClientCredentials',
          tokenUrl: 'https://auth.example.com/token',
          clientId: 'audex',
          clientSecret: 'hunter2-literal',
        },
        path: './out',
      },
      {
        format: { type: 'csv' },
        fileName: '%SEGMENT_ID%',
        mapping: [
          { source: 'person.name.firstName', target: 'first' },
          { source: 'identityMap.email' },
          { source: 'segmentMembership.status' },
          { source: 'loyalty.points', type: 'int64' },
        ],
        audiences: [{ id: 'aud-vip', mode: 'incremental' }],
        state: undefined,
      },
    );
    delete bad['state'];
    ws.config(bad);
    const r = await ws.audex(['validate', '-c', 'webhook.yaml']);
    expect(r.code).toBe(2);
    const problems = [
      'destination.endpoint: destination.endpoint must use https://',
      'maxRecords is at most 10,000',
      'destination.auth.clientSecret: a literal secret is not allowed',
      'destination.path: an HTTP destination has an endpoint, not a path',
      'format: "format" is a file-destination key',
      'fileName: "fileName" is a file-destination key',
      'mapping[0].target: "target" is a file-destination mapping key',
      'mapping[1].source: "identityMap.email": an HTTP mapping takes XDM attribute paths only',
      'mapping[2].source: "segmentMembership.status": an HTTP mapping takes XDM attribute paths only',
      'mapping[3].type',
      'audiences[0].mode',
      'state: state.path is required',
    ];
    for (const p of problems) expect(r.stderr).toContain(p);
    expect(r.stderr).toMatch(/line \d+: destination\.endpoint/);
    expect(r.stderr).not.toContain('hunter2-literal');
  });

  it('destination.type files (or absent) is the file destination', async () => {
    const ws = workspace();
    ws.config(crmConfig({ destination: { type: 'files', path: './out' } }));
    const r = await ws.audex(['validate', '-c', 'webhook.yaml']);
    expect(r.code, r.stderr).toBe(0);
    ws.config(crmConfig({ destination: { type: 'ftp', path: './out' } }));
    expect((await ws.audex(['validate', '-c', 'webhook.yaml'])).code).toBe(2);
  });

  it('accepts plain http:// to a loopback address and https:// elsewhere', async () => {
    const ws = workspace();
    ws.config(webhookConfig(sink.url));
    expect((await ws.audex(['validate', '-c', 'webhook.yaml'])).code).toBe(0);
    ws.config(webhookConfig('https://hooks.example.com', { auth: { type: 'bearer', token: { env: 'HOOK_TOKEN' } } }));
    const r = await ws.audex(['validate', '-c', 'webhook.yaml', '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ valid: true, destination: 'http' });
  });

  it('refuses prospect audiences and export-now with exit 2, sending nothing', async () => {
    const ws = workspace();
    ws.snapshot(
      's1',
      '2026-11-20T05:00:00Z',
      [person('p01', { 'aud-vip': 'realized' })],
      [
        { id: 'aud-vip', name: 'VIP' },
        { id: 'aud-churn', name: 'Prospects', profileType: 'prospect' },
      ],
    );
    ws.config(webhookConfig(sink.url));
    sink.reset();
    const run = await ws.audex(['run', '-c', 'webhook.yaml', '--at', AT]);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('audiences[1].id: aud-churn is a prospect audience');
    const validate = await ws.audex(['validate', '-c', 'webhook.yaml']);
    expect(validate.code).toBe(2);
    expect(validate.stderr).toContain('aud-churn is a prospect audience');
    const now = await ws.audex(['export-now', '-c', 'webhook.yaml', '-a', 'aud-vip']);
    expect(now.code).toBe(2);
    expect(now.stderr).toContain('export-now does not apply to HTTP API dataflow acme-http');
    expect(sink.requests).toHaveLength(0);
  });
});
