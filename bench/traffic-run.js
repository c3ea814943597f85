#!/usr/bin/env node
// Runs bench/traffic.ts without a build step for bench/: TypeScript files are transpiled on require.
// The tools themselves run from dist/ (build first: node ci/build.js).
'use strict';
const fs = require('fs');
const ts = require('typescript');

require.extensions['.ts'] = (module, filename) => {
  const out = ts.transpileModule(fs.readFileSync(filename, 'utf8'), {
    fileName: filename,
    compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022, esModuleInterop: true, sourceMap: false },
  });
  module._compile(out.outputText, filename);
};
require('./traffic.ts');
