// The oracle's vocabulary: a flow through a lab, and the headers it must carry on every link it crosses,
// in both directions, for a forwarding method. Plain data; see plan() in ./index.ts.
import type { Family, ForwardingMethod, Protocol, TunnelType } from '../topology/model';

export type Direction = 'c2s' | 's2c';

/** One client connection (TCP) or datagram exchange (UDP) through a service of a lab. */
export interface Flow {
  /** Service name in the Lab model. */
  service: string;
  /** Client node and the address/port it sent from. */
  client: string;
  clientAddr: string;
  clientPort: number;
  /** Node of the real server that served it (the scheduler's choice, as the real server told the client). */
  realServer: string;
  /**
   * The director that forwarded it, when it is not the service's own: in an HA group the VRRP master of the
   * moment (it holds the VIP on the group's segment). Must be a director of the group.
   */
  director?: string;
  /**
   * Method proxy: the server leg's source as the real server saw it (the proxy's address and port, or the
   * client's for a transparent proxy). A proxy picks its own source port, so only the far end can say.
   */
  leg?: { addr: string; port: number };
}

/** Where a stage of the path sits relative to the director: fields change meaning with it. */
export type Stage =
  /** Before the director has handled the packet (the sender, routers on the way in). */
  | 'to-director'
  /** After the director rewrote/forwarded it. */
  | 'from-director'
  /** A path the director is not on at all (DR/TUN replies). */
  | 'bypass';

export interface IpHeader {
  family: Family;
  src: string;
  dst: string;
  /** IPv4 TTL or IPv6 hop limit. */
  ttl: number;
}

export interface L4Header {
  proto: Protocol;
  sport: number;
  dport: number;
}

export interface OuterHeader {
  encap: TunnelType;
  family: Family;
  src: string;
  dst: string;
  ttl: number;
  /** GUE: UDP destination port. */
  guePort?: number;
  /** tun-csum / tun-remcsum: GUE UDP checksum computed, GRE C bit set. */
  csum: boolean;
}

/** The headers of one packet as seen at one end of one wire. */
export interface HopHeaders {
  direction: Direction;
  /** Capture point "node:iface". */
  link: string;
  /** The sender's or the receiver's end of the wire (the same frame is seen on both). */
  end: 'tx' | 'rx';
  /** Index of the wire along this direction's path (0 = the originator's first wire). */
  wire: number;
  segment: string;
  stage: Stage;
  eth: { src: string; dst: string };
  outer?: OuterHeader;
  /** The innermost IP header. */
  ip: IpHeader;
  l4: L4Header;
}

/** A link on which no packet of a direction of the flow (or of a described shape) may appear. */
export interface AbsentRule {
  direction: Direction;
  link: string;
  /** Headers that identify the forbidden packets (only these fields are compared). */
  shape: { outer?: Pick<OuterHeader, 'encap' | 'family'>; ip: Partial<IpHeader> & { family: Family }; l4: Partial<L4Header> & { proto: Protocol } };
  statement: string;
  why: string;
}

export interface FlowPlan {
  method: ForwardingMethod;
  flow: Flow;
  family: Family;
  protocol: Protocol;
  director: string;
  vip: string;
  vport: number;
  rip: string;
  rport: number;
  /** Full-NAT: the director local address and port the real server sees; proxy: the server leg's source. */
  local?: { addr: string; port: number };
  /** The director's interface the client's packets arrive on, and the one it sends to the real server from. */
  directorIngress: string;
  directorEgress: string;
  c2s: HopHeaders[];
  s2c: HopHeaders[];
  absent: AbsentRule[];
}

/** Which conformance statement a field of a hop belongs to (used to attribute a failed check). */
export interface FieldStatements {
  /** When the packet is missing altogether. */
  missing: string;
  /** By layer role and field, e.g. "eth.src", "outer.ttl", "ip.dst", "l4.dport", "*.checksum". */
  fields: Record<string, string>;
  /** Anything else that differs. */
  other: string;
}

export const DEFAULT_INITIAL_TTL = 64;

export interface PlanOptions {
  /** TTL / hop limit the originators (client, real servers) send with (Linux default 64). */
  initialTtl?: number;
}
