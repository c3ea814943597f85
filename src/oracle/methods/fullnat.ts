// Full-NAT as mainline IPVS does it (kube-proxy style, ipvs-semantics.md §2.6): NAT plus a source NAT
// on the director to one of its local addresses, so real servers see only director addresses and need
// no route to clients. The source port is kept when free (nf_nat only remaps on a clash).
import { familyOf } from '../../topology/addr';
import type { LabModel } from '../../topology/model';
import { nodeOf, OracleRouteError } from '../route';
import type { Flow, FlowPlan, PlanOptions } from '../types';
import { arrivalLink, clientToDirector, egressIface, hopsAlong, linksOf, pathFrom } from './common';
import type { ForwardingOracle } from './oracle';

/** The local address the director's source NAT uses towards a real server (what the Lab model derived). */
export function localAddressFor(lab: LabModel, service: string, rsAddr: string): string {
  const svc = lab.services.find((s) => s.name === service);
  if (!svc?.localAddrs?.length) throw new OracleRouteError(`service ${service} has no Full-NAT local addresses`);
  const fam = familyOf(rsAddr);
  const director = nodeOf(lab, svc.director);
  const rs = svc.realServers.find((x) => x.addr === rsAddr);
  const rsNode = rs ? nodeOf(lab, rs.node) : undefined;
  const onShared = svc.localAddrs.find((a) => familyOf(a) === fam && director.interfaces.some((i) => i.extraAddrs.some((e) => e.split('/')[0] === a) && !!rsNode?.interfaces.some((ri) => ri.segment === i.segment)));
  const any = svc.localAddrs.find((a) => familyOf(a) === fam);
  const la = onShared ?? any;
  if (!la) throw new OracleRouteError(`service ${service} has no IPv${fam} local address for real server ${rsAddr}`);
  return la;
}

export class FullNatOracle implements ForwardingOracle {
  readonly method = 'fullnat' as const;

  plan(lab: LabModel, flow: Flow, opts: PlanOptions = {}): FlowPlan {
    const { r, T, rs, director, proto, inbound, a } = clientToDirector(lab, flow, opts);
    const lip = localAddressFor(lab, r.service.name, rs.addr);
    const lport = r.cport;
    const toRs = pathFrom(lab, director, rs.addr, rs.node);
    const b = hopsAlong(toRs, { ip: { family: r.family, src: lip, dst: rs.addr, ttl: a.last.ip.ttl - 1 }, l4: { proto, sport: lport, dport: rs.port } }, 'c2s', 'from-director', inbound.wires.length);
    // The real server answers the local address, which lives on the director.
    const back = pathFrom(lab, rs.node, lip, director);
    const c = hopsAlong(back, { ip: { family: r.family, src: rs.addr, dst: lip, ttl: T }, l4: { proto, sport: rs.port, dport: lport } }, 's2c', 'to-director', 0);
    const out = pathFrom(lab, director, r.cip, r.client);
    const d = hopsAlong(out, { ip: { family: r.family, src: r.vip, dst: r.cip, ttl: c.last.ip.ttl - 1 }, l4: { proto, sport: r.vport, dport: r.cport } }, 's2c', 'from-director', back.wires.length);
    const clientLinks = linksOf(lab, r.client);
    const others = r.service.realServers.filter((x) => x.node !== rs.node);
    const rsNodes = [...new Set(r.service.realServers.map((x) => x.node))];
    return {
      method: 'fullnat', flow, family: r.family, protocol: proto, director, vip: r.vip, vport: r.vport, rip: rs.addr, rport: rs.port,
      local: { addr: lip, port: lport },
      directorIngress: arrivalLink(inbound), directorEgress: `${director}:${egressIface(lab, director, rs.addr)}`,
      c2s: [...a.hops, ...b.hops], s2c: [...c.hops, ...d.hops],
      absent: [
        ...rsNodes.flatMap((n) => linksOf(lab, n).map((link) => ({
          direction: 'c2s' as const, link, statement: 'FWD-FNAT-003',
          shape: { ip: { family: r.family, src: r.cip }, l4: { proto, sport: r.cport } },
          why: `real server ${n} must see the director's local address, never the client ${r.cip}`,
        }))),
        ...r.service.realServers.flatMap((x) => clientLinks.map((link) => ({
          direction: 's2c' as const, link, statement: 'FWD-FNAT-002',
          shape: { ip: { family: r.family, src: x.addr, dst: r.cip }, l4: { proto, sport: x.port, dport: r.cport } },
          why: `the client must only hear from the VIP, never from real server ${x.node} (${x.addr})`,
        }))),
        ...others.flatMap((x) => linksOf(lab, x.node).map((link) => ({
          direction: 'c2s' as const, link, statement: 'FWD-COM-006',
          shape: { ip: { family: r.family, src: lip }, l4: { proto, sport: lport, dport: x.port } },
          why: `the connection belongs to ${rs.node}; ${x.node} must see none of it`,
        }))),
      ],
    };
  }
}
