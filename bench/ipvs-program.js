#!/usr/bin/env node
// Runs bench/ipvs-program.ts: TypeScript sources (the bench and the src/ modules it imports) are
// transpiled on load with the project's own typescript package; no build step, no extra dependency.
'use strict';

require('./ts-hook');
require('./ipvs-program.ts');
