#!/usr/bin/env node
// Runs bench/traffic.ts without a build step for bench/: TypeScript files are transpiled on require.
// The tools themselves run from dist/ (build first: node scripts/build.js).
'use strict';

require('./ts-hook');
require('./traffic.ts');
