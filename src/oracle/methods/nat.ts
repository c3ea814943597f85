// NAT (masquerading, ipvsadm -m): the director rewrites the destination VIP:vport to RIP:rport on the way
// in and the source back to VIP:vport on the way out; real servers route replies through it.
// ipvs-semantics.md §2.2.
import type { LabModel } from '../../topology/model';
import type { FlowPlan, Flow, PlanOptions } from '../types';
import { arrivalLink, clientToDirector, egressIface, hopsAlong, linksOf, pathFrom } from './common';
import type { ForwardingOracle } from './oracle';

export class NatOracle implements ForwardingOracle {
  readonly method = 'nat' as const;

  plan(lab: LabModel, flow: Flow, opts: PlanOptions = {}): FlowPlan {
    const { r, T, rs, director, proto, inbound, a } = clientToDirector(lab, flow, opts);
    // director -> real server: destination rewritten, TTL decremented by IPVS
    const toRs = pathFrom(lab, director, rs.addr, rs.node);
    const b = hopsAlong(toRs, { ip: { family: r.family, src: r.cip, dst: rs.addr, ttl: a.last.ip.ttl - 1 }, l4: { proto, sport: r.cport, dport: rs.port } }, 'c2s', 'from-director', inbound.wires.length);
    // real server -> director (its route to the client points at the director)
    const back = pathFrom(lab, rs.node, r.cip, director, director);
    const c = hopsAlong(back, { ip: { family: r.family, src: rs.addr, dst: r.cip, ttl: T }, l4: { proto, sport: rs.port, dport: r.cport } }, 's2c', 'to-director', 0);
    // director -> client: source rewritten back to the VIP; ordinary forwarding decrements the TTL
    const out = pathFrom(lab, director, r.cip, r.client);
    const d = hopsAlong(out, { ip: { family: r.family, src: r.vip, dst: r.cip, ttl: c.last.ip.ttl - 1 }, l4: { proto, sport: r.vport, dport: r.cport } }, 's2c', 'from-director', back.wires.length);
    const clientLinks = linksOf(lab, r.client);
    const others = r.service.realServers.filter((x) => x.node !== rs.node);
    return {
      method: 'nat', flow, family: r.family, protocol: proto, director, vip: r.vip, vport: r.vport, rip: rs.addr, rport: rs.port,
      directorIngress: arrivalLink(inbound), directorEgress: `${director}:${egressIface(lab, director, rs.addr)}`,
      c2s: [...a.hops, ...b.hops], s2c: [...c.hops, ...d.hops],
      absent: [
        ...r.service.realServers.flatMap((x) => clientLinks.map((link) => ({
          direction: 's2c' as const, link, statement: 'FWD-NAT-004',
          shape: { ip: { family: r.family, src: x.addr, dst: r.cip }, l4: { proto, sport: x.port, dport: r.cport } },
          why: `a reply straight from real server ${x.node} (${x.addr}) would bypass the director's source rewrite`,
        }))),
        ...others.flatMap((x) => linksOf(lab, x.node).map((link) => ({
          direction: 'c2s' as const, link, statement: 'FWD-COM-006',
          shape: { ip: { family: r.family, src: r.cip }, l4: { proto, sport: r.cport } },
          why: `the connection belongs to ${rs.node}; ${x.node} must see none of it`,
        }))),
      ],
    };
  }
}
