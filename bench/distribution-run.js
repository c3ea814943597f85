#!/usr/bin/env node
// Runs bench/distribution.ts without a build step for bench/: TypeScript files are transpiled on
// require. The traffic tools and the flow driver run in the VM from dist/ (build first: node ci/build.js).
// Usage: node bench/distribution-run.js [connections=10000] [bookworm|backports]
'use strict';
const fs = require('fs');
const ts = require('typescript');

require.extensions['.ts'] = (module, filename) => {
  const out = ts.transpileModule(fs.readFileSync(filename, 'utf8'), {
    fileName: filename,
    compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022, esModuleInterop: true, resolveJsonModule: true, sourceMap: false },
  });
  module._compile(out.outputText, filename);
};
require('./distribution.ts');
