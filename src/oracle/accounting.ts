// Packet accounting: every packet captured during a test, on every link, is explained — expected by the
// oracle (and then once: a second copy of a packet the method prescribes once is a duplicate), in a
// declared background class (ARP, neighbour discovery... see background.ts), a consequence of an earlier
// unexpected packet (the receiver's reaction to it, or that reaction forwarded), or unexpected. The first
// causes fail the test; their consequences are reported as such and blame nobody.
//
// Pure and data-only: the inputs (explainers as packet expectations, background classes as layer
// patterns) are saved in the run directory, so `vslab replay` re-decides the accounting from the pcap.
import { diffPacket, evaluateExpectation, parseMask, type ExpectedLayer, type PacketExpectation } from '../packet/expect';
import type { DecodedPacket, Layer, TcpLayer } from '../packet/layers';

/** Statement an unexplained packet on a link no flow of the test crosses breaks. */
export const OFF_PATH_STATEMENT = 'FWD-COM-001';
/** Statement a duplicate or any other packet nobody asked for breaks. */
export const EXTRA_STATEMENT = 'FWD-COM-009';

/** Packets that legitimately appear in a lab besides the flows: declared, counted, never silently ignored. */
export interface BackgroundClass {
  name: string;
  /** Why such packets are legitimate. */
  why: string;
  /** Who declared it: "vslab" (built in) or the director driver ("driver ipvs"). */
  declaredBy: string;
  /** A packet belongs to the class when it matches any of these (expected-layer form; fields left out are not compared). */
  patterns: ExpectedLayer[][];
}

/** A packet expectation that explains the packets it matches. */
export interface Explainer {
  expectation: PacketExpectation;
  /** once: it stands for exactly one packet (every further match is a duplicate); many: for any number. */
  once: boolean;
  /** Frame index of the originator's packet it was carried from (seeded expectations). */
  origin?: number;
}

export type PacketClass = 'expected' | 'background' | 'consequence' | 'unexpected';

export interface PacketAccount {
  /** Frame number in the test's capture (0-based index). */
  index: number;
  link: string;
  ts: string;
  class: PacketClass;
  summary: string;
  /** expected: the explainer that took it. */
  explainer?: string;
  /** background: the class. */
  background?: string;
  /** unexpected: what is wrong with it, and the statement it breaks. */
  kind?: 'duplicate' | 'unprescribed' | 'off-path';
  /** duplicate: the frame the explainer took first. */
  duplicateOf?: number;
  statement?: string;
  /** consequence: the unexpected packet it follows from (transitively the first cause) and how. */
  consequenceOf?: number;
  cause?: number;
  how?: string;
}

export interface Accounting {
  ok: boolean;
  total: number;
  counts: { expected: number; consequence: number; unexpected: number; background: Record<string, number> };
  /** Unexpected packets that are not consequences of another: what the test fails on. */
  causes: PacketAccount[];
  consequences: PacketAccount[];
  reason: string;
}

// ---- helpers over decoded packets ----------------------------------------------------------------

interface Inner {
  src: string;
  dst: string;
  proto: string;
  sport?: number;
  dport?: number;
  l4?: Layer;
}

/** The innermost (non-quoted) IP header and what follows it. */
function innerOf(p: DecodedPacket): Inner | undefined {
  let idx = -1;
  p.layers.forEach((l, k) => {
    if ((l.type === 'ipv4' || l.type === 'ipv6') && !l.quoted) idx = k;
  });
  if (idx < 0) return undefined;
  const ip = p.layers[idx] as Extract<Layer, { type: 'ipv4' | 'ipv6' }>;
  const l4 = p.layers[idx + 1];
  const ports = l4 && (l4.type === 'tcp' || l4.type === 'udp') ? { sport: l4.sport, dport: l4.dport } : {};
  return { src: ip.src, dst: ip.dst, proto: l4?.type ?? 'none', ...ports, l4 };
}

function tcpOf(p: DecodedPacket): TcpLayer | undefined {
  const i = innerOf(p);
  return i?.l4?.type === 'tcp' ? i.l4 : undefined;
}

function nodeOfLink(link: string): string {
  return link.split(':')[0];
}

function tsNum(ts: string | undefined): number {
  if (!ts) return 0;
  const [s, n = '0'] = ts.split('.');
  return Number(s) + Number(n.padEnd(9, '0')) / 1e9;
}

/** One line: link, addresses, ports, flags. */
export function packetSummary(p: DecodedPacket): string {
  const i = innerOf(p);
  const ep = (a: string, port?: number) => (port === undefined ? a : a.includes(':') ? `[${a}]:${port}` : `${a}:${port}`);
  if (!i) {
    const arp = p.layers.find((l) => l.type === 'arp');
    if (arp && arp.type === 'arp') return `arp ${arp.op === 1 ? 'who-has' : 'reply'} ${arp.pdst} from ${arp.psrc}`;
    return p.layers.map((l) => l.type).join('/');
  }
  const outer = p.layers.filter((l) => (l.type === 'ipv4' || l.type === 'ipv6') && !l.quoted).length > 1 ? 'tunnelled ' : '';
  const t = i.l4?.type === 'tcp' ? ` [${i.l4.flags}] seq ${i.l4.seq} ack ${i.l4.ack} len ${i.l4.payloadLen}` : i.l4?.type === 'icmp' || i.l4?.type === 'icmpv6' ? ` ${i.l4.type} type ${i.l4.icmpType} code ${i.l4.code}` : '';
  return `${outer}${i.proto} ${ep(i.src, i.sport)} > ${ep(i.dst, i.dport)}${t}`;
}

/** The datagram an ICMP/ICMPv6 error quotes: its IP header and what follows (ports when quoted). */
function quotedOf(p: DecodedPacket): (Inner & { layers: Layer[] }) | undefined {
  const k = p.layers.findIndex((l) => (l.type === 'ipv4' || l.type === 'ipv6') && l.quoted);
  if (k < 0) return undefined;
  const ip = p.layers[k] as Extract<Layer, { type: 'ipv4' | 'ipv6' }>;
  const l4 = p.layers[k + 1];
  const ports = l4 && (l4.type === 'tcp' || l4.type === 'udp') ? { sport: l4.sport, dport: l4.dport } : {};
  return { src: ip.src, dst: ip.dst, proto: l4?.type ?? 'none', ...ports, l4, layers: p.layers.slice(k + 1) };
}

/** An ICMP destination unreachable / time exceeded / too big / parameter problem (not an echo). */
function isIcmpError(l: Layer | undefined): boolean {
  if (!l) return false;
  if (l.type === 'icmp') return [3, 4, 5, 11, 12].includes(l.icmpType);
  if (l.type === 'icmpv6') return l.icmpType < 128;
  return false;
}

/** Transport content that survives forwarding (addresses and ports may be rewritten): identifies a packet forwarded on. */
function contentKey(p: DecodedPacket): string | undefined {
  const i = innerOf(p);
  if (!i?.l4) return undefined;
  if (i.l4.type === 'tcp') return `tcp ${i.l4.flags} ${i.l4.seq} ${i.l4.ack} ${i.l4.payloadLen}`;
  const pl = p.layers[p.layers.length - 1];
  if (i.l4.type === 'udp') return `udp ${i.l4.len} ${pl.type === 'payload' ? pl.data : ''}`;
  if ((i.l4.type === 'icmp' || i.l4.type === 'icmpv6') && isIcmpError(i.l4)) {
    // An error is the same error on every hop: its type and code and what it quotes (the quoted transport's
    // content; addresses and ports inside the quote may be translated).
    const q = quotedOf(p);
    const ql = q?.l4;
    const quoted = !ql ? '' : ql.type === 'tcp' ? `tcp ${ql.seq}` : ql.type === 'udp' ? `udp ${ql.len} ${pl.type === 'payload' && pl.quoted ? pl.data : ''}` : ql.type;
    return `${i.l4.type} ${i.l4.icmpType} ${i.l4.code} ${quoted}`;
  }
  return undefined;
}

/** An ICMP error that node `by` sends back to the sender of `t` about `t` itself (its quote is `t` as received). */
function isErrorAbout(p: DecodedPacket, t: Inner): boolean {
  const pi = innerOf(p);
  if (!pi || !isIcmpError(pi.l4) || pi.src !== t.dst || pi.dst !== t.src) return false;
  const q = quotedOf(p);
  return !!q && q.src === t.src && q.dst === t.dst && q.sport === t.sport && q.dport === t.dport;
}

function bareAck(p: DecodedPacket): boolean {
  const t = tcpOf(p);
  return !!t && t.payloadLen === 0 && !/[SFR]/.test(t.flags);
}

/** A TCP segment that only reacts to having received something twice or out of place. */
function isReactionShaped(p: DecodedPacket, earlier: DecodedPacket[]): boolean {
  const t = tcpOf(p);
  if (!t || t.payloadLen > 0) return false;
  if (t.flags.includes('R')) return true;
  // D-SACK (RFC 2883): a SACK block below the acknowledgement number reports a duplicate.
  if (t.options.some((o) => o.name === 'sack' && o.blocks?.some(([l]) => ((t.ack - l) >>> 0) > 0 && ((t.ack - l) >>> 0) < 0x80000000))) return true;
  // The same segment again (a retransmitted SYN-ACK answering a second SYN, a repeated ACK).
  return earlier.some((e) => {
    const u = tcpOf(e);
    return !!u && u.sport === t.sport && u.dport === t.dport && u.flags === t.flags && u.seq === t.seq && u.ack === t.ack && u.payloadLen === 0;
  });
}

function matchesPattern(p: DecodedPacket, pattern: ExpectedLayer[]): boolean {
  return diffPacket(pattern, p).mismatches === 0;
}

/** The first IP layer of a layer list: its position. */
function firstIp(layers: ReadonlyArray<{ type: string }>): number {
  return layers.findIndex((l) => l.type === 'ipv4' || l.type === 'ipv6');
}

/** A field an expectation fixes: layer position, layer type, field name. */
type KeyField = [number, string, string];

/**
 * The fields of an expectation that select its candidates exactly: the first IP layer's addresses and, right after
 * it, the transport's ports (and TCP's sequence and acknowledgement numbers) — each only when the expectation gives
 * it and masks neither the field nor its layer. Layers are compared by position and fields by equality, so a packet
 * that differs in one of them cannot match.
 */
function keyFields(exp: PacketExpectation): KeyField[] {
  const i = firstIp(exp.layers);
  if (i < 0) return [];
  const masks = (exp.ignore ?? []).map(parseMask);
  const occurrence = (pos: number) => exp.layers.slice(0, pos).filter((l) => l.type === exp.layers[pos].type).length;
  const masked = (pos: number, field: string) => masks.some((m) => (m.layer === '*' || m.layer === exp.layers[pos].type)
    && (m.occurrence === undefined || m.occurrence === occurrence(pos)) && (m.path.length === 0 || m.path[0] === field));
  const out: KeyField[] = [];
  const take = (pos: number, fields: string[]) => {
    const l = exp.layers[pos] as ExpectedLayer & Record<string, unknown>;
    for (const f of fields) if ((typeof l[f] === 'string' || typeof l[f] === 'number') && !masked(pos, f)) out.push([pos, l.type, f]);
  };
  take(i, ['src', 'dst']);
  const t = exp.layers[i + 1];
  if (t?.type === 'tcp') take(i + 1, ['sport', 'dport', 'seq', 'ack']);
  else if (t?.type === 'udp') take(i + 1, ['sport', 'dport']);
  return out;
}

/**
 * The packets an expectation can match, from indexes built once per set of key fields: by link, then by the values
 * of the fields the expectation fixes (keyFields). An expectation that fixes none gets every packet of its link.
 */
function candidateIndex(packets: DecodedPacket[]): (exp: PacketExpectation) => DecodedPacket[] {
  const push = (m: Map<string, DecodedPacket[]>, k: string, p: DecodedPacket) => { const l = m.get(k); if (l) l.push(p); else m.set(k, [p]); };
  const byLink = new Map<string, DecodedPacket[]>();
  for (const p of packets) push(byLink, p.link!, p);
  const indexes = new Map<string, Map<string, DecodedPacket[]>>();
  const valueKey = (link: string, values: unknown[]) => `${link}\u0000${values.map(String).join('\u0000')}`;
  return (exp) => {
    const fields = keyFields(exp);
    if (!fields.length) return byLink.get(exp.link) ?? [];
    const sig = JSON.stringify(fields);
    let index = indexes.get(sig);
    if (!index) {
      index = new Map();
      for (const p of packets) {
        const values: unknown[] = [];
        let ok = true;
        for (const [pos, type, f] of fields) {
          const l = p.layers[pos] as (Layer & Record<string, unknown>) | undefined;
          if (!l || l.type !== type || l[f] === undefined) { ok = false; break; }
          values.push(l[f]);
        }
        if (ok) push(index, valueKey(p.link!, values), p);
      }
      indexes.set(sig, index);
    }
    return index.get(valueKey(exp.link, fields.map(([pos, , f]) => (exp.layers[pos] as ExpectedLayer & Record<string, unknown>)[f]))) ?? [];
  };
}

// ---- the accounting ------------------------------------------------------------------------------

export interface AccountInput {
  packets: DecodedPacket[];
  links: string[];
  explainers: Explainer[];
  background: BackgroundClass[];
}

export function accountPackets(input: AccountInput): Accounting {
  const packets = input.packets.filter((p) => p.index !== undefined && p.link !== undefined);
  const byIndex = new Map(packets.map((p) => [p.index!, p]));
  const account = new Map<number, PacketAccount>();

  // Which explainers match which packets. Each explainer is compared only with the packets that can match it: those
  // on its link and, when it names both addresses of its first IP layer (unmasked), with those addresses there —
  // the comparison is positional and exact, so no other packet could match (an HA capture: 7k explainers × 7k
  // packets took 26 s compared with all of them).
  const candidates = candidateIndex(packets);
  const onceMatches: Array<{ e: Explainer; matched: number[] }> = [];
  const many = new Map<number, string>();
  const onceOf = new Map<number, Explainer[]>();
  const linksWithExplainers = new Set<string>();
  for (const e of input.explainers) {
    linksWithExplainers.add(e.expectation.link);
    const r = evaluateExpectation({ ...e.expectation, mode: 'present', count: undefined }, candidates(e.expectation), input.links);
    const matched = r.matched.map((m) => m.index!).filter((i) => i !== undefined);
    if (e.once) {
      onceMatches.push({ e, matched });
      for (const i of matched) onceOf.set(i, [...(onceOf.get(i) ?? []), e]);
    } else for (const i of matched) if (!many.has(i)) many.set(i, e.expectation.id);
  }
  // Each once-explainer takes one packet: the most constrained first, each the earliest still free.
  onceMatches.sort((a, b) => a.matched.length - b.matched.length || tsNum(byIndex.get(a.matched[0])?.ts) - tsNum(byIndex.get(b.matched[0])?.ts));
  const takenBy = new Map<number, string>();
  const tookFirst = new Map<string, number>();
  for (const { e, matched } of onceMatches) {
    const free = matched.filter((i) => !takenBy.has(i)).sort((a, b) => tsNum(byIndex.get(a)!.ts) - tsNum(byIndex.get(b)!.ts))[0];
    if (free === undefined) continue;
    takenBy.set(free, e.expectation.id);
    tookFirst.set(e.expectation.id, free);
  }

  for (const p of packets) {
    const base = { index: p.index!, link: p.link!, ts: p.ts ?? '', summary: packetSummary(p) };
    const taken = takenBy.get(p.index!);
    if (taken) { account.set(p.index!, { ...base, class: 'expected', explainer: taken }); continue; }
    const once = onceOf.get(p.index!);
    if (once?.length) {
      const first = tookFirst.get(once[0].expectation.id);
      account.set(p.index!, { ...base, class: 'unexpected', kind: 'duplicate', duplicateOf: first, statement: EXTRA_STATEMENT, explainer: once[0].expectation.id });
      continue;
    }
    const m = many.get(p.index!);
    if (m) { account.set(p.index!, { ...base, class: 'expected', explainer: m }); continue; }
    const bg = input.background.find((c) => c.patterns.some((pat) => matchesPattern(p, pat)));
    if (bg) { account.set(p.index!, { ...base, class: 'background', background: bg.name }); continue; }
    const offPath = !linksWithExplainers.has(p.link!);
    account.set(p.index!, { ...base, class: 'unexpected', kind: offPath ? 'off-path' : 'unprescribed', statement: offPath ? OFF_PATH_STATEMENT : EXTRA_STATEMENT });
  }

  markConsequences(packets, account, input.explainers, takenBy);

  const all = [...account.values()].sort((a, b) => tsNum(a.ts) - tsNum(b.ts) || a.index - b.index);
  const causes = all.filter((a) => a.class === 'unexpected');
  const consequences = all.filter((a) => a.class === 'consequence');
  const background: Record<string, number> = {};
  for (const a of all) if (a.class === 'background') background[a.background!] = (background[a.background!] ?? 0) + 1;
  const counts = { expected: all.filter((a) => a.class === 'expected').length, consequence: consequences.length, unexpected: causes.length, background };
  const bgText = Object.entries(background).map(([k, v]) => `${k} ${v}`).join(', ') || 'none';
  const reason = causes.length
    ? `${causes.length} unexpected packet(s) (first: #${causes[0].index} on ${causes[0].link}, ${causes[0].kind}: ${causes[0].summary})${consequences.length ? ` and ${consequences.length} consequence(s) of them` : ''}; `
      + `${counts.expected} expected, background: ${bgText}`
    : `all ${all.length} packet(s) explained: ${counts.expected} expected, background: ${bgText}${consequences.length ? `, ${consequences.length} consequence(s)` : ''}`;
  return { ok: causes.length === 0, total: all.length, counts, causes, consequences, reason };
}

/**
 * Marks what follows from unexpected packets: the same frame at the other end of its wire, the receiver's
 * reaction to it (a duplicate ACK / D-SACK, a repeated SYN-ACK, a reset, or any unexplained answer), and
 * such a reaction forwarded on by the director. Iterated until nothing changes; each keeps its first cause.
 */
function markConsequences(packets: DecodedPacket[], account: Map<number, PacketAccount>, explainers: Explainer[], takenBy: Map<number, string>): void {
  const sorted = [...packets].sort((a, b) => tsNum(a.ts) - tsNum(b.ts) || a.index! - b.index!);
  const frameKey = new Map(sorted.map((p) => [p.index!, JSON.stringify(p.layers)]));
  const explainersByOrigin = new Map<number, string[]>();
  for (const e of explainers) if (e.origin !== undefined) explainersByOrigin.set(e.origin, [...(explainersByOrigin.get(e.origin) ?? []), e.expectation.id]);
  const reacted = new Set<number>();
  const forwardedBy = (tp: DecodedPacket) => {
    const key = contentKey(tp);
    return !!key && sorted.some((p) => p.link !== tp.link && nodeOfLink(p.link!) === nodeOfLink(tp.link!) && contentKey(p) === key && tsNum(p.ts) >= tsNum(tp.ts));
  };
  const sentOn = (tp: DecodedPacket) => sorted.some((p) => p.link !== tp.link && frameKey.get(p.index!) === frameKey.get(tp.index!) && tsNum(p.ts) >= tsNum(tp.ts) && tsNum(p.ts) - tsNum(tp.ts) < 1);
  const isTrigger = (a: PacketAccount) => a.class === 'unexpected' || a.class === 'consequence';
  const mark = (p: DecodedPacket, t: PacketAccount, how: string) => {
    const a = account.get(p.index!)!;
    if (a.class === 'consequence' || a.index === t.index) return false;
    account.set(a.index, { index: a.index, link: a.link, ts: a.ts, summary: a.summary, class: 'consequence', consequenceOf: t.index, cause: t.cause ?? t.index, how, ...(a.explainer ? { explainer: a.explainer } : {}) });
    return true;
  };
  for (let changed = true, rounds = 0; changed && rounds < 20; rounds++) {
    changed = false;
    for (const tp of sorted) {
      const t = account.get(tp.index!)!;
      if (!isTrigger(t)) continue;
      const tt = tsNum(tp.ts);
      const ti = innerOf(tp);
      const key = contentKey(tp);
      for (const p of sorted) {
        if (p.index === tp.index) continue;
        const a = account.get(p.index!)!;
        if (a.class === 'consequence' || a.class === 'background') continue;
        const pt = tsNum(p.ts);
        if (pt < tt) continue;
        // The same frame at the other end of its wire.
        if (a.class === 'unexpected' && p.link !== tp.link && frameKey.get(p.index!) === frameKey.get(tp.index!) && pt - tt < 1) {
          changed = mark(p, t, `the same frame as #${t.index}, seen on ${p.link}`) || changed;
          continue;
        }
        // Forwarded on: an unexplained packet with the trigger's transport content on another link. A
        // duplicate stays a cause: a second copy of a prescribed packet is made by whoever sent it twice.
        if (a.class === 'unexpected' && a.kind !== 'duplicate' && key && p.link !== tp.link && contentKey(p) === key) {
          changed = mark(p, t, `#${t.index} forwarded onto ${p.link}`) || changed;
          continue;
        }
        // Seeded expectations carried from a consequence: its forwarded copies follow from it too.
        if (a.class === 'expected' && t.class === 'consequence' && a.explainer && (explainersByOrigin.get(tp.index!) ?? []).includes(takenBy.get(p.index!) ?? '')) {
          changed = mark(p, t, `#${t.index} forwarded onto ${p.link}`) || changed;
        }
      }
      // The receiver's reaction: the first packet its node sends back on the same flow afterwards. The
      // sender's end of a wire (the same frame seen again further on) receives nothing.
      // Nor does a node that forwards it (a router, the director): the answer comes from the endpoint. A
      // bare ACK gets no answer from TCP.
      if (reacted.has(tp.index!) || !ti || ti.sport === undefined || sentOn(tp) || forwardedBy(tp) || bareAck(tp)) continue;
      const node = nodeOfLink(tp.link!);
      const sent: DecodedPacket[] = [];
      for (const p of sorted) {
        if (nodeOfLink(p.link!) !== node) continue;
        // An ICMP error about the trigger (a port unreachable from a stack that has no socket for it).
        if (tsNum(p.ts) > tt && account.get(p.index!)!.class === 'unexpected' && isErrorAbout(p, ti)) {
          reacted.add(tp.index!);
          changed = mark(p, t, `${node}'s answer to #${t.index}`) || changed;
          break;
        }
        const pi = innerOf(p);
        if (!pi || pi.src !== ti.dst || pi.dst !== ti.src || pi.sport !== ti.dport || pi.dport !== ti.sport) continue;
        if (tsNum(p.ts) <= tt) { sent.push(p); continue; }
        const a = account.get(p.index!)!;
        if (a.class === 'consequence' || a.class === 'background') continue;
        if (a.class === 'unexpected' || isReactionShaped(p, sent)) {
          reacted.add(tp.index!);
          changed = mark(p, t, `${node}'s answer to #${t.index}`) || changed;
          break;
        }
        sent.push(p);
      }
    }
  }
}

/** Lines describing an accounting for a report: the causes with link and frame, then the consequences. */
export function renderAccounting(a: Accounting, max = 8): string {
  const lines = [`packet accounting: ${a.ok ? 'PASS' : 'FAIL'} — ${a.reason}`];
  for (const c of a.causes.slice(0, max)) {
    const what = c.kind === 'duplicate' ? `duplicate of #${c.duplicateOf} (${c.explainer} expects it once)` : c.kind === 'off-path' ? 'on a link no flow of the test crosses' : 'no flow prescribes it';
    lines.push(`  UNEXPECTED #${c.index} on ${c.link} at ${c.ts} [${c.statement}]: ${what}: ${c.summary}`);
  }
  if (a.causes.length > max) lines.push(`  … ${a.causes.length - max} more unexpected`);
  for (const c of a.consequences.slice(0, max)) lines.push(`  consequence #${c.index} on ${c.link}: ${c.how} (first cause #${c.cause}): ${c.summary}`);
  if (a.consequences.length > max) lines.push(`  … ${a.consequences.length - max} more consequences`);
  return lines.join('\n');
}
