// Lets a bench launcher require TypeScript sources (the bench and the src/ modules it imports) without a
// build step: .ts files are transpiled on load with the project's own typescript (transpileModule, no type
// check; `npm run typecheck` does that). The traffic tools and agents the benches start run from dist/.
'use strict';
const fs = require('fs');
const path = require('path');
const ts = require(path.join(__dirname, '..', 'node_modules', 'typescript'));

// '.ts' is tried before '.json': src/host/requirements.ts sits beside requirements.json, and an extensionless
// require('./requirements') must load the module, not the data (node tries extensions in registration order).
const later = ['.json', '.node'].map((ext) => [ext, require.extensions[ext]]);
for (const [ext] of later) delete require.extensions[ext];
require.extensions['.ts'] = (module, filename) => {
  const out = ts.transpileModule(fs.readFileSync(filename, 'utf8'), {
    compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022, esModuleInterop: true, resolveJsonModule: true },
    fileName: filename,
  });
  module._compile(out.outputText, filename);
};
for (const [ext, load] of later) require.extensions[ext] = load;
