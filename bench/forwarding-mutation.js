#!/usr/bin/env node
// Runs bench/forwarding-mutation.ts straight from the TypeScript sources: .ts files are transpiled on require
// (typescript's transpileModule, no type check; `npm run typecheck` does that). Usage: node bench/forwarding-mutation.js [--faults a,b] [--baseline DIR] [--out DIR]
'use strict';
const fs = require('fs');
const ts = require('typescript');

require.extensions['.ts'] = (module, filename) => {
  const out = ts.transpileModule(fs.readFileSync(filename, 'utf8'), {
    compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022, esModuleInterop: true, resolveJsonModule: true },
    fileName: filename,
  });
  module._compile(out.outputText, filename);
};
require('./forwarding-mutation.ts');
