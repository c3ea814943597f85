// The replayer's pure parts, without a VM: address moves, the replay lab's topology, what a scenario
// asks of the lab, and the timed scenario the kernel is judged against.
import { test, expect } from '@playwright/test';
import * as fs from 'fs';
import * as path from 'path';
import { resolveScenario, runScenario, type Scenario } from '../../src/models/scenario';
import { loadTopologyText } from '../../src/topology/load';
import { mapScenario, planAddressMap, prefixesOverlap, parsePrefix } from '../../src/suites/schedulers/addresses';
import { replayTopology } from '../../src/suites/schedulers/lab';
import { timedScenario } from '../../src/suites/schedulers/replay';
import { ScenarioSetup } from '../../src/suites/schedulers/setup';
import type { ReplayLab } from '../../src/suites/schedulers/lab';

const SCENARIOS = path.join(__dirname, '..', '..', 'suites', 'schedulers', 'scenarios');
const load = (name: string): Scenario => JSON.parse(fs.readFileSync(path.join(SCENARIOS, `${name}.json`), 'utf8')) as Scenario;

/** Just the lab fields ScenarioSetup's constructor reads (plain data, nothing of the system). */
const labShape = (servers: number) => ({ serverNodes: Array.from({ length: servers }, (_, i) => `s${i + 1}`) }) as unknown as ReplayLab;

test.describe('address moves', () => {
  test('shipped scenarios use lab addresses as given', () => {
    for (const f of fs.readdirSync(SCENARIOS).filter((x) => x.endsWith('.json'))) {
      const sc = JSON.parse(fs.readFileSync(path.join(SCENARIOS, f), 'utf8')) as Scenario;
      expect(planAddressMap(sc).identity, f).toBe(true);
    }
  });

  test('foreign addresses move a prefix at a time, keep host bits, and map back', () => {
    const sc = load('sh-many-clients');
    sc.flows = [{ generate: { count: 50, seed: 1, clients: '203.0.113.0/24' } }, { client: '203.0.113.77', cport: 1000 }, { client: '100.64.0.9', cport: 1000 }];
    sc.events = [];
    sc.servers[0].addr = '198.19.100.40'; // inside the replay lab's own LAN
    const map = planAddressMap(sc);
    expect(map.identity).toBe(false);
    const moved = mapScenario(sc, map);
    const gen = (moved.flows[0] as { generate: { clients: string } }).generate.clients;
    expect(gen.endsWith('/24')).toBe(true);
    expect(parsePrefix(gen).base.text.startsWith('198.1')).toBe(true);
    // the single address inside the moved /24 follows it, host byte kept
    const one = (moved.flows[1] as { client: string }).client;
    expect(one).toBe(gen.replace(/\.0\/24$/, '.77'));
    expect(map.toScenario(one)).toBe('203.0.113.77');
    expect(map.toScenario(map.toLab('100.64.0.9'))).toBe('100.64.0.9');
    const rs1 = moved.servers[0].addr;
    expect(prefixesOverlap(parsePrefix(rs1), parsePrefix('198.19.100.0/24'))).toBe(false);
    // nothing moved lands on an address the scenario already uses
    const used = new Set(moved.servers.map((s) => s.addr));
    expect(used.size).toBe(moved.servers.length);
    // the moved scenario is still valid and predicts
    expect(runScenario(moved).assignments.length).toBe(52);
  });
});

test('the replay lab topology: client, director and N servers on one LAN outside scenario space', () => {
  const model = loadTopologyText(replayTopology(4, 'ssunit'), '<test>');
  expect(model.nodes.map((n) => n.name)).toEqual(['client', 'director', 's1', 's2', 's3', 's4']);
  for (const n of model.nodes) expect(n.interfaces[0].ipv4!.addr.startsWith('198.19.100.')).toBe(true);
  expect(model.nodes[0].sysctls['net/ipv4/ip_nonlocal_bind']).toBe('1');
  expect(model.nodes[2].sysctls['net/ipv4/conf/all/arp_ignore']).toBe('1');
  expect(() => replayTopology(0)).toThrow(/1\.\.200/);
});

test.describe('what a scenario asks of the lab', () => {
  test('one node per server address in order of appearance, added servers included; client holdings and destinations', () => {
    const setup = new ScenarioSetup(labShape(5), resolveScenario(load('wrr-add-remove-midrun')));
    const slots = [...setup.slots.values()];
    expect(slots.map((s) => s.node)).toEqual(slots.map((_, i) => `s${i + 1}`));
    expect(slots.map((s) => s.names[0])).toEqual(['rs1', 'rs2', 'rs3']); // rs3 is added by an event
    expect(setup.dstAddrs).toEqual(['198.19.0.100']);
    expect(setup.clientPrefixes).toEqual(['198.18.0.2/32']);
  });

  test('fwmark destinations: explicit ones as addresses, generated ones as prefixes; generated clients as a prefix', () => {
    const setup = new ScenarioSetup(labShape(5), resolveScenario(load('dh-fwmark')));
    expect(setup.dstPrefixes.length + setup.dstAddrs.length).toBeGreaterThan(0);
    const withGen = new ScenarioSetup(labShape(5), resolveScenario(load('sh-many-clients')));
    expect(withGen.clientPrefixes).toEqual(['198.18.64.0/18']);
  });

  test('the IPVS service exactly as the scenario states it', () => {
    const p = new ScenarioSetup(labShape(5), resolveScenario(load('wlc-ipv6-persistence')));
    expect(p.serviceSpec()).toMatchObject({ family: 6, protocol: 'tcp', address: '2001:db8:100::100', port: 80, scheduler: 'wlc', flags: 1, timeout: 300, netmask: '64' });
    const n = new ScenarioSetup(labShape(5), resolveScenario(load('rr-persistence-netmask')));
    expect(n.serviceSpec()).toMatchObject({ flags: 1, netmask: '255.255.255.0' });
    const o = new ScenarioSetup(labShape(5), resolveScenario(load('rr-one-packet')));
    expect(o.serviceSpec()).toMatchObject({ protocol: 'udp', flags: 4 });
    const f = new ScenarioSetup(labShape(5), resolveScenario(load('sh-fallback')));
    expect(f.serviceSpec().flags).toBe(0x08);
    const nat = new ScenarioSetup(labShape(5), resolveScenario(load('lc-reuse-time-wait-counts')));
    expect(nat.destinationSpec(nat.rs.servers[0])).toMatchObject({ forward: 'masq', weight: 1, upperThreshold: 0, lowerThreshold: 0 });
    const fw = new ScenarioSetup(labShape(5), resolveScenario(load('wlc-fwmark-persistence')));
    expect(fw.serviceKey()).toEqual({ family: 4, fwmark: 1 });
  });

  test('too many servers for the lab is a clear error', () => {
    expect(() => new ScenarioSetup(labShape(3), resolveScenario(load('wrr-many-servers')))).toThrow(/only 3 server nodes/);
  });
});

test.describe('the timed scenario', () => {
  test('waits of the real elapsed time before flows and closes; original waits dropped; other events kept in place', () => {
    const sc = load('rr-lower-threshold');
    const timeline = [
      ...Array.from({ length: 9 }, (_, i) => ({ before: i, t: 1000 + i * 10 })),
      { before: 9, t: 1200, event: sc.events![0] }, // close flow 0 at 1.2 s
      ...[9, 10].map((i) => ({ before: i, t: 17_000 + (i - 9) * 10 })),
      { before: 11, t: 17_100, event: sc.events![2] }, // release
      ...[11, 12, 13].map((i) => ({ before: i, t: 33_000 + (i - 11) * 10 })),
    ];
    const timed = timedScenario(sc, timeline);
    const waits = timed.events!.filter((e) => e.op === 'wait');
    expect(waits.every((w) => w.op === 'wait' && w.seconds < 16)).toBe(true);
    expect(timed.events!.filter((e) => e.op !== 'wait').map((e) => `${e.op}@${e.before}`)).toEqual(['close@9', 'release@11']);
    const total = waits.reduce((t, w) => t + (w.op === 'wait' ? w.seconds : 0), 0);
    expect(total).toBeCloseTo(32.02, 2);
    // the timed scenario is valid and gives the nominal answer when the timing is like the scenario's
    expect(runScenario(timed).assignments).toEqual(runScenario(sc).assignments);
  });

  test('real timing can change a prediction: a close that happened 11 s before the next flow has expired (tcpfin 10)', () => {
    const sc = load('rr-upper-threshold');
    const nominal = runScenario(sc).assignments;
    // no wait at all between the release and flow 8: rs3's closed connections still count
    const quick = timedScenario(sc, [...Array.from({ length: 8 }, (_, i) => ({ before: i, t: i })), { before: 8, t: 10, event: sc.events![0] }, { before: 8, t: 20 }, { before: 9, t: 30 }, { before: 10, t: 40 }]);
    expect(runScenario(quick).assignments).not.toEqual(nominal);
  });
});
