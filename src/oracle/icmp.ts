// ICMP checks: errors a real server sends about a connection, translated back to the client (NAT,
// Full-NAT; ipvs-semantics.md §2.7), and path MTU for tunnels (the director's own "fragmentation needed" /
// "packet too big" and the relay of a router's, §2.4.4).
import { buildPacket, type LayerSpec } from '../packet/build';
import { expectationFromPacket, type ExpectedLayer } from '../packet/expect';
import type { DecodedPacket, IcmpLayer, Ipv4Layer, Ipv6Layer, Layer } from '../packet/layers';
import type { Family, LabModel, TunnelType } from '../topology/model';
import { describeHop, KINDS, skeletonCheck, type OracleCheck } from './expect';
import { planFlow } from './flow-checks';
import { nodeOf, routedPath, routeLookup } from './route';
import type { FieldStatements, Flow, FlowPlan, HopHeaders } from './types';
import { hopsAlong } from './methods/common';

/** Bytes of the offending datagram an ICMP error quotes: IPv4 keeps the error within 576 bytes, IPv6 within 1280. */
export function quoteLimit(family: Family): number {
  return family === 4 ? 576 - 20 - 8 : 1280 - 40 - 8;
}

/** Bytes an encapsulation adds in front of the inner packet. */
export function encapOverhead(encap: TunnelType, outerFamily: Family, csum = false): number {
  const outer = outerFamily === 4 ? 20 : 40;
  if (encap === 'gue') return outer + 8 + 4;
  if (encap === 'gre') return outer + 4 + (csum ? 4 : 0);
  return outer;
}

function ipOf(p: DecodedPacket, quoted: boolean): { idx: number; ip: Ipv4Layer | Ipv6Layer } | undefined {
  const idx = p.layers.findIndex((l) => (l.type === 'ipv4' || l.type === 'ipv6') && !!l.quoted === quoted);
  return idx < 0 ? undefined : { idx, ip: p.layers[idx] as Ipv4Layer | Ipv6Layer };
}

function l3Length(ip: Ipv4Layer | Ipv6Layer): number {
  return ip.type === 'ipv4' ? ip.len : 40 + ip.plen;
}

function strip<T extends object>(l: T, keys: string[]): T {
  const c = { ...l } as Record<string, unknown>;
  for (const k of keys) delete c[k];
  return c as T;
}

function asSpec(l: Layer): LayerSpec {
  if (l.type === 'payload') return { type: 'payload', data: l.data, ...(l.quoted ? { quoted: true as const } : {}) };
  return l as unknown as LayerSpec;
}

const icmpError = (l: Layer | undefined): l is IcmpLayer => !!l && (l.type === 'icmp' || l.type === 'icmpv6') && (l.type === 'icmp' ? [3, 4, 11, 12].includes(l.icmpType) : l.icmpType < 128);

// ---- errors from a real server ------------------------------------------------------------------

/** ICMP errors the real server of `plan` sent about the flow (captured where it sent them). */
export function realServerErrors(plan: FlowPlan, packets: DecodedPacket[]): DecodedPacket[] {
  const first = plan.s2c.find((h) => h.wire === 0 && h.end === 'tx');
  const toRs = plan.c2s.filter((h) => h.stage === 'from-director').pop();
  if (!first || !toRs) return [];
  return packets.filter((p) => {
    if (p.link !== first.link) return false;
    const outer = ipOf(p, false);
    const q = ipOf(p, true);
    if (!outer || !q || outer.ip.src !== first.ip.src || outer.ip.dst !== first.ip.dst) return false;
    if (!icmpError(p.layers[outer.idx + 1])) return false;
    const ql4 = p.layers[q.idx + 1] as { sport?: number; dport?: number } | undefined;
    return q.ip.src === toRs.ip.src && q.ip.dst === toRs.ip.dst && ql4?.sport === toRs.l4.sport && ql4?.dport === toRs.l4.dport;
  });
}

/** The real server's ICMP error carried onto a later hop: outer addresses of the hop, the quoted datagram rewritten back to what the client sent. */
function carryError(origin: DecodedPacket, hop: HopHeaders, clientView: HopHeaders): { specs: LayerSpec[]; ignore: string[] } {
  const L = origin.layers;
  const outer = ipOf(origin, false)!;
  const q = ipOf(origin, true)!;
  const specs: LayerSpec[] = [{ type: 'eth', src: hop.eth.src, dst: hop.eth.dst }];
  const o = outer.ip;
  if (o.type === 'ipv4') specs.push({ ...strip(o, ['checksum', 'checksumOk']), src: hop.ip.src, dst: hop.ip.dst, ttl: hop.ip.ttl });
  else specs.push({ ...o, src: hop.ip.src, dst: hop.ip.dst, hlim: hop.ip.ttl } as LayerSpec);
  specs.push(strip(L[outer.idx + 1], ['checksum', 'checksumOk']) as LayerSpec);
  for (let k = outer.idx + 2; k < L.length; k++) {
    const l = L[k];
    if (k === q.idx) {
      if (l.type === 'ipv4') specs.push({ ...strip(l, ['checksum', 'checksumOk']), src: clientView.ip.src, dst: clientView.ip.dst });
      else specs.push({ ...(l as Ipv6Layer), src: clientView.ip.src, dst: clientView.ip.dst } as LayerSpec);
    } else if (k === q.idx + 1 && (l.type === 'udp' || l.type === 'tcp')) {
      specs.push({ ...strip(l, ['checksumOk', 'payloadLen']), sport: clientView.l4.sport, dport: clientView.l4.dport } as LayerSpec);
    } else specs.push(asSpec(l));
  }
  const ipk = q.ip.type;
  const l4k = L[q.idx + 1]?.type;
  // What the quote says about hops the client does not care about: the TTL the real server saw, and the
  // quoted transport checksum (IPVS rewrites addresses and ports in the quote but not that checksum).
  // The ICMP checksum covers the quote, so only its correctness is compared, not its value.
  const icmpk = L[outer.idx + 1].type;
  const ignore = [
    `${icmpk}.checksum`, `${ipk}[1].${ipk === 'ipv4' ? 'ttl' : 'hlim'}`, ...(ipk === 'ipv4' ? ['ipv4[1].checksum'] : []),
    ...(l4k === 'udp' || l4k === 'tcp' ? [`${l4k}.checksum`, `${l4k}.checksumOk`] : []),
  ];
  return { specs, ignore };
}

/**
 * A request that provokes an ICMP error at the real server (a UDP port nobody listens on): the request on
 * every hop to the real server, the error leaving the real server, and that error translated on every hop
 * back to the client (outer source VIP, quoted datagram CIP:cport -> VIP:vport, checksums right).
 */
export function icmpErrorChecks(lab: LabModel, flow: Flow, packets: DecodedPacket[], idPrefix = ''): OracleCheck[] {
  const plan = planFlow(lab, flow);
  const relayStatement = plan.method === 'fullnat' ? 'FWD-FNAT-004' : 'FWD-NAT-005';
  if (plan.method !== 'nat' && plan.method !== 'fullnat') throw new Error(`ICMP translation is checked for NAT and Full-NAT, not ${plan.method}`);
  const out: OracleCheck[] = [];
  for (const hop of plan.c2s) out.push(skeletonCheck(plan, hop, plan.protocol === 'tcp' ? KINDS.syn : KINDS.udp, idPrefix));
  const clientView = plan.c2s[0];
  const rsView = plan.c2s.filter((h) => h.stage === 'from-director').pop()!;
  const fam = plan.family;
  const errType = fam === 4 ? { type: 'icmp' as const, icmpType: 3, code: 3 } : { type: 'icmpv6' as const, icmpType: 1, code: 4 };
  const quoted = (v: HopHeaders): ExpectedLayer[] => [
    { type: fam === 4 ? 'ipv4' : 'ipv6', src: v.ip.src, dst: v.ip.dst },
    { type: plan.protocol === 'udp' ? 'udp' : 'tcp', sport: v.l4.sport, dport: v.l4.dport },
  ];
  const relayed = (): FieldStatements => ({ missing: relayStatement, fields: { 'eth.src': 'FWD-COM-004', 'eth.dst': 'FWD-COM-004', 'ip.ttl': 'FWD-COM-002', '*.checksumOk': 'FWD-COM-003' }, other: relayStatement });
  // Skeleton: the error leaves the real server, and reaches the client translated.
  for (const hop of plan.s2c) {
    const after = hop.stage === 'from-director';
    const view = after ? clientView : rsView;
    const layers: ExpectedLayer[] = [
      { type: 'eth', src: hop.eth.src, dst: hop.eth.dst },
      fam === 4 ? { type: 'ipv4', src: hop.ip.src, dst: hop.ip.dst, ttl: hop.ip.ttl, checksumOk: true } : { type: 'ipv6', src: hop.ip.src, dst: hop.ip.dst, hlim: hop.ip.ttl },
      { ...errType, checksumOk: true },
      ...quoted(view),
    ];
    out.push({
      expectation: { id: `${idPrefix}s2c.icmp-error.w${hop.wire}.${hop.end}@${hop.link}`, link: hop.link, layers, description: `ICMP error about ${describeHop(view)} on ${hop.link} (${hop.stage})` },
      roles: ['eth', 'ip', 'icmp', 'quoted-ip', 'quoted-l4'],
      statements: after ? relayed() : { missing: 'FWD-COM-001', fields: {}, other: 'FWD-COM-001' },
    });
  }
  // Seeded: each error the real server really sent, on every hop after the director.
  realServerErrors(plan, packets).forEach((p, k) => {
    for (const hop of plan.s2c.filter((h) => h.stage === 'from-director')) {
      const { specs, ignore } = carryError(p, hop, clientView);
      out.push({
        expectation: expectationFromPacket({ id: `${idPrefix}s2c.e${k}.w${hop.wire}.${hop.end}@${hop.link}`, link: hop.link, packet: buildPacket(specs), ignore, description: `ICMP error #${p.index} from ${p.link}, translated for the client, on ${hop.link}` }),
        roles: ['eth', 'ip', 'icmp', 'quoted-ip', 'quoted-l4', 'payload'],
        statements: relayed(),
      });
    }
  });
  return out;
}


// ---- path MTU for tunnels -----------------------------------------------------------------------

export interface TunnelPath {
  encap: TunnelType;
  outerFamily: Family;
  /** MTU of the director's route to the real server. */
  routeMtu: number;
  overhead: number;
  /** Largest inner packet that fits. */
  innerMtu: number;
}

export function tunnelPath(lab: LabModel, plan: FlowPlan): TunnelPath {
  const hop = plan.c2s.find((h) => h.stage === 'from-director' && h.end === 'tx');
  if (!hop?.outer) throw new Error(`flow to ${plan.flow.realServer} is not tunnelled`);
  const director = nodeOf(lab, plan.director);
  const route = routeLookup(director, plan.rip);
  if (route.kind !== 'forward') throw new Error(`director has no route to ${plan.rip}`);
  const overhead = encapOverhead(hop.outer.encap, hop.outer.family, hop.outer.csum);
  return { encap: hop.outer.encap, outerFamily: hop.outer.family, routeMtu: route.iface.mtu, overhead, innerMtu: route.iface.mtu - overhead };
}

/** The path of an ICMP error the director sends to the client (source VIP, TTL 64 from the director). */
function directorToClient(lab: LabModel, plan: FlowPlan, initialTtl = 64): HopHeaders[] {
  const p = routedPath(lab, plan.director, plan.flow.clientAddr);
  return hopsAlong(p, { ip: { family: plan.family, src: plan.vip, dst: plan.flow.clientAddr, ttl: initialTtl }, l4: { proto: plan.protocol, sport: 0, dport: 0 } }, 's2c', 'from-director', 0).hops;
}

function tooBigLayer(family: Family, mtu?: number): ExpectedLayer {
  const base: ExpectedLayer = family === 4 ? { type: 'icmp', icmpType: 3, code: 4 } : { type: 'icmpv6', icmpType: 2, code: 0 };
  if (mtu !== undefined) base.mtu = mtu;
  return base;
}

/**
 * Packets of the flow the client sent that do not fit the tunnel: each must be answered, on every hop back
 * to the client, by "fragmentation needed" (IPv4, DF set) / "packet too big" (IPv6) from the VIP carrying
 * the route MTU minus the encapsulation overhead and quoting the packet; none may leave the director.
 */
export function tooBigChecks(lab: LabModel, flow: Flow, packets: DecodedPacket[], idPrefix = ''): OracleCheck[] {
  const plan = planFlow(lab, flow);
  const tp = tunnelPath(lab, plan);
  const out: OracleCheck[] = [];
  const first = plan.c2s[0];
  const origins = packets.filter((p) => {
    if (p.link !== first.link) return false;
    const o = ipOf(p, false);
    const l4 = o && (p.layers[o.idx + 1] as { sport?: number; dport?: number });
    return !!o && o.ip.src === first.ip.src && o.ip.dst === first.ip.dst && l4?.sport === first.l4.sport && l4?.dport === first.l4.dport
      && l3Length(o.ip) > tp.innerMtu && (o.ip.type === 'ipv6' || o.ip.df);
  });
  const back = directorToClient(lab, plan);
  const st: FieldStatements = { missing: 'FWD-TUN-004', fields: { '*.checksumOk': 'FWD-COM-003' }, other: 'FWD-TUN-004' };
  const fam = plan.family;
  const ipk = fam === 4 ? 'ipv4' : 'ipv6';
  // Skeleton: at least one such message reaches the client.
  const cl = back.filter((h) => h.end === 'rx').pop()!;
  out.push({
    expectation: {
      id: `${idPrefix}too-big.any@${cl.link}`, link: cl.link, description: `the client learns the tunnel MTU ${tp.innerMtu} (${tp.routeMtu} - ${tp.overhead} for ${tp.encap} over IPv${tp.outerFamily})`,
      layers: [{ type: 'eth', src: cl.eth.src, dst: cl.eth.dst }, { type: ipk, src: plan.vip, dst: plan.flow.clientAddr }, { ...tooBigLayer(fam, tp.innerMtu), checksumOk: true }, { type: ipk, src: plan.flow.clientAddr, dst: plan.vip }, { type: plan.protocol === 'udp' ? 'udp' : 'tcp', sport: plan.flow.clientPort, dport: plan.vport }],
    },
    roles: ['eth', 'ip', 'icmp', 'quoted-ip', 'quoted-l4'], statements: { ...st, fields: { ...st.fields, 'eth.src': 'FWD-COM-004', 'eth.dst': 'FWD-COM-004' } },
  });
  const egress = plan.c2s.filter((h) => h.stage === 'from-director' && h.end === 'tx')[0];
  origins.forEach((p, k) => {
    const o = ipOf(p, false)!;
    const quotedLayers = p.layers.slice(o.idx).map((l) => ({ ...asSpec(l), quoted: true as const }));
    for (const hop of back) {
      const specs: LayerSpec[] = [
        { type: 'eth', src: hop.eth.src, dst: hop.eth.dst },
        fam === 4 ? { type: 'ipv4', src: hop.ip.src, dst: hop.ip.dst, ttl: hop.ip.ttl, id: 0, tos: 0 } : { type: 'ipv6', src: hop.ip.src, dst: hop.ip.dst, hlim: hop.ip.ttl, tc: 0, flow: 0 },
        { type: fam === 4 ? 'icmp' : 'icmpv6', icmpType: fam === 4 ? 3 : 2, code: fam === 4 ? 4 : 0, mtu: tp.innerMtu, quoteLen: quoteLimit(fam) },
        ...quotedLayers.map((l) => (l.type === 'ipv4' ? strip(l as Record<string, unknown>, ['checksum', 'checksumOk']) as unknown as LayerSpec : l.type === 'tcp' || l.type === 'udp' ? strip(l as Record<string, unknown>, ['checksumOk', 'payloadLen']) as unknown as LayerSpec : l as unknown as LayerSpec)),
      ];
      // Where the director quotes the packet (before or after its TTL decrement) is not judged; the ICMP
      // checksum covers the quote, so its correctness is compared, not its value.
      const ignore = fam === 4
        ? ['ipv4[0].id', 'ipv4[0].tos', 'ipv4[0].checksum', 'icmp.checksum', 'ipv4[1].ttl', 'ipv4[1].checksum', 'ipv4[1].checksumOk']
        : ['ipv6[0].tc', 'ipv6[0].flow', 'icmpv6.checksum', 'ipv6[1].hlim'];
      out.push({
        expectation: expectationFromPacket({ id: `${idPrefix}too-big.p${k}.w${hop.wire}.${hop.end}@${hop.link}`, link: hop.link, packet: buildPacket(specs), ignore, description: `packet #${p.index} (${l3Length(o.ip)} bytes) does not fit ${tp.encap} (${tp.innerMtu}); the client must be told so on ${hop.link}` }),
        roles: ['eth', 'ip', 'icmp', 'quoted-ip', 'quoted-l4', 'payload'],
        statements: { ...st, fields: { ...st.fields, 'eth.src': 'FWD-COM-004', 'eth.dst': 'FWD-COM-004' } },
      });
    }
    if (egress?.outer) {
      const tcp = p.layers[o.idx + 1];
      const layers: ExpectedLayer[] = [{ type: 'eth' }, { type: egress.outer.family === 4 ? 'ipv4' : 'ipv6' }];
      if (egress.outer.encap === 'gue') layers.push({ type: 'udp' }, { type: 'gue' });
      if (egress.outer.encap === 'gre') layers.push({ type: 'gre' });
      layers.push(o.ip.type === 'ipv4' ? { type: 'ipv4', src: o.ip.src, dst: o.ip.dst, len: o.ip.len } : { type: 'ipv6', src: o.ip.src, dst: o.ip.dst, plen: o.ip.plen });
      layers.push(tcp && tcp.type === 'tcp' ? { type: 'tcp', sport: tcp.sport, dport: tcp.dport, seq: tcp.seq } : { type: plan.protocol === 'udp' ? 'udp' : 'tcp', sport: first.l4.sport, dport: first.l4.dport });
      out.push({
        expectation: { id: `${idPrefix}too-big.p${k}.not-forwarded@${egress.link}`, link: egress.link, layers, mode: 'absent', description: `packet #${p.index} is larger than the tunnel MTU and must not be sent into the tunnel` },
        roles: layers.map(() => 'other'), statements: { missing: 'FWD-TUN-004', fields: {}, other: 'FWD-TUN-004' },
      });
    }
  });
  return out;
}

/**
 * A router beyond the director has a smaller MTU (`routerMtu`): its "fragmentation needed" about a tunnel
 * packet reaches the director; the director relays a "fragmentation needed" about the same client packet
 * (matched by its IP ID and sequence number; the MTU in it is not judged: kernel IPVS takes it from its
 * cached route, see docs/conformance.md), and the client is told routerMtu minus the encapsulation overhead.
 */
export function tunnelRelayChecks(lab: LabModel, flow: Flow, routerMtu: number, packets: DecodedPacket[], idPrefix = ''): OracleCheck[] {
  const plan = planFlow(lab, flow);
  const tp = tunnelPath(lab, plan);
  if (plan.family !== 4 || tp.outerFamily !== 4) throw new Error('the relay of ICMP errors about tunnel packets is checked for IPv4 only');
  const egress = plan.c2s.find((h) => h.stage === 'from-director' && h.end === 'tx')!;
  const cl = directorToClient(lab, plan).filter((h) => h.end === 'rx').pop()!;
  const st: FieldStatements = { missing: 'FWD-TUN-005', fields: { '*.checksumOk': 'FWD-COM-003' }, other: 'FWD-TUN-005' };
  const l4t = plan.protocol === 'udp' ? 'udp' : 'tcp';
  const quotedClient = (extra4: Record<string, unknown> = {}, extraL4: Record<string, unknown> = {}): ExpectedLayer[] => [
    { type: 'ipv4', src: plan.flow.clientAddr, dst: plan.vip, ...extra4 },
    { type: l4t, sport: plan.flow.clientPort, dport: plan.vport, ...extraL4 },
  ];
  const outerQuoted: ExpectedLayer[] = [{ type: 'ipv4', src: egress.outer!.src, dst: egress.outer!.dst }];
  if (tp.encap === 'gue') outerQuoted.push({ type: 'udp' }, { type: 'gue' });
  if (tp.encap === 'gre') outerQuoted.push({ type: 'gre' });
  const routerSays: ExpectedLayer[] = [{ type: 'eth' }, { type: 'ipv4', dst: egress.outer!.src }, { type: 'icmp', icmpType: 3, code: 4, mtu: routerMtu }, ...outerQuoted, ...quotedClient()];
  const out: OracleCheck[] = [
    {
      expectation: { id: `${idPrefix}relay.router-says@${plan.directorEgress}`, link: plan.directorEgress, layers: routerSays, description: `a router reports MTU ${routerMtu} for tunnel packets to the director (their DF is the inner packet's)` },
      roles: [], statements: st,
    },
    {
      expectation: {
        id: `${idPrefix}relay.converged@${cl.link}`, link: cl.link, description: `the client is told ${routerMtu - tp.overhead} (${routerMtu} - ${tp.overhead} for ${tp.encap})`,
        layers: [{ type: 'eth' }, { type: 'ipv4', src: plan.vip, dst: plan.flow.clientAddr }, { type: 'icmp', icmpType: 3, code: 4, mtu: routerMtu - tp.overhead, checksumOk: true }, ...quotedClient()],
      },
      roles: [], statements: st,
    },
  ];
  // Each router report seen at the director must come back to the client about the same client packet.
  const reports = packets.filter((p) => {
    if (p.link !== plan.directorEgress) return false;
    const outer = ipOf(p, false);
    const icmp = outer && p.layers[outer.idx + 1];
    return !!icmp && icmp.type === 'icmp' && icmp.icmpType === 3 && icmp.code === 4 && outer!.ip.dst === egress.outer!.src;
  });
  reports.forEach((p, k) => {
    const quotedIps = p.layers.filter((l): l is Ipv4Layer => l.type === 'ipv4' && !!l.quoted);
    const inner = quotedIps[quotedIps.length - 1];
    const innerIdx = p.layers.lastIndexOf(inner);
    const l4 = p.layers[innerIdx + 1];
    if (!inner || inner.src !== plan.flow.clientAddr) return;
    out.push({
      expectation: {
        id: `${idPrefix}relay.r${k}@${cl.link}`, link: cl.link, after: p.ts,
        description: `the router's report #${p.index} about the client's packet with IP ID ${inner.id} is relayed to the client from the VIP, tunnel header stripped`,
        layers: [{ type: 'eth' }, { type: 'ipv4', src: plan.vip, dst: plan.flow.clientAddr }, { type: 'icmp', icmpType: 3, code: 4, checksumOk: true }, ...quotedClient({ id: inner.id, len: inner.len }, l4 && l4.type === 'tcp' ? { seq: l4.seq } : {})],
      },
      roles: [], statements: st,
    });
  });
  return out;
}
