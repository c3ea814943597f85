#!/usr/bin/env node
// Runs vslab's own test suite with Playwright Test and ends with the plain line
// `N passed, N failed, N skipped` that CI reads. Exit code: 0 only when nothing failed and something ran.
'use strict';
const { spawnSync } = require('child_process');
const fs = require('fs');
const path = require('path');

const root = path.resolve(__dirname, '..');
const results = path.join(root, 'test-results', 'results.json');
fs.rmSync(results, { force: true });
const args = [path.join(root, 'node_modules', '@playwright', 'test', 'cli.js'), 'test', ...process.argv.slice(2)];
const run = spawnSync(process.execPath, args, { cwd: root, stdio: 'inherit' });

let passed = 0, failed = 0, skipped = 0, flaky = 0;
if (fs.existsSync(results)) {
  const r = JSON.parse(fs.readFileSync(results, 'utf8'));
  const s = r.stats || {};
  passed = s.expected || 0;
  failed = (s.unexpected || 0);
  flaky = s.flaky || 0;
  skipped = s.skipped || 0;
  if (r.errors && r.errors.length) failed += r.errors.length;
}
if (flaky) console.log(`${flaky} flaky (failed first, passed on retry) — counted as failed`);
console.log(`${passed} passed, ${failed + flaky} failed, ${skipped} skipped`);
const ok = run.status === 0 && failed + flaky === 0 && passed > 0;
process.exit(ok ? 0 : 1);
