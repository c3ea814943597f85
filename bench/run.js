#!/usr/bin/env node
// Runs a benchmark: `node bench/run.js <name> [args...]` builds vslab (scripts/build.js), transpiles
// bench/<name>.ts next to the build output (dist/bench/<name>.js, imports of ../src/ pointing at dist/)
// and runs it. Benchmarks are not part of the test run.
'use strict';
const { execFileSync } = require('child_process');
const fs = require('fs');
const path = require('path');

const root = path.resolve(__dirname, '..');
const name = process.argv[2];
if (!name) {
  const list = fs.readdirSync(__dirname).filter((f) => f.endsWith('.ts')).map((f) => f.slice(0, -3));
  console.error(`usage: node bench/run.js <name> [args...]   (benchmarks: ${list.join(', ')})`);
  process.exit(2);
}
const src = path.join(__dirname, `${name}.ts`);
if (!fs.existsSync(src)) {
  console.error(`no benchmark ${src}`);
  process.exit(2);
}
execFileSync(process.execPath, [path.join(root, 'scripts', 'build.js')], { stdio: 'inherit' });
const ts = require(path.join(root, 'node_modules', 'typescript'));
const out = ts.transpileModule(fs.readFileSync(src, 'utf8'), {
  compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022, esModuleInterop: true },
  fileName: src,
}).outputText.replace(/require\("\.\.\/src\//g, 'require("../');
const dest = path.join(root, 'dist', 'bench', `${name}.js`);
fs.mkdirSync(path.dirname(dest), { recursive: true });
fs.writeFileSync(dest, out);
const r = require('child_process').spawnSync(process.execPath, ['--max-old-space-size=4096', dest, ...process.argv.slice(3)], { stdio: 'inherit' });
process.exit(r.status ?? 1);
