// The oracle on an ha lab: a flow goes through whichever director it names (the VRRP master of the moment
// holds the VIP on the group segment), and the group's own traffic is declared background.
import { test, expect } from '@playwright/test';
import * as path from 'path';
import { loadTopologyFile } from '../../src/topology/load';
import { planFlow } from '../../src/oracle/flow-checks';
import { haGroupBackground } from '../../src/oracle/background';
import { OracleRouteError } from '../../src/oracle/route';

const m = loadTopologyFile(path.join(__dirname, '..', '..', 'suites', 'ha', 'topologies', 'ha-dr.yaml'));
const client = m.nodes.find((n) => n.name === 'client1')!.interfaces[0].ipv4!.addr;
const flow = { service: 'stream4', client: 'client1', clientAddr: client, clientPort: 40000, realServer: 'rs2' };

test('a flow through each director of the group: the client\'s packets reach that director, which forwards them to the real server', () => {
  for (const d of ['d1', 'd2']) {
    const plan = planFlow(m, { ...flow, director: d });
    expect(plan.director).toBe(d);
    const links = plan.c2s.map((h) => h.link);
    expect(links[0]).toBe('client1:eth0');
    expect(links).toContain(`${d}:eth0`);
    expect(links[links.length - 1]).toBe('rs2:eth0');
    expect(links.some((l) => l.startsWith(d === 'd1' ? 'd2:' : 'd1:'))).toBe(false);
  }
  // Without a director: the service's own (the initial master).
  expect(planFlow(m, flow).director).toBe('d1');
});

test('a director outside the group is refused', () => {
  expect(() => planFlow(m, { ...flow, director: 'rs1' })).toThrow(OracleRouteError);
});

test('the group\'s background: VRRP, IGMP, sync messages, the handover relay, and health checks from each director to each checked real server', () => {
  const bg = haGroupBackground(m);
  expect(bg.map((c) => c.name)).toEqual(['ha-vrrp', 'ha-igmp', 'ha-sync', 'ha-handover', 'ha-health-checks']);
  // 2 directors x 3 real servers x 2 checked services x 2 directions.
  expect(bg[4].patterns.length).toBe(24);
  // Handover, per director and group service (web4, stream4): its redirect, its frames to the other director, and
  // its forwarding of a relayed packet (two TTLs below the client's initial one: one router more than planned).
  expect(bg[3].patterns.length).toBe(2 * 2 * 3);
  const redirectsFrom = bg[3].patterns.filter((p) => p[2]?.type === 'icmp').map((p) => (p[1] as unknown as { src: string }).src);
  expect([...new Set(redirectsFrom)].sort()).toEqual(m.ha!.directors.map((d) => d.vrrpAddr).sort());
  expect(bg[3].patterns.filter((p) => (p[1] as unknown as { ttl?: number }).ttl !== undefined).map((p) => (p[1] as unknown as { ttl: number }).ttl)).toEqual([62, 62, 62, 62]);
  const noHa = { ...m, ha: undefined };
  expect(haGroupBackground(noHa)).toEqual([]);
});
