#!/usr/bin/env node
// Runs bench/forwarding-nftables.ts straight from the TypeScript sources: .ts files are transpiled on require
// (typescript's transpileModule, no type check; `npm run typecheck` does that). Usage: node bench/forwarding-nftables.js [--workers N]
'use strict';

require('./ts-hook');
require('./forwarding-nftables.ts');
