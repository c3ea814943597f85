#!/usr/bin/env node
// Runs bench/ipvs-program.ts: TypeScript sources (the bench and the src/ modules it imports) are
// transpiled on load with the project's own typescript package; no build step, no extra dependency.
'use strict';
const fs = require('fs');
const ts = require('typescript');

require.extensions['.ts'] = (module, filename) => {
  const out = ts.transpileModule(fs.readFileSync(filename, 'utf8'), {
    compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022, esModuleInterop: true },
    fileName: filename,
  });
  module._compile(out.outputText, filename);
};
require('./ipvs-program.ts');
