// Proxy conformance beyond the packets of each leg: what carries over from one TCP connection to the other
// (src/oracle/proxy.ts). Byte streams both ways with several segments each, the half-closes, the order of
// the two handshakes, no probe when health checks are off, and a real server's reset ending the client leg.
import { exchangeChecks } from '../../src/oracle/flow-checks';
import { noProbeChecks, refusedLegs, resetChecks } from '../../src/oracle/proxy';
import { test, statements } from '../fixtures';
import { PROXY_EXCHANGE, streamRunChecks } from './common';
import { LABS } from './labs';

test.use({ suiteLab: LABS.proxy });

for (const c of [{ service: 'tcp4', family: 4 }, { service: 'tcp6', family: 6 }] as const) {
  test(`${c.service}: 30 kB up and 60 kB down carried byte for byte, FINs carried both ways, server SYN after the client's handshake`,
    statements(...PROXY_EXCHANGE, 'PROXY-003', 'PROXY-004', 'PROXY-006'), async ({ requires, traffic, expectFlow }) => {
      requires({ method: 'proxy', family: c.family, protocol: 'tcp' });
      const run = await traffic.run(c.service, { up: 30_000, down: 60_000 });
      await expectFlow.checks((cap) => streamRunChecks(traffic, run, cap.packets));
    });

  test(`${c.service}: no health-check probe when checks are off`, statements('PROXY-008', 'FWD-COM-001', 'FWD-COM-009'), async ({ requires, capabilities, traffic, expectFlow }) => {
    requires({ method: 'proxy', family: c.family, protocol: 'tcp' });
    if (capabilities.background?.some((b) => b.name === 'health-check')) return void test.info().annotations.push({ type: 'note', description: 'health checks are on (VSLAB_PROXY_CHECK_MS): probes are counted as the driver\'s background class' });
    const run = await traffic.run(c.service, { count: 3 });
    // Long enough for any prober with a default interval (haproxy: 2 s) to show itself.
    await new Promise((r) => setTimeout(r, 2500));
    await expectFlow.checks(() => [...noProbeChecks(traffic.model, run.flows, c.service), ...traffic.unansweredChecks(run)]);
  });
}

for (const [name, service, family] of [['rst4', 'closed4', 4], ['rst6', 'closed6', 6]] as const) {
  test(`${name}: a real server's reset of the server leg ends the client leg`, statements('PROXY-005', 'PROXY-001', 'PROXY-002', 'PROXY-007', 'PROXY-009', 'FWD-COM-001', 'FWD-COM-009'), async ({ requires, traffic, expectFlow }) => {
    requires({ method: 'proxy', family, protocol: 'tcp' });
    const run = await traffic.run(service, { timeoutMs: 8000 });
    const conn = run.conns[0];
    const client = run.client;
    const clientAddr = conn.src!;
    const clientPort = conn.sport!;
    await expectFlow.checks((cap) => {
      const legs = refusedLegs(traffic.model, service, client, clientAddr, clientPort, cap.packets);
      // The client leg and each server leg on every hop (skeleton handshakes only: no data ever flows).
      const hops = legs.flatMap((f, k) => exchangeChecks(traffic.model, f, cap.packets, { idPrefix: `l${k}.`, skeletonOnly: true })
        .filter((x) => /(^|\.)(c2s\.syn|absent)/.test(x.expectation.id.replace(/^l\d+\./, ''))));
      return [...hops, ...resetChecks(traffic.model, service, legs, cap.packets)];
    }, (cap) => refusedLegs(traffic.model, service, client, clientAddr, clientPort, cap.packets));
  });
}
