#!/usr/bin/env node
// Runs bench/vm-boot.ts straight from the TypeScript sources: .ts files are transpiled on require
// (typescript's transpileModule, no type check; `npm run typecheck` does that). Usage: node bench/vm-boot.js [boots]
'use strict';

require('./ts-hook');
require('./vm-boot.ts');
