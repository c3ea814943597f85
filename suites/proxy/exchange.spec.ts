// Proxy conformance: two TCP connections per client connection. On every hop of both legs, both directions:
// the client leg answered from VIP:vport, the server leg from the director to the scheduled real server,
// each leg's packets carried onto every later hop, nothing of the client on a real server's links, and every
// packet captured accounted for.
import { test, statements } from '../fixtures';
import { PROXY_EXCHANGE } from './common';
import { LABS } from './labs';

test.use({ suiteLab: LABS.proxy });

for (const c of [{ service: 'tcp4', family: 4 }, { service: 'tcp6', family: 6 }] as const) {
  test(`${c.service}: both connections on every hop, both directions`, statements(...PROXY_EXCHANGE), async ({ requires, traffic, expectFlow }) => {
    requires({ method: 'proxy', family: c.family, protocol: 'tcp' });
    await expectFlow(await traffic.run(c.service));
  });

  test(`${c.service}: three connections over three real servers, each on every hop`, statements(...PROXY_EXCHANGE), async ({ requires, traffic, expectFlow }) => {
    requires({ method: 'proxy', family: c.family, protocol: 'tcp' });
    await expectFlow(await traffic.run(c.service, { count: 3 }));
  });
}
