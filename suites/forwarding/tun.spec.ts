// Forwarding conformance, IP tunnelling: every hop of TCP and UDP exchanges for IPIP, GUE and GRE over
// IPv4 and IPv6 (outer header fields, inner packet untouched, direct replies), several real servers,
// path MTU (the director's own "fragmentation needed" / "packet too big", and a router's relayed),
// and the director's connection table and counters against the wire.
import { test, statements, notApplicable } from '../fixtures';
import type { RunningLab } from '../../src/backend/types';
import { tooBigChecks, tunnelRelayChecks } from '../../src/oracle/icmp';
import { exchangeChecks } from '../../src/oracle/flow-checks';
import { ACCOUNTED, connectionTableAgrees, countersAgree, EXCHANGE } from './common';
import { LABS } from './labs';

test.use({ suiteLab: LABS.tun });
// The longest file (30 tests): its tests are independent (fresh client ports, path-MTU state flushed where it
// matters), so they spread over the workers instead of keeping one worker busy while the other idles.
test.describe.configure({ mode: 'parallel' });

const ENCAPS = ['ipip', 'gue', 'gre'] as const;

for (const encap of ENCAPS) {
  for (const [proto, fam] of [['tcp', 4], ['udp', 4], ['tcp', 6], ['udp', 6]] as const) {
    const service = `${encap}-${proto}${fam}`;
    test(`${service}: handshake and data on every hop`, statements(...EXCHANGE.tun), async ({ requires, traffic, expectFlow }) => {
      requires({ method: 'tun', tunnel: encap, family: fam, protocol: proto });
      await expectFlow(await traffic.run(service));
    });
  }
}

for (const service of ['gue-tcp4', 'ipip-udp6']) {
  test(`${service}: connections over every real server, each on every hop`, statements(...EXCHANGE.tun), async ({ traffic, expectFlow }) => {
    const n = traffic.service(service).realServers.length;
    await expectFlow(await traffic.run(service, { count: n }));
  });
}

/** Path-MTU state (route exceptions) of earlier tests must not decide this one's. */
async function forgetPathMtus(lab: RunningLab): Promise<void> {
  for (const n of lab.model.nodes) {
    if (!n.interfaces.length) continue;
    const r = await lab.node(n.name).exec(['sh', '-c', 'ip route flush cache && ip -6 route flush cache']);
    if (r.code !== 0) throw new Error(`cannot flush route caches on ${n.name}: ${r.stderr.trim()}`);
  }
}

const TOO_BIG = [...EXCHANGE.tun, 'FWD-TUN-004'];

for (const encap of ENCAPS) {
  for (const fam of [4, 6] as const) {
    const service = `${encap}-tcp${fam}`;
    test(`${service}: a packet too big for the tunnel is answered with the tunnel MTU`, statements(...TOO_BIG), async ({ requires, lab, traffic, expectFlow }) => {
      requires({ method: 'tun', tunnel: encap, family: fam, protocol: 'tcp' });
      await forgetPathMtus(lab);
      // 3000 bytes up: full-size segments (DF) that do not fit once encapsulated.
      const run = await traffic.run(service, { up: 3000 });
      await expectFlow.checks((cap) => run.flows.flatMap((f) => [
        ...exchangeChecks(traffic.model, f, cap.packets, { skeletonOnly: true }),
        ...tooBigChecks(traffic.model, f, cap.packets),
      ]));
    });
  }
}

const ROUTER_MTU = 1400;

for (const encap of ENCAPS) {
  test(`${encap}-tcp4: a router's "fragmentation needed" about the tunnel reaches the client`, statements(...EXCHANGE.tun, 'FWD-TUN-005'), async ({ requires, lab, traffic, expectFlow }) => {
    requires({ method: 'tun', tunnel: encap, family: 4, protocol: 'tcp' });
    await forgetPathMtus(lab);
    // The router's interface towards the real servers gets a smaller MTU for the duration of the test.
    const rsnet = lab.model.nodes.find((n) => n.name === 'router')!.interfaces.find((i) => i.segment === 'rsnet')!;
    const set = async (mtu: number) => {
      const r = await lab.node('router').exec(['ip', 'link', 'set', rsnet.name, 'mtu', String(mtu)]);
      if (r.code !== 0) throw new Error(`cannot set the MTU of router:${rsnet.name}: ${r.stderr.trim()}`);
    };
    await set(ROUTER_MTU);
    let run;
    try {
      run = await traffic.run(`${encap}-tcp4`, { up: 3000, timeoutMs: 15_000 });
    } finally {
      await set(rsnet.mtu);
      await forgetPathMtus(lab);
    }
    await expectFlow.checks((cap) => run!.flows.flatMap((f) => [
      ...exchangeChecks(traffic.model, f, cap.packets, { skeletonOnly: true }),
      ...tunnelRelayChecks(traffic.model, f, ROUTER_MTU, cap.packets),
    ]));
  });
  test(`${encap}-tcp6: a router's "packet too big" about the tunnel reaches the client`, statements('FWD-TUN-005'), async () => {
    notApplicable('IPv4 only: kernel IPVS has no relay for ICMPv6 errors about its tunnel packets (ip_vs_in_icmp_v6 has no tunnel case, '
      + 'ipvs-semantics.md §2.4.4), and its IPv6 route to the real server does not learn the router\'s MTU either: the client is never told '
      + 'and a connection sending full-size packets stalls (observed on 6.1)');
  });
}

for (const service of ['gre-tcp6', 'ipip-udp4']) {
  test(`${service}: the connection table agrees with the wire`, statements('FWD-COM-007', ...ACCOUNTED), async ({ requires, traffic, director, expectFlow }) => {
    requires({ method: 'tun', connections: true });
    await connectionTableAgrees(traffic, director, expectFlow, service, traffic.service(service).realServers.length);
  });
}

for (const service of ['gue-tcp6', 'gre-udp4']) {
  test(`${service}: the counters agree with the wire`, statements('FWD-COM-008', ...ACCOUNTED), async ({ requires, traffic, director, expectFlow }) => {
    requires({ method: 'tun', stats: true });
    await countersAgree(traffic, director, expectFlow, service);
  });
}
