#!/usr/bin/env node
// Runs bench/predict.ts without a separate build step: .ts files are transpiled on require with the
// project's own TypeScript (type checking is the build's job, not the benchmark's).
'use strict';
const { spawnSync } = require('child_process');

// A larger young generation: the predict path allocates one connection entry per flow, and the
// default 16 MB semi-space makes the figure mostly a measure of scavenges on a loaded machine.
if (!process.execArgv.some((a) => a.startsWith('--max-semi-space-size'))) {
  const r = spawnSync(process.execPath, ['--max-semi-space-size=32', __filename, ...process.argv.slice(2)], { stdio: 'inherit' });
  process.exit(r.status === null ? 1 : r.status);
}

require('./ts-hook');
require('./predict.ts');
