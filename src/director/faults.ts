// Faulty directors: kernel IPVS sabotaged in one specific way each, with nftables rules on the director
// (netdev ingress/egress, so they act on the wire right next to IPVS) or route changes around it. Running
// the forwarding suite against each proves that every conformance statement can fail and that every fault
// is noticed (the suite's mutation score, `vslab test --mutation`).
//
// Rules match on raw link-layer offsets (@ll) rather than `ether` expressions: in a netdev egress chain
// those carry an implicit input-interface-type check that never holds, so they would silently do nothing.
import type { RunningLab } from '../backend/types';
import { nodeOf, routedPath, routeLookup } from '../oracle/route';
import { canonical, contains, familyOf, nthAddr, parsePrefix, type Prefix } from '../topology/addr';
import type { Family, ForwardingMethod, LabModel, NodeModel, ServiceModel } from '../topology/model';
import { fullnatSnatRuleset } from './fullnat-snat';
import { TPROXY } from './proxy-common';
import { HA_FAULTS } from '../ha/faults';

export interface FaultAction {
  node: string;
  argv: string[];
  input?: string;
  /** What the action does, for logs and the fault listing. */
  what: string;
}

export interface FaultDefinition {
  name: string;
  summary: string;
  /** How the sabotage is done. */
  how: string;
  /** Conformance statements the fault is meant to break (the mutation matrix shows what it really breaks). */
  targets: string[];
  /** Forwarding methods whose labs it changes (suite files are named after them). */
  methods: ForwardingMethod[];
  /** Other suite files (by name without .spec.ts) whose labs it changes, e.g. "ha". */
  suiteFiles?: string[];
  /** The actions that sabotage this lab; empty when the fault does not concern it. */
  plan(model: LabModel): FaultAction[];
}

export interface AppliedFault {
  name: string;
  actions: FaultAction[];
}

export class FaultError extends Error {
  override name = 'FaultError';
}

// ---- facts about a lab the rules need ----------------------------------------------------------

interface DirectorFacts {
  model: LabModel;
  node: NodeModel;
  services: ServiceModel[];
  /** Interfaces client traffic arrives on. */
  clientSide: Set<string>;
  /** Interfaces the director reaches real servers through. */
  serverSide: Set<string>;
}

function clientsOf(model: LabModel): NodeModel[] {
  return model.nodes.filter((n) => n.role === 'client');
}

function addrOfFamily(n: NodeModel, family: Family): string | undefined {
  for (const i of n.interfaces) {
    const a = family === 4 ? i.ipv4?.addr : i.ipv6?.addr;
    if (a) return a;
  }
  return undefined;
}

function directorFacts(model: LabModel, methods: ForwardingMethod[]): DirectorFacts[] {
  const out: DirectorFacts[] = [];
  for (const d of model.nodes.filter((n) => n.role === 'director')) {
    const services = model.services.filter((s) => s.director === d.name && s.vip && s.realServers.some((r) => methods.includes(r.method)));
    if (!services.length) continue;
    const clientSide = new Set<string>();
    const serverSide = new Set<string>();
    for (const s of services) {
      for (const c of clientsOf(model)) {
        const from = addrOfFamily(c, s.family);
        if (!from) continue;
        const p = routedPath(model, c.name, s.vip!, (n) => n.name === d.name);
        const last = p.wires[p.wires.length - 1];
        if (last && last.to.node === d.name) clientSide.add(last.to.iface);
      }
      for (const r of s.realServers) {
        const rt = routeLookup(d, r.addr);
        if (rt.kind === 'forward') serverSide.add(rt.iface.name);
      }
    }
    out.push({ model, node: d, services, clientSide, serverSide });
  }
  return out;
}

function vipsOf(services: ServiceModel[], family: Family): string[] {
  return [...new Set(services.filter((s) => s.family === family && s.vip).map((s) => canonical(s.vip!)))];
}

function macHex(mac: string): string {
  return '0x' + mac.replace(/:/g, '').toLowerCase();
}

function set(items: Array<string | number>): string {
  return items.length === 1 ? String(items[0]) : `{ ${items.join(', ')} }`;
}

/** An address of `prefix` no node uses (from the top of the subnet). */
function unusedAddress(model: LabModel, prefix: Prefix): string {
  const used = new Set(model.nodes.flatMap((n) => n.interfaces.flatMap((i) => [i.ipv4?.addr, i.ipv6?.addr, ...i.extraAddrs.map((e) => canonical(e.split('/')[0]))])).filter(Boolean) as string[]);
  for (let k = 250; k > 200; k--) {
    const a = nthAddr(prefix, k);
    if (!used.has(a)) return a;
  }
  throw new FaultError(`no unused address in ${prefix.base}`);
}

function segmentPrefix(model: LabModel, node: NodeModel, addr: string): Prefix {
  const fam = familyOf(addr) as Family;
  for (const i of node.interfaces) {
    const a = fam === 4 ? i.ipv4 : i.ipv6;
    if (!a) continue;
    const p = parsePrefix(`${a.addr}/${a.prefixLen}`, true) as Prefix;
    if (contains(p, addr)) return p;
  }
  throw new FaultError(`no subnet of ${node.name} holds ${addr}`);
}

/** A netdev table with one chain per (hook, device), loaded with `nft -f -` on the director. */
function netdevTable(node: string, chains: Array<{ hook: 'ingress' | 'egress'; dev: string; rules: string[]; sets?: string[] }>, what: string): FaultAction[] {
  const withRules = chains.filter((c) => c.rules.length);
  if (!withRules.length) return [];
  const sets = [...new Set(withRules.flatMap((c) => c.sets ?? []))];
  const body = [
    'table netdev vslab_fault {',
    ...sets.map((s) => `  ${s}`),
    ...withRules.map((c) => [
      `  chain ${c.hook}_${c.dev} {`,
      `    type filter hook ${c.hook} device "${c.dev}" priority 0; policy accept;`,
      ...c.rules.map((r) => `    ${r}`),
      '  }',
    ].join('\n')),
    '}',
    '',
  ].join('\n');
  return [{ node, argv: ['nft', '-f', '-'], input: body, what }];
}

function eachDirector(model: LabModel, methods: ForwardingMethod[], f: (d: DirectorFacts) => FaultAction[]): FaultAction[] {
  return directorFacts(model, methods).flatMap(f);
}

/** A fault applied on each director that forwards by one of `methods`: those methods are its `methods`. */
function perDirector(methods: ForwardingMethod[], f: (d: DirectorFacts) => FaultAction[]): Pick<FaultDefinition, 'methods' | 'plan'> {
  return { methods, plan: (m) => eachDirector(m, methods, f) };
}

function realServersOf(d: DirectorFacts, methods: ForwardingMethod[], family?: Family) {
  const seen = new Map<string, { node: string; addr: string; port: number; mac: string; family: Family; method: ForwardingMethod }>();
  for (const s of d.services) for (const r of s.realServers) {
    if (!methods.includes(r.method) || (family && r.family !== family)) continue;
    const rt = routeLookup(d.node, r.addr);
    const mac = rt.kind === 'forward' && rt.gateway === r.addr ? macOfAddr(d.model, r.addr) : '';
    seen.set(`${r.addr} ${r.port}`, { node: r.node, addr: r.addr, port: r.port, mac, family: r.family, method: r.method });
  }
  return [...seen.values()];
}

function macOfAddr(model: LabModel, addr: string): string {
  for (const n of model.nodes) for (const i of n.interfaces) if (i.ipv4?.addr === addr || i.ipv6?.addr === addr) return i.mac;
  return '';
}

/** The TTL / hop limit client packets to a VIP carry when they reach the director. */
function arrivalTtl(model: LabModel, client: string, vip: string, director: string): number {
  const p = routedPath(model, client, vip, (n) => n.name === director);
  return 64 - p.forwarders.length;
}

// ---- the faults --------------------------------------------------------------------------------

/** Packet mark the copying faults put on a packet they duplicate, so the copy is not copied again when it re-enters the egress hook. */
const COPY_MARK = '0x76736c62';

const NAT_LIKE: ForwardingMethod[] = ['nat', 'fullnat'];

export const FAULTS: FaultDefinition[] = [
  {
    name: 'nat-reply-rs-source',
    summary: 'NAT replies leave the director untranslated, with a real server\'s address and port as source',
    how: 'netdev egress on the client-side interface: replies from VIP:vport get the first real server\'s address and port back',
    targets: ['FWD-NAT-003', 'FWD-NAT-004', 'FWD-FNAT-002'],
    ...perDirector(NAT_LIKE, (d) => {
      const rules: string[] = [];
      for (const s of d.services) {
        const rs = s.realServers.find((r) => NAT_LIKE.includes(r.method));
        if (!rs || !s.vip || s.protocol === 'sctp') continue;
        const ipk = s.family === 4 ? 'ip' : 'ip6';
        rules.push(`${ipk} saddr ${s.vip} ${s.protocol} sport ${s.port} ${ipk} saddr set ${rs.addr} ${s.protocol} sport set ${rs.port}`);
      }
      return netdevTable(d.node.name, [...d.clientSide].map((dev) => ({ hook: 'egress' as const, dev, rules })), 'replies leave untranslated');
    }),
  },
  {
    name: 'nat-destination-kept',
    summary: 'NAT sends client packets to the real server\'s MAC without rewriting the destination VIP',
    how: 'netdev egress on the server-side interfaces: the destination address of packets to a NAT real server is set back to the VIP',
    targets: ['FWD-NAT-001'],
    ...perDirector(['nat'], (d) => {
      const rules = new Set<string>();
      for (const s of d.services) for (const r of s.realServers) {
        if (r.method !== 'nat' || !s.vip || s.protocol === 'sctp') continue;
        const ipk = r.family === 4 ? 'ip' : 'ip6';
        rules.add(`${ipk} daddr ${r.addr} ${s.protocol} dport ${r.port} ${ipk} daddr set ${s.vip}`);
      }
      return netdevTable(d.node.name, [...d.serverSide].map((dev) => ({ hook: 'egress' as const, dev, rules: [...rules] })), 'destination not rewritten');
    }),
  },
  {
    name: 'ttl-not-decremented',
    summary: 'packets the director forwards to real servers keep the TTL / hop limit they arrived with',
    how: 'inet prerouting (priority raw) on the director raises the TTL of client packets to a VIP by one, so the IPVS decrement restores it',
    targets: ['FWD-COM-002'],
    ...perDirector(['nat', 'dr', 'tun', 'fullnat'], (d) => {
      const rules: string[] = [];
      for (const c of clientsOf(d.model)) for (const fam of [4, 6] as Family[]) {
        const vips = vipsOf(d.services, fam);
        const from = addrOfFamily(c, fam);
        if (!vips.length || !from) continue;
        const ttl = arrivalTtl(d.model, c.name, vips[0], d.node.name) + 1;
        rules.push(fam === 4 ? `ip saddr ${from} ip daddr ${set(vips)} ip ttl set ${ttl}` : `ip6 saddr ${from} ip6 daddr ${set(vips)} ip6 hoplimit set ${ttl}`);
      }
      if (!rules.length) return [];
      const body = ['table inet vslab_fault {', '  chain pre {', '    type filter hook prerouting priority raw; policy accept;', ...rules.map((r) => `    ${r}`), '  }', '}', ''].join('\n');
      return [{ node: d.node.name, argv: ['nft', '-f', '-'], input: body, what: 'client packets to a VIP get TTL + 1 before IPVS' }];
    }),
  },
  {
    name: 'wrong-source-mac',
    summary: 'frames the director sends towards real servers carry a foreign source MAC',
    how: 'netdev egress on the server-side interfaces: TCP, UDP, IPIP and GRE frames get source MAC 02:00:5e:10:00:01',
    targets: ['FWD-COM-004'],
    ...perDirector(['nat', 'dr', 'tun', 'fullnat'], (d) => netdevTable(d.node.name, [...d.serverSide].map((dev) => ({
      hook: 'egress' as const, dev, rules: ['meta l4proto { tcp, udp, 4, 41, 47 } @ll,48,48 set 0x02005e100001'],
    })), 'wrong source MAC towards real servers')),
  },
  {
    name: 'broken-checksum',
    summary: 'packets the director sends to real servers carry a wrong checksum',
    how: 'netdev egress on the server-side interfaces: the IPv4 header checksum (IPv6: the TCP/UDP checksum) is overwritten with 0x0bad',
    targets: ['FWD-COM-003'],
    ...perDirector(['nat', 'dr', 'tun', 'fullnat'], (d) => netdevTable(d.node.name, [...d.serverSide].map((dev) => ({
      hook: 'egress' as const, dev, rules: [
        'meta protocol ip meta l4proto { tcp, udp, 4, 41, 47 } @nh,80,16 set 0x0bad',
        'meta protocol ip6 meta l4proto tcp @th,128,16 set 0x0bad',
        'meta protocol ip6 meta l4proto udp @th,48,16 set 0x0bad',
      ],
    })), 'checksums broken towards real servers')),
  },
  {
    name: 'fullnat-no-snat',
    summary: 'Full-NAT without its source NAT: real servers see the client address',
    how: 'the director\'s Full-NAT source-NAT table (inet vslab_fullnat) is deleted',
    targets: ['FWD-FNAT-001', 'FWD-FNAT-003'],
    methods: ['fullnat'],
    plan: (m) => m.nodes.filter((n) => n.role === 'director' && fullnatSnatRuleset(m, n.name)).map((n) => ({
      node: n.name, argv: ['nft', 'delete', 'table', 'inet', 'vslab_fullnat'], what: 'delete the Full-NAT source NAT',
    })),
  },
  {
    name: 'fullnat-port-remap',
    summary: 'Full-NAT source NAT picks a new source port even when the client\'s is free',
    how: 'the director\'s Full-NAT rules are replaced by source NAT to the same local address with ports 30000-39999',
    targets: ['FWD-FNAT-005'],
    methods: ['fullnat'],
    plan: (m) => m.nodes.filter((n) => n.role === 'director' && fullnatSnatRuleset(m, n.name)).map((n) => ({
      node: n.name, argv: ['nft', '-f', '-'], what: 'Full-NAT source NAT remaps ports',
      input: 'delete table inet vslab_fullnat\n' + fullnatSnatRuleset(m, n.name)!.replace(/snat (ip6?) to (\S+)/g, (_all, k: string, a: string) => `snat ${k} to ${k === 'ip6' ? `[${a}]` : a}:30000-39999`),
    })),
  },
  {
    name: 'wrong-port-mapping',
    summary: 'NAT sends packets to the wrong real-server port',
    how: 'netdev egress on the server-side interfaces: the destination port of each real server (rport) becomes rport + 1',
    targets: ['FWD-NAT-002', 'FWD-FNAT-001'],
    ...perDirector(NAT_LIKE, (d) => {
      const rules = new Set<string>();
      for (const s of d.services) for (const r of s.realServers) {
        if (!NAT_LIKE.includes(r.method) || s.protocol === 'sctp') continue;
        rules.add(`${r.family === 4 ? 'ip' : 'ip6'} daddr ${r.addr} ${s.protocol} dport ${r.port} ${s.protocol} dport set ${r.port + 1}`);
      }
      return netdevTable(d.node.name, [...d.serverSide].map((dev) => ({ hook: 'egress' as const, dev, rules: [...rules] })), 'wrong destination port');
    }),
  },
  {
    name: 'split-connection',
    summary: 'after the handshake, a connection\'s packets are sent to another real server',
    how: 'netdev egress on the server-side interfaces: TCP segments without SYN for the first real server are readdressed (IP and MAC) to the second',
    targets: ['FWD-COM-006'],
    ...perDirector(['nat', 'dr'], (d) => {
      const rules: string[] = [];
      for (const fam of [4, 6] as Family[]) {
        const ipk = fam === 4 ? 'ip' : 'ip6';
        const nat = realServersOf(d, ['nat'], fam);
        if (nat.length >= 2) rules.push(`${ipk} daddr ${nat[0].addr} tcp flags & syn == 0 ${ipk} daddr set ${nat[1].addr} @ll,0,48 set ${macHex(nat[1].mac)}`);
        const dr = realServersOf(d, ['dr'], fam);
        const vips = vipsOf(d.services.filter((s) => s.realServers.some((r) => r.method === 'dr')), fam);
        if (dr.length >= 2 && vips.length) rules.push(`@ll,0,48 ${macHex(dr[0].mac)} ${ipk} daddr ${set(vips)} tcp flags & syn == 0 @ll,0,48 set ${macHex(dr[1].mac)}`);
      }
      return netdevTable(d.node.name, [...d.serverSide].map((dev) => ({ hook: 'egress' as const, dev, rules })), 'split connections');
    }),
  },
  {
    name: 'icmp-error-untranslated',
    summary: 'ICMP errors from real servers reach the client with the real server as source',
    how: 'netdev egress on the client-side interface: ICMP / ICMPv6 destination-unreachable messages get the first real server\'s address as source',
    targets: ['FWD-NAT-005', 'FWD-FNAT-004'],
    ...perDirector(NAT_LIKE, (d) => {
      const rules: string[] = [];
      const rs4 = realServersOf(d, NAT_LIKE, 4)[0];
      const rs6 = realServersOf(d, NAT_LIKE, 6)[0];
      if (rs4) rules.push(`icmp type destination-unreachable ip saddr set ${rs4.addr}`);
      if (rs6) rules.push(`icmpv6 type destination-unreachable ip6 saddr set ${rs6.addr}`);
      return netdevTable(d.node.name, [...d.clientSide].map((dev) => ({ hook: 'egress' as const, dev, rules })), 'ICMP errors keep the real server source');
    }),
  },
  {
    name: 'dr-rewrites-destination',
    summary: 'direct routing rewrites the destination IP to the real server instead of keeping the VIP',
    how: 'netdev egress on the LAN interface: frames to a real server MAC with the VIP as destination get that real server\'s address',
    targets: ['FWD-DR-001'],
    ...perDirector(['dr'], (d) => {
      const rules: string[] = [];
      for (const fam of [4, 6] as Family[]) {
        const ipk = fam === 4 ? 'ip' : 'ip6';
        const vips = vipsOf(d.services, fam);
        if (!vips.length) continue;
        for (const r of realServersOf(d, ['dr'], fam)) if (r.mac) rules.push(`@ll,0,48 ${macHex(r.mac)} ${ipk} daddr ${set(vips)} ${ipk} daddr set ${r.addr}`);
      }
      return netdevTable(d.node.name, [...d.serverSide].map((dev) => ({ hook: 'egress' as const, dev, rules })), 'DR rewrites the destination address');
    }),
  },
  {
    name: 'dr-reply-via-director',
    summary: 'direct-routing replies are detoured through the director',
    how: 'on every DR real server, the routes to the clients\' subnets point at the director instead of the router',
    targets: ['FWD-DR-002'],
    methods: ['dr'],
    plan: (m) => {
      const out: FaultAction[] = [];
      for (const d of directorFacts(m, ['dr'])) {
        const rsNodes = [...new Set(d.services.flatMap((s) => s.realServers.filter((r) => r.method === 'dr').map((r) => r.node)))];
        for (const rn of rsNodes) {
          const rs = nodeOf(m, rn);
          for (const c of clientsOf(m)) for (const fam of [4, 6] as Family[]) {
            const ca = addrOfFamily(c, fam);
            if (!ca) continue;
            const shared = d.node.interfaces.find((di) => rs.interfaces.some((ri) => ri.segment === di.segment) && (fam === 4 ? di.ipv4 : di.ipv6));
            if (!shared) continue;
            const via = fam === 4 ? shared.ipv4!.addr : shared.ipv6!.addr;
            const p = segmentPrefix(m, c, ca);
            const cidr = `${nthAddr(p, 0)}/${p.len}`;
            out.push({ node: rn, argv: ['ip', `-${fam}`, 'route', 'replace', cidr, 'via', via], what: `${rn}: replies to ${cidr} via the director` });
          }
        }
      }
      return out;
    },
  },
  {
    name: 'tunnel-wrong-destination',
    summary: 'tunnel packets are addressed to a host that is not the real server',
    how: 'netdev egress on the server-side interfaces: the outer destination of IPIP, GRE and GUE packets becomes an unused address of the real servers\' subnet',
    targets: ['FWD-TUN-001'],
    ...perDirector(['tun'], (d) => {
      const rules: string[] = [];
      const guePorts = [...new Set(d.services.flatMap((s) => s.realServers.filter((r) => r.tunnel?.type === 'gue').map((r) => r.tunnel!.port!)))];
      for (const fam of [4, 6] as Family[]) {
        const rs = realServersOf(d, ['tun'], fam)[0];
        if (!rs) continue;
        const bogus = unusedAddress(d.model, segmentPrefix(d.model, nodeOf(d.model, rs.node), rs.addr));
        if (fam === 4) {
          rules.push(`ip protocol { 4, 41, 47 } ip daddr set ${bogus}`);
          if (guePorts.length) rules.push(`meta protocol ip udp dport ${set(guePorts)} ip daddr set ${bogus}`);
        } else {
          rules.push(`meta protocol ip6 meta l4proto { 4, 41, 47 } ip6 daddr set ${bogus}`);
          if (guePorts.length) rules.push(`meta protocol ip6 udp dport ${set(guePorts)} ip6 daddr set ${bogus}`);
        }
      }
      return netdevTable(d.node.name, [...d.serverSide].map((dev) => ({ hook: 'egress' as const, dev, rules })), 'tunnel to the wrong destination');
    }),
  },
  {
    name: 'tunnel-outer-ttl-reset',
    summary: 'the outer header of tunnel packets starts with TTL 64 instead of the inner TTL',
    how: 'netdev egress on the server-side interfaces: IPIP/GRE/GUE outer TTL and hop limit set to 64',
    targets: ['FWD-TUN-002'],
    ...perDirector(['tun'], (d) => {
      const guePorts = [...new Set(d.services.flatMap((s) => s.realServers.filter((r) => r.tunnel?.type === 'gue').map((r) => r.tunnel!.port!)))];
      const rules = ['ip protocol { 4, 41, 47 } ip ttl set 64', 'meta protocol ip6 meta l4proto { 4, 41, 47 } ip6 hoplimit set 64'];
      if (guePorts.length) rules.push(`meta protocol ip udp dport ${set(guePorts)} ip ttl set 64`, `meta protocol ip6 udp dport ${set(guePorts)} ip6 hoplimit set 64`);
      return netdevTable(d.node.name, [...d.serverSide].map((dev) => ({ hook: 'egress' as const, dev, rules })), 'outer TTL reset');
    }),
  },
  {
    name: 'tun-reply-via-director',
    summary: 'tunnelled connections\' replies are detoured through the director',
    how: 'on the routers next to the real servers, a policy route sends packets from a VIP towards the clients via the director',
    targets: ['FWD-TUN-003'],
    methods: ['tun'],
    plan: (m) => {
      const out: FaultAction[] = [];
      for (const d of directorFacts(m, ['tun'])) {
        for (const s of d.services) for (const r of s.realServers.filter((x) => x.method === 'tun')) {
          for (const c of clientsOf(m)) {
            const ca = addrOfFamily(c, s.family);
            if (!ca) continue;
            // The first router the real server's replies cross.
            const back = routedPath(m, r.node, ca);
            const router = back.forwarders.find((f) => nodeOf(m, f).role === 'router');
            if (!router) continue;
            const rn = nodeOf(m, router);
            const toDirector = routeLookup(rn, addrOfFamily(d.node, s.family)!);
            if (toDirector.kind !== 'forward') continue;
            const fam = s.family;
            const p = segmentPrefix(m, c, ca);
            const cidr = `${nthAddr(p, 0)}/${p.len}`;
            const table = String(100 + (fam === 4 ? 0 : 1));
            out.push({ node: router, argv: ['ip', `-${fam}`, 'rule', 'add', 'from', s.vip!, 'lookup', table, 'pref', '100'], what: `${router}: packets from ${s.vip} use table ${table}` });
            out.push({ node: router, argv: ['ip', `-${fam}`, 'route', 'replace', cidr, 'via', toDirector.gateway, 'table', table], what: `${router}: table ${table} sends ${cidr} via the director` });
          }
        }
      }
      // One rule per VIP and one route per table is enough.
      const seen = new Set<string>();
      return out.filter((a) => { const k = `${a.node} ${a.argv.join(' ')}`; if (seen.has(k)) return false; seen.add(k); return true; });
    },
  },
  {
    name: 'pmtu-wrong-mtu',
    summary: 'the director\'s ICMP "fragmentation needed" / "packet too big" tell the client a wrong MTU',
    how: 'netdev egress on the client-side interface: the MTU in ICMP frag-needed and ICMPv6 packet-too-big is set to 1300',
    targets: ['FWD-TUN-004', 'FWD-TUN-005'],
    ...perDirector(['tun'], (d) => netdevTable(d.node.name, [...d.clientSide].map((dev) => ({
      hook: 'egress' as const, dev, rules: ['icmp type destination-unreachable icmp code frag-needed icmp mtu set 1300', 'icmpv6 type packet-too-big icmpv6 mtu set 1300'],
    })), 'wrong MTU in ICMP')),
  },
  {
    name: 'first-syn-lost-before-ipvs',
    summary: 'the director loses each connection\'s first SYN after the wire saw it, so its counters fall behind the wire',
    how: 'netdev ingress on the client-side interface (after the capture tap, before IPVS): the first SYN of every client address and port is dropped',
    targets: ['FWD-COM-008'],
    ...perDirector(['nat', 'dr', 'tun', 'fullnat'], (d) => {
      const rules: string[] = [];
      const v4 = vipsOf(d.services, 4);
      const v6 = vipsOf(d.services, 6);
      if (v4.length) rules.push(`ip daddr ${set(v4)} tcp flags & (syn | ack) == syn ip saddr . tcp sport != @seen4 add @seen4 { ip saddr . tcp sport } drop`);
      if (v6.length) rules.push(`ip6 daddr ${set(v6)} tcp flags & (syn | ack) == syn ip6 saddr . tcp sport != @seen6 add @seen6 { ip6 saddr . tcp sport } drop`);
      const sets = ['set seen4 { type ipv4_addr . inet_service; flags dynamic, timeout; timeout 10m; }', 'set seen6 { type ipv6_addr . inet_service; flags dynamic, timeout; timeout 10m; }'];
      return netdevTable(d.node.name, [...d.clientSide].map((dev) => ({ hook: 'ingress' as const, dev, rules, sets })), 'first SYN dropped before IPVS');
    }),
  },
  {
    name: 'dr-real-server-swapped',
    summary: 'direct routing delivers each connection to a different real server than the one it scheduled',
    how: 'netdev egress on the LAN interface: the destination MAC of frames to a VIP is rotated through the real servers\' MACs',
    targets: ['FWD-COM-007', 'FWD-COM-008'],
    ...perDirector(['dr'], (d) => {
      const rules: string[] = [];
      for (const fam of [4, 6] as Family[]) {
        const ipk = fam === 4 ? 'ip' : 'ip6';
        const vips = vipsOf(d.services, fam);
        const rs = realServersOf(d, ['dr'], fam).filter((r) => r.mac);
        const macs = [...new Set(rs.map((r) => r.mac))];
        if (!vips.length || macs.length < 2) continue;
        macs.forEach((mac, k) => rules.push(`@ll,0,48 ${macHex(mac)} ${ipk} daddr ${set(vips)} @ll,0,48 set ${macHex(macs[(k + 1) % macs.length])} accept`));
      }
      return netdevTable(d.node.name, [...d.serverSide].map((dev) => ({ hook: 'egress' as const, dev, rules })), 'real servers swapped after scheduling');
    }),
  },
  {
    name: 'tcp-window-rewritten',
    summary: 'the director changes a TCP header field its method must leave alone (the window)',
    how: 'netdev egress on the server-side interfaces: TCP window set to 1024 (checksum kept correct)',
    targets: ['FWD-COM-005'],
    ...perDirector(['nat', 'dr', 'fullnat'], (d) => netdevTable(d.node.name, [...d.serverSide].map((dev) => ({
      hook: 'egress' as const, dev, rules: ['tcp window set 1024'],
    })), 'TCP window rewritten')),
  },
  {
    name: 'duplicate-to-real-server',
    summary: 'the director sends every segment towards the real servers twice',
    how: 'netdev egress on the server-side interfaces: each TCP segment (and each tunnel packet) is duplicated onto the same interface (dup to; a mark keeps the copy from being copied again)',
    targets: ['FWD-COM-009'],
    ...perDirector(['nat', 'dr', 'tun', 'fullnat'], (d) => {
      const guePorts = [...new Set(d.services.flatMap((s) => s.realServers.filter((r) => r.tunnel?.type === 'gue').map((r) => r.tunnel!.port!)))];
      const what = ['meta l4proto { tcp, 4, 41, 47 }', ...(guePorts.length ? [`udp dport ${set(guePorts)}`] : [])];
      return netdevTable(d.node.name, [...d.serverSide].map((dev) => ({
        hook: 'egress' as const, dev, rules: what.map((m) => `meta mark != ${COPY_MARK} ${m} meta mark set ${COPY_MARK} dup to "${dev}" meta mark set 0`),
      })), 'segments to real servers duplicated');
    }),
  },
  {
    name: 'copy-to-second-real-server',
    summary: 'the director also sends each client packet to a second real server',
    how: 'netdev egress on the server-side interfaces: each packet to a real server is duplicated (dup to) and the copy readdressed to the next real server (NAT/Full-NAT: address and MAC, DR: MAC)',
    targets: ['FWD-COM-009'],
    ...perDirector(['nat', 'dr', 'fullnat'], (d) => {
      const rules: string[] = [];
      const copy = `meta mark != ${COPY_MARK} meta mark set ${COPY_MARK}`;
      for (const fam of [4, 6] as Family[]) {
        const ipk = fam === 4 ? 'ip' : 'ip6';
        // NAT / Full-NAT: by destination address; each real server's copy goes to the next one.
        const nat = realServersOf(d, NAT_LIKE, fam).filter((r) => r.mac);
        const addrs = [...new Map(nat.map((r) => [r.addr, r])).values()];
        if (addrs.length >= 2) {
          addrs.forEach((r, k) => {
            const next = addrs[(k + 1) % addrs.length];
            rules.push(`meta mark ${COPY_MARK} ${ipk} daddr ${r.addr} ${ipk} daddr set ${next.addr} @ll,0,48 set ${macHex(next.mac)} meta mark set 0 accept`);
          });
          rules.push(`${ipk} daddr ${set(addrs.map((r) => r.addr))} ${copy} dup to "DEV" meta mark set 0`);
        }
        // DR: by destination MAC (the destination address is the VIP).
        const dr = [...new Set(realServersOf(d, ['dr'], fam).filter((r) => r.mac).map((r) => r.mac))];
        const vips = vipsOf(d.services.filter((s) => s.realServers.some((r) => r.method === 'dr')), fam);
        if (dr.length >= 2 && vips.length) {
          dr.forEach((mac, k) => rules.push(`meta mark ${COPY_MARK} @ll,0,48 ${macHex(mac)} ${ipk} daddr ${set(vips)} @ll,0,48 set ${macHex(dr[(k + 1) % dr.length])} meta mark set 0 accept`));
          rules.push(`${ipk} daddr ${set(vips)} ${copy} dup to "DEV" meta mark set 0`);
        }
      }
      return netdevTable(d.node.name, [...d.serverSide].map((dev) => ({ hook: 'egress' as const, dev, rules: rules.map((r) => r.replace('"DEV"', `"${dev}"`)) })), 'client packets copied to a second real server');
    }),
  },
  {
    name: 'stray-after-close',
    summary: 'the director sends the client stray segments outside the connection\'s window: with its answer and as the connection closes',
    how: 'netdev egress on the client-side interface: each segment from a VIP towards a client that pushes data or closes (PSH or FIN) is duplicated (dup to) and the copy gets sequence number 0x53545259, outside the window. The answer always falls in a test\'s capture (a test without it fails anyway), so every test with a TCP connection gets its stray even when the close comes after the capture stopped',
    targets: ['FWD-COM-009'],
    ...perDirector(NAT_LIKE, (d) => {
      const rules: string[] = [];
      for (const fam of [4, 6] as Family[]) {
        const ipk = fam === 4 ? 'ip' : 'ip6';
        const vips = vipsOf(d.services.filter((s) => s.protocol === 'tcp' && s.realServers.some((r) => NAT_LIKE.includes(r.method))), fam);
        if (!vips.length) continue;
        rules.push(`meta mark ${COPY_MARK} ${ipk} saddr ${set(vips)} tcp sequence set 0x53545259 meta mark set 0 accept`);
        rules.push(`meta mark != ${COPY_MARK} ${ipk} saddr ${set(vips)} tcp flags & (fin | psh) != 0 meta mark set ${COPY_MARK} dup to "DEV" meta mark set 0`);
      }
      return netdevTable(d.node.name, [...d.clientSide].map((dev) => ({ hook: 'egress' as const, dev, rules: rules.map((r) => r.replace('"DEV"', `"${dev}"`)) })), 'stray segment after close');
    }),
  },
  {
    name: 'sched-every-fifth-to-first',
    summary: 'a round-robin that sends every fifth new connection to the first real server, whatever its counter says (a wrong scheduler mapping)',
    how: 'a nat prerouting chain ahead of the director\'s own (priority -150) dnats every fifth new connection to a TCP rr/wrr NAT service (numgen inc mod 5) to the service\'s first real server; the director\'s own scheduler never sees those',
    targets: ['DIST-001', 'DIST-002'],
    // The distribution suite's NAT lab only (its labs are named dist*): the forwarding suite checks one real
    // server per connection, not which one, so this fault would survive it by design.
    methods: [],
    suiteFiles: ['schedulers-nat'],
    plan: (m) => !m.name.startsWith('dist') ? [] : eachDirector(m, ['nat'], (d) => {
      const rules: string[] = [];
      for (const s of d.services) {
        const rs = s.realServers.find((r) => r.method === 'nat');
        if (!rs || !s.vip || s.protocol !== 'tcp' || !['rr', 'wrr'].includes(s.scheduler)) continue;
        const ipk = s.family === 4 ? 'ip' : 'ip6';
        rules.push(`    ${ipk} daddr ${s.vip} tcp dport ${s.port} numgen inc mod 5 0 dnat ${ipk} to ${s.family === 6 ? `[${rs.addr}]` : rs.addr}:${rs.port}`);
      }
      if (!rules.length) return [];
      const body = ['table inet vslab_fault_sched {', '  chain prerouting {', '    type nat hook prerouting priority -150; policy accept;', ...rules, '  }', '}', ''].join('\n');
      return [{ node: d.node.name, argv: ['nft', '-f', '-'], input: body, what: 'every fifth new connection to an rr/wrr service goes to its first real server' }];
    }),
  },
  {
    name: 'proxy-corrupts-reply',
    summary: 'a proxy that relays the real server\'s reply with one byte changed in every full-size segment',
    how: 'netdev egress on the client-side interface: in TCP segments from a VIP longer than 1200 bytes, the byte 1000 bytes past the TCP header\'s 32 bytes (the client\'s timestamps option) is set to "X" (nft keeps the TCP checksum correct)',
    targets: ['PROXY-003'],
    suiteFiles: ['streams'],
    ...perDirector(['proxy'], (d) => {
      const rules: string[] = [];
      for (const fam of [4, 6] as Family[]) {
        const ipk = fam === 4 ? 'ip' : 'ip6';
        const vips = vipsOf(d.services.filter((s) => s.protocol === 'tcp'), fam);
        if (vips.length) rules.push(`${ipk} saddr ${set(vips)} meta l4proto tcp meta length > 1200 @th,${(32 + 1000) * 8},8 set 0x58`);
      }
      return netdevTable(d.node.name, [...d.clientSide].map((dev) => ({ hook: 'egress' as const, dev, rules })), 'a byte of each long segment to the client changed');
    }),
  },
  {
    name: 'proxy-transparent-unrouted',
    summary: 'a transparent proxy whose director lost its policy routing: the real servers\' answers to the client\'s address are forwarded to the client instead of reaching the proxy\'s socket',
    how: `the director's fwmark rules (ip -4/-6 rule pref ${TPROXY.pref}) that send marked packets to the local table are deleted after the proxy driver programmed them`,
    // Measured: no connection completes (no real server's identity line, so no flow to plan both legs
    // from); the real servers' answers forwarded onto the client's link are what the accounting catches.
    targets: ['FWD-COM-001', 'FWD-COM-009'],
    suiteFiles: ['transparent'],
    ...perDirector(['proxy'], (d) => {
      const fams = [...new Set(d.services.filter((s) => s.transparent).map((s) => s.family))];
      return fams.map((f) => ({ node: d.node.name, argv: ['ip', `-${f}`, 'rule', 'del', 'pref', String(TPROXY.pref)], what: `delete the IPv${f} transparent-proxy fwmark rule` }));
    }),
  },
];

// The HA suite's faults (src/ha/faults.ts) are listed and applied like the forwarding ones.
FAULTS.push(...HA_FAULTS);

export function faultByName(name: string): FaultDefinition {
  const f = FAULTS.find((x) => x.name === name);
  if (!f) throw new FaultError(`no fault named "${name}" (see \`vslab test --list-faults\`): ${FAULTS.map((x) => x.name).join(', ')}`);
  return f;
}

/** The fault's actions for a model (empty when it does not concern the lab). */
export function planFault(f: FaultDefinition, model: LabModel): FaultAction[] {
  return f.plan(model);
}

export async function applyFault(f: FaultDefinition, lab: RunningLab): Promise<AppliedFault> {
  const actions = planFault(f, lab.model);
  for (const a of actions) {
    const r = await lab.node(a.node).exec(a.argv, { input: a.input, timeoutMs: 60_000 });
    if (r.code !== 0) throw new FaultError(`fault ${f.name}: ${a.what} failed on ${a.node} (${a.argv.join(' ')}): ${r.stderr.trim() || `exit ${r.code}`}${a.input ? `\n${a.input}` : ''}`);
  }
  return { name: f.name, actions };
}

export interface FaultListing {
  name: string;
  summary: string;
  how: string;
  targets: string[];
  methods: ForwardingMethod[];
}

export function listFaults(): FaultListing[] {
  return FAULTS.map(({ name, summary, how, targets, methods }) => ({ name, summary, how, targets, methods }));
}
