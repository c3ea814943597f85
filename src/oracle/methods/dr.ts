// Direct routing (gatewaying, ipvsadm -g): the director rewrites only the destination MAC to the real
// server's and sends the frame out on their shared segment; IP and L4 headers keep CIP:cport -> VIP:vport
// (TTL decremented by IPVS). Real servers answer the client directly. ipvs-semantics.md §2.3.
import type { LabModel } from '../../topology/model';
import { linkName, neighbour, nodeOf, OracleRouteError, routeLookup, type RoutedPath } from '../route';
import type { Flow, FlowPlan, PlanOptions } from '../types';
import { arrivalLink, clientToDirector, hopsAlong, linksOf, pathFrom } from './common';
import type { ForwardingOracle } from './oracle';

export class DirectRoutingOracle implements ForwardingOracle {
  readonly method = 'dr' as const;

  plan(lab: LabModel, flow: Flow, opts: PlanOptions = {}): FlowPlan {
    const { r, T, rs, director, proto, inbound, a } = clientToDirector(lab, flow, opts);
    // The real server must be on-link: its RIP is the next hop (IP_VS_RT_MODE_KNOWN_NH).
    const dnode = nodeOf(lab, director);
    const d = routeLookup(dnode, rs.addr);
    if (d.kind !== 'forward' || d.gateway !== rs.addr) throw new OracleRouteError(`direct routing needs ${rs.node} (${rs.addr}) on a segment of director ${director}`);
    const wire: RoutedPath = { wires: [{ segment: d.iface.segment, from: { node: director, iface: d.iface.name, mac: d.iface.mac }, to: neighbour(lab, dnode, d.iface, rs.addr) }], end: rs.node, forwarders: [] };
    const b = hopsAlong(wire, { ip: { family: r.family, src: r.cip, dst: r.vip, ttl: a.last.ip.ttl - 1 }, l4: { proto, sport: r.cport, dport: r.vport } }, 'c2s', 'from-director', inbound.wires.length);
    // Replies: from the VIP the real server holds, straight to the client.
    const back = pathFrom(lab, rs.node, r.cip, r.client);
    if (back.forwarders.includes(director)) throw new OracleRouteError(`the lab routes ${rs.node}'s replies through the director; direct routing replies must bypass it`);
    const c = hopsAlong(back, { ip: { family: r.family, src: r.vip, dst: r.cip, ttl: T }, l4: { proto, sport: r.vport, dport: r.cport } }, 's2c', 'bypass', 0);
    const others = r.service.realServers.filter((x) => x.node !== rs.node);
    return {
      method: 'dr', flow, family: r.family, protocol: proto, director, vip: r.vip, vport: r.vport, rip: rs.addr, rport: r.vport,
      directorIngress: arrivalLink(inbound), directorEgress: linkName(wire.wires[0].from),
      c2s: [...a.hops, ...b.hops], s2c: c.hops,
      absent: [
        ...linksOf(lab, director).map((link) => ({
          direction: 's2c' as const, link, statement: 'FWD-DR-002',
          shape: { ip: { family: r.family, src: r.vip, dst: r.cip }, l4: { proto, sport: r.vport, dport: r.cport } },
          why: 'direct-routing replies go from the real server to the client without the director',
        })),
        ...others.flatMap((x) => linksOf(lab, x.node).map((link) => ({
          direction: 'c2s' as const, link, statement: 'FWD-COM-006',
          shape: { ip: { family: r.family, src: r.cip, dst: r.vip }, l4: { proto, sport: r.cport } },
          why: `the connection belongs to ${rs.node}; ${x.node} must see none of it`,
        }))),
      ],
    };
  }
}
