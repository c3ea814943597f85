// The traffic API on nodes of a lab brought up by the real netns backend (topologies/nat.yaml), no
// director programmed: responders on the three real servers reached from the director (same segment),
// and a responder on the director reached at its VIP from client1.
import { test, expect } from '@playwright/test';
import * as path from 'path';
import { upNetnsLab } from '../../src/backend/netns';
import { loadTopologyFile } from '../../src/topology/load';
import { runClient, startResponder } from '../../src/traffic/index';
import { assertToolsBuilt } from './netns-node';

test('on a netns-backend NAT lab each responder answers with its own address and sees the sender, IPv4 and IPv6', async () => {
  assertToolsBuilt();
  const model = loadTopologyFile(path.join(__dirname, '..', '..', 'topologies', 'nat.yaml'));
  const lab = await upNetnsLab(model, { ephemeral: true, name: `vslabtr-nat-${process.pid % 100000}` });
  const node = (n: string) => model.nodes.find((x) => x.name === n)!;
  const onBack = (n: string) => node(n).interfaces.find((i) => i.segment === 'back')!;
  const responders = ['rs1', 'rs2', 'rs3', 'director'].map((n) => startResponder(lab.node(n), { name: n, tcp: [8080], udp: [53] }));
  try {
    await Promise.all(responders.map((r) => r.ready));
    const checks: Array<[string, string, string, string]> = []; // client node, target, expected server, expected peer
    for (const rs of ['rs1', 'rs2', 'rs3']) {
      checks.push(['director', onBack(rs).ipv4!.addr, rs, onBack('director').ipv4!.addr]);
      checks.push(['director', onBack(rs).ipv6!.addr, rs, onBack('director').ipv6!.addr]);
    }
    const front = node('client1').interfaces[0];
    for (const vip of new Set(model.services.map((x) => x.vip).filter((v): v is string => v !== undefined))) {
      checks.push(['client1', vip, 'director', vip.includes(':') ? front.ipv6!.addr : front.ipv4!.addr]);
    }
    for (const [from, target, server, peer] of checks) {
      for (const [proto, port] of [['tcp', 8080], ['udp', 53]] as const) {
        const rep = await runClient(lab.node(from), { proto, target: { address: target, port }, count: 3, sequential: true });
        expect(rep.conns.map((c) => [c.outcome, c.server, c.local, c.peer]), `${proto} ${from} -> ${target}`).toEqual(Array(3).fill(['answered', server, target, peer]));
      }
    }
    const counts = await Promise.all(responders.map((r) => r.stop()));
    expect(counts.map((c) => c.served)).toEqual([...Array(3).fill({ tcp: 6, udp: 6 }), { tcp: 6, udp: 6 }]);
  } finally {
    await Promise.all(responders.map((r) => r.stop().catch(() => undefined)));
    await lab.down();
  }
});
