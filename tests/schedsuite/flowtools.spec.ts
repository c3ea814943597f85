// The scheduler replayer's guest programs (guest/flows): vslab-flowdrv, the flow driver, and vslab-respond,
// the replay labs' responder, built for the host and run in a netns pair (tests/traffic/netns-node.ts);
// and the host side of the driver (driver-client.ts: its commands and the checks on its events).
// The C responder must answer like the Node one as far as a client can tell: the same flows against both
// give the same records (timing and request ids aside), and the Node traffic client reads its payloads.
import * as net from 'net';
import { buildGuestPrograms, GUEST_FLOWDRV, GUEST_RESPOND } from '../../src/backend/vm/agent-build';
import { DriverClient, formatCommand, parseDriverEvent, type DriverFlow } from '../../src/suites/schedulers/driver-client';
import type { ClientConnEvent } from '../../src/traffic/events';
import { runClient, startResponder } from '../../src/traffic/index';
import { test as netnsTest, expect } from '../traffic/fixture';
import { ADDR } from '../traffic/netns-node';
import { test } from '@playwright/test';

const REC: ClientConnEvent = {
  event: 'conn', i: 3, proto: 'tcp', id: 'ab12cd34-3', src: '198.18.0.1', sport: 40000, dst: '198.19.0.100', dport: 80,
  outcome: 'answered', stage: null, code: null, server: 's1', local: '198.19.0.100', lport: 80, peer: '198.18.0.1', pport: 40000,
  start: 1.5, connectMs: 0.2, answerMs: 0.9, heldMs: null, totalMs: 1.2, bytes: 0, afterAnswer: null,
};

test.describe('driver commands and events (host side)', () => {
  test('commands are text lines: open with one line per flow, close with the indices, time', () => {
    const flows: DriverFlow[] = [
      { i: 0, proto: 'tcp', src: '198.18.0.1', sport: 40000, dst: '198.19.0.100', dport: 80, hold: true, timeoutMs: 500 },
      { i: 7, proto: 'udp', src: '2001:db8::1', sport: 0, dst: '2001:db8:fe::100', dport: 53, hold: false },
    ];
    expect(formatCommand({ op: 'open', flows })).toBe('open 2\n0 tcp 198.18.0.1 40000 198.19.0.100 80 1 500\n7 udp 2001:db8::1 0 2001:db8:fe::100 53 0 3000\n');
    expect(formatCommand({ op: 'open', flows: [] })).toBe('open 0\n');
    expect(formatCommand({ op: 'close', flows: [3, 0] })).toBe('close 2 3 0\n');
    expect(formatCommand({ op: 'time' })).toBe('time\n');
  });

  test('a flow the driver could not read back is refused on the host', () => {
    const ok: DriverFlow = { i: 0, proto: 'tcp', src: '198.18.0.1', sport: 1, dst: '198.19.0.100', dport: 80, hold: false };
    for (const bad of [
      { src: '198.18.0.1 x' }, { src: '2001:db8::1' }, { dst: 'vip' }, { sport: 65536 }, { dport: -1 }, { i: 1.5 }, { timeoutMs: 0 },
      { proto: 'sctp' as 'tcp' },
    ]) {
      expect(() => formatCommand({ op: 'open', flows: [{ ...ok, ...bad }] }), JSON.stringify(bad)).toThrow(/cannot send flow/);
    }
    expect(() => formatCommand({ op: 'close', flows: [-1] })).toThrow(/cannot close flow/);
  });

  test('events are parsed and their records checked; other lines ignored; malformed events throw', () => {
    expect(parseDriverEvent('{"event":"ready","t":0.1}')).toEqual({ event: 'ready', t: 0.1 });
    expect(parseDriverEvent(JSON.stringify({ event: 'flow', i: 3, t0: 1.5, t1: 2.7, rec: REC }))).toEqual({ event: 'flow', i: 3, t0: 1.5, t1: 2.7, rec: REC });
    expect(parseDriverEvent(JSON.stringify({ event: 'closed', i: 3, t: 9, rec: { ...REC, heldMs: 5 } }))).toMatchObject({ event: 'closed', rec: { heldMs: 5 } });
    expect(parseDriverEvent('{"event":"opened","n":2,"t":3}')).toEqual({ event: 'opened', n: 2, t: 3 });
    expect(parseDriverEvent('{"event":"closeDone","n":1,"t":3}')).toEqual({ event: 'closeDone', n: 1, t: 3 });
    expect(parseDriverEvent('{"event":"time","t":4}')).toEqual({ event: 'time', t: 4 });
    expect(parseDriverEvent('{"event":"error","message":"flow 3 is already open"}')).toEqual({ event: 'error', message: 'flow 3 is already open' });
    expect(parseDriverEvent('renice: something')).toBeNull();
    expect(parseDriverEvent('{not json')).toBeNull();
    for (const bad of [
      { event: 'flow', i: 3, t0: 1, t1: 2, rec: { ...REC, outcome: 'fine' } },
      { event: 'flow', i: 3, t0: 1, t1: 2, rec: { ...REC, server: 7 } },
      { event: 'flow', i: 3, t0: 1, t1: 2, rec: { ...REC, lport: '80' } },
      { event: 'flow', i: 3, t0: 1, t1: 2, rec: { ...REC, event: 'served' } },
      { event: 'flow', i: 3, t0: 1, t1: 2 },
      { event: 'opened', n: '2', t: 1 },
      { event: 'hello' },
    ]) {
      expect(() => parseDriverEvent(JSON.stringify(bad)), JSON.stringify(bad)).toThrow(/flow driver: (a record|not an event)/);
    }
  });
});

/** Host builds of the guest programs, by their guest path. */
let programs: Map<string, string>;
test.beforeAll(async () => {
  programs = new Map(await buildGuestPrograms());
});

const flow = (i: number, proto: 'tcp' | 'udp', src: string, dst: string, dport: number, hold = false, timeoutMs = 1500): DriverFlow =>
  ({ i, proto, src, sport: 41000 + i, dst, dport, hold, timeoutMs });

/** A record without what differs between runs (timing, the run's request id). */
const observable = (r: ClientConnEvent) => ({
  i: r.i, proto: r.proto, src: r.src, sport: r.sport, dst: r.dst, dport: r.dport, outcome: r.outcome, stage: r.stage, code: r.code,
  server: r.server, local: r.local, lport: r.lport, peer: r.peer, pport: r.pport, bytes: r.bytes, afterAnswer: r.afterAnswer,
  held: r.heldMs !== null, connected: r.connectMs !== null, answered: r.answerMs !== null,
});

netnsTest.describe('vslab-flowdrv and vslab-respond in a netns pair', () => {
  netnsTest('the same flows against the Node and the C responder give the same records', async ({ pair }) => {
    const flows = [
      flow(0, 'tcp', ADDR.client4, ADDR.server4, 8080),
      flow(1, 'udp', ADDR.client4b, ADDR.server4, 8081),
      flow(2, 'tcp', ADDR.client6, ADDR.server6, 8080, true),
      flow(3, 'udp', ADDR.client6b, ADDR.server6, 8081),
      flow(4, 'tcp', ADDR.client4, ADDR.server4, 9999), // nobody listens: RST
      flow(5, 'udp', ADDR.client4, ADDR.server4, 9999), // ICMP port unreachable
      flow(6, 'tcp', ADDR.client4, ADDR.vip4, 8080, false, 300), // the server drops it: timeout
      flow(7, 'tcp', ADDR.client4b, ADDR.server4, 8080, true),
    ];
    const runs: Array<{ opened: ClientConnEvent[]; closed: ClientConnEvent[] }> = [];
    for (const responder of [undefined, programs.get(GUEST_RESPOND)!]) {
      const rs = startResponder(pair.server, { name: 'rs1', tcp: [8080], udp: [8081], log: false, tools: { responder } });
      const driver = await DriverClient.start(pair.client, { program: programs.get(GUEST_FLOWDRV) });
      try {
        await rs.ready;
        const opened = await driver.open(flows);
        expect(opened.map((o) => o.i)).toEqual(flows.map((f) => f.i));
        for (const o of opened) expect(o.t1).toBeGreaterThanOrEqual(o.t0);
        const closed = await driver.close([7, 2]);
        expect(closed.map((c) => c.i).sort()).toEqual([2, 7]);
        // a flow held again from the same port after its close
        const again = await driver.open([flow(2, 'tcp', ADDR.client6, ADDR.server6, 8080, true)]);
        expect(again[0].rec.outcome).toBe('answered');
        expect(await driver.time()).toBeGreaterThan(opened[opened.length - 1].t1);
        runs.push({ opened: opened.map((o) => o.rec), closed: closed.sort((a, b) => a.i - b.i).map((c) => c.rec) });
      } finally {
        await driver.stop();
        await rs.stop();
      }
    }
    const [node, c] = runs;
    expect(c.opened.map(observable)).toEqual(node.opened.map(observable));
    expect(c.closed.map(observable)).toEqual(node.closed.map(observable));
    const byI = new Map(c.opened.map((r) => [r.i, r]));
    expect(byI.get(0)).toMatchObject({ outcome: 'answered', server: 'rs1', local: ADDR.server4, lport: 8080, peer: ADDR.client4, pport: 41000, heldMs: null });
    expect(byI.get(3)).toMatchObject({ outcome: 'answered', local: ADDR.server6, peer: ADDR.client6b, connectMs: null });
    expect(byI.get(2)).toMatchObject({ outcome: 'answered', heldMs: null, totalMs: 0 });
    expect(byI.get(4)).toMatchObject({ outcome: 'refused', stage: 'connect', code: 'ECONNREFUSED', server: null });
    expect(byI.get(5)).toMatchObject({ outcome: 'refused', stage: 'answer', code: 'ECONNREFUSED' });
    expect(byI.get(6)).toMatchObject({ outcome: 'timeout', stage: 'connect', code: null });
    expect(c.closed.every((r) => r.heldMs !== null && r.totalMs > 0 && r.afterAnswer === null)).toBe(true);
  });

  netnsTest('a flow already held is an error that ends its command; a source port in use fails as with Node (libuv binds with SO_REUSEADDR)', async ({ pair }) => {
    const rs = startResponder(pair.server, { name: 'rs1', tcp: [8080], log: false, tools: { responder: programs.get(GUEST_RESPOND) } });
    const driver = await DriverClient.start(pair.client, { program: programs.get(GUEST_FLOWDRV) });
    try {
      await rs.ready;
      await driver.open([flow(0, 'tcp', ADDR.client4, ADDR.server4, 8080, true)]);
      await expect(driver.open([flow(0, 'tcp', ADDR.client4, ADDR.server4, 8080, true)])).rejects.toThrow(/flow 0 is already open/);
      // the same 4-tuple while flow 0 holds it: the bind passes (SO_REUSEADDR), the connect cannot
      const [busy] = await driver.open([{ ...flow(1, 'tcp', ADDR.client4, ADDR.server4, 8080), sport: 41000 }]);
      expect(busy.rec).toMatchObject({ outcome: 'error', stage: 'connect', code: 'EADDRNOTAVAIL' });
      // the same source port right after a closed flow's close: free at once (the driver waits for the last ACK)
      const reuse = await driver.open([flow(5, 'tcp', ADDR.client4, ADDR.server4, 8080), flow(5, 'tcp', ADDR.client4, ADDR.server4, 8080)]);
      expect(reuse.map((o) => o.rec.outcome)).toEqual(['answered', 'answered']);
      expect((await driver.close([0]))[0].rec.outcome).toBe('answered');
      expect(driver.exited).toBe(false);
    } finally {
      await driver.stop();
      await rs.stop();
    }
  });

  netnsTest('the Node traffic client gets every payload byte from the C responder (TCP and UDP, echo, download)', async ({ pair }) => {
    const rs = startResponder(pair.server, { name: 'rs1', tcp: [8080], udp: [8080], log: false, tools: { responder: programs.get(GUEST_RESPOND) } });
    try {
      await rs.ready;
      const tcp = await runClient(pair.client, { target: { address: ADDR.server6, port: 8080 }, count: 4, up: 70_000, echo: true, down: 200_000, run: 'pl' });
      expect(tcp.summary.outcomes.answered).toBe(4);
      expect(tcp.conns.every((x) => x.bytes === 270_000)).toBe(true);
      const udp = await runClient(pair.client, { proto: 'udp', target: { address: ADDR.server4, port: 8080 }, count: 4, up: 1000, echo: true, down: 3000, run: 'pl' });
      expect(udp.summary.outcomes.answered).toBe(4);
      expect(udp.conns.every((x) => x.bytes === 4000 && x.local === ADDR.server4)).toBe(true);
    } finally {
      const st = await rs.stop();
      expect(st.served).toEqual({ tcp: 4, udp: 4 });
    }
  });

  netnsTest('UDP: the C responder answers an address added after it started, from that address, and says so when it starts', async ({ pair }) => {
    const rs = startResponder(pair.server, { name: 'rs1', udp: [8081], log: false, tools: { responder: programs.get(GUEST_RESPOND) } });
    try {
      const ready = await rs.ready;
      expect(ready.listen).toEqual([
        { proto: 'udp', address: '0.0.0.0', port: 8081, everyAddress: true },
        { proto: 'udp', address: '::', port: 8081, everyAddress: true },
      ]);
      pair.server.sh(['ip', 'addr', 'add', `${ADDR.vip4}/32`, 'dev', 'lo']);
      pair.server.sh(['ip', 'addr', 'add', `${ADDR.vip6}/128`, 'dev', 'lo', 'nodad']);
      await rs.waitListening('udp', ADDR.vip4, 1000);
      await rs.waitListening('udp', ADDR.vip6, 1000);
      for (const vip of [ADDR.vip4, ADDR.vip6]) {
        const rep = await runClient(pair.client, { proto: 'udp', target: { address: vip, port: 8081 }, count: 2, run: 'vip' });
        expect(rep.conns.map((x) => [x.outcome, x.local, x.lport])).toEqual([['answered', vip, 8081], ['answered', vip, 8081]]);
        expect(net.isIP(rep.conns[0].peer!)).toBe(net.isIP(vip));
      }
    } finally {
      await rs.stop();
    }
  });

  netnsTest('vslab-respond refuses bad arguments with exit 2', async ({ pair }) => {
    for (const argv of [[], ['--name', 'x'], ['--name', 'x', '--tcp', '70000'], ['--name', 'x', '--tcp', '80', '--log']]) {
      const r = await pair.server.exec([programs.get(GUEST_RESPOND)!, ...argv]);
      expect(r.code, argv.join(' ')).toBe(2);
      expect(r.stderr).toMatch(/^vslab-respond: .*\nusage: vslab-respond --name NAME/);
    }
  });
});
