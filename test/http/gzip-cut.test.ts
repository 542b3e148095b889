// A gzip NDJSON part cut short is bad input for the HTTP destination too (exit 4, the part
// named, nothing sent), also where its text ends on a line break: the engine's reader would
// read such a part as fewer profiles, and the missing ones would be sent as exits.
import { describe, expect, it } from 'vitest';
import { mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { constants, deflateRawSync } from 'node:zlib';
import { AT, person, trackHttpWorkspaces, webhookConfig } from '../helpers/http-flow.js';
import { useHttpSink } from '../helpers/http-sink.js';

const sink = useHttpSink();
const workspace = trackHttpWorkspaces();

describe('HTTP API destination: a gzip part cut short', () => {
  it('is exit 4 naming the part, and sends nothing', async () => {
    const ws = workspace();
    ws.snapshot('s1', '2026-11-20T05:00:00Z', [
      person('p01', { 'aud-vip': 'realized' }),
      person('p02', { 'aud-vip': 'realized' }),
    ]);
    const profiles = path.join(ws.snapshots, 's1', 'profiles');
    for (const f of readdirSync(profiles)) rmSync(path.join(profiles, f));
    mkdirSync(profiles, { recursive: true });
    // Header, then a deflate stream flushed after the first line and never finished: no end, no trailer.
    const text = `${JSON.stringify(person('p01', { 'aud-vip': 'realized' }))}\n`;
    const header = Buffer.from([0x1f, 0x8b, 0x08, 0, 0, 0, 0, 0, 0, 0x03]);
    writeFileSync(
      path.join(profiles, 'part-00000.ndjson.gz'),
      Buffer.concat([header, deflateRawSync(text, { finishFlush: constants.Z_SYNC_FLUSH })]),
    );
    ws.config(webhookConfig(sink.url));
    sink.reset();
    const r = await ws.audex(['run', '-c', 'webhook.yaml', '--at', AT]);
    expect(r.code, r.stderr).toBe(4);
    expect(r.stderr).toContain('part-00000.ndjson.gz is not a complete gzip file');
    expect(sink.requests).toEqual([]);
  });
});
