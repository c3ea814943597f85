// Forwarding conformance, Full-NAT (mainline IPVS NAT plus source NAT to a director local address, as
// kube-proxy does it): every hop of TCP and UDP exchanges over IPv4 and IPv6 (real servers only ever see
// the local address and need no route to the client), several real servers, ICMP errors from a real
// server translated back, and the director's connection table and counters against the wire.
import { test, statements } from '../fixtures';
import { icmpErrorChecks } from '../../src/oracle/icmp';
import { ACCOUNTED, connectionTableAgrees, countersAgree, EXCHANGE } from './common';
import { LABS } from './labs';

test.use({ suiteLab: LABS.fullnat });

const CASES = [
  { service: 'tcp4', family: 4, protocol: 'tcp' },
  { service: 'udp4', family: 4, protocol: 'udp' },
  { service: 'tcp6', family: 6, protocol: 'tcp' },
  { service: 'udp6', family: 6, protocol: 'udp' },
] as const;

for (const c of CASES) {
  test(`${c.service}: handshake and data on every hop, both endpoints rewritten`, statements(...EXCHANGE.fullnat), async ({ requires, traffic, expectFlow }) => {
    requires({ method: 'fullnat', family: c.family, protocol: c.protocol });
    await expectFlow(await traffic.run(c.service));
  });
}

for (const service of ['udp4', 'tcp6']) {
  test(`${service}: three connections over three real servers, each on every hop`, statements(...EXCHANGE.fullnat), async ({ traffic, expectFlow }) => {
    await expectFlow(await traffic.run(service, { count: 3 }));
  });
}

for (const [name, service] of [['icmp4', 'closed4'], ['icmp6', 'closed6']]) {
  test(`${name}: port unreachable from a real server reaches the client translated`, statements('FWD-COM-001', 'FWD-COM-002', 'FWD-COM-003', 'FWD-COM-004', 'FWD-COM-005', 'FWD-COM-009', 'FWD-FNAT-001', 'FWD-FNAT-005', 'FWD-FNAT-004'), async ({ traffic, expectFlow }) => {
    const run = await traffic.run(service, { timeoutMs: 2000 });
    await expectFlow.checks((cap) => run.flows.flatMap((f) => icmpErrorChecks(traffic.model, f, cap.packets)));
  });
}

for (const service of ['tcp4', 'udp6']) {
  test(`${service}: the connection table agrees with the wire`, statements('FWD-COM-007', ...ACCOUNTED), async ({ requires, traffic, director, expectFlow }) => {
    requires({ method: 'fullnat', connections: true });
    await connectionTableAgrees(traffic, director, expectFlow, service);
  });
}

for (const service of ['tcp6', 'udp4']) {
  test(`${service}: the counters agree with the wire`, statements('FWD-COM-008', ...ACCOUNTED), async ({ requires, traffic, director, expectFlow }) => {
    requires({ method: 'fullnat', stats: true });
    await countersAgree(traffic, director, expectFlow, service);
  });
}
