// `npm run demo`: a real export of the bundled fixtures into ./out, no network needed.
// Replays two days: the first run backfills, the second writes incremental changes.
import { spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), '..');
const bin = path.join(root, 'bin', 'audex.js');
rmSync(path.join(root, 'out'), { recursive: true, force: true });

const steps = [
  ['fixtures/demo/acme-crm.yaml', '2026-11-20T06:00:00Z'],
  ['fixtures/demo/acme-crm.yaml', '2026-11-21T06:00:00Z'],
  ['fixtures/demo/acme-lake.yaml', '2026-11-21T06:00:00Z'],
];
for (const [config, at] of steps) {
  console.log(`\n$ audex run --config ${config} --at ${at}`);
  const result = spawnSync(process.execPath, [bin, 'run', '--config', config, '--at', at, '--quiet'], { cwd: root, stdio: 'inherit' });
  if (result.status !== 0) process.exit(result.status ?? 1);
}
console.log('\nThe files are under ./out (state under ./out/<dataflow>/_audex). Try: zcat "out/acme-crm/crm/VIP Customers/"*.csv.gz');
