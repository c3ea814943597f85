#!/usr/bin/env node
// HA failover figures: N concurrent long-lived flows (N = 10, 100) through a two-director group
// (suites/ha/topologies/ha-dr.yaml) in a VM; the master is killed and the figures are printed with
// connection sync and without it (the anchor: the same group, sync messages dropped), side by side, in
// the same run. Runs from dist/ (node scripts/build.js first). Not a test.
// Usage: VSLAB_VM_NAME_PREFIX=vslabbench- node bench/ha-failover.js [N...]   (the lab is named <prefix>habench)
'use strict';
const path = require('path');
const root = path.resolve(__dirname, '..');
const { loadTopologyFile } = require(path.join(root, 'dist/topology/load'));
const { upLab } = require(path.join(root, 'dist/backend'));
const { HaGroup, startStreamClient, startStreamServers } = require(path.join(root, 'dist/ha/group'));
const { flowKept } = require(path.join(root, 'dist/ha/checks'));
const { HA_FAULTS } = require(path.join(root, 'dist/ha/faults'));

const sizes = process.argv.slice(2).map(Number).filter((n) => n > 0);
const NS = sizes.length ? sizes : [10, 100];
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function retrans(node) {
  const r = await node.exec(['cat', '/proc/net/snmp']);
  const lines = r.stdout.split('\n').filter((l) => l.startsWith('Tcp:'));
  const [h, v] = lines.map((l) => l.split(/\s+/));
  return Number(v[h.indexOf('RetransSegs')]);
}

async function round(lab, group, n, sync, sport) {
  const [master, backup] = group.ha.directors.map((d) => d.node);
  const noSync = HA_FAULTS.find((f) => f.name === 'ha-no-sync').plan(lab.model);
  if (!sync) for (const a of noSync) await lab.node(a.node).exec(a.argv, { input: a.input });
  const client = lab.node('client1');
  const stream = await startStreamClient(lab, 'client1', 'stream4', n, sport, 200);
  await sleep(Math.max(3000, n * 60));
  const r0 = await retrans(client);
  const killAt = await group.killDirector(master);
  const t0 = Date.now();
  await group.waitMaster(backup, 60000);
  const failoverMs = Date.now() - t0; // host-side poll: an upper bound (200 ms steps plus exec round trips)
  await sleep(4000);
  const rep = await stream.stop();
  const lost = (await retrans(client)) - r0;
  await group.restoreDirector(master);
  if (!sync) for (const a of noSync) await lab.node(a.node).exec(['nft', 'delete', 'table', 'inet', 'vslab_fault']);
  await group.waitMaster(master, 120000);
  return { n, sync, failoverMs, flowsKept: rep.flows.filter(flowKept).length, flowsTotal: rep.flows.length, maxGapMs: Math.max(0, ...rep.flows.map((f) => f.maxGapMs)), packetsLost: lost, killAt };
}

(async () => {
  const model = loadTopologyFile(path.join(root, 'suites/ha/topologies/ha-dr.yaml'));
  // keepalived is not in the default guest image (the ha suite's traits add it): copied in here too; 100
  // flows are 100 sockets plus the echo servers' Node processes, so the guest gets the suite's memory.
  const prefix = process.env.VSLAB_VM_NAME_PREFIX || '';
  const lab = await upLab(model, { backend: 'vm', name: `${/^[a-z0-9]+-$/.test(prefix) ? prefix.slice(0, -1) : ''}habench`, ephemeral: true, memoryMiB: 1536, boot: { initramfs: { extraTools: ['keepalived'] } } });
  const group = new HaGroup(lab);
  let code = 0;
  try {
    await group.start();
    await group.waitMaster('d1', 60000);
    await group.waitProgrammed();
    await startStreamServers(lab, 'stream4');
    console.log(`${'flows'.padEnd(6)} ${'sync'.padEnd(5)} ${'failover (ms)'.padEnd(14)} ${'kept/total'.padEnd(11)} ${'max gap (ms)'.padEnd(13)} ${'client retransmissions'}`);
    let sport = 30000;
    for (const n of NS) {
      const rows = [];
      for (const sync of [true, false]) {
        rows.push(await round(lab, group, n, sync, sport));
        sport += n + 16;
      }
      for (const r of rows) console.log(`${String(r.n).padEnd(6)} ${(r.sync ? 'on' : 'off').padEnd(5)} ${String(r.failoverMs).padEnd(14)} ${`${r.flowsKept}/${r.flowsTotal}`.padEnd(11)} ${String(r.maxGapMs).padEnd(13)} ${r.packetsLost}`);
      const [on, off] = rows;
      console.log(`       target: with sync kept = total (${on.flowsKept === on.flowsTotal ? 'met' : 'NOT met'}); anchor without sync keeps ${off.flowsKept}/${off.flowsTotal}; failover target <= 3 x advert + margin = ${3 * group.ha.advertIntervalS * 1000 + 2500} ms`);
    }
  } catch (e) {
    console.error(e.message);
    code = 1;
  } finally {
    await group.stop().catch(() => undefined);
    await lab.down();
  }
  process.exit(code);
})();
