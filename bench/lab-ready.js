#!/usr/bin/env node
// Time to ready for nat.yaml and scale-100.yaml on the netns backend, beside the anchors measured on
// this machine (`ip -batch` ≈ 10 ms/node, `docker run` ≈ 377 ms/node) and the targets (NAT ≤ 100 ms,
// 100 real servers ≤ 1 s). Not a test: it prints figures. Usage: node bench/lab-ready.js [runs]
'use strict';
const path = require('path');
const { loadTopologyFile } = require('../dist/topology/load');
const { upNetnsLab } = require('../dist/backend/netns');

const runs = Number(process.argv[2] || 5);
const targets = { 'nat.yaml': 100, 'scale-100.yaml': 1000 };
(async () => {
  console.log(`lab bring-up on the netns backend, ${runs} runs each (median / min / max, ms)`);
  for (const f of Object.keys(targets)) {
    const model = loadTopologyFile(path.join(__dirname, '..', 'topologies', f));
    const ready = [], down = [];
    for (let i = 0; i < runs; i++) {
      const lab = await upNetnsLab(model, { ephemeral: true, name: `bench-${i}` });
      ready.push(lab.readyMs);
      const t = performance.now();
      await lab.down();
      down.push(performance.now() - t);
    }
    ready.sort((a, b) => a - b);
    down.sort((a, b) => a - b);
    const med = (a) => a[Math.floor(a.length / 2)];
    const n = model.nodes.length;
    console.log(`${f.padEnd(15)} ${String(n).padStart(3)} nodes  ready ${med(ready).toFixed(1)} / ${ready[0].toFixed(1)} / ${ready[ready.length - 1].toFixed(1)}` +
      `  (${(med(ready) / n).toFixed(2)} ms/node)  target ≤ ${targets[f]} ms: ${med(ready) <= targets[f] ? 'met' : 'MISSED'}` +
      `  | anchors: ip -batch ≈ ${10 * n} ms, docker run ≈ ${(0.377 * n).toFixed(1)} s  | down ${med(down).toFixed(1)} ms`);
  }
})().catch((e) => { console.error(e.message); process.exit(1); });
