#!/usr/bin/env node
// Build vslab: the small native helper (setns-aware netlink and sysctl) and the TypeScript sources.
// Skips whatever is already up to date so `npm test` and `npm run quickstart` stay cheap to repeat.
'use strict';
const { execFileSync } = require('child_process');
const fs = require('fs');
const path = require('path');

const root = path.resolve(__dirname, '..');
const rel = (p) => path.join(root, p);

function newest(dir, exts) {
  let t = 0;
  if (!fs.existsSync(dir)) return 0;
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) t = Math.max(t, newest(p, exts));
    else if (exts.some((x) => e.name.endsWith(x))) t = Math.max(t, fs.statSync(p).mtimeMs);
  }
  return t;
}
const mtime = (p) => (fs.existsSync(p) ? fs.statSync(p).mtimeMs : 0);

function buildNative() {
  const src = rel('src/native/vslab_native.c');
  const out = rel('build/vslab_native.node');
  if (mtime(out) >= mtime(src)) return;
  const include = path.join(path.dirname(path.dirname(process.execPath)), 'include', 'node');
  const candidates = [include, '/usr/include/node', '/usr/local/include/node'];
  const inc = candidates.find((d) => fs.existsSync(path.join(d, 'node_api.h')));
  if (!inc) throw new Error(`node_api.h not found (looked in ${candidates.join(', ')}); install Node's headers`);
  fs.mkdirSync(rel('build'), { recursive: true });
  execFileSync('cc', ['-O2', '-Wall', '-shared', '-fPIC', `-I${inc}`, '-DNODE_GYP_MODULE_NAME=vslab_native', src, '-o', out], { stdio: 'inherit' });
}

/** Outputs of sources that are gone (a module deleted or renamed): a stale module must not stay importable. */
function removeStale(out, src) {
  if (!fs.existsSync(out)) return;
  for (const e of fs.readdirSync(out, { withFileTypes: true })) {
    const p = path.join(out, e.name);
    if (e.isDirectory()) {
      removeStale(p, path.join(src, e.name));
      if (!fs.readdirSync(p).length) fs.rmdirSync(p);
      continue;
    }
    const m = /^(.*)\.(js|js\.map|d\.ts|d\.ts\.map)$/.exec(e.name);
    if (m && !fs.existsSync(path.join(src, `${m[1]}.ts`)) && !fs.existsSync(path.join(src, `${m[1]}.json`))) fs.rmSync(p);
  }
}

function buildTs() {
  const stamp = rel('dist/.built');
  if (mtime(stamp) >= Math.max(newest(rel('src'), ['.ts', '.json']), mtime(rel('tsconfig.json')))) return;
  execFileSync(process.execPath, [rel('node_modules/typescript/bin/tsc'), '-p', rel('tsconfig.json')], { stdio: 'inherit' });
  removeStale(rel('dist'), rel('src'));
  fs.writeFileSync(stamp, new Date().toISOString() + '\n');
}

buildNative();
buildTs();
