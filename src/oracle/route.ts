// Routing inside a Lab model, as the lab's kernels will do it: longest-prefix match over each node's
// connected subnets and derived routes, next hop resolved to the neighbour that owns the gateway address
// on the same segment. Pure: the oracle uses it to know, for every packet, which wires it crosses, which
// MACs it carries on each and how many routers decrement its TTL on the way.
import { canonical, contains, familyOf, parsePrefix, type Prefix } from '../topology/addr';
import type { Family, InterfaceModel, LabModel, NodeModel } from '../topology/model';

/** One end of a wire: a node's interface. */
export interface LinkEnd {
  node: string;
  iface: string;
  mac: string;
}

/** A frame crossing one wire (a segment) from one node's interface to another's. */
export interface WireCrossing {
  segment: string;
  from: LinkEnd;
  to: LinkEnd;
}

export type RouteDecision =
  | { kind: 'local' }
  | { kind: 'forward'; iface: InterfaceModel; gateway: string; route: string }
  | { kind: 'unreachable' };

export class OracleRouteError extends Error {
  override name = 'OracleRouteError';
}

export function linkName(end: { node: string; iface: string }): string {
  return `${end.node}:${end.iface}`;
}

function stripLen(cidr: string): string {
  return cidr.split('/')[0];
}

/** Every address the node holds (interfaces, extra addresses, loopback addresses), canonical. */
export function localAddresses(node: NodeModel): string[] {
  const out: string[] = [];
  for (const i of node.interfaces) {
    if (i.ipv4) out.push(i.ipv4.addr);
    if (i.ipv6) out.push(i.ipv6.addr);
    for (const e of i.extraAddrs) out.push(canonical(stripLen(e)));
  }
  for (const a of node.loopbackAddrs) out.push(canonical(stripLen(a)));
  return out;
}

export function isLocal(node: NodeModel, addr: string): boolean {
  const c = canonical(addr);
  return localAddresses(node).includes(c);
}

/** The node whose interface (not loopback) holds `addr`, and that interface. */
export function ownerOfAddress(lab: LabModel, addr: string): { node: NodeModel; iface: InterfaceModel } | undefined {
  const c = canonical(addr);
  for (const n of lab.nodes) {
    for (const i of n.interfaces) {
      if (i.ipv4?.addr === c || i.ipv6?.addr === c || i.extraAddrs.some((e) => canonical(stripLen(e)) === c)) return { node: n, iface: i };
    }
  }
  return undefined;
}

interface Candidate {
  prefix: Prefix;
  iface?: InterfaceModel;
  via?: string;
  text: string;
}

function prefixOf(cidr: string): Prefix {
  const p = parsePrefix(cidr, true);
  if (typeof p === 'string') throw new OracleRouteError(`bad prefix ${cidr}: ${p}`);
  return p;
}

function candidates(node: NodeModel, family: Family): Candidate[] {
  const out: Candidate[] = [];
  for (const i of node.interfaces) {
    const a = family === 4 ? i.ipv4 : i.ipv6;
    if (a) out.push({ prefix: prefixOf(`${a.addr}/${a.prefixLen}`), iface: i, text: `${a.addr}/${a.prefixLen} dev ${i.name}` });
    for (const e of i.extraAddrs) if (familyOf(stripLen(e)) === family) out.push({ prefix: prefixOf(e), iface: i, text: `${e} dev ${i.name}` });
  }
  for (const r of node.routes) {
    if (r.family !== family) continue;
    const to = r.to === 'default' ? '0.0.0.0/0' : r.to === 'default6' ? '::/0' : r.to;
    out.push({ prefix: prefixOf(to), via: r.via, text: `${r.to}${r.via ? ` via ${r.via}` : ''}` });
  }
  return out;
}

/** What `node` does with a packet to `dst`: deliver locally, or forward out of an interface to a gateway. */
export function routeLookup(node: NodeModel, dst: string): RouteDecision {
  if (isLocal(node, dst)) return { kind: 'local' };
  const family = familyOf(dst);
  if (!family) throw new OracleRouteError(`${dst} is not an IP address`);
  let best: Candidate | undefined;
  for (const c of candidates(node, family)) {
    if (!contains(c.prefix, dst)) continue;
    if (!best || c.prefix.len > best.prefix.len) best = c;
  }
  if (!best) return { kind: 'unreachable' };
  if (best.iface) return { kind: 'forward', iface: best.iface, gateway: canonical(dst), route: best.text };
  // A route via a gateway: the egress interface is the one whose subnet holds the gateway.
  const gw = canonical(best.via!);
  const via = routeLookup(node, gw);
  if (via.kind !== 'forward' || via.gateway !== gw) throw new OracleRouteError(`node ${node.name}: gateway ${gw} of route ${best.text} is not on a connected subnet`);
  return { kind: 'forward', iface: via.iface, gateway: gw, route: best.text };
}

/**
 * The neighbour on `iface`'s segment that holds `addr` on its interface there. An ha group's VIP is on no
 * interface in the model (VRRP puts it on the master's): `vipHolder` names the director that holds it.
 */
export function neighbour(lab: LabModel, node: NodeModel, iface: InterfaceModel, addr: string, vipHolder?: string): LinkEnd {
  const c = canonical(addr);
  for (const n of lab.nodes) {
    if (n.name === node.name) continue;
    for (const i of n.interfaces) {
      if (i.segment !== iface.segment) continue;
      if (i.ipv4?.addr === c || i.ipv6?.addr === c || i.extraAddrs.some((e) => canonical(stripLen(e)) === c)) return { node: n.name, iface: i.name, mac: i.mac };
    }
  }
  const ha = lab.ha;
  if (ha && vipHolder && iface.segment === ha.segment && ha.vips.some((v) => canonical(stripLen(v)) === c)) {
    const d = ha.directors.find((x) => x.node === vipHolder);
    const i = d && nodeOf(lab, d.node).interfaces.find((x) => x.name === d.vrrpIface);
    if (d && i) return { node: d.node, iface: i.name, mac: i.mac };
  }
  throw new OracleRouteError(`node ${node.name}: no neighbour holds ${c} on segment ${iface.segment} (out of ${iface.name})`);
}

export function nodeOf(lab: LabModel, name: string): NodeModel {
  const n = lab.nodes.find((x) => x.name === name);
  if (!n) throw new OracleRouteError(`lab ${lab.name} has no node ${name}`);
  return n;
}

export interface RoutedPath {
  /** Wires crossed in order. */
  wires: WireCrossing[];
  /** Node that took the packet off the path (the destination, or the node where `stop` held). */
  end: string;
  /** Nodes that forwarded the packet (each decrements TTL once), in order. */
  forwarders: string[];
}

/**
 * Follows a packet from `from` (which sends it, so does not decrement) towards `dst` until a node holds
 * `dst` locally or `stop(node)` says the packet is taken there (a director catching a VIP).
 */
export function routedPath(lab: LabModel, from: string, dst: string, stop?: (node: NodeModel) => boolean, vipHolder?: string): RoutedPath {
  const wires: WireCrossing[] = [];
  const forwarders: string[] = [];
  let node = nodeOf(lab, from);
  for (let hops = 0; hops < 32; hops++) {
    if (hops > 0 && (isLocal(node, dst) || stop?.(node))) return { wires, end: node.name, forwarders };
    const d = routeLookup(node, dst);
    if (d.kind === 'local') return { wires, end: node.name, forwarders };
    if (d.kind === 'unreachable') throw new OracleRouteError(`node ${node.name} has no route to ${dst} (path so far: ${wires.map((w) => `${linkName(w.from)}>${linkName(w.to)}`).join(' ') || 'none'})`);
    if (hops > 0) forwarders.push(node.name);
    const to = neighbour(lab, node, d.iface, d.gateway, vipHolder);
    wires.push({ segment: d.iface.segment, from: { node: node.name, iface: d.iface.name, mac: d.iface.mac }, to });
    node = nodeOf(lab, to.node);
  }
  throw new OracleRouteError(`routing loop from ${from} towards ${dst}`);
}

/** The address `node` uses as source on a route out of `iface` (the interface's primary address of that family). */
export function preferredSource(iface: InterfaceModel, family: Family): string {
  const a = family === 4 ? iface.ipv4?.addr : iface.ipv6?.addr;
  if (!a) throw new OracleRouteError(`interface ${iface.name} has no IPv${family} address to use as source`);
  return a;
}
