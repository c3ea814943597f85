// Proxy (haproxy mode tcp, nginx stream): the director ends the client's TCP connection on VIP:vport and
// opens a second one of its own to the real server, from one of its addresses and a port it picks. Two
// connections, each with its own originators: the director sends the SYN-ACK and data to the client with a
// fresh TTL (it originates them), and the server leg's packets likewise. Nothing is carried from one leg to
// the other at the packet level (sequence numbers, options, IP IDs all differ): only the byte streams are
// (src/oracle/proxy.ts checks those). docs/proxy.md.
//
// The server leg's source port is the proxy's choice, known only from the far end: the flow carries it
// (Flow.leg, from the real server's identity line).
import { canonical } from '../../topology/addr';
import type { LabModel } from '../../topology/model';
import { OracleRouteError } from '../route';
import type { Flow, FlowPlan, HopHeaders, PlanOptions } from '../types';
import { arrivalLink, clientToDirector, egressIface, hopsAlong, linksOf, pathFrom } from './common';
import type { ForwardingOracle } from './oracle';

export class ProxyOracle implements ForwardingOracle {
  readonly method = 'proxy' as const;

  plan(lab: LabModel, flow: Flow, opts: PlanOptions = {}): FlowPlan {
    const { r, T, rs, director, proto, inbound, a } = clientToDirector(lab, flow, opts);
    if (!flow.leg) throw new OracleRouteError(`flow ${flow.clientAddr}:${flow.clientPort} of proxied service ${r.service.name} does not say where its server leg came from (the real server's identity line names it)`);
    // A transparent service's server leg comes from the client's address (the model says so, whatever the
    // real server saw: a proxy that used its own address fails PROXY-002 on every hop); its port is the
    // proxy's (the kernel's) choice, known from the far end like a plain proxy's.
    const transparent = !!r.service.transparent;
    const leg = { addr: transparent ? r.cip : canonical(flow.leg.addr), port: flow.leg.port };
    // Server leg: the director originates it (fresh TTL) towards the real server.
    const toRs = pathFrom(lab, director, rs.addr, rs.node);
    const b = hopsAlong(toRs, { ip: { family: r.family, src: leg.addr, dst: rs.addr, ttl: T }, l4: { proto, sport: leg.port, dport: rs.port } }, 'c2s', 'from-director', inbound.wires.length);
    // Back to the leg's address: the director's own, or (transparent) the client's, which the director's
    // policy routing takes to the proxy's socket: the path ends at the director either way.
    const back = pathFrom(lab, rs.node, leg.addr, director, director);
    const c = hopsAlong(back, { ip: { family: r.family, src: rs.addr, dst: leg.addr, ttl: T }, l4: { proto, sport: rs.port, dport: leg.port } }, 's2c', 'to-director', 0);
    // Client leg, the director's side: from VIP:vport, originated by the director.
    const out = pathFrom(lab, director, r.cip, r.client);
    const d = hopsAlong(out, { ip: { family: r.family, src: r.vip, dst: r.cip, ttl: T }, l4: { proto, sport: r.vport, dport: r.cport } }, 's2c', 'from-director', back.wires.length);
    const clientLinks = linksOf(lab, r.client);
    const rsNodes = [...new Set(r.service.realServers.map((x) => x.node))];
    const others = r.service.realServers.filter((x) => x.node !== rs.node);
    return {
      method: 'proxy', flow, family: r.family, protocol: proto, director, vip: r.vip, vport: r.vport, rip: rs.addr, rport: rs.port,
      local: leg,
      directorIngress: arrivalLink(inbound), directorEgress: `${director}:${egressIface(lab, director, rs.addr)}`,
      c2s: [...a.hops, ...b.hops], s2c: [...c.hops, ...d.hops],
      absent: [
        ...rsNodes.flatMap((n) => linksOf(lab, n).flatMap((link) => [
          // Transparent: the client's address is the server leg's, but the client's own connection (its
          // port) still ends at the director, unless the proxy chose that very port for the leg.
          ...(transparent && leg.port === r.cport ? [] : [{
            direction: 'c2s' as const, link, statement: 'PROXY-007',
            shape: { ip: { family: r.family, src: r.cip }, l4: { proto, sport: r.cport } },
            why: transparent ? `real server ${n} must see only the proxy's leg from ${r.cip}:${leg.port}, never the client's own connection from port ${r.cport}`
              : `real server ${n} must see only the proxy's own connection, never the client's ${r.cip}:${r.cport}`,
          }]),
          {
            direction: 'c2s' as const, link, statement: 'PROXY-007',
            shape: { ip: { family: r.family, dst: r.vip }, l4: { proto, dport: r.vport } },
            why: `the client's packets to ${r.vip}:${r.vport} end at the proxy; real server ${n} must see none of them`,
          },
        ])),
        ...r.service.realServers.flatMap((x) => clientLinks.map((link) => ({
          direction: 's2c' as const, link, statement: 'PROXY-001',
          shape: { ip: { family: r.family, src: x.addr }, l4: { proto, sport: x.port } },
          why: `the client must only hear from the VIP, never from real server ${x.node} (${x.addr})`,
        }))),
        ...others.flatMap((x) => linksOf(lab, x.node).map((link) => ({
          direction: 'c2s' as const, link, statement: 'PROXY-002',
          shape: { ip: { family: r.family, src: leg.addr }, l4: { proto, sport: leg.port } },
          why: `the server leg goes to ${rs.node}; ${x.node} must see none of it`,
        }))),
      ],
    };
  }
}

/**
 * The two connections of a proxied flow as plans of their own, each numbered from its originator's first
 * wire: the client leg (client -> director, director -> client) and the server leg (director -> real
 * server and back). Seeded checks and packet accounting carry packets within a leg, never across.
 */
export function proxyLegs(plan: FlowPlan): { client: FlowPlan; server: FlowPlan } {
  const renumber = (hops: HopHeaders[]) => {
    const base = Math.min(...hops.map((h) => h.wire));
    return hops.map((h) => ({ ...h, wire: h.wire - base }));
  };
  const clientSide = (h: HopHeaders) => (h.direction === 'c2s' ? h.ip.dst === plan.vip : h.ip.src === plan.vip);
  return {
    client: { ...plan, c2s: renumber(plan.c2s.filter(clientSide)), s2c: renumber(plan.s2c.filter(clientSide)), absent: [] },
    server: { ...plan, c2s: renumber(plan.c2s.filter((h) => !clientSide(h))), s2c: renumber(plan.s2c.filter((h) => !clientSide(h))), absent: [] },
  };
}
