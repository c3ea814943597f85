// Checks of a proxied flow beyond its packets on every hop (src/oracle/methods/proxy.ts): what carries over
// from one TCP connection to the other, decided from the captures and written as packet expectations so
// that `vslab replay` re-decides them:
//  - PROXY-003 byte streams: the stream one end sent, reassembled from its own link, is what the other leg
//    must carry: each segment of the other leg is expected at its place in the stream (its sequence number
//    relative to that leg's SYN) with exactly the bytes the sender sent there, and the first byte the other
//    leg never carried is expected too (a truncating proxy fails it);
//  - PROXY-004 half-close: after one end's FIN, a FIN on the other leg, right after the last byte of the stream;
//  - PROXY-005 reset: after the real server's RST, the client leg ends (RST or FIN from VIP:vport);
//  - PROXY-006 order: no server-leg SYN before the client's handshake completed at the director;
//  - PROXY-008 no probes: with health checks off, the director opens exactly the flows' server legs.
import { tsCompare, type ExpectedLayer } from '../packet/expect';
import type { DecodedPacket, Layer } from '../packet/layers';
import type { LabModel } from '../topology/model';
import type { OracleCheck } from './expect';
import { planFlow } from './flow-checks';
import { linksOf } from './methods/common';
import type { Flow, FlowPlan, HopHeaders } from './types';

interface Seg { p: DecodedPacket; seq: number; flags: string; data: Buffer; src: string; dst: string; sport: number; dport: number }

function segOf(p: DecodedPacket): Seg | undefined {
  const L = p.layers;
  const i = L.findIndex((l) => (l.type === 'ipv4' || l.type === 'ipv6') && !l.quoted);
  if (i < 0) return undefined;
  const ip = L[i] as Extract<Layer, { type: 'ipv4' | 'ipv6' }>;
  const t = L[i + 1];
  if (!t || t.type !== 'tcp') return undefined;
  const pl = L.slice(i + 2).find((l) => l.type === 'payload') as Extract<Layer, { type: 'payload' }> | undefined;
  return { p, seq: t.seq, flags: t.flags, data: Buffer.from(pl?.data ?? '', 'hex'), src: ip.src, dst: ip.dst, sport: t.sport, dport: t.dport };
}

/** The segments of one direction of one connection seen on `link`, in capture order. */
function segments(packets: DecodedPacket[], link: string, h: { src: string; dst: string; sport: number; dport: number }): Seg[] {
  return packets.filter((p) => p.link === link).map(segOf).filter((s): s is Seg => !!s && s.src === h.src && s.dst === h.dst && s.sport === h.sport && s.dport === h.dport);
}

/** a >= b for "seconds.nanoseconds" timestamps (a missing one never is). */
function notBefore(a?: string, b?: string): boolean {
  return a !== undefined && b !== undefined && tsCompare(a, b) >= 0;
}

const u32 = (x: number) => ((x % 2 ** 32) + 2 ** 32) % 2 ** 32;

/** The byte stream of a direction (from its SYN's sequence number), its ISN, and its FIN if any. */
function stream(segs: Seg[]): { isn?: number; bytes: Buffer; fin?: Seg } {
  const syn = segs.find((s) => s.flags.includes('S'));
  if (!syn) return { bytes: Buffer.alloc(0) };
  const parts: Buffer[] = [];
  let len = 0;
  for (const s of segs) {
    if (!s.data.length) continue;
    const off = u32(s.seq - syn.seq - 1);
    if (off > 64 * 1024 * 1024) continue;
    if (off + s.data.length > len) {
      const grown = Buffer.alloc(off + s.data.length);
      Buffer.concat(parts.splice(0), len).copy(grown);
      parts.push(grown);
      len = grown.length;
    }
    s.data.copy(parts[0], off);
  }
  return { isn: syn.seq, bytes: len ? parts[0] : Buffer.alloc(0), fin: segs.find((s) => s.flags.includes('F')) };
}

const ipType = (plan: FlowPlan) => (plan.family === 4 ? 'ipv4' : 'ipv6');

/** Where each leg's direction is sent (its originator's link) and received (its last hop's rx end). */
function ends(hops: HopHeaders[]): { sent: HopHeaders; received: HopHeaders } {
  return { sent: hops.find((h) => h.wire === 0 && h.end === 'tx')!, received: hops.filter((h) => h.end === 'rx').pop()! };
}

interface Leg { name: 'client leg' | 'server leg'; sent: HopHeaders; received: HopHeaders }

/** Client->server: client leg then server leg; server->client: server leg then client leg. */
function relays(plan: FlowPlan): Array<{ dir: 'c2s' | 's2c'; from: Leg; to: Leg }> {
  const isClient = (h: HopHeaders) => (h.direction === 'c2s' ? h.ip.dst === plan.vip : h.ip.src === plan.vip);
  const c2sClient = ends(plan.c2s.filter(isClient));
  const c2sServer = ends(plan.c2s.filter((h) => !isClient(h)).map((h, _i, a) => ({ ...h, wire: h.wire - Math.min(...a.map((x) => x.wire)) })));
  const s2cServer = ends(plan.s2c.filter((h) => !isClient(h)));
  const s2cClient = ends(plan.s2c.filter(isClient).map((h, _i, a) => ({ ...h, wire: h.wire - Math.min(...a.map((x) => x.wire)) })));
  return [
    { dir: 'c2s', from: { name: 'client leg', ...c2sClient }, to: { name: 'server leg', ...c2sServer } },
    { dir: 's2c', from: { name: 'server leg', ...s2cServer }, to: { name: 'client leg', ...s2cClient } },
  ];
}

function tcpLayers(plan: FlowPlan, h: HopHeaders, extra: Record<string, unknown>): ExpectedLayer[] {
  return [{ type: 'eth' }, { type: ipType(plan), src: h.ip.src, dst: h.ip.dst }, { type: 'tcp', sport: h.l4.sport, dport: h.l4.dport, ...extra }];
}

function check(id: string, link: string, layers: ExpectedLayer[], statement: string, description: string, more: Partial<OracleCheck['expectation']> = {}): OracleCheck {
  return {
    expectation: { id, link, layers, description, ...more },
    roles: layers.map((l, k) => (k === 0 ? 'eth' : l.type === 'ipv4' || l.type === 'ipv6' ? 'ip' : l.type === 'payload' ? 'payload' : 'l4')),
    statements: { missing: statement, fields: {}, other: statement },
    explains: 'none',
  };
}

const MAX_SHOWN = 1400;

/** PROXY-003 and PROXY-004 for one flow, both directions. */
export function streamChecks(lab: LabModel, flow: Flow, packets: DecodedPacket[], prefix = ''): OracleCheck[] {
  const plan = planFlow(lab, flow);
  const out: OracleCheck[] = [];
  for (const { dir, from, to } of relays(plan)) {
    const sent = stream(segments(packets, from.sent.link, { src: from.sent.ip.src, dst: from.sent.ip.dst, sport: from.sent.l4.sport, dport: from.sent.l4.dport }));
    const toSegs = segments(packets, to.received.link, { src: to.received.ip.src, dst: to.received.ip.dst, sport: to.received.l4.sport, dport: to.received.l4.dport });
    const carried = stream(toSegs);
    const what = `${dir === 'c2s' ? 'the client' : 'the real server'}'s ${sent.bytes.length}-byte stream`;
    if (carried.isn === undefined) {
      out.push(check(`${prefix}${dir}.stream.syn@${to.received.link}`, to.received.link, tcpLayers(plan, to.received, { flags: 'S' }), 'PROXY-003', `the ${to.name} that must carry ${what} (its SYN)`));
      continue;
    }
    const isn = carried.isn;
    const covered = new Array<boolean>(sent.bytes.length).fill(false);
    toSegs.filter((s) => s.data.length).forEach((s, k) => {
      const off = u32(s.seq - isn - 1);
      for (let i = off; i < Math.min(off + s.data.length, sent.bytes.length); i++) covered[i] = true;
      const want = sent.bytes.subarray(Math.min(off, sent.bytes.length), Math.min(off + s.data.length, sent.bytes.length));
      out.push(check(`${prefix}${dir}.stream.s${k}@${to.received.link}`, to.received.link,
        [...tcpLayers(plan, to.received, { seq: s.seq }), { type: 'payload', data: want.toString('hex') }],
        'PROXY-003', `bytes ${off}..${off + s.data.length} of ${what}, as the ${to.name} must carry them`));
    });
    const gap = covered.indexOf(false);
    if (gap >= 0) {
      const want = sent.bytes.subarray(gap, Math.min(gap + MAX_SHOWN, sent.bytes.length));
      out.push(check(`${prefix}${dir}.stream.gap${gap}@${to.received.link}`, to.received.link,
        [...tcpLayers(plan, to.received, { seq: u32(isn + 1 + gap) }), { type: 'payload', data: want.toString('hex') }],
        'PROXY-003', `byte ${gap} of ${what} onwards on the ${to.name} (never carried)`));
    }
    if (sent.fin) {
      // The other leg's FIN, after this one and right after the whole stream.
      const fin = toSegs.find((s) => s.flags.includes('F') && notBefore(s.p.ts, sent.fin!.p.ts));
      // A FIN may ride on the segment with the stream's last bytes: its sequence slot follows that segment's data.
      const riding = fin?.data.length ?? 0;
      out.push(check(`${prefix}${dir}.fin@${to.received.link}`, to.received.link,
        tcpLayers(plan, to.received, { flags: fin?.flags ?? 'FA', seq: u32(isn + 1 + sent.bytes.length - riding) }),
        'PROXY-004', `the ${from.name}'s FIN (frame #${sent.fin.p.index}) carried onto the ${to.name} after the last of ${what}`,
        sent.fin.p.ts ? { after: sent.fin.p.ts } : {}));
    }
  }
  return out;
}

/** PROXY-006: no server-leg SYN on the director's way to the real server before the client's handshake ACK reached the director. */
export function connectOrderChecks(lab: LabModel, flow: Flow, packets: DecodedPacket[], prefix = ''): OracleCheck[] {
  const plan = planFlow(lab, flow);
  const [{ from: client, to: server }] = relays(plan);
  const atDirector = plan.c2s.filter((h) => h.stage === 'to-director' && h.end === 'rx').pop()!;
  const segs = segments(packets, atDirector.link, { src: atDirector.ip.src, dst: atDirector.ip.dst, sport: atDirector.l4.sport, dport: atDirector.l4.dport });
  const ack = segs.find((s) => s.flags === 'A');
  const egress = server.sent; // the server leg's first wire, the director's end
  if (!ack?.p.ts) return [check(`${prefix}order.ack@${atDirector.link}`, atDirector.link, tcpLayers(plan, atDirector, { flags: 'A' }), 'PROXY-006', `the ${client.name}'s handshake ACK reaching the director`)];
  return [check(`${prefix}order.syn-before-ack@${egress.link}`, egress.link, tcpLayers(plan, egress, { flags: 'S' }), 'PROXY-006',
    `no SYN of the server leg before the client's handshake ACK reached the director (frame #${ack.p.index} at ${ack.p.ts})`, { mode: 'absent', before: ack.p.ts })];
}

/**
 * PROXY-008 with health checks off: the SYNs the director sends to each real server's link are exactly the
 * flows' server legs (none of another source port: no probe).
 */
export function noProbeChecks(lab: LabModel, flows: Flow[], service: string): OracleCheck[] {
  const svc = lab.services.find((s) => s.name === service)!;
  return svc.realServers.flatMap((r) => linksOf(lab, r.node).filter((link) => {
    const n = lab.nodes.find((x) => x.name === r.node)!;
    const i = n.interfaces.find((x) => `${r.node}:${x.name}` === link);
    return i?.ipv4?.addr === r.addr || i?.ipv6?.addr === r.addr;
  }).map((link) => {
    const n = flows.filter((f) => f.realServer === r.node).length;
    const layers: ExpectedLayer[] = [{ type: 'eth' }, { type: r.family === 4 ? 'ipv4' : 'ipv6', dst: r.addr }, { type: 'tcp', dport: r.port, flags: 'S' }];
    return {
      expectation: n ? { id: `probes.${r.node}@${link}`, link, layers, count: { min: n, max: n }, description: `exactly the ${n} server leg(s) of the test's flows reach ${r.node}:${r.port}, no health-check probe` }
        : { id: `probes.${r.node}@${link}`, link, layers, mode: 'absent' as const, description: `no connection to ${r.node}:${r.port} at all (no flow went there, health checks are off)` },
      roles: ['eth', 'ip', 'l4'],
      statements: { missing: 'PROXY-008', fields: {}, other: 'PROXY-008' },
      explains: 'none' as const,
    };
  }));
}

/**
 * The proxy's server legs to a real server that refuses (RST to the SYN), as flows: one per SYN the director
 * sent to rip:rport (a proxy may retry from other ports), so that their packets are explained.
 */
export function refusedLegs(lab: LabModel, service: string, client: string, clientAddr: string, clientPort: number, packets: DecodedPacket[]): Flow[] {
  const svc = lab.services.find((s) => s.name === service)!;
  const r = svc.realServers[0];
  const link = linksOf(lab, r.node)[0];
  const seen = new Set<string>();
  const out: Flow[] = [];
  for (const p of packets.filter((x) => x.link === link)) {
    const s = segOf(p);
    if (!s || s.dst !== r.addr || s.dport !== r.port || s.flags !== 'S') continue;
    const k = `${s.src} ${s.sport}`;
    if (seen.has(k)) continue;
    seen.add(k);
    out.push({ service, client, clientAddr, clientPort, realServer: r.node, leg: { addr: s.src, port: s.sport } });
  }
  return out;
}

/** PROXY-005: after the real server's RST to a server leg, the client leg ends with a RST or FIN from VIP:vport. */
export function resetChecks(lab: LabModel, service: string, legs: Flow[], packets: DecodedPacket[]): OracleCheck[] {
  if (!legs.length) {
    const r = lab.services.find((s) => s.name === service)!.realServers[0];
    const link = linksOf(lab, r.node)[0];
    return [check(`reset.server-syn@${link}`, link, [{ type: 'eth' }, { type: r.family === 4 ? 'ipv4' : 'ipv6', dst: r.addr }, { type: 'tcp', dport: r.port, flags: 'S' }], 'PROXY-005', `the proxy's attempt to connect to ${r.node}:${r.port} (the precondition of the test)`)];
  }
  const plan = planFlow(lab, legs[0]);
  const [{ to: server }, { to: toClient }] = relays(plan);
  let firstRst: Seg | undefined;
  for (const f of legs) {
    const p = planFlow(lab, f);
    const back = ends(p.s2c.filter((h) => h.ip.dst === f.leg!.addr)).sent;
    const rst = segments(packets, back.link, { src: back.ip.src, dst: back.ip.dst, sport: back.l4.sport, dport: back.l4.dport }).find((s) => s.flags.includes('R'));
    if (rst && (!firstRst || !notBefore(rst.p.ts, firstRst.p.ts))) firstRst = rst;
  }
  if (!firstRst?.p.ts) {
    return [check('reset.server-rst', server.received.link, [{ type: 'eth' }, { type: ipType(plan), src: plan.rip }, { type: 'tcp', sport: plan.rport, flags: 'RA' }], 'PROXY-005', `the real server's reset of the server leg (the precondition of the test)`)];
  }
  const ending = segments(packets, toClient.received.link, { src: toClient.received.ip.src, dst: toClient.received.ip.dst, sport: toClient.received.l4.sport, dport: toClient.received.l4.dport })
    .find((s) => (s.flags.includes('R') || s.flags.includes('F')) && notBefore(s.p.ts, firstRst!.p.ts));
  return [check(`reset.client-leg-ends@${toClient.received.link}`, toClient.received.link, tcpLayers(plan, toClient.received, { flags: ending?.flags ?? 'R' }), 'PROXY-005',
    `the client leg ends (RST or FIN from VIP:vport) after the real server reset the server leg (frame #${firstRst.p.index})`, { after: firstRst.p.ts })];
}
