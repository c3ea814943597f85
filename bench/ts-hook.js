// Lets a bench launcher require TypeScript sources (the bench and the src/ modules it imports) without a
// build step: .ts files are transpiled on load with the project's own typescript (transpileModule, no type
// check; `npm run typecheck` does that). The traffic tools and agents the benches start run from dist/.
'use strict';
const fs = require('fs');
const path = require('path');
const ts = require(path.join(__dirname, '..', 'node_modules', 'typescript'));

require.extensions['.ts'] = (module, filename) => {
  const out = ts.transpileModule(fs.readFileSync(filename, 'utf8'), {
    compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022, esModuleInterop: true, resolveJsonModule: true },
    fileName: filename,
  });
  module._compile(out.outputText, filename);
};

// Extensionless requires try require.extensions in key order: put .ts before .json, or
// require('../host/requirements') would load requirements.json instead of requirements.ts.
for (const ext of ['.json', '.node']) {
  const load = require.extensions[ext];
  delete require.extensions[ext];
  require.extensions[ext] = load;
}
