// The transparent proxy (haproxy usesrc clientip, nginx proxy_bind $remote_addr transparent): the server leg
// comes from the client's address (the oracle plans it so from the model: a proxy that used its own address
// fails PROXY-002 on every hop), the real servers answer through the director, whose policy routing hands
// the answers to the proxy's socket (nothing of them may reach the client: PROXY-001). Both connections on
// every hop, the byte streams and half-closes carried, every packet accounted for. The server leg's source
// port is the proxy's (the kernel's) choice: each test notes whether it was the client's.
import type { TrafficRun } from '../../src/runner/suite-api';
import { test, statements } from '../fixtures';
import { PROXY_EXCHANGE, streamRunChecks } from './common';
import { LABS } from './labs';

test.use({ suiteLab: LABS.transparent });

/** What the proxy did with the client's port on the server leg (from the real servers' identity lines). */
function notePorts(run: TrafficRun): void {
  const legs = run.flows.map((f) => `${f.clientAddr}:${f.clientPort} -> leg ${f.leg?.addr}:${f.leg?.port}${f.leg?.port === f.clientPort ? ' (client port kept)' : ''}`);
  test.info().annotations.push({ type: 'note', description: `server legs: ${legs.join(', ')}` });
}

for (const c of [{ service: 'ttcp4', family: 4 }, { service: 'ttcp6', family: 6 }] as const) {
  test(`${c.service}: transparent, both connections on every hop, the server leg from the client's address`, statements(...PROXY_EXCHANGE), async ({ requires, traffic, expectFlow }) => {
    requires({ method: 'proxy', family: c.family, protocol: 'tcp', transparent: true });
    const run = await traffic.run(c.service);
    notePorts(run);
    await expectFlow(run);
  });

  test(`${c.service}: transparent, three connections over two real servers, each on every hop`, statements(...PROXY_EXCHANGE), async ({ requires, traffic, expectFlow }) => {
    requires({ method: 'proxy', family: c.family, protocol: 'tcp', transparent: true });
    const run = await traffic.run(c.service, { count: 3 });
    notePorts(run);
    await expectFlow(run);
  });

  test(`${c.service}: transparent, 30 kB up and 60 kB down carried byte for byte, FINs carried both ways, server SYN after the client's handshake`,
    statements(...PROXY_EXCHANGE, 'PROXY-003', 'PROXY-004', 'PROXY-006'), async ({ requires, traffic, expectFlow }) => {
      requires({ method: 'proxy', family: c.family, protocol: 'tcp', transparent: true });
      const run = await traffic.run(c.service, { up: 30_000, down: 60_000 });
      notePorts(run);
      await expectFlow.checks((cap) => streamRunChecks(traffic, run, cap.packets));
    });
}
