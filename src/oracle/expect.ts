// From a flow plan to packet expectations (the packets layer's PacketExpectation), each tagged with the
// conformance statements its fields belong to, so that a failed check names the statement it breaks.
//
// Three kinds of check:
//  - skeleton: from the plan alone, for one kind of packet (SYN, SYN-ACK, data, a UDP datagram) on every
//    hop: MACs, addresses, TTL, ports, flags, outer header fields, "checksum correct". Proves the packet
//    is there at all, whatever the client's stack chose for sequence numbers or options.
//  - seeded: every packet the originator (client, or real server for replies) really sent, carried through
//    the method's rewrite onto every later hop and rebuilt with the packets builder, so checksums are the
//    exact values a correct rewrite gives and every field the method must not touch (seq/ack, window,
//    options, IP ID, payload...) is compared. Only what legitimately varies is masked (outer IP ID, GUE
//    source port, outer IPv6 flow label).
//  - absent: packets of a direction that must not appear on a link (replies via the director for DR/TUN,
//    unrewritten replies for NAT, other real servers for any method).
import { buildPacket, type LayerSpec } from '../packet/build';
import { expectationFromPacket, type ExpectationResult, type ExpectedLayer, type PacketExpectation } from '../packet/expect';
import type { DecodedPacket, Ipv4Layer, Ipv6Layer, Layer } from '../packet/layers';
import type { Protocol } from '../topology/model';
import type { AbsentRule, Direction, FieldStatements, FlowPlan, HopHeaders } from './types';

export interface OracleCheck {
  expectation: PacketExpectation;
  /** Role of each expected layer by index: eth, outer, outer-udp, gue, gre, ip, l4, payload, icmp, quoted-ip, quoted-l4. */
  roles: string[];
  statements: FieldStatements;
  /**
   * What the check tells packet accounting (accounting.ts) about the packets it matches: 'once' — it stands
   * for exactly one packet (seeded checks, carried from the originator's packet `origin`); 'many' — any
   * number of matching packets are expected (the default for present checks, e.g. ICMP errors); 'none' —
   * it only verifies (skeleton shapes, director state), explaining nothing.
   */
  explains?: 'once' | 'many' | 'none';
  /** Frame index of the originator's packet a seeded check was carried from. */
  origin?: number;
}

export type PacketKind = { proto: 'tcp'; flags: string; label: string } | { proto: 'udp'; label: string };

export const KINDS = {
  syn: { proto: 'tcp', flags: 'S', label: 'syn' },
  synAck: { proto: 'tcp', flags: 'SA', label: 'synack' },
  data: { proto: 'tcp', flags: 'PA', label: 'data' },
  udp: { proto: 'udp', label: 'udp' },
} as const satisfies Record<string, PacketKind>;

const IPPROTO: Record<Protocol, number> = { tcp: 6, udp: 17, sctp: 132 };
const ENCAP_IPPROTO = { 4: 4, 6: 41 } as const;

/** Which statement each field of a hop answers to, by method, direction and stage. */
export function fieldStatements(plan: FlowPlan, hop: HopHeaders): FieldStatements {
  if (plan.method === 'proxy') {
    // Two connections: the client leg answers to PROXY-001, the server leg to PROXY-002; each hop's frame and
    // header well-formedness (MACs, TTL of an originated packet, checksums) to PROXY-009.
    const clientLeg = hop.direction === 'c2s' ? hop.ip.dst === plan.vip : hop.ip.src === plan.vip;
    const leg = clientLeg ? 'PROXY-001' : 'PROXY-002';
    return { missing: leg, fields: { 'eth.src': 'PROXY-009', 'eth.dst': 'PROXY-009', 'ip.ttl': 'PROXY-009', '*.checksumOk': 'PROXY-009', 'ip.src': leg, 'ip.dst': leg, 'l4.sport': leg, 'l4.dport': leg }, other: leg };
  }
  const common = { 'eth.src': 'FWD-COM-004', 'eth.dst': 'FWD-COM-004', 'ip.ttl': 'FWD-COM-002', '*.checksumOk': 'FWD-COM-003' };
  if (hop.stage === 'to-director') return { missing: 'FWD-COM-001', fields: {}, other: 'FWD-COM-001' };
  if (hop.stage === 'bypass') return { missing: plan.method === 'dr' ? 'FWD-DR-002' : 'FWD-TUN-003', fields: {}, other: 'FWD-COM-001' };
  const c2s = hop.direction === 'c2s';
  switch (plan.method) {
    case 'nat':
      return c2s
        ? { missing: 'FWD-NAT-001', fields: { ...common, 'ip.src': 'FWD-NAT-001', 'ip.dst': 'FWD-NAT-001', 'l4.sport': 'FWD-NAT-001', 'l4.dport': 'FWD-NAT-002' }, other: 'FWD-COM-005' }
        : { missing: 'FWD-NAT-003', fields: { ...common, 'ip.src': 'FWD-NAT-003', 'ip.dst': 'FWD-NAT-003', 'l4.sport': 'FWD-NAT-002', 'l4.dport': 'FWD-NAT-003' }, other: 'FWD-COM-005' };
    case 'fullnat':
      return c2s
        ? { missing: 'FWD-FNAT-001', fields: { ...common, 'ip.src': 'FWD-FNAT-001', 'ip.dst': 'FWD-FNAT-001', 'l4.sport': 'FWD-FNAT-005', 'l4.dport': 'FWD-FNAT-001' }, other: 'FWD-COM-005' }
        : { missing: 'FWD-FNAT-002', fields: { ...common, 'ip.src': 'FWD-FNAT-002', 'ip.dst': 'FWD-FNAT-002', 'l4.sport': 'FWD-FNAT-002', 'l4.dport': 'FWD-FNAT-002' }, other: 'FWD-COM-005' };
    case 'dr':
      return { missing: 'FWD-DR-001', fields: { ...common, 'eth.dst': 'FWD-DR-001', 'ip.src': 'FWD-DR-001', 'ip.dst': 'FWD-DR-001', 'l4.sport': 'FWD-DR-001', 'l4.dport': 'FWD-DR-001' }, other: 'FWD-COM-005' };
    case 'tun':
      return {
        missing: 'FWD-TUN-001',
        fields: {
          ...common, 'outer.src': 'FWD-TUN-001', 'outer.dst': 'FWD-TUN-001', 'outer.*': 'FWD-TUN-002', 'outer-udp.*': 'FWD-TUN-002', 'gue.*': 'FWD-TUN-002', 'gre.*': 'FWD-TUN-002',
          'ip.src': 'FWD-TUN-001', 'ip.dst': 'FWD-TUN-001', 'l4.sport': 'FWD-TUN-001', 'l4.dport': 'FWD-TUN-001',
        },
        other: 'FWD-COM-005',
      };
  }
}

function rolesOf(hop: HopHeaders, withPayload = false): string[] {
  const r = ['eth'];
  if (hop.outer) {
    r.push('outer');
    if (hop.outer.encap === 'gue') r.push('outer-udp', 'gue');
    if (hop.outer.encap === 'gre') r.push('gre');
  }
  r.push('ip', 'l4');
  if (withPayload) r.push('payload');
  return r;
}

function ipLayerType(family: 4 | 6): 'ipv4' | 'ipv6' {
  return family === 4 ? 'ipv4' : 'ipv6';
}

/** Expected layers of the encapsulation (outer IP, then UDP+GUE or GRE), partial (skeleton) form. */
function outerSkeleton(hop: HopHeaders): ExpectedLayer[] {
  const o = hop.outer!;
  const inner = ENCAP_IPPROTO[hop.ip.family];
  const proto = o.encap === 'gue' ? 17 : o.encap === 'gre' ? 47 : inner;
  const out: ExpectedLayer[] = [
    o.family === 4
      ? { type: 'ipv4', src: o.src, dst: o.dst, ttl: o.ttl, proto, checksumOk: true }
      : { type: 'ipv6', src: o.src, dst: o.dst, hlim: o.ttl, proto },
  ];
  if (o.encap === 'gue') {
    out.push({ type: 'udp', dport: o.guePort, checksumOk: true, ...(o.csum ? {} : { checksum: 0 }) });
    out.push({ type: 'gue', version: 0, control: false, hlen: 0, proto: inner });
  }
  if (o.encap === 'gre') out.push({ type: 'gre', version: 0, proto: hop.ip.family === 4 ? 0x0800 : 0x86dd });
  return out;
}

/** A check from the plan alone for one kind of packet on one hop. */
export function skeletonCheck(plan: FlowPlan, hop: HopHeaders, kind: PacketKind, idPrefix = ''): OracleCheck {
  const layers: ExpectedLayer[] = [{ type: 'eth', src: hop.eth.src, dst: hop.eth.dst }];
  if (hop.outer) layers.push(...outerSkeleton(hop));
  layers.push(hop.ip.family === 4
    ? { type: 'ipv4', src: hop.ip.src, dst: hop.ip.dst, ttl: hop.ip.ttl, proto: IPPROTO[hop.l4.proto], checksumOk: true }
    : { type: 'ipv6', src: hop.ip.src, dst: hop.ip.dst, hlim: hop.ip.ttl, proto: IPPROTO[hop.l4.proto] });
  layers.push(kind.proto === 'tcp'
    ? { type: 'tcp', sport: hop.l4.sport, dport: hop.l4.dport, flags: kind.flags, checksumOk: true }
    : { type: 'udp', sport: hop.l4.sport, dport: hop.l4.dport, checksumOk: true });
  return {
    expectation: {
      id: `${idPrefix}${hop.direction}.${kind.label}.w${hop.wire}.${hop.end}@${hop.link}`,
      description: `${kind.label} ${hop.direction} on ${hop.link} (${hop.stage}): ${describeHop(hop)}`,
      link: hop.link,
      layers,
    },
    roles: rolesOf(hop),
    statements: fieldStatements(plan, hop),
    explains: 'none',
  };
}

export function describeHop(h: HopHeaders): string {
  const ep = (a: string, p: number) => (a.includes(':') ? `[${a}]:${p}` : `${a}:${p}`);
  const outer = h.outer ? `${h.outer.encap} ${h.outer.src} > ${h.outer.dst} ttl ${h.outer.ttl} | ` : '';
  return `${h.eth.src} > ${h.eth.dst} | ${outer}${ep(h.ip.src, h.l4.sport)} > ${ep(h.ip.dst, h.l4.dport)} ttl ${h.ip.ttl}`;
}

function strip<T extends object>(l: T, keys: string[]): T {
  const c = { ...l } as Record<string, unknown>;
  for (const k of keys) delete c[k];
  return c as T;
}

function payloadSpec(l: Layer): LayerSpec {
  if (l.type === 'payload') return { type: 'payload', data: l.data };
  return l as unknown as LayerSpec;
}

/** The originator's packet (as captured where it was sent) carried onto `hop`: layers to build, and masks. */
export function carryOnto(origin: DecodedPacket, hop: HopHeaders): { specs: LayerSpec[]; ignore: string[] } {
  const L = origin.layers;
  const ipIdx = L.findIndex((l) => (l.type === 'ipv4' || l.type === 'ipv6') && !l.quoted);
  if (ipIdx < 0) throw new Error(`packet #${origin.index} on ${origin.link} has no IP header to carry`);
  const ip = L[ipIdx] as Ipv4Layer | Ipv6Layer;
  const l4 = L[ipIdx + 1];
  if (!l4 || (l4.type !== 'tcp' && l4.type !== 'udp')) throw new Error(`packet #${origin.index} on ${origin.link} is not TCP or UDP`);
  const specs: LayerSpec[] = [{ type: 'eth', src: hop.eth.src, dst: hop.eth.dst }];
  const ignore: string[] = [];
  if (hop.outer) {
    const o = hop.outer;
    const dsfield = ip.type === 'ipv4' ? ip.tos : ip.tc;
    // ECN: a CE mark inside becomes ECT(0) outside (INET_ECN_encapsulate); otherwise the DS field is copied.
    const outerDs = (dsfield & 3) === 3 ? (dsfield & ~3) | 2 : dsfield;
    if (o.family === 4) {
      specs.push({ type: 'ipv4', src: o.src, dst: o.dst, ttl: o.ttl, tos: outerDs, df: ip.type === 'ipv4' ? ip.df : false, id: 0 });
      // The kernel picks the outer IP ID; the header checksum covers it, so only its correctness counts.
      ignore.push('ipv4[0].id', 'ipv4[0].checksum');
    } else {
      specs.push({ type: 'ipv6', src: o.src, dst: o.dst, hlim: o.ttl, tc: outerDs, flow: 0 });
      ignore.push('ipv6[0].flow');
    }
    if (o.encap === 'gue') {
      specs.push({ type: 'udp', sport: 0, dport: o.guePort, ...(o.csum ? {} : { checksum: 0 }) });
      specs.push({ type: 'gue', version: 0, control: false, hlen: 0, flags: 0 });
      // The source port is a flow hash; a computed UDP checksum (tun-csum) covers it.
      ignore.push('udp[0].sport', ...(o.csum ? ['udp[0].checksum'] : []));
    }
    if (o.encap === 'gre') specs.push({ type: 'gre', version: 0, ...(o.csum ? { csum: true } : {}) });
  }
  if (ip.type === 'ipv4') specs.push({ ...strip(ip, ['checksum', 'checksumOk', 'quoted', 'partial']), src: hop.ip.src, dst: hop.ip.dst, ttl: hop.ip.ttl });
  else specs.push({ ...strip(ip, ['quoted', 'partial']), src: hop.ip.src, dst: hop.ip.dst, hlim: hop.ip.ttl } as LayerSpec);
  specs.push({ ...strip(l4, ['checksum', 'checksumOk', 'payloadLen']), sport: hop.l4.sport, dport: hop.l4.dport } as LayerSpec);
  for (const rest of L.slice(ipIdx + 2)) specs.push(payloadSpec(rest));
  return { specs, ignore };
}

/** Seeded checks: each originator packet carried onto every later hop of its direction. */
export function seededChecks(plan: FlowPlan, direction: Direction, origins: DecodedPacket[], opts: { idPrefix?: string; guePort?: number } = {}): OracleCheck[] {
  const hops = (direction === 'c2s' ? plan.c2s : plan.s2c).filter((h) => !(h.wire === 0 && h.end === 'tx'));
  const out: OracleCheck[] = [];
  origins.forEach((p, k) => {
    const flags = tcpFlagsOf(p);
    for (const hop of hops) {
      const { specs, ignore } = carryOnto(p, hop);
      const e = expectationFromPacket({
        id: `${opts.idPrefix ?? ''}${direction}.p${k}${flags ? `-${flags}` : ''}.w${hop.wire}.${hop.end}@${hop.link}`,
        link: hop.link, packet: buildPacket(specs), ignore,
        description: `packet #${p.index} sent by ${p.link} at ${p.ts}, as it must look on ${hop.link} (${hop.stage})`,
        decode: opts.guePort ? { guePort: opts.guePort } : undefined,
      });
      out.push({ expectation: e, roles: rolesOf(hop, specs[specs.length - 1].type === 'payload'), statements: fieldStatements(plan, hop), explains: 'once', ...(p.index !== undefined ? { origin: p.index } : {}) });
    }
  });
  return out;
}

function tcpFlagsOf(p: DecodedPacket): string {
  const t = p.layers.find((l) => l.type === 'tcp' && !l.quoted);
  return t && t.type === 'tcp' ? t.flags : '';
}

/** The packets of `direction` the originator sent, from the capture of its first link. */
export function originPackets(plan: FlowPlan, direction: Direction, packets: DecodedPacket[]): DecodedPacket[] {
  const first = (direction === 'c2s' ? plan.c2s : plan.s2c).find((h) => h.wire === 0 && h.end === 'tx');
  if (!first) return [];
  return packets.filter((p) => {
    if (p.link !== first.link) return false;
    const ipIdx = p.layers.findIndex((l) => (l.type === 'ipv4' || l.type === 'ipv6') && !l.quoted);
    if (ipIdx < 0) return false;
    const ip = p.layers[ipIdx] as Extract<Layer, { type: 'ipv4' | 'ipv6' }>;
    const l4 = p.layers[ipIdx + 1];
    if (!l4 || l4.type !== first.l4.proto) return false;
    if (p.layers.slice(0, ipIdx).some((l) => l.type === 'ipv4' || l.type === 'ipv6')) return false;
    return ip.src === first.ip.src && ip.dst === first.ip.dst && (l4 as { sport: number }).sport === first.l4.sport && (l4 as { dport: number }).dport === first.l4.dport;
  });
}

/** Absent checks from the plan's rules. */
export function absentChecks(plan: FlowPlan, idPrefix = ''): OracleCheck[] {
  return plan.absent.map((r: AbsentRule, k: number) => {
    const layers: ExpectedLayer[] = [{ type: 'eth' }];
    const roles = ['eth'];
    if (r.shape.outer) {
      layers.push({ type: ipLayerType(r.shape.outer.family) });
      roles.push('outer');
      if (r.shape.outer.encap === 'gue') { layers.push({ type: 'udp' }, { type: 'gue' }); roles.push('outer-udp', 'gue'); }
      if (r.shape.outer.encap === 'gre') { layers.push({ type: 'gre' }); roles.push('gre'); }
    }
    const ip: ExpectedLayer = { type: ipLayerType(r.shape.ip.family) };
    if (r.shape.ip.src) ip.src = r.shape.ip.src;
    if (r.shape.ip.dst) ip.dst = r.shape.ip.dst;
    const l4: ExpectedLayer = { type: r.shape.l4.proto === 'udp' ? 'udp' : 'tcp' };
    if (r.shape.l4.sport !== undefined) l4.sport = r.shape.l4.sport;
    if (r.shape.l4.dport !== undefined) l4.dport = r.shape.l4.dport;
    layers.push(ip, l4);
    roles.push('ip', 'l4');
    return {
      expectation: { id: `${idPrefix}absent${k}.${r.direction}.${r.statement}@${r.link}`, description: r.why, link: r.link, layers, mode: 'absent' as const },
      roles,
      statements: { missing: r.statement, fields: {}, other: r.statement },
    };
  });
}

/** Field name as attribution keys use it (IPv6 hop limit is the TTL). */
function fieldKey(field: string): string {
  return field === 'hlim' ? 'ttl' : field;
}

/** Fields whose difference only follows from another difference (lengths, the checksum value itself). */
const CONSEQUENTIAL = new Set(['checksum', 'len', 'plen', 'payloadLen', 'ethertype', 'proto', 'nh']);

/** The statements a failed check breaks (empty when it passed). */
export function attribute(check: OracleCheck, result: ExpectationResult): string[] {
  if (result.ok) return [];
  const st = check.statements;
  if (result.mode === 'absent') return [st.missing];
  const diff = result.closest?.diff;
  if (!diff || diff.layers.some((l) => l.fields.some((f) => f.field === 'type' && f.status !== 'ignored'))) return [st.missing];
  // The closest packet differing in two or more of addresses and ports is another packet (the other
  // direction, another flow): the expected one is missing.
  const tuple = diff.layers.flatMap((l) => (check.roles[l.index] === 'ip' || check.roles[l.index] === 'l4'
    ? l.fields.filter((f) => (f.status === 'mismatch' || f.status === 'missing') && ['src', 'dst', 'sport', 'dport'].includes(f.field))
    : []));
  if (tuple.length >= 2) return [st.missing];
  const out = new Set<string>();
  for (const l of diff.layers) {
    const role = check.roles[l.index] ?? 'other';
    for (const f of l.fields) {
      if (f.status !== 'mismatch' && f.status !== 'missing') continue;
      const key = fieldKey(f.field);
      const s = st.fields[`${role}.${key}`] ?? st.fields[`${role}.*`] ?? st.fields[`*.${key}`];
      if (s) out.add(s);
      else if (!CONSEQUENTIAL.has(key)) out.add(st.other);
    }
  }
  if (!out.size) out.add(result.matched.length ? st.other : st.missing);
  return [...out];
}
