#!/usr/bin/env node
// What `vslab predict` spends on a large scenario: a wrr service with 10 servers and N flows (default
// 1e6), written out one by one (the JSON a user pipes in) and as one generated flow set, timed in CPU
// milliseconds per phase (read+parse, resolve = validation and expansion, run = the model), so a
// loaded machine's waiting does not count. With --baseline DIR (a build of the models of another
// commit: DIR/models/scenario.js) both builds run alternately in the same process and their outputs
// must be identical. Run: node bench/predict-scenario.js [flows] [--baseline DIR] [--reps N]
'use strict';
const path = require('path');
const crypto = require('crypto');

const args = process.argv.slice(2);
const opt = (name) => { const i = args.indexOf(name); return i >= 0 ? args.splice(i, 2)[1] : undefined; };
const baseline = opt('--baseline');
const reps = Number(opt('--reps') ?? 3);
const N = Number(args[0] ?? 1e6);
if (!Number.isInteger(N) || N < 1 || N > 1e6) { console.error('flows: an integer 1..1000000'); process.exit(2); }

const servers = Array.from({ length: 10 }, (_, i) => ({ name: `rs${i}`, addr: `198.18.1.${10 + i}`, port: 80, weight: 1 + (i % 4) }));
const base = { scheduler: 'wrr', flags: [], service: { proto: 'tcp', vip: '198.19.0.100', port: 80 }, servers, hold: false };
const flows = [];
for (let i = 0; i < N; i++) flows.push({ client: `198.18.${64 + ((i >> 16) & 63)}.${(i >> 8) & 255}`, cport: 1024 + (i & 255) + 256 * ((i >> 22) & 15) });
const texts = {
  explicit: JSON.stringify({ ...base, flows }),
  generated: JSON.stringify({ ...base, flows: [{ generate: { count: N, seed: 1, clients: '198.18.64.0/18' } }] }),
};

const cpu = () => { const u = process.cpuUsage(); return (u.user + u.system) / 1000; };
function once(dir, text) {
  const sc = require(path.join(dir, 'models', 'scenario.js'));
  const t0 = cpu();
  const data = JSON.parse(text);
  const t1 = cpu();
  const rs = sc.resolveScenario(data);
  const t2 = cpu();
  const r = sc.runScenario(rs);
  const t3 = cpu();
  const digest = crypto.createHash('sha256').update(JSON.stringify(r.assignments)).digest('hex').slice(0, 16);
  return { parse: t1 - t0, resolve: t2 - t1, run: t3 - t2, total: t3 - t0, digest };
}

const builds = { current: path.join(__dirname, '..', 'dist') };
if (baseline) builds.baseline = path.resolve(baseline);
console.log(`vslab predict, wrr, 10 servers, ${N} flows: CPU ms per phase, best of ${reps} (node ${process.version})`);
let mismatch = false;
for (const [kind, text] of Object.entries(texts)) {
  const best = {};
  const digests = {};
  for (let r = 0; r < reps; r++) {
    for (const [b, dir] of Object.entries(builds)) {
      const x = once(dir, text);
      if (!best[b] || x.total < best[b].total) best[b] = x;
      digests[b] = x.digest;
      if (global.gc) global.gc();
    }
  }
  for (const [b, x] of Object.entries(best)) {
    console.log(`${kind.padEnd(9)} ${b.padEnd(8)}  parse ${x.parse.toFixed(0).padStart(5)}  resolve ${x.resolve.toFixed(0).padStart(5)}  run ${x.run.toFixed(0).padStart(5)}  total ${x.total.toFixed(0).padStart(6)} ms  assignments ${x.digest}`);
  }
  if (best.baseline) {
    console.log(`${kind.padEnd(9)} speed-up ${(best.baseline.total / best.current.total).toFixed(2)}x (resolve ${(best.baseline.resolve / best.current.resolve).toFixed(2)}x, run ${(best.baseline.run / best.current.run).toFixed(2)}x)`);
    if (digests.baseline !== digests.current) { mismatch = true; console.log(`${kind}: ASSIGNMENTS DIFFER from the baseline`); }
  }
}
if (mismatch) process.exitCode = 1;
