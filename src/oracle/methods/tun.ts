// IP tunnelling (ipvsadm -i, IPIP / GUE / GRE): the director wraps the untouched inner packet (TTL
// decremented) in an outer header from its own address on the route to the real server (route source)
// to the RIP; routers on the way only see and decrement the outer header. Real servers decapsulate and
// answer the client directly. ipvs-semantics.md §2.4.
import type { LabModel } from '../../topology/model';
import { nodeOf, OracleRouteError, preferredSource, routeLookup } from '../route';
import type { Flow, FlowPlan, PlanOptions } from '../types';
import { arrivalLink, clientToDirector, egressIface, hopsAlong, linksOf, pathFrom } from './common';
import type { ForwardingOracle } from './oracle';

export class TunnelOracle implements ForwardingOracle {
  readonly method = 'tun' as const;

  plan(lab: LabModel, flow: Flow, opts: PlanOptions = {}): FlowPlan {
    const { r, T, rs, director, proto, inbound, a } = clientToDirector(lab, flow, opts);
    const tunnel = rs.tunnel ?? { type: 'ipip' as const, flags: [] };
    const toRs = pathFrom(lab, director, rs.addr, rs.node);
    const route = routeLookup(nodeOf(lab, director), rs.addr);
    if (route.kind !== 'forward') throw new OracleRouteError(`director ${director} has no route to ${rs.addr}`);
    const innerTtl = a.last.ip.ttl - 1;
    const b = hopsAlong(toRs, {
      outer: {
        encap: tunnel.type, family: rs.family, src: preferredSource(route.iface, rs.family), dst: rs.addr, ttl: innerTtl,
        ...(tunnel.type === 'gue' ? { guePort: tunnel.port } : {}),
        csum: tunnel.flags.includes('tun-csum') || tunnel.flags.includes('tun-remcsum'),
      },
      ip: { family: r.family, src: r.cip, dst: r.vip, ttl: innerTtl },
      l4: { proto, sport: r.cport, dport: r.vport },
    }, 'c2s', 'from-director', inbound.wires.length);
    const back = pathFrom(lab, rs.node, r.cip, r.client);
    if (back.forwarders.includes(director)) throw new OracleRouteError(`the lab routes ${rs.node}'s replies through the director; tunnelled replies must bypass it`);
    const c = hopsAlong(back, { ip: { family: r.family, src: r.vip, dst: r.cip, ttl: T }, l4: { proto, sport: r.vport, dport: r.cport } }, 's2c', 'bypass', 0);
    const others = r.service.realServers.filter((x) => x.node !== rs.node);
    return {
      method: 'tun', flow, family: r.family, protocol: proto, director, vip: r.vip, vport: r.vport, rip: rs.addr, rport: r.vport,
      directorIngress: arrivalLink(inbound), directorEgress: `${director}:${egressIface(lab, director, rs.addr)}`,
      c2s: [...a.hops, ...b.hops], s2c: c.hops,
      absent: [
        ...linksOf(lab, director).map((link) => ({
          direction: 's2c' as const, link, statement: 'FWD-TUN-003',
          shape: { ip: { family: r.family, src: r.vip, dst: r.cip }, l4: { proto, sport: r.vport, dport: r.cport } },
          why: 'tunnelled connections are answered by the real server directly, without the director',
        })),
        ...others.flatMap((x) => linksOf(lab, x.node).map((link) => ({
          direction: 'c2s' as const, link, statement: 'FWD-COM-006',
          shape: { outer: { encap: (x.tunnel ?? tunnel).type, family: x.family }, ip: { family: r.family, src: r.cip, dst: r.vip }, l4: { proto, sport: r.cport } },
          why: `the connection belongs to ${rs.node}; ${x.node} must see none of it`,
        }))),
      ],
    };
  }
}
