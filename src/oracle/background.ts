// Background classes: packets a lab legitimately carries besides the flows under test. Decided from the
// captures of reference runs (docs/conformance.md, "Every packet is explained"): the lab nodes' address
// resolution, and the multicast membership reports their stacks send right after a lab comes up. A director implementation that emits more (a health-check
// prober, keepalives between directors) declares its own classes in its capabilities
// (DirectorCapabilities.background); they are counted per class in every test, never silently ignored.
import type { ExpectedLayer } from '../packet/expect';
import type { BackgroundClass } from './accounting';
import type { LabModel } from '../topology/model';

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
 * for them and for the sync daemon (IGMP), the sync daemon's messages, and the TCP health checks from each
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
  if (checks.length) out.push({ name: 'ha-health-checks', why: 'keepalived\'s TCP health checks from each director to each checked real server', declaredBy: by, patterns: checks });
  return out;
}
