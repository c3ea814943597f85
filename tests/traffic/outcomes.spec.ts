// Connections that are not answered are reported as what happened to them, and explicit source ports
// are used as given (or reported per connection when they cannot be).
import { runClient, startClient, startResponder } from '../../src/traffic/index';
import { ADDR, NetnsNode } from './netns-node';
import { test, expect } from './fixture';

/** An nftables input chain in the server namespace (removed with the namespace). */
function serverRules(server: NetnsNode, rules: string[]): void {
  server.sh(['nft', ['add table inet vslabtr', 'add chain inet vslabtr input { type filter hook input priority 0; policy accept; }',
    ...rules.map((r) => `add rule inet vslabtr input ${r}`)].join('\n')]);
}

const families = [[4, ADDR.server4], [6, ADDR.server6]] as const;

for (const [family, server] of families) {
  test(`IPv${family}: no listener is refused, for TCP (RST) and UDP (ICMP port unreachable)`, async ({ pair }) => {
    // No ICMP rate limit in the lab, so every datagram gets its port-unreachable.
    pair.server.sh(['sysctl', '-q', '-w', 'net.ipv4.icmp_ratelimit=0', 'net.ipv6.icmp.ratelimit=0']);
    for (const proto of ['tcp', 'udp'] as const) {
      const rep = await runClient(pair.client, { proto, target: { address: server, port: 9 }, count: 4, sequential: true });
      expect(rep.conns.map((c) => [c.outcome, c.code])).toEqual(Array(4).fill(['refused', 'ECONNREFUSED']));
      expect(rep.summary.outcomes.refused).toBe(4);
    }
  });

  test(`IPv${family}: dropped packets time out, at the stage where they were dropped`, async ({ pair }) => {
    serverRules(pair.server, ['tcp dport 9 drop', 'udp dport 9 drop']);
    const tcp = await runClient(pair.client, { target: { address: server, port: 9 }, count: 3, concurrency: 3, timeoutMs: 800 });
    expect(tcp.conns.map((c) => [c.outcome, c.stage])).toEqual(Array(3).fill(['timeout', 'connect']));
    const udp = await runClient(pair.client, { proto: 'udp', target: { address: server, port: 9 }, count: 3, concurrency: 3, timeoutMs: 800 });
    expect(udp.conns.map((c) => [c.outcome, c.stage])).toEqual(Array(3).fill(['timeout', 'answer']));
    expect(udp.summary.outcomes.timeout).toBe(3);
  });

  test(`IPv${family}: a reset after the handshake is "reset", an ICMP host unreachable to the SYN is "unreachable"`, async ({ pair }) => {
    const rs = startResponder(pair.server, { name: 'rs1', tcp: [80] });
    try {
      await rs.ready;
      serverRules(pair.server, ['tcp dport 80 tcp flags & syn == 0 reject with tcp reset', 'tcp dport 81 reject with icmpx host-unreachable']);
      const reset = await runClient(pair.client, { target: { address: server, port: 80 }, count: 2, sequential: true });
      for (const c of reset.conns) {
        expect(c.outcome).toBe('reset');
        // EPIPE when the RST beat our request write, ECONNRESET when it came after.
        expect(['ECONNRESET', 'EPIPE']).toContain(c.code);
      }
      // The kernel may ignore the first ICMP while connect() holds the socket and act on the one for the
      // retransmitted SYN (~1 s later), so leave room for that.
      const unreach = await runClient(pair.client, { target: { address: server, port: 81 }, count: 2, sequential: true, timeoutMs: 5000 });
      expect(unreach.conns.map((c) => [c.outcome, c.code])).toEqual(Array(2).fill(['unreachable', 'EHOSTUNREACH']));
    } finally {
      await rs.stop();
    }
  });
}

test('explicit source ports are used as given, and can be reused one after another (TCP and UDP)', async ({ pair }) => {
  const rs = startResponder(pair.server, { name: 'rs1', tcp: [80], udp: [80] });
  try {
    await rs.ready;
    const sports = [41000, 41001, 41002];
    for (const proto of ['tcp', 'udp'] as const) {
      for (const [server, sources] of [[ADDR.server4, [ADDR.client4, ADDR.client4b]], [ADDR.server6, [ADDR.client6]]] as const) {
        const rep = await runClient(pair.client, { proto, target: { address: server, port: 80 }, count: 6, sequential: true, sources: [...sources], sports });
        rep.conns.forEach((c, i) => {
          expect([c.outcome, c.sport, c.pport, c.src, c.peer]).toEqual(['answered', sports[i % 3], sports[i % 3], sources[i % sources.length], sources[i % sources.length]]);
        });
      }
    }
  } finally {
    await rs.stop();
  }
});

test('a source port already in use is reported per connection, not fatal; the run still accounts for all', async ({ pair }) => {
  const rs = startResponder(pair.server, { name: 'rs1', tcp: [80] });
  try {
    await rs.ready;
    // Three connections from the same address and port to the same target at once: one wins.
    const rep = await runClient(pair.client, { target: { address: ADDR.server4, port: 80 }, count: 3, concurrency: 3, sources: [ADDR.client4], sports: [42000] });
    expect(rep.conns[0].outcome).toBe('answered');
    for (const c of rep.conns.slice(1)) {
      expect(c.outcome).toBe('error');
      expect(['EADDRNOTAVAIL', 'EADDRINUSE']).toContain(c.code);
    }
    // UDP: the port is bound without SO_REUSEADDR, so a concurrent second use fails at bind.
    const udp = await runClient(pair.client, { proto: 'udp', target: { address: ADDR.server4, port: 9 }, count: 2, concurrency: 2, sports: [42001], timeoutMs: 500 });
    expect(udp.conns.map((c) => c.outcome)).toEqual(['refused', 'error']);
    expect([udp.conns[1].stage, udp.conns[1].code]).toEqual(['bind', 'EADDRINUSE']);
  } finally {
    await rs.stop();
  }
});

test('a run stopped early still accounts for every connection (unstarted ones as ABORTED)', async ({ pair }) => {
  serverRules(pair.server, ['tcp dport 9 drop']);
  const run = startClient(pair.client, { target: { address: ADDR.server4, port: 9 }, count: 50, concurrency: 5, timeoutMs: 60_000 });
  // Wait until the five first SYNs are out, then stop the run.
  for (let k = 0; ; k++) {
    const synSent = pair.client.sh(['ss', '-tnH', 'state', 'syn-sent']).trim().split('\n').filter((l) => l !== '').length;
    if (synSent === 5) break;
    if (k > 200) throw new Error(`the client never had 5 SYNs out (it has ${synSent})`);
    await new Promise((r) => setTimeout(r, 50));
  }
  run.stop();
  const rep = await run.report;
  expect(rep.summary.outcomes.error).toBe(50);
  expect(rep.conns.every((c) => c.code === 'ABORTED')).toBe(true);
  expect(rep.conns.filter((c) => c.stage === 'connect').length).toBe(5);
  expect(rep.conns.filter((c) => c.stage === 'start').length).toBe(45);
});
