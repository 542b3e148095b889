// Lint rules that keep the house as README "Layout" draws it. The dependency rule, per
// folder of src/ (an arrow is "may import"):
//
//   cli → run → plan · engine · writers · storage · state · naming · schedule · config
//   plan, schedule, naming: pure (no I/O, no engine, no storage)
//   storage knows no engine; engine knows no storage, state or runs
//   writers reach the engine through engine/render-parts.ts only
//   nothing but cli imports cli
import tseslint from 'typescript-eslint';

const IO_MODULES = [
  'node:fs',
  'node:fs/promises',
  'node:child_process',
  'node:net',
  'node:http',
  'node:https',
  'node:os',
];

/** A no-restricted-imports rule: modules by name, and relative paths by glob. */
function restrict({ modules = [], patterns = [], message }) {
  return {
    'no-restricted-imports': [
      'error',
      {
        paths: modules.map((name) => ({ name, message })),
        patterns: patterns.length ? [{ group: patterns, message }] : [],
      },
    ],
  };
}

const layers = [
  {
    files: ['src/schedule/**', 'src/plan/**', 'src/naming/**', 'src/datasets/plan-datasets.ts'],
    rules: restrict({
      modules: [...IO_MODULES, '@duckdb/node-api', '@aws-sdk/client-s3', '@aws-sdk/lib-storage'],
      patterns: [
        '**/engine/*',
        '**/storage/*',
        '**/run/*',
        '**/cli/*',
        '**/writers/*',
        '**/state/state-store.js',
        '**/delivery/*',
      ],
      message: 'planning is pure: it takes what it needs as arguments (no I/O, no engine, no storage)',
    }),
  },
  {
    files: ['src/storage/**'],
    rules: restrict({
      patterns: ['**/engine/*', '**/run/*', '**/cli/*', '**/plan/*', '**/writers/*', '**/state/*'],
      message: 'storage is one interface over local disk, memory and S3; it knows nothing of runs or the engine',
    }),
  },
  {
    files: ['src/engine/**'],
    rules: restrict({
      modules: ['@aws-sdk/client-s3', '@aws-sdk/lib-storage'],
      patterns: ['**/storage/*', '**/state/*', '**/run/*', '**/cli/*', '**/plan/*', '**/writers/*', '**/delivery/*'],
      message: 'the engine reads local files and returns rows and counts; storage and state belong to run/',
    }),
  },
  {
    files: ['src/state/**', 'src/config/**', 'src/snapshots/**', 'src/writers/**', 'src/delivery/**', 'src/report/**'],
    rules: restrict({
      patterns: ['**/run/*', '**/cli/*'],
      message: 'only cli/ drives runs; lower layers do not reach up',
    }),
  },
  {
    // After the layer rule above (a later no-restricted-imports for the same files replaces it), so it repeats run/ and cli/.
    files: ['src/writers/**'],
    rules: restrict({
      patterns: ['**/run/*', '**/cli/*', '**/engine/*', '!**/engine/render-parts.js'],
      message:
        'writers reach the engine through engine/render-parts.ts only (the SQL and the tables stay in engine/); lower layers do not reach up',
    }),
  },
  {
    files: ['src/snapshots/**'],
    rules: restrict({
      patterns: ['**/engine/*', '**/run/*', '**/cli/*'],
      message: 'snapshots/ lists and describes snapshot parts; the engine reads them, not the other way round',
    }),
  },
  {
    files: ['src/run/**', 'src/datasets/**'],
    rules: restrict({
      patterns: ['**/cli/*'],
      message: 'run/ and datasets/ are called by cli/, never the other way round',
    }),
  },
];

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'out/**', '.bench-cache/**', 'coverage/**'] },
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'error',
      'no-restricted-syntax': [
        'error',
        {
          selector: "MemberExpression[object.name='process'][property.name='exit']",
          message: 'only src/cli/main.ts sets the exit code',
        },
        {
          selector: "ImportDeclaration[source.value='zod'] ImportSpecifier[imported.name='z']",
          message: "import * as z from 'zod': zod's `z` export brings all of zod into the bundle (scripts/bundle.js)",
        },
      ],
    },
  },
  { files: ['src/cli/main.ts', 'scripts/**', 'test/**', 'bin/**'], rules: { 'no-restricted-syntax': 'off' } },
  // Tests read JSON the CLI printed; typing every probe of it would not make them stricter.
  { files: ['test/**'], rules: { '@typescript-eslint/no-explicit-any': 'off' } },
  { files: ['**/*.js', '**/*.mjs'], rules: { '@typescript-eslint/no-require-imports': 'off' } },
  ...layers,
);
