// Background classes: packets a lab legitimately carries besides the flows under test. Decided from the
// captures of reference runs (docs/conformance.md, "Every packet is explained"): the lab nodes' address
// resolution, and the multicast membership reports their stacks send right after a lab comes up. A director implementation that emits more (a health-check
// prober, keepalives between directors) declares its own classes in its capabilities
// (DirectorCapabilities.background); they are counted per class in every test, never silently ignored.
import type { ExpectedLayer } from '../packet/expect';
import type { BackgroundClass } from './accounting';
import type { LabModel } from '../topology/model';
import { DEFAULT_INITIAL_TTL } from './types';

const nd = (icmpType: number): ExpectedLayer[] => [{ type: 'eth' }, { type: 'ipv6', proto: 58 }, { type: 'icmpv6', icmpType, code: 0 }];

export const BUILTIN_BACKGROUND: BackgroundClass[] = [
  {
    name: 'arp',
    why: 'IPv4 address resolution between lab nodes (requests and replies, before and while the flows run)',
    declaredBy: 'vslab',
    patterns: [[{ type: 'eth' }, { type: 'arp' }]],
  },
  {
    name: 'nd',
    why: 'IPv6 neighbour solicitations and advertisements between lab nodes (address resolution, reachability confirmation)',
    declaredBy: 'vslab',
    patterns: [nd(135), nd(136)],
  },
  {
    name: 'mcast-report',
    why: 'multicast membership reports of the lab\'s own stacks (IGMPv3 to 224.0.0.22, MLDv2 to ff02::16, hop limit 1): sent, and repeated once within a second, when an interface comes up or an address is added (its solicited-node group), and by the segment\'s bridge for its own snooping groups',
    declaredBy: 'vslab',
    patterns: [
      [{ type: 'eth' }, { type: 'ipv4', proto: 2, dst: '224.0.0.22', ttl: 1 }],
      [{ type: 'eth' }, { type: 'ipv6', dst: 'ff02::16', hlim: 1 }, { type: 'icmpv6', icmpType: 143, code: 0 }],
    ],
  },
];

/** The classes a test is judged with: the built-in ones, then the director driver's own. */
export function backgroundClasses(declared: BackgroundClass[] = []): BackgroundClass[] {
  const names = new Set(BUILTIN_BACKGROUND.map((c) => c.name));
  for (const c of declared) {
    if (names.has(c.name)) throw new Error(`background class "${c.name}" declared by ${c.declaredBy} is already declared (by vslab)`);
    names.add(c.name);
  }
  return [...BUILTIN_BACKGROUND, ...declared];
}

/** IPVS sync daemon: multicast group and UDP port (ipvs-semantics.md §4.10). */
const IPVS_SYNC_GROUP = '224.0.0.81';
const IPVS_SYNC_PORT = 8848;
/** VRRP (IP protocol 112) to its multicast group. */
const VRRP_GROUP = '224.0.0.18';

/**
 * What an ha group (LabModel.ha) sends besides the flows: keepalived's VRRP adverts, the multicast joins
 * for them and for the sync daemon (IGMP), the sync daemon's messages, the handover relay of a moving VIP
 * (relayed client packets and ICMP redirects), and the TCP health checks from each
 * director's address on the group segment to each checked real server (both directions: SYN, answer,
 * close). Empty for a lab without a group. Declared by the lab's ha block, counted per class.
 */
export function haGroupBackground(model: LabModel): BackgroundClass[] {
  const ha = model.ha;
  if (!ha) return [];
  const by = `lab ${model.name} ha group`;
  const out: BackgroundClass[] = [
    { name: 'ha-vrrp', why: 'VRRP advertisements of the group\'s master, every advert interval (keepalived)', declaredBy: by, patterns: [[{ type: 'eth' }, { type: 'ipv4', proto: 112, dst: VRRP_GROUP }]] },
    { name: 'ha-igmp', why: 'IGMP membership reports of the directors for the VRRP and sync multicast groups', declaredBy: by, patterns: [[{ type: 'eth' }, { type: 'ipv4', proto: 2 }]] },
  ];
  if (ha.sync) out.push({ name: 'ha-sync', why: 'IPVS sync daemon messages (connection synchronisation) to the backups', declaredBy: by, patterns: [[{ type: 'eth' }, { type: 'ipv4', dst: IPVS_SYNC_GROUP }, { type: 'udp', dport: IPVS_SYNC_PORT }]] });
  const checks: ExpectedLayer[][] = [];
  for (const [name] of Object.entries(ha.healthChecks)) {
    const s = model.services.find((x) => x.name === name);
    if (!s) continue;
    for (const d of ha.directors) {
      for (const r of s.realServers) {
        if (r.family !== 4) continue;
        checks.push([{ type: 'eth' }, { type: 'ipv4', src: d.vrrpAddr, dst: r.addr }, { type: 'tcp', dport: r.port }]);
        checks.push([{ type: 'eth' }, { type: 'ipv4', src: r.addr, dst: d.vrrpAddr }, { type: 'tcp', sport: r.port }]);
      }
    }
  }
  // A VIP moving between directors: until the client has the new holder's MAC (its gratuitous ARP, HA-001), its
  // packets still reach the director that gave the VIP up, which now routes them — to the new holder, out of the
  // interface they came in by — and tells the client so with an ICMP redirect. Seen at every failback (the
  // failed director's return): 2 relayed segments and 1 redirect in one run. Only frames from one director's MAC
  // to another's for a group VIP, and redirects from a director's group address.
  const macOf = (node: string, iface: string) => model.nodes.find((n) => n.name === node)?.interfaces.find((i) => i.name === iface)?.mac;
  const moving = model.services.filter((s) => s.vip && s.family === 4 && (s.protocol === 'tcp' || s.protocol === 'udp') && ha.directors.some((d) => d.node === s.director));
  const handover: ExpectedLayer[][] = [];
  for (const a of ha.directors) {
    const ma = macOf(a.node, a.vrrpIface);
    if (!ma) continue;
    for (const s of moving) {
      // (Patterns are compared layer by layer: the redirect quotes the client's packet, IP and transport.)
      const l4 = { type: s.protocol as 'tcp' | 'udp', dport: s.port };
      handover.push([{ type: 'eth', src: ma }, { type: 'ipv4', src: a.vrrpAddr, proto: 1 }, { type: 'icmp', icmpType: 5 }, { type: 'ipv4', dst: s.vip! }, l4]);
      for (const b of ha.directors) {
        const mb = macOf(b.node, b.vrrpIface);
        if (b !== a && mb) handover.push([{ type: 'eth', src: ma, dst: mb }, { type: 'ipv4', dst: s.vip! }, l4]);
      }
      // The new holder forwards a relayed packet like any other, but it crossed one router more: two TTLs below
      // the clients' initial one where the plan has one (FWD-COM-002: the director decrements it once).
      handover.push([{ type: 'eth', src: ma }, { type: 'ipv4', dst: s.vip!, ttl: DEFAULT_INITIAL_TTL - 2 }, l4]);
    }
  }
  if (handover.length) out.push({ name: 'ha-handover', why: 'packets of clients still addressed to the director that gave a VIP up, relayed by it to the new holder, and its ICMP redirects about them (until the clients have the new MAC)', declaredBy: by, patterns: handover });
  if (checks.length) out.push({ name: 'ha-health-checks', why: 'keepalived\'s TCP health checks from each director to each checked real server', declaredBy: by, patterns: checks });
  return out;
}
