#!/usr/bin/env node
// Runs bench/kernel-throughput.ts without a build step for bench/ (TypeScript transpiled on require).
// The flow driver and traffic tools run in the VM from dist/ (build first: node scripts/build.js).
// Usage: node bench/kernel-throughput.js [connections=20000] [baseline=300] [bookworm|backports]
'use strict';

require('./ts-hook');
require('./kernel-throughput.ts');
