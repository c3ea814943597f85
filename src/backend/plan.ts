// A LabModel rendered as an ordered list of network operations. Pure data: the netns backend
// executes it over rtnetlink on the host, the VM backend renders it to iproute2 batches in a guest.
import type { Family, LabModel, TunnelDeviceModel } from '../topology/model';

export type NetOp =
  | { op: 'netns'; ns: string }
  | { op: 'sysctl'; ns: string; key: string; value: string }
  | { op: 'bridge'; ns: string; name: string; mtu: number }
  /** A veth pair created in `ns`, its peer moved into `peerNs`; `peerMaster` enslaves the peer to a bridge there. */
  | { op: 'veth'; ns: string; name: string; mac: string; mtu: number; peerNs: string; peerName: string; peerMac?: string; peerMaster?: string }
  | { op: 'up'; ns: string; dev: string }
  | { op: 'addr'; ns: string; dev: string; cidr: string }
  | { op: 'route'; ns: string; to: string; family: Family; via?: string }
  | { op: 'tunnel'; ns: string; dev: TunnelDeviceModel }
  | { op: 'nft'; ns: string; ruleset: string };

export const NS_PREFIX = 'vslab-';
/** Separates lab and node in a namespace name; lab and node names never contain a double hyphen. */
export const NS_SEP = '--';
export const SWITCH_NODE = '_sw';

export function nsName(lab: string, node: string): string {
  return `${NS_PREFIX}${lab}${NS_SEP}${node}`;
}

/** Parses a namespace name made by nsName; undefined for anything that is not vslab's. */
export function parseNsName(ns: string): { lab: string; node: string } | undefined {
  if (!ns.startsWith(NS_PREFIX)) return undefined;
  const rest = ns.slice(NS_PREFIX.length);
  const i = rest.indexOf(NS_SEP);
  if (i <= 0) return undefined;
  return { lab: rest.slice(0, i), node: rest.slice(i + NS_SEP.length) };
}

/** Early sysctls apply to the whole namespace (all/default/global) and must precede device creation. */
export function isEarlySysctl(key: string): boolean {
  return !/\/conf\//.test(key) || /\/conf\/(all|default)\//.test(key);
}

export function planLab(lab: LabModel, labName = lab.name): NetOp[] {
  const ops: NetOp[] = [];
  const ns = (node: string) => nsName(labName, node);
  const sw = ns(SWITCH_NODE);
  const lans = lab.segments.filter((s) => s.kind === 'lan');

  for (const n of lab.nodes) ops.push({ op: 'netns', ns: ns(n.name) });
  if (lans.length) ops.push({ op: 'netns', ns: sw });

  // Namespace-wide sysctls before any device exists, so new devices inherit "default".
  for (const n of lab.nodes) for (const [key, value] of Object.entries(n.sysctls)) if (isEarlySysctl(key)) ops.push({ op: 'sysctl', ns: ns(n.name), key, value });
  if (lans.length) {
    // The switch namespace only bridges frames: no IPv6 of its own on the wire.
    ops.push({ op: 'sysctl', ns: sw, key: 'net/ipv6/conf/all/disable_ipv6', value: '1' });
    ops.push({ op: 'sysctl', ns: sw, key: 'net/ipv6/conf/default/disable_ipv6', value: '1' });
  }

  for (const seg of lans) ops.push({ op: 'bridge', ns: sw, name: `br${seg.index}`, mtu: seg.mtu });
  for (const seg of lab.segments) {
    if (seg.kind === 'lan') {
      for (const m of seg.members) {
        const node = lab.nodes.find((x) => x.name === m.node)!;
        const iface = node.interfaces.find((i) => i.name === m.iface)!;
        ops.push({ op: 'veth', ns: ns(node.name), name: iface.name, mac: iface.mac, mtu: iface.mtu, peerNs: sw, peerName: `s${seg.index}n${node.index}`, peerMaster: `br${seg.index}` });
      }
    } else {
      const [a, b] = seg.members.map((m) => {
        const node = lab.nodes.find((x) => x.name === m.node)!;
        return { node, iface: node.interfaces.find((i) => i.name === m.iface)! };
      });
      ops.push({ op: 'veth', ns: ns(a.node.name), name: a.iface.name, mac: a.iface.mac, mtu: a.iface.mtu, peerNs: ns(b.node.name), peerName: b.iface.name, peerMac: b.iface.mac });
    }
  }
  for (const seg of lans) {
    ops.push({ op: 'up', ns: sw, dev: `br${seg.index}` });
    for (const m of seg.members) ops.push({ op: 'up', ns: sw, dev: `s${seg.index}n${lab.nodes.find((x) => x.name === m.node)!.index}` });
  }
  for (const n of lab.nodes) {
    const nn = ns(n.name);
    ops.push({ op: 'up', ns: nn, dev: 'lo' });
    for (const i of n.interfaces) {
      ops.push({ op: 'up', ns: nn, dev: i.name });
      if (i.ipv4) ops.push({ op: 'addr', ns: nn, dev: i.name, cidr: `${i.ipv4.addr}/${i.ipv4.prefixLen}` });
      if (i.ipv6) ops.push({ op: 'addr', ns: nn, dev: i.name, cidr: `${i.ipv6.addr}/${i.ipv6.prefixLen}` });
      for (const e of i.extraAddrs) ops.push({ op: 'addr', ns: nn, dev: i.name, cidr: e });
    }
    for (const a of n.loopbackAddrs) ops.push({ op: 'addr', ns: nn, dev: 'lo', cidr: a });
    for (const t of n.tunnels) ops.push({ op: 'tunnel', ns: nn, dev: t });
    for (const [key, value] of Object.entries(n.sysctls)) if (!isEarlySysctl(key)) ops.push({ op: 'sysctl', ns: nn, key, value });
    for (const r of n.routes) ops.push({ op: 'route', ns: nn, to: r.to, family: r.family, via: r.via });
    if (n.nftables) ops.push({ op: 'nft', ns: nn, ruleset: n.nftables });
  }
  return ops;
}
