#!/usr/bin/env node
// Loads the built CLI: dist/bundle/ (npm install builds it through the prepare script).
import('../dist/bundle/main.js').catch((error) => {
  if (error && error.code === 'ERR_MODULE_NOT_FOUND' && String(error.message).includes('dist/bundle/main.js')) {
    console.error('audex: the CLI is not built; run `npm install` (or `npm run build`) in the audex folder first');
    process.exitCode = 2;
    return;
  }
  throw error;
});
