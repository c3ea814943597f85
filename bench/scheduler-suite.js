#!/usr/bin/env node
// Runs bench/scheduler-suite.ts straight from the TypeScript sources (see bench/ts-hook.js).
// Usage: node bench/scheduler-suite.js [--grep REGEX] [--workers N] [--slots N] [--kernel K] [--order new-first]
'use strict';

require('./ts-hook');
require('./scheduler-suite.ts');
