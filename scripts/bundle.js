// The second step of `npm run build`: bundles tsc's output (dist/) into dist/bundle/, what
// bin/audex.js runs. A cron run of a small dataflow spent more CPU loading code than
// exporting: some 440 files (audex's own, zod, yaml, commander, DuckDB's JavaScript API),
// each resolved, read and compiled on its own. Bundled, the same run loads about 20 files
// and costs 0.70× the CPU (README "Performance", "Start-up of small runs").
//
// What stays outside the bundle: DuckDB's native bindings (a compiled library) and
// puppeteer-core (tests only). Code loaded on first use (DuckDB's API, the S3 SDK, openpgp,
// ora) stays lazy: each dynamic import() becomes a chunk of its own. The scan worker is an
// entry of its own, beside main.js, where src/engine/copy-batches.ts looks for it. Chunk
// names are hashes of their contents, so the same sources give the same files.
//
// audex imports zod as a namespace (`import * as z from 'zod'`), never its `z` export: that
// export is an object of everything zod has, so the bundle kept all of it, every locale
// included (755 KB against 170 KB for the same schemas; a config check 0.34 → 0.25 s).
import { build } from 'esbuild';
import { rmSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), '..');
const outdir = path.join(root, 'dist', 'bundle');
rmSync(outdir, { recursive: true, force: true });

await build({
  absWorkingDir: root,
  entryPoints: ['dist/cli/main.js', 'dist/engine/scan-records-worker.js'],
  outdir,
  entryNames: '[name]',
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  // The ES module builds where a package has both (the S3 SDK): a dynamic import() of a
  // CommonJS module would give its chunk a default export only.
  mainFields: ['module', 'main'],
  external: ['@duckdb/node-bindings', 'puppeteer-core'],
  // CommonJS packages in the bundle (commander, DuckDB's API) call require() for Node's own
  // modules; an ES module has none of its own.
  banner: {
    js: "import { createRequire as __audexCreateRequire } from 'node:module'; const require = __audexCreateRequire(import.meta.url);",
  },
  logLevel: 'warning',
});
