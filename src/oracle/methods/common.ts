// Shared by the per-method oracles: resolving a flow against the Lab model, and laying headers out along
// a routed path (one hop per wire end, TTL decremented by every forwarding node).
import { canonical, familyOf } from '../../topology/addr';
import type { Family, LabModel, RealServerModel, ServiceModel } from '../../topology/model';
import { linkName, nodeOf, OracleRouteError, routedPath, routeLookup, type RoutedPath, type WireCrossing } from '../route';
import type { Direction, Flow, HopHeaders, IpHeader, L4Header, OuterHeader, PlanOptions, Stage } from '../types';
import { DEFAULT_INITIAL_TTL } from '../types';

export interface ResolvedFlow {
  flow: Flow;
  service: ServiceModel;
  realServer: RealServerModel;
  family: Family;
  vip: string;
  vport: number;
  client: string;
  cip: string;
  cport: number;
}

export function resolveFlow(lab: LabModel, flow: Flow): ResolvedFlow {
  const service = lab.services.find((s) => s.name === flow.service);
  if (!service) throw new OracleRouteError(`lab ${lab.name} has no service ${flow.service}`);
  if (!service.vip) throw new OracleRouteError(`service ${service.name} has no VIP; the forwarding oracle needs one`);
  const family = service.family;
  if (familyOf(flow.clientAddr) !== family) throw new OracleRouteError(`flow from ${flow.clientAddr} does not match service ${service.name} (IPv${family})`);
  const candidates = service.realServers.filter((r) => r.node === flow.realServer);
  if (!candidates.length) throw new OracleRouteError(`real server ${flow.realServer} does not serve ${service.name} (it has ${service.realServers.map((r) => r.node).join(', ')})`);
  nodeOf(lab, flow.client);
  let svc = service;
  if (flow.director && flow.director !== service.director) {
    if (!lab.ha?.directors.some((d) => d.node === flow.director) || !lab.ha.directors.some((d) => d.node === service.director)) {
      throw new OracleRouteError(`flow of ${service.name} through ${flow.director}: only the directors of an ha group share a service (${service.name} is directed by ${service.director})`);
    }
    svc = { ...service, director: flow.director };
  }
  return {
    flow, service: svc, realServer: candidates[0], family, vip: canonical(service.vip), vport: service.port,
    client: flow.client, cip: canonical(flow.clientAddr), cport: flow.clientPort,
  };
}

/** Headers of a packet before it enters a wire; the TTL given is the one it carries on that wire. */
export interface PacketHeaders {
  outer?: OuterHeader;
  ip: IpHeader;
  l4: L4Header;
}

/**
 * Hops along `path`: both ends of every wire. The packet leaves the first node with `start`; every
 * forwarder decrements the TTL (of the outer header when there is one, as a router only sees that).
 */
export function hopsAlong(path: RoutedPath, start: PacketHeaders, direction: Direction, stage: Stage, wireOffset: number): { hops: HopHeaders[]; last: PacketHeaders } {
  const hops: HopHeaders[] = [];
  let h: PacketHeaders = clone(start);
  path.wires.forEach((w: WireCrossing, k: number) => {
    if (k > 0) h = decremented(h);
    for (const end of ['tx', 'rx'] as const) {
      const at = end === 'tx' ? w.from : w.to;
      hops.push({
        direction, link: linkName(at), end, wire: wireOffset + k, segment: w.segment, stage,
        eth: { src: w.from.mac, dst: w.to.mac }, ...(h.outer ? { outer: { ...h.outer } } : {}), ip: { ...h.ip }, l4: { ...h.l4 },
      });
    }
  });
  return { hops, last: h };
}

function clone(h: PacketHeaders): PacketHeaders {
  return { ...(h.outer ? { outer: { ...h.outer } } : {}), ip: { ...h.ip }, l4: { ...h.l4 } };
}

/** One forwarding step: the outermost TTL goes down by one. */
export function decremented(h: PacketHeaders): PacketHeaders {
  const c = clone(h);
  if (c.outer) c.outer.ttl -= 1;
  else c.ip.ttl -= 1;
  return c;
}

/** The path from the client to the director that holds the VIP (the director takes the packet there). */
export function pathToDirector(lab: LabModel, r: ResolvedFlow): RoutedPath {
  const p = routedPath(lab, r.client, r.vip, (n) => n.name === r.service.director, r.service.director);
  if (p.end !== r.service.director) throw new OracleRouteError(`packets from ${r.client} to ${r.vip} end at ${p.end}, not at the director ${r.service.director}`);
  return p;
}

export function pathFrom(lab: LabModel, from: string, dst: string, expectEnd?: string, stop?: string): RoutedPath {
  const p = routedPath(lab, from, dst, stop ? (n) => n.name === stop : undefined);
  if (expectEnd && p.end !== expectEnd) throw new OracleRouteError(`packets from ${from} to ${dst} end at ${p.end}, not at ${expectEnd}`);
  return p;
}

/** The director's interface out of which it reaches `addr`. */
export function egressIface(lab: LabModel, node: string, addr: string): string {
  const d = routeLookup(nodeOf(lab, node), addr);
  if (d.kind !== 'forward') throw new OracleRouteError(`node ${node} has no route out to ${addr}`);
  return d.iface.name;
}

/** The link (node:iface) a path's last wire arrives on. */
export function arrivalLink(p: RoutedPath): string {
  const w = p.wires[p.wires.length - 1];
  if (!w) throw new OracleRouteError('empty path');
  return linkName(w.to);
}

/** Every interface of a node as links. */
export function linksOf(lab: LabModel, node: string): string[] {
  return nodeOf(lab, node).interfaces.map((i) => `${node}:${i.name}`);
}

/**
 * What every method's plan starts with: the flow resolved against the lab (service, real server) and the
 * client's packet, CIP:cport -> VIP:vport with the initial TTL, on every hop up to the director.
 */
export function clientToDirector(lab: LabModel, flow: Flow, opts: PlanOptions) {
  const r = resolveFlow(lab, flow);
  const T = opts.initialTtl ?? DEFAULT_INITIAL_TTL;
  const proto = r.service.protocol;
  const inbound = pathToDirector(lab, r);
  const a = hopsAlong(inbound, { ip: { family: r.family, src: r.cip, dst: r.vip, ttl: T }, l4: { proto, sport: r.cport, dport: r.vport } }, 'c2s', 'to-director', 0);
  return { r, T, rs: r.realServer, director: r.service.director, proto, inbound, a };
}
