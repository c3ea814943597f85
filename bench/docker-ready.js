#!/usr/bin/env node
// Runs bench/docker-ready.ts from the TypeScript sources (bench/ts-hook.js). Usage: node bench/docker-ready.js [runs]
'use strict';

require('./ts-hook');
require('./docker-ready.ts');
