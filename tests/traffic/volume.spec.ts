// Thousands of connections: every one is accounted for, on both sides, exactly once.
import { runClient, startResponder } from '../../src/traffic/index';
import { ADDR } from './netns-node';
import { test, expect } from './fixture';

for (const [proto, server, concurrency] of [['tcp', ADDR.server4, 50], ['udp', ADDR.server6, 20]] as const) {
  test(`2000 ${proto} connections are all answered and the responder served exactly those`, async ({ pair }) => {
    const rs = startResponder(pair.server, { name: 'rs1', [proto]: [8080] });
    try {
      await rs.ready;
      const rep = await runClient(pair.client, { proto, target: { address: server, port: 8080 }, count: 2000, concurrency, timeoutMs: 10_000, run: 'vol' });
      expect(rep.summary.count).toBe(2000);
      expect(rep.summary.outcomes.answered).toBe(2000);
      expect(rep.conns.length).toBe(2000);
      const served = await rs.waitServed(2000);
      expect(served.length).toBe(2000);
      expect(new Set(served.map((s) => s.id))).toEqual(new Set(rep.conns.map((c) => c.id)));
      // The source ports the client reports are the ones the server saw.
      const seen = new Map(served.map((s) => [s.id, s.pport]));
      expect(rep.conns.filter((c) => seen.get(c.id) !== c.sport)).toEqual([]);
    } finally {
      await rs.stop();
    }
  });
}

test('a run with colliding source ports still accounts for each connection exactly once', async ({ pair }) => {
  const rs = startResponder(pair.server, { name: 'rs1', tcp: [8080] });
  try {
    await rs.ready;
    // 300 connections over 20 source ports, 40 at a time: some collide (EADDRNOTAVAIL), the rest are answered.
    const sports = Array.from({ length: 20 }, (_, k) => 45000 + k);
    const rep = await runClient(pair.client, { target: { address: ADDR.server4, port: 8080 }, count: 300, concurrency: 40, sports, sources: [ADDR.client4], timeoutMs: 10_000 });
    const { answered, error } = rep.summary.outcomes;
    expect(answered + error).toBe(300);
    expect(error).toBeGreaterThan(0);
    for (const c of rep.conns.filter((x) => x.outcome === 'error')) expect(['EADDRNOTAVAIL', 'EADDRINUSE']).toContain(c.code);
    const served = await rs.waitServed(answered);
    expect(new Set(served.map((s) => s.id))).toEqual(new Set(rep.conns.filter((c) => c.outcome === 'answered').map((c) => c.id)));
  } finally {
    await rs.stop();
  }
});
