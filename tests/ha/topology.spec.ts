// The topology `ha` block: what is derived from it and every error with its file:line:col.
import { test, expect } from '@playwright/test';
import * as fs from 'fs';
import * as path from 'path';
import { loadTopologyFile, loadTopologyText, TopologyError } from '../../src/topology/load';

const SUITE_TOPO = path.join(__dirname, '..', '..', 'suites', 'ha', 'topologies', 'ha-dr.yaml');
const text = fs.readFileSync(SUITE_TOPO, 'utf8');

function diagnostics(t: string) {
  try {
    loadTopologyText(t, 'bad.yaml');
  } catch (e) {
    if (e instanceof TopologyError) return e.diagnostics;
    throw e;
  }
  throw new Error('the topology was accepted');
}

test('the suite topology derives a group: priorities, VRRP and sync interfaces, health checks, VIPs on-link', () => {
  const m = loadTopologyFile(SUITE_TOPO);
  const ha = m.ha!;
  expect(ha.directors.map((d) => [d.node, d.priority, d.vrrpIface, d.syncIface])).toEqual([['d1', 150, 'eth0', 'eth1'], ['d2', 140, 'eth0', 'eth1']]);
  expect(ha.sync).toEqual({ segment: 'sync', syncId: 16, threshold: 3, period: 0, refreshS: 2 });
  expect(ha.healthChecks.web4).toEqual({ type: 'tcp', intervalS: 1, timeoutS: 1, retries: 1 });
  expect(ha.vips).toEqual(['198.18.0.100/24']);
  expect(m.services[0].director).toBe('d1');
  for (const d of ['d1', 'd2']) expect(m.nodes.find((n) => n.name === d)!.loopbackAddrs).toEqual([]);
  // The client reaches the VIP on-link, not through a route to one director.
  expect(m.nodes.find((n) => n.name === 'client1')!.routes.filter((r) => r.to.startsWith('198.18.0.100'))).toEqual([]);
  // DR real servers still hold it on lo.
  expect(m.nodes.find((n) => n.name === 'rs1')!.loopbackAddrs).toEqual(['198.18.0.100/32']);
});

test('sync: false, priorities reversed: the higher priority is the master and directs the services', () => {
  const m = loadTopologyText(text.replace('sync: { segment: sync, syncId: 16, period: 0, refreshPeriod: 2 }', 'sync: false')
    .replace('vrrp: { routerId: 51, advertInterval: 1, preempt: true, preemptDelay: 8 }', 'vrrp: { priorities: { d1: 100, d2: 200 }, preempt: false }'), 'x.yaml');
  expect(m.ha!.sync).toBeUndefined();
  expect(m.ha!.directors.map((d) => d.node)).toEqual(['d2', 'd1']);
  expect(m.ha!.preempt).toBe(false);
  expect(m.services[0].director).toBe('d2');
});

const CASES: Array<{ what: string; from: string; to: string; line: number; col: number; message: RegExp }> = [
  { what: 'unknown director', from: 'directors: [d1, d2]', to: 'directors: [d1, d9]', line: 41, col: 19, message: /unknown node "d9"/ },
  { what: 'a real server as director', from: 'directors: [d1, d2]', to: 'directors: [d1, rs1]', line: 41, col: 19, message: /node "rs1" has role real-server, not director/ },
  { what: 'unknown segment', from: 'segment: front', to: 'segment: nowhere', line: 42, col: 12, message: /unknown segment "nowhere"/ },
  { what: 'VIP outside the VRRP segment', from: 'vip: 198.18.0.100', to: 'vip: 198.19.0.100', line: 27, col: 10, message: /VIP 198\.19\.0\.100 of ha service "web4" must lie in the subnet of the VRRP segment "front" \(198\.18\.0\.0\/24\)/ },
  { what: 'nat real servers', from: 'method: dr', to: 'method: nat', line: 31, col: 19, message: /nat real servers are not supported with ha yet/ },
  { what: 'equal priorities', from: 'preemptDelay: 8 }', to: 'preemptDelay: 8, priorities: { d1: 100, d2: 100 } }', line: 43, col: 88, message: /same priority 100/ },
  { what: 'priority of a non-member', from: 'preemptDelay: 8 }', to: 'preemptDelay: 8, priorities: { rs1: 100 } }', line: 43, col: 90, message: /"rs1" is not one of the ha directors/ },
  { what: 'health check of an unknown service', from: '    web4: { type: tcp', to: '    web9: { type: tcp', line: 46, col: 5, message: /unknown service "web9"/ },
  { what: 'unknown health check type', from: 'type: tcp', to: 'type: http', line: 46, col: 19, message: /must be one of: tcp/ },
  { what: 'sync threshold not below its period', from: 'period: 0, refreshPeriod: 2', to: 'period: 3, refreshPeriod: 2', line: 44, col: 46, message: /sync threshold 3 must be below the period 3/ },
  { what: 'advert interval out of range', from: 'advertInterval: 1', to: 'advertInterval: 0', line: 43, col: 41, message: /"ha.vrrp.advertInterval" must be >= 0.01/ },
];

for (const c of CASES) {
  test(`error: ${c.what}`, () => {
    const t = text.split(c.from).join(c.to);
    expect(t).not.toBe(text);
    const d = diagnostics(t);
    const hit = d.find((x) => c.message.test(x.message));
    expect(hit, JSON.stringify(d)).toBeTruthy();
    expect([hit!.file, hit!.line, hit!.col]).toEqual(['bad.yaml', c.line, c.col]);
  });
}

test('a sync segment one director is not on is refused, naming it', () => {
  const t = text.replace('    members: [d1, d2]\nservices', '    members: [d1]\nservices');
  const d = diagnostics(t);
  expect(d.map((x) => x.message).join('\n')).toMatch(/director "d2" has no IPv4 address on the sync segment "sync"/);
});
