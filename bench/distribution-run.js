#!/usr/bin/env node
// Runs bench/distribution.ts without a build step for bench/: TypeScript files are transpiled on
// require. The traffic tools and the flow driver run in the VM from dist/ (build first: node scripts/build.js).
// Usage: node bench/distribution-run.js [connections=10000] [bookworm|backports]
'use strict';

require('./ts-hook');
require('./distribution.ts');
