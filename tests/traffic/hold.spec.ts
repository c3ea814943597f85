// Held connections stay established (as the kernel sees them) until released or their hold time is over.
import { startClient, startResponder } from '../../src/traffic/index';
import { ADDR, NetnsNode } from './netns-node';
import { test, expect } from './fixture';

/** Established TCP connections in a node with the given local port (server side) or peer port (client side). */
function established(node: NetnsNode, filter: string): number {
  return node.sh(['ss', '-tnH', 'state', 'established', filter]).split('\n').filter((l) => l.trim() !== '').length;
}

test('hold until release: all connections stay established until released, then none is', async ({ pair }) => {
  const rs = startResponder(pair.server, { name: 'rs1', tcp: [8080] });
  try {
    await rs.ready;
    const run = startClient(pair.client, { target: { address: ADDR.server4, port: 8080 }, count: 40, concurrency: 8, hold: 'release' });
    const holding = await run.holding;
    expect(holding).toEqual({ event: 'holding', held: 40, failed: 0, servers: Array(40).fill('rs1') });
    expect(established(pair.server, '( sport = :8080 )')).toBe(40);
    expect(established(pair.client, '( dport = :8080 )')).toBe(40);
    expect(rs.served().every((s) => s.hold)).toBe(true);
    run.release();
    const rep = await run.report;
    expect(rep.summary.outcomes.answered).toBe(40);
    expect(rep.conns.every((c) => c.heldMs !== null && c.afterAnswer === null)).toBe(true);
    expect(established(pair.server, '( sport = :8080 )')).toBe(0);
    expect(established(pair.client, '( dport = :8080 )')).toBe(0);
    // The responder closed first on request, so TIME_WAIT is on the server and the client is clean.
    expect(pair.client.sh(['ss', '-tanH', 'state', 'time-wait']).trim()).toBe('');
  } finally {
    await rs.stop();
  }
});

test('hold for a time: connections are established during the hold and closed after it', async ({ pair }) => {
  const rs = startResponder(pair.server, { name: 'rs1', tcp: [8080] });
  try {
    await rs.ready;
    const run = startClient(pair.client, { target: { address: ADDR.server6, port: 8080 }, count: 5, concurrency: 5, hold: 8000 });
    await rs.waitServed(5);
    expect(established(pair.server, '( sport = :8080 )')).toBe(5);
    const rep = await run.report;
    for (const c of rep.conns) {
      expect(c.outcome).toBe('answered');
      expect(c.heldMs!).toBeGreaterThanOrEqual(7990);
    }
    expect(established(pair.server, '( sport = :8080 )')).toBe(0);
    // The responder logs each close after the client has reported: wait for its lines, don't race them.
    await expect.poll(() => rs.closed().filter((c) => c.answered && c.error === null).length, { timeout: 10_000 }).toBe(5);
  } finally {
    await rs.stop();
  }
});

test('a held connection the server side ends early is still answered, with the early end recorded', async ({ pair }) => {
  const rs = startResponder(pair.server, { name: 'rs1', tcp: [8080] });
  await rs.ready;
  const run = startClient(pair.client, { target: { address: ADDR.server4, port: 8080 }, count: 3, concurrency: 3, hold: 'release' });
  const holding = await run.holding;
  expect(holding.held).toBe(3);
  const st = await rs.stop(); // the responder goes away while the connections are held
  expect(st.open).toBe(3);
  run.release();
  const rep = await run.report;
  expect(rep.conns.map((c) => [c.outcome, c.afterAnswer !== null])).toEqual(Array(3).fill(['answered', true]));
});
