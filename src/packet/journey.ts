// Follow one client connection through the lab: from the decoded captures of all links, find every packet
// of the flow — also after address/port rewrites (NAT, Full-NAT) and inside tunnels (IPIP, GRE, GUE: the
// inner packet is matched) — and order them into hops.
//
// Heuristic (see docs/packets.md): a packet belongs to the flow when its innermost 5-tuple is one of the
// flow's known tuples (both directions). New tuples (rewritten views of the flow) are learnt from packets on
// another link, close in time, that are evidently the same transmission as a packet already in the flow:
//   TCP  same flags, same payload and the same seq or ack (NAT keeps both, Full-NAT rewrites one per
//        direction); or same flags + seq + ack (non-zero) with equal payload length; or a TOA option naming
//        the client's address and port; or same payload + same non-zero IPv4 ID.
//   UDP  same non-empty payload.             ICMP echo: same id, seq and payload.
// Learning repeats until nothing new is found. ICMP errors whose quoted datagram carries a known tuple join
// the flow too. For TCP, each view's constant shifts of the client's and the server's sequence spaces
// (non-zero when a Full-NAT director chooses a new ISN) are then learnt by voting over packet pairs, so every
// segment can be compared in the client's numbering. Packets are grouped into transmissions (one packet seen
// on successive links) by direction, time window and these invariants.
import { createHash } from 'crypto';
import type { DecodedPacket, IcmpLayer, Ipv4Layer, Ipv6Layer, Layer, TcpLayer } from './layers';

export interface FlowTuple {
  /** IP protocol number (6 TCP, 17 UDP, 1 ICMP, 58 ICMPv6). */
  proto: number;
  src: string;
  sport: number;
  dst: string;
  dport: number;
}

export type Direction = 'c2s' | 's2c';

export interface Hop {
  link: string;
  ts: string;
  index?: number;
  direction: Direction;
  /** Innermost (tunnelled) 5-tuple as seen on this link. */
  tuple: FlowTuple;
  /** Encapsulation outside the innermost IP header, e.g. ["ipv4"] (IPIP), ["ipv4","udp","gue"], ["ipv4","gre"]. */
  encap: string[];
  /** An ICMP error about the flow (its quoted datagram carries the flow). */
  icmpError?: boolean;
  /** What differs from the previous hop of the same transmission, e.g. "ipv4.dst 198.18.0.100 -> 198.18.2.11". */
  changed: string[];
  packet: DecodedPacket;
}

export interface Transmission {
  direction: Direction;
  hops: Hop[];
}

export interface FlowView {
  /** The tuple in the client-to-server direction as seen on these links. */
  tuple: FlowTuple;
  links: string[];
  /** How the view was linked to the flow ("client tuple" for the original). */
  evidence: string;
}

export interface Journey {
  flow: FlowTuple;
  views: FlowView[];
  /** Each packet of the flow followed across links, in order of first appearance. */
  transmissions: Transmission[];
  /** Every packet of the flow on every link, in time order. */
  hops: Hop[];
  warnings: string[];
}

export interface JourneyOptions {
  /** Longest time between a packet on one link and its copy on another (seconds, default 2). */
  windowSec?: number;
}

interface View {
  i: number;
  p: DecodedPacket;
  link: string;
  t: bigint;
  tuple?: FlowTuple;
  encap: string[];
  ipId: number;
  tcp?: TcpLayer;
  tsval?: number;
  toa?: { addr: string; port: number };
  payloadKey: string;
  payloadLen: number;
  icmp?: IcmpLayer;
  /** Tuple of the datagram quoted by an ICMP error. */
  quoted?: FlowTuple;
}

const key = (t: FlowTuple) => `${t.proto}|${t.src}|${t.sport}|${t.dst}|${t.dport}`;
const reverse = (t: FlowTuple): FlowTuple => ({ proto: t.proto, src: t.dst, sport: t.dport, dst: t.src, dport: t.sport });
const canon = (t: FlowTuple) => {
  const a = `${t.src}|${t.sport}`;
  const b = `${t.dst}|${t.dport}`;
  return a <= b ? `${t.proto}|${a}|${b}` : `${t.proto}|${b}|${a}`;
};
const other = (d: Direction): Direction => (d === 'c2s' ? 's2c' : 'c2s');

function tsNs(ts: string | undefined): bigint {
  if (!ts) return 0n;
  const [s, n = '0'] = ts.split('.');
  return BigInt(s) * 1000000000n + BigInt(n.padEnd(9, '0').slice(0, 9));
}

function tupleAt(layers: Layer[], ipIdx: number): FlowTuple | undefined {
  const ip = layers[ipIdx] as Ipv4Layer | Ipv6Layer;
  if (ip.src === undefined || ip.dst === undefined) return undefined;
  const l4 = layers[ipIdx + 1];
  const proto = ip.proto;
  if (l4 && (l4.type === 'tcp' || l4.type === 'udp') && l4.sport !== undefined) return { proto, src: ip.src, sport: l4.sport, dst: ip.dst, dport: l4.dport };
  if (l4 && (l4.type === 'icmp' || l4.type === 'icmpv6') && l4.id !== undefined) return { proto, src: ip.src, sport: l4.id, dst: ip.dst, dport: l4.id };
  return { proto, src: ip.src, sport: 0, dst: ip.dst, dport: 0 };
}

function makeView(p: DecodedPacket, i: number): View {
  const L = p.layers;
  let ipIdx = -1;
  let quotedIp = -1;
  for (let k = 0; k < L.length; k++) {
    const l = L[k];
    if (l.type !== 'ipv4' && l.type !== 'ipv6') continue;
    if (l.quoted) {
      if (quotedIp < 0) quotedIp = k;
    } else ipIdx = k;
  }
  const v: View = { i, p, link: p.link ?? '', t: tsNs(p.ts), encap: [], ipId: 0, payloadKey: '', payloadLen: 0 };
  if (ipIdx < 0) return v;
  v.tuple = tupleAt(L, ipIdx);
  for (let k = 0; k < ipIdx; k++) {
    const t = L[k].type;
    if (t !== 'eth' && t !== 'vlan' && t !== 'sll' && t !== 'sll2' && t !== 'null') v.encap.push(t);
  }
  const ip = L[ipIdx];
  if (ip.type === 'ipv4') v.ipId = ip.id;
  const l4 = L[ipIdx + 1];
  if (l4 && l4.type === 'tcp' && !l4.quoted) {
    v.tcp = l4;
    for (const o of l4.options ?? []) {
      if (o.name === 'timestamp' && o.tsval !== undefined) v.tsval = o.tsval;
      if (o.name === 'toa' && o.addr !== undefined) v.toa = { addr: o.addr, port: o.port ?? 0 };
    }
  }
  if (l4 && (l4.type === 'icmp' || l4.type === 'icmpv6')) {
    v.icmp = l4;
    if (quotedIp > ipIdx) {
      const q = tupleAt(L, quotedIp);
      if (q) v.quoted = q;
    }
  }
  const last = L[L.length - 1];
  if (last && last.type === 'payload' && !last.quoted) {
    v.payloadLen = last.len;
    // The first 64 captured bytes and the length: robust to different snap lengths on different links.
    v.payloadKey = `${last.len}:${createHash('sha1').update(last.data.slice(0, 128)).digest('hex').slice(0, 20)}`;
  } else if (l4 && 'payloadLen' in l4 && typeof l4.payloadLen === 'number') {
    v.payloadLen = l4.payloadLen;
    v.payloadKey = l4.payloadLen > 0 ? `${l4.payloadLen}:?` : '';
  }
  return v;
}

/** Are a and b (on different links) the same transmission, possibly rewritten? Returns the evidence. */
function sameTransmission(a: View, b: View): string | undefined {
  if (!a.tuple || !b.tuple || a.tuple.proto !== b.tuple.proto) return undefined;
  if (!!a.quoted !== !!b.quoted) return undefined;
  if (a.quoted && b.quoted) {
    // Both quote a datagram of the flow (possibly in different rewritten views).
    return a.icmp?.icmpType === b.icmp?.icmpType && a.icmp?.code === b.icmp?.code ? 'same ICMP error' : undefined;
  }
  if (a.tcp && b.tcp) {
    if (a.tcp.flags !== b.tcp.flags) return undefined;
    if (a.tsval !== undefined && b.tsval !== undefined && a.tsval !== b.tsval) return undefined;
    const seqOrAck = a.tcp.seq === b.tcp.seq || a.tcp.ack === b.tcp.ack;
    if (a.payloadLen > 0 && a.payloadKey === b.payloadKey && !a.payloadKey.endsWith(':?')) {
      if (seqOrAck) return 'same flags, payload and seq/ack';
      if (a.ipId !== 0 && a.ipId === b.ipId) return 'same flags, payload and IP ID';
      return undefined;
    }
    if (a.payloadLen === b.payloadLen && a.tcp.seq === b.tcp.seq && a.tcp.ack === b.tcp.ack && (a.tcp.seq !== 0 || a.tcp.ack !== 0)) return 'same flags, seq and ack';
    if (a.payloadLen === b.payloadLen && seqOrAck && a.ipId !== 0 && a.ipId === b.ipId) return 'same flags, seq or ack, and IP ID';
    return undefined;
  }
  if (a.icmp && b.icmp) {
    return a.icmp.id !== undefined && a.icmp.id === b.icmp.id && a.icmp.seq === b.icmp.seq && a.payloadKey === b.payloadKey ? 'same ICMP id, seq and payload' : undefined;
  }
  if (!a.tcp && !b.tcp && a.payloadLen > 0 && a.payloadKey === b.payloadKey && !a.payloadKey.endsWith(':?')) return 'same payload';
  return undefined;
}

function describeChanges(a: View, b: View): string[] {
  const out: string[] = [];
  const ea = a.p.layers.find((l) => l.type === 'eth');
  const eb = b.p.layers.find((l) => l.type === 'eth');
  if (ea && eb && ea.type === 'eth' && eb.type === 'eth') {
    if (ea.src !== eb.src) out.push(`eth.src ${ea.src} -> ${eb.src}`);
    if (ea.dst !== eb.dst) out.push(`eth.dst ${ea.dst} -> ${eb.dst}`);
  }
  const ta = a.tuple!;
  const tb = b.tuple!;
  const fam = ta.src.includes(':') ? 'ip6' : 'ip';
  if (ta.src !== tb.src) out.push(`${fam}.src ${ta.src} -> ${tb.src}`);
  if (ta.dst !== tb.dst) out.push(`${fam}.dst ${ta.dst} -> ${tb.dst}`);
  if (ta.sport !== tb.sport) out.push(`sport ${ta.sport} -> ${tb.sport}`);
  if (ta.dport !== tb.dport) out.push(`dport ${ta.dport} -> ${tb.dport}`);
  if (a.tcp && b.tcp) {
    if (a.tcp.seq !== b.tcp.seq) out.push(`tcp.seq ${a.tcp.seq} -> ${b.tcp.seq}`);
    if (a.tcp.ack !== b.tcp.ack) out.push(`tcp.ack ${a.tcp.ack} -> ${b.tcp.ack}`);
    if (!a.toa && b.toa) out.push(`tcp.options +toa ${b.toa.addr}.${b.toa.port}`);
  }
  const ipA = innermostIp(a.p);
  const ipB = innermostIp(b.p);
  const hl = (l: Ipv4Layer | Ipv6Layer | undefined) => (l ? (l.type === 'ipv4' ? l.ttl : l.hlim) : undefined);
  if (hl(ipA) !== hl(ipB)) out.push(`ttl ${hl(ipA)} -> ${hl(ipB)}`);
  const ja = a.encap.join('/') || 'none';
  const jb = b.encap.join('/') || 'none';
  if (ja !== jb) out.push(`encap ${ja} -> ${jb}`);
  return out;
}

function hopLimit(v: View): number | undefined {
  const ip = innermostIp(v.p);
  return ip ? (ip.type === 'ipv4' ? ip.ttl : ip.hlim) : undefined;
}

function innermostIp(p: DecodedPacket): Ipv4Layer | Ipv6Layer | undefined {
  let r: Ipv4Layer | Ipv6Layer | undefined;
  for (const l of p.layers) if ((l.type === 'ipv4' || l.type === 'ipv6') && !l.quoted) r = l;
  return r;
}

/**
 * Traces `flow` (the 5-tuple as the client sends it) through packets decoded from all links (each with
 * `link` and `ts`; decode with `payload: true` so payloads can be matched across rewrites).
 */
export function traceFlow(packets: DecodedPacket[], flow: FlowTuple, opts: JourneyOptions = {}): Journey {
  const windowNs = BigInt(Math.round((opts.windowSec ?? 2) * 1e9));
  const views = packets.map(makeView);
  const dirOf = new Map<string, Direction>([[key(flow), 'c2s'], [key(reverse(flow)), 's2c']]);
  const known = new Map<string, FlowView>([[canon(flow), { tuple: flow, links: [], evidence: 'client tuple' }]]);
  const warnings: string[] = [];
  const inFlow = (v: View) => !!v.tuple && (known.has(canon(v.tuple)) || (!!v.quoted && known.has(canon(v.quoted))));
  const abs = (x: bigint) => (x < 0n ? -x : x);

  // Learn rewritten views until nothing new turns up.
  for (let round = 0; round < 16; round++) {
    const members = views.filter(inFlow);
    const byPayload = new Map<string, View[]>();
    const bySeq = new Map<number, View[]>();
    const byAck = new Map<number, View[]>();
    const add = <K>(m: Map<K, View[]>, k: K, v: View) => {
      const l = m.get(k);
      if (l) l.push(v);
      else m.set(k, [v]);
    };
    for (const u of members) {
      if (u.payloadKey) add(byPayload, u.payloadKey, u);
      if (u.tcp) {
        add(bySeq, u.tcp.seq, u);
        add(byAck, u.tcp.ack, u);
      }
    }
    let learnt = 0;
    /** Tuples learnt on each link from each flow packet: more than one means the evidence is ambiguous. */
    const learntFrom = new Map<string, Set<string>>();
    for (const v of views) {
      if (!v.tuple || v.quoted || inFlow(v) || v.tuple.proto !== flow.proto) continue;
      let evidence: string | undefined;
      let dir: Direction | undefined;
      if (v.toa && v.toa.addr === flow.src && v.toa.port === flow.sport) {
        evidence = `TOA option carries the client ${flow.src}.${flow.sport}`;
        dir = 'c2s';
      } else {
        const cands = new Set<View>([...(byPayload.get(v.payloadKey) ?? []), ...(v.tcp ? [...(bySeq.get(v.tcp.seq) ?? []), ...(byAck.get(v.tcp.ack) ?? [])] : [])]);
        for (const u of cands) {
          if (u.link === v.link || abs(u.t - v.t) > windowNs) continue;
          const e = sameTransmission(u, v);
          if (!e) continue;
          const d = dirOf.get(key(u.tuple!));
          if (!d) continue;
          evidence = `${e} as packet #${u.p.index ?? u.i} on ${u.link}`;
          dir = d;
          const k = `#${u.p.index ?? u.i} on ${u.link} -> ${v.link}`;
          const set = learntFrom.get(k) ?? new Set<string>();
          set.add(key(v.tuple));
          learntFrom.set(k, set);
          break;
        }
      }
      if (!evidence || !dir) continue;
      const c2s = dir === 'c2s' ? v.tuple : reverse(v.tuple);
      const prev = dirOf.get(key(v.tuple));
      if (prev && prev !== dir) warnings.push(`tuple ${key(v.tuple)} was seen in both directions of the flow; check the matching`);
      dirOf.set(key(v.tuple), dir);
      dirOf.set(key(reverse(v.tuple)), other(dir));
      known.set(canon(v.tuple), { tuple: c2s, links: [], evidence });
      learnt++;
    }
    for (const [k, tuples] of learntFrom) {
      if (tuples.size > 1) warnings.push(`packet ${k.split(' -> ')[0]} matches ${tuples.size} different tuples on ${k.split(' -> ')[1]} (${[...tuples].join(', ')}): the evidence does not identify the flow; use payloads unique per flow`);
    }
    if (!learnt) break;
  }

  // Ambiguity: a payload used to learn a view that also occurs in tuples outside the flow.
  const members = views.filter(inFlow);
  const memberPayloads = new Set(members.filter((m) => m.payloadKey && !m.payloadKey.endsWith(':?')).map((m) => m.payloadKey));
  const foreign = new Set<string>();
  for (const v of views) {
    if (v.tuple && !inFlow(v) && v.tuple.proto === flow.proto && memberPayloads.has(v.payloadKey)) foreign.add(`${v.link} ${key(v.tuple)}`);
  }
  if (foreign.size) warnings.push(`payloads of this flow also appear in other flows (${[...foreign].slice(0, 3).join('; ')}${foreign.size > 3 ? '; ...' : ''}); use payloads unique per flow for unambiguous matching`);

  // Sequence-space shifts of each view relative to the client's view: dc for the client's bytes, ds for the
  // server's. Voted over pairs of same-direction, same-flags, same-payload packets close in time.
  const viewKey = (v: View) => canon(v.tuple!);
  const shifts = new Map<string, { dc?: number; ds?: number }>([[canon(flow), { dc: 0, ds: 0 }]]);
  const dirOfView = (v: View): Direction => dirOf.get(key(v.tuple!)) ?? 'c2s';
  const tcpMembers = members.filter((m) => m.tcp && !m.quoted);
  const clientView = tcpMembers.filter((m) => viewKey(m) === canon(flow));
  for (const [vk] of known) {
    if (vk === canon(flow)) continue;
    const votesC = new Map<number, number>();
    const votesS = new Map<number, number>();
    const vote = (m: Map<number, number>, x: number) => m.set(x >>> 0, (m.get(x >>> 0) ?? 0) + 1);
    for (const v of tcpMembers) {
      if (viewKey(v) !== vk) continue;
      const d = dirOfView(v);
      for (const u of clientView) {
        if (dirOfView(u) !== d || u.tcp!.flags !== v.tcp!.flags || u.payloadKey !== v.payloadKey || abs(u.t - v.t) > windowNs) continue;
        const acks = u.tcp!.flags.includes('A');
        if (d === 'c2s') {
          vote(votesC, v.tcp!.seq - u.tcp!.seq);
          if (acks) vote(votesS, v.tcp!.ack - u.tcp!.ack);
        } else {
          vote(votesS, v.tcp!.seq - u.tcp!.seq);
          if (acks) vote(votesC, v.tcp!.ack - u.tcp!.ack);
        }
      }
    }
    const mode = (m: Map<number, number>) => {
      let best: number | undefined;
      let n = 0;
      for (const [x, c] of m) if (c > n) [best, n] = [x, c];
      return best;
    };
    shifts.set(vk, { dc: mode(votesC), ds: mode(votesS) });
  }
  /** Sequence and acknowledgement numbers in the client view's numbering (undefined if unknown). */
  const normalised = (v: View): { seq?: number; ack?: number } => {
    const sh = shifts.get(viewKey(v));
    if (!sh || !v.tcp) return {};
    const c2s = dirOfView(v) === 'c2s';
    const seqShift = c2s ? sh.dc : sh.ds;
    const ackShift = c2s ? sh.ds : sh.dc;
    return {
      seq: seqShift === undefined ? undefined : (v.tcp.seq - seqShift) >>> 0,
      ack: ackShift === undefined || !v.tcp.flags.includes('A') ? undefined : (v.tcp.ack - ackShift) >>> 0,
    };
  };
  const sameSegment = (a: View, b: View): boolean => {
    if (a.tcp && b.tcp && !a.quoted && !b.quoted) {
      const na = normalised(a);
      const nb = normalised(b);
      if (na.seq !== undefined && nb.seq !== undefined && (a.tcp.flags.includes('A') ? na.ack !== undefined && nb.ack !== undefined : true)) {
        if (a.tcp.flags !== b.tcp.flags || a.payloadKey !== b.payloadKey) return false;
        if (a.tsval !== undefined && b.tsval !== undefined && a.tsval !== b.tsval) return false;
        return na.seq === nb.seq && na.ack === nb.ack;
      }
    }
    return !!sameTransmission(a, b);
  };

  // Group into transmissions.
  members.sort((a, b) => (a.t < b.t ? -1 : a.t > b.t ? 1 : a.i - b.i));
  const transmissions: Array<{ direction: Direction; views: View[]; links: Set<string>; lastT: bigint }> = [];
  const hops: Hop[] = [];
  const hopOf = new Map<View, Hop>();
  for (const v of members) {
    const direction = v.quoted ? other(dirOf.get(key(v.quoted)) ?? 'c2s') : dirOf.get(key(v.tuple!)) ?? 'c2s';
    let group: (typeof transmissions)[number] | undefined;
    for (let g = transmissions.length - 1; g >= 0; g--) {
      const tr = transmissions[g];
      if (tr.direction !== direction || v.t - tr.lastT > windowNs) continue;
      // A link is crossed once per transmission, unless the packet comes back forwarded (one-armed
      // director: in and out of the same interface with a lower TTL).
      if (tr.links.has(v.link)) {
        const before = [...tr.views].reverse().find((x) => x.link === v.link)!;
        const hb = hopLimit(before);
        const hv = hopLimit(v);
        if (hb === undefined || hv === undefined || hv >= hb) continue;
      }
      if (!sameSegment(tr.views[0], v)) continue;
      group = tr;
      break;
    }
    const prev = group ? group.views[group.views.length - 1] : undefined;
    const hop: Hop = {
      link: v.link, ts: v.p.ts ?? '', index: v.p.index, direction, tuple: v.tuple!, encap: v.encap,
      ...(v.quoted ? { icmpError: true } : {}), changed: prev ? describeChanges(prev, v) : [], packet: v.p,
    };
    hopOf.set(v, hop);
    hops.push(hop);
    if (group) {
      group.views.push(v);
      group.links.add(v.link);
      group.lastT = v.t;
    } else transmissions.push({ direction, views: [v], links: new Set([v.link]), lastT: v.t });
  }
  for (const v of members) {
    const fv = known.get(canon(v.tuple!)) ?? (v.quoted ? known.get(canon(v.quoted)) : undefined);
    if (fv && !fv.links.includes(v.link)) fv.links.push(v.link);
  }
  return {
    flow,
    views: [...known.values()],
    transmissions: transmissions.map((t) => ({ direction: t.direction, hops: t.views.map((v) => hopOf.get(v)!) })),
    hops,
    warnings,
  };
}

/** Readable summary: one line per hop, grouped by transmission. */
export function renderJourney(j: Journey): string {
  const t = j.flow;
  const lines = [`flow ${t.proto} ${t.src}.${t.sport} > ${t.dst}.${t.dport}: ${j.hops.length} packets on ${new Set(j.hops.map((h) => h.link)).size} links`];
  for (const v of j.views) lines.push(`  view ${v.tuple.src}.${v.tuple.sport} > ${v.tuple.dst}.${v.tuple.dport} on ${v.links.join(', ') || '-'} (${v.evidence})`);
  j.transmissions.forEach((tr, k) => {
    lines.push(`  #${k + 1} ${tr.direction}${tr.hops[0]?.icmpError ? ' (ICMP error)' : ''}`);
    for (const h of tr.hops) {
      lines.push(`     ${h.ts} ${h.link.padEnd(18)} ${h.tuple.src}.${h.tuple.sport} > ${h.tuple.dst}.${h.tuple.dport}${h.encap.length ? ` in ${h.encap.join('/')}` : ''}${h.changed.length ? `  [${h.changed.join('; ')}]` : ''}`);
    }
  });
  for (const w of j.warnings) lines.push(`  warning: ${w}`);
  return lines.join('\n');
}
