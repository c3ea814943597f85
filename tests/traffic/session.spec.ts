// A client session (`client.js --serve`) runs many client runs in one process: each run reports what a
// fresh client process reports for the same arguments; a refused argument list fails that run only; a run
// that outlives its process timeout ends the session.
import { ClientSession, runClient, startResponder } from '../../src/traffic/index';
import { ADDR } from './netns-node';
import { test, expect } from './fixture';

test('a session runs TCP and UDP runs one after another, each as a fresh client would', async ({ pair }) => {
  const rs = startResponder(pair.server, { name: 'rs1', tcp: [8080], udp: [8080] });
  const session = await ClientSession.start(pair.client);
  try {
    await rs.ready;
    const sources = [ADDR.client4, ADDR.client4b];
    for (const proto of ['tcp', 'udp', 'tcp'] as const) {
      const opts = { proto, target: { address: ADDR.server4, port: 8080 }, count: 4, sequential: true, sources, up: 100, down: 2000 } as const;
      const viaSession = await session.run({ ...opts, sports: [41000, 41001, 41002, 41003].map((p) => p + (proto === 'udp' ? 10 : 0)) });
      const fresh = await runClient(pair.client, opts);
      expect(viaSession.summary.outcomes.answered).toBe(4);
      expect(viaSession.summary.servers).toEqual(fresh.summary.servers);
      expect(viaSession.conns.map((c) => [c.i, c.proto, c.outcome, c.server, c.src, c.bytes])).toEqual(fresh.conns.map((c) => [c.i, c.proto, c.outcome, c.server, c.src, c.bytes]));
      // The ports asked for are the ports used: the session parsed the same arguments.
      expect(viaSession.conns.map((c) => c.sport)).toEqual([41000, 41001, 41002, 41003].map((p) => p + (proto === 'udp' ? 10 : 0)));
    }
    expect(session.alive).toBe(true);
  } finally {
    session.stop();
    await rs.stop();
  }
});

test('a refused argument list fails its run with the client\'s message; the session goes on', async ({ pair }) => {
  const rs = startResponder(pair.server, { name: 'rs1', tcp: [8080] });
  const session = await ClientSession.start(pair.client);
  try {
    await rs.ready;
    await expect(session.run({ proto: 'udp', target: { address: ADDR.server4, port: 8080 }, hold: 500 })).rejects.toThrow(/exited 2: client: --hold \/ --hold-until-release are for TCP only/);
    await expect(session.run({ target: { address: ADDR.server4, port: 8080 }, hold: 'release' })).rejects.toThrow(/cannot release held connections/);
    const ok = await session.run({ target: { address: ADDR.server4, port: 8080 }, count: 2 });
    expect(ok.summary.outcomes.answered).toBe(2);
  } finally {
    session.stop();
    await rs.stop();
  }
});

test('a run past its process timeout fails and ends the session; a stopped session refuses runs', async ({ pair }) => {
  const rs = startResponder(pair.server, { name: 'rs1', tcp: [8080] });
  const session = await ClientSession.start(pair.client);
  try {
    await rs.ready;
    // The connection is answered and then held 5 s: the run lasts longer than its 1 s process timeout.
    await expect(session.run({ target: { address: ADDR.server4, port: 8080 }, hold: 5000, processTimeoutMs: 1000 })).rejects.toThrow(/did not finish within its process timeout/);
    expect(session.alive).toBe(false);
    await expect(session.run({ target: { address: ADDR.server4, port: 8080 } })).rejects.toThrow(/was stopped after a run that did not finish within 1000 ms/);
    const again = await ClientSession.start(pair.client);
    again.stop();
    await expect(again.run({ target: { address: ADDR.server4, port: 8080 } })).rejects.toThrow(/was stopped/);
  } finally {
    session.stop();
    await rs.stop();
  }
});
