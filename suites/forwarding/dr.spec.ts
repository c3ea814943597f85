// Forwarding conformance, direct routing: every hop of TCP and UDP exchanges over IPv4 and IPv6 (the
// director only rewrites the destination MAC; replies go from the real server through the router to the
// client), several real servers, and the director's connection table and counters against the wire.
import { test, statements, notApplicable } from '../fixtures';
import { ACCOUNTED, connectionTableAgrees, countersAgree, EXCHANGE } from './common';
import { LABS } from './labs';

test.use({ suiteLab: LABS.dr });

const CASES = [
  { service: 'tcp4', family: 4, protocol: 'tcp' },
  { service: 'udp4', family: 4, protocol: 'udp' },
  { service: 'tcp6', family: 6, protocol: 'tcp' },
  { service: 'udp6', family: 6, protocol: 'udp' },
] as const;

for (const c of CASES) {
  test(`${c.service}: handshake and data on every hop`, statements(...EXCHANGE.dr), async ({ requires, traffic, expectFlow }) => {
    requires({ method: 'dr', family: c.family, protocol: c.protocol });
    await expectFlow(await traffic.run(c.service));
  });
}

for (const service of ['tcp6', 'udp4']) {
  test(`${service}: three connections over three real servers, each on every hop`, statements(...EXCHANGE.dr), async ({ traffic, expectFlow }) => {
    await expectFlow(await traffic.run(service, { count: 3 }));
  });
}

test('port mapping', statements('FWD-DR-001'), async () => {
  notApplicable('direct routing cannot map ports: the frame reaches the real server with its IP and transport headers untouched, so it '
    + 'must listen on the virtual port (ipvsadm forces rport = vport; the Lab model rejects a different port for dr)');
});

for (const service of ['tcp4', 'udp6']) {
  test(`${service}: the connection table agrees with the wire`, statements('FWD-COM-007', ...ACCOUNTED), async ({ requires, traffic, director, expectFlow }) => {
    requires({ method: 'dr', connections: true });
    await connectionTableAgrees(traffic, director, expectFlow, service);
  });
}

for (const service of ['tcp6', 'udp4']) {
  test(`${service}: the counters agree with the wire`, statements('FWD-COM-008', ...ACCOUNTED), async ({ requires, traffic, director, expectFlow }) => {
    requires({ method: 'dr', stats: true });
    await countersAgree(traffic, director, expectFlow, service);
  });
}
