#!/usr/bin/env node
// Runs bench/forwarding-mutation.ts straight from the TypeScript sources: .ts files are transpiled on require
// (typescript's transpileModule, no type check; `npm run typecheck` does that). Usage: node bench/forwarding-mutation.js [--faults a,b] [--baseline DIR] [--out DIR]
'use strict';

require('./ts-hook');
require('./forwarding-mutation.ts');
