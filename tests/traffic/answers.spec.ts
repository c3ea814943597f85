// The responder answers TCP and UDP, IPv4 and IPv6, with the addresses it saw; the client reports them.
import { startResponder, runClient } from '../../src/traffic/index';
import { ADDR } from './netns-node';
import { test, expect } from './fixture';

for (const family of [4, 6] as const) {
  const server = family === 4 ? ADDR.server4 : ADDR.server6;
  const sources = family === 4 ? [ADDR.client4, ADDR.client4b] : [ADDR.client6, ADDR.client6b];

  for (const proto of ['tcp', 'udp'] as const) {
    test(`${proto} over IPv${family}: every answer names the server and the addresses it saw`, async ({ pair }) => {
      const rs = startResponder(pair.server, { name: 'rs1', [proto]: [8080] });
      try {
        await rs.ready;
        const rep = await runClient(pair.client, { proto, target: { address: server, port: 8080 }, count: 6, sequential: true, sources, run: 'ans' });
        expect(rep.summary.outcomes.answered).toBe(6);
        expect(rep.summary.servers).toEqual({ rs1: 6 });
        rep.conns.forEach((c, i) => {
          expect(c.outcome).toBe('answered');
          expect(c.server).toBe('rs1');
          expect(c.src).toBe(sources[i % 2]);
          // What the real server saw is exactly the client's source: no NAT on this path.
          expect({ local: c.local, lport: c.lport, peer: c.peer, pport: c.pport }).toEqual({ local: server, lport: 8080, peer: c.src, pport: c.sport });
        });
        const served = await rs.waitServed(6);
        expect(served.map((s) => s.id)).toEqual(rep.conns.map((c) => c.id));
        expect(served.every((s) => s.proto === proto && s.local === server)).toBe(true);
      } finally {
        const st = await rs.stop();
        expect(st.served[proto]).toBe(6);
      }
    });
  }
}

test('payloads: TCP downloads, echoes and uploads arrive in full; UDP replies fragment past the MTU', async ({ pair }) => {
  const rs = startResponder(pair.server, { name: 'rs1', tcp: [8080], udp: [8080] });
  try {
    await rs.ready;
    const target = { address: ADDR.server4, port: 8080 };
    const big = await runClient(pair.client, { target, count: 2, down: 300_000, up: 70_000, echo: true });
    expect(big.conns.map((c) => [c.outcome, c.bytes])).toEqual([['answered', 370_000], ['answered', 370_000]]);
    const udp = await runClient(pair.client, { proto: 'udp', target: { address: ADDR.server6, port: 8080 }, count: 2, down: 9000, up: 3000, echo: true });
    expect(udp.conns.map((c) => [c.outcome, c.bytes])).toEqual([['answered', 12_000], ['answered', 12_000]]);
    const served = await rs.waitServed(4);
    expect(served.map((s) => [s.proto, s.up, s.bytes])).toEqual([['tcp', 70_000, 370_000], ['tcp', 70_000, 370_000], ['udp', 3000, 12_000], ['udp', 3000, 12_000]]);
  } finally {
    await rs.stop();
  }
});

test('a VIP put on lo after the responder started is answered from the VIP (TCP any-address, UDP rescan)', async ({ pair }) => {
  const rs = startResponder(pair.server, { name: 'rs-dr', tcp: [80], udp: [53], rescanMs: 100 });
  try {
    const ready = await rs.ready;
    expect(ready.listen.some((l) => l.address === ADDR.vip4)).toBe(false);
    pair.server.sh(['ip', 'addr', 'add', `${ADDR.vip4}/32`, 'dev', 'lo']);
    pair.server.sh(['ip', 'addr', 'add', `${ADDR.vip6}/128`, 'dev', 'lo', 'nodad']);
    await rs.waitListening('udp', ADDR.vip4);
    await rs.waitListening('udp', ADDR.vip6);
    for (const vip of [ADDR.vip4, ADDR.vip6]) {
      for (const [proto, port] of [['tcp', 80], ['udp', 53]] as const) {
        const rep = await runClient(pair.client, { proto, target: { address: vip, port }, count: 2 });
        expect(rep.conns.map((c) => [c.outcome, c.server, c.local, c.lport])).toEqual([['answered', 'rs-dr', vip, port], ['answered', 'rs-dr', vip, port]]);
      }
    }
  } finally {
    await rs.stop();
  }
});

test('a responder listening on one address only answers there; the other address is refused', async ({ pair }) => {
  pair.server.sh(['ip', 'addr', 'add', `${ADDR.vip4}/32`, 'dev', 'lo']);
  const rs = startResponder(pair.server, { name: 'rs1', tcp: [{ address: ADDR.vip4, port: 80 }] });
  try {
    expect((await rs.ready).listen).toEqual([{ proto: 'tcp', address: ADDR.vip4, port: 80 }]);
    const vip = await runClient(pair.client, { target: { address: ADDR.vip4, port: 80 } });
    expect(vip.conns[0].outcome).toBe('answered');
    const rip = await runClient(pair.client, { target: { address: ADDR.server4, port: 80 } });
    expect(rip.conns[0].outcome).toBe('refused');
  } finally {
    await rs.stop();
  }
});

test('a responder that cannot bind says why and exits', async ({ pair }) => {
  const rs = startResponder(pair.server, { name: 'rs1', tcp: [{ address: '198.18.55.5', port: 80 }] });
  await expect(rs.ready).rejects.toThrow(/cannot listen on TCP 198.18.55.5 port 80: EADDRNOTAVAIL/);
});
