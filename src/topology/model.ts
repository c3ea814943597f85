// The validated, fully derived Lab model: plain data, computed once from a topology file.
// Backends, drivers, the oracle and the suites read it; none of them re-derives anything.

export type Role = 'client' | 'director' | 'real-server' | 'router';
export type Protocol = 'tcp' | 'udp' | 'sctp';
/** proxy: a userspace proxy (haproxy, nginx) ends the client's TCP connection and opens its own to the real server (docs/proxy.md). */
export type ForwardingMethod = 'nat' | 'dr' | 'tun' | 'fullnat' | 'proxy';
export type TunnelType = 'ipip' | 'gue' | 'gre';
export type Family = 4 | 6;

/** Where a value came from in the topology file, for error messages and traceability. */
export interface SourceRef {
  file: string;
  line: number;
  col: number;
}

export interface AddrPrefix {
  /** Address without prefix length, e.g. "198.18.1.11" or "2001:db8:0:2::11". */
  addr: string;
  prefixLen: number;
}

export interface InterfaceModel {
  /** Name inside the node, e.g. "eth0". */
  name: string;
  /** Segment (L2 domain or point-to-point link) this interface is attached to. */
  segment: string;
  mac: string;
  ipv4?: AddrPrefix;
  ipv6?: AddrPrefix;
  /** Further addresses on the interface (e.g. Full-NAT local addresses), CIDR form. */
  extraAddrs: string[];
  mtu: number;
}

export interface RouteModel {
  /** Destination prefix in CIDR form, or "default" / "default6". */
  to: string;
  family: Family;
  /** Next-hop address; absent for an on-link or unreachable route. */
  via?: string;
  dev?: string;
  /** Why the harness added this route (for `vslab graph` and debugging). */
  reason: string;
}

export interface TunnelDeviceModel {
  /** Device name inside the node, e.g. "tunl0", "ip6tnl0", "gre-vs". */
  name: string;
  type: 'ipip' | 'ip6tnl' | 'gre' | 'ip6gre' | 'fou';
  /** For a GUE receiver: the UDP port fou listens on. */
  port?: number;
  /** For a GUE receiver: the outer IP family it receives on (fou binds IPv4 and IPv6 separately). */
  outerFamily?: 4 | 6;
  /** Inner protocol carried (4 = IPv4 in, 41 = IPv6 in). */
  ipproto?: number;
  /** Addresses placed on the device (typically the VIPs). */
  addrs: string[];
}

export interface NodeModel {
  name: string;
  role: Role;
  /** Index of the node in the file (stable; used for MACs and names). */
  index: number;
  interfaces: InterfaceModel[];
  /** Extra addresses on lo (VIPs of DR/TUN real servers, the director's VIPs), CIDR form. */
  loopbackAddrs: string[];
  routes: RouteModel[];
  /** sysctl path relative to /proc/sys (e.g. "net/ipv4/ip_forward") -> value. */
  sysctls: Record<string, string>;
  tunnels: TunnelDeviceModel[];
  /** An nftables ruleset the node needs, loaded with `nft -f` when the lab comes up (a director's own rules are its driver's). */
  nftables?: string;
  /** The container image the node runs (docker backend only); absent: vslab's base image. */
  image?: NodeImageModel;
  source?: SourceRef;
}

/** A user's image for a node: their load balancer or server build, run as the node's container. */
export interface NodeImageModel {
  /** An image already in the local Docker daemon (vslab never pulls). */
  ref: string;
  /** Replaces the image's command; absent: the image's own. */
  command?: string[];
  env: Record<string, string>;
  /** Files copied into the container before it starts: `from` is relative to the topology file's folder. */
  files: Array<{ from: string; to: string }>;
}

export interface SegmentMember {
  node: string;
  iface: string;
}

export interface SegmentModel {
  name: string;
  /** 'lan': a bridge; 'p2p': a direct veth pair between exactly two nodes. */
  kind: 'lan' | 'p2p';
  index: number;
  ipv4?: AddrPrefix;
  ipv6?: AddrPrefix;
  mtu: number;
  members: SegmentMember[];
}

export interface TunnelSpec {
  type: TunnelType;
  /** GUE destination UDP port (required for gue). */
  port?: number;
  /** Tunnel flags as ipvsadm spells them: "tun-nocsum", "tun-csum", "tun-remcsum". */
  flags: string[];
}

export interface RealServerModel {
  node: string;
  /** Address of the real server as the director reaches it (RIP). */
  addr: string;
  family: Family;
  port: number;
  weight: number;
  upper: number;
  lower: number;
  method: ForwardingMethod;
  tunnel?: TunnelSpec;
  source?: SourceRef;
}

export interface PersistenceModel {
  timeout: number;
  /** IPv4: dotted netmask; IPv6: prefix length. */
  netmask: string;
}

export interface ServiceModel {
  name: string;
  protocol: Protocol;
  family: Family;
  /** Virtual IP (absent for a pure fwmark service). */
  vip?: string;
  port: number;
  fwmark?: number;
  scheduler: string;
  flags: string[];
  persistence?: PersistenceModel;
  onePacket: boolean;
  /** The node that directs this service. */
  director: string;
  realServers: RealServerModel[];
  /** Full-NAT: the director's local addresses used as source towards real servers. */
  localAddrs?: string[];
  /**
   * Method proxy only: a transparent proxy opens the server leg from the client's address (haproxy
   * `usesrc clientip`, nginx `proxy_bind $remote_addr transparent`); the real servers route the clients'
   * networks via the director (derived), the director's policy routing is the proxy driver's. docs/proxy.md.
   */
  transparent?: boolean;
  source?: SourceRef;
}

export interface LabModel {
  name: string;
  /** Path of the topology file it was read from ("<inline>" otherwise). */
  file: string;
  nodes: NodeModel[];
  segments: SegmentModel[];
  services: ServiceModel[];
  /** Several directors holding the same services (VRRP, connection sync, health checks); docs/ha.md. */
  ha?: HaModel;
}

/** One director of a high-availability group. */
export interface HaDirectorModel {
  node: string;
  priority: number;
  /** Interface on the VRRP segment (the VIPs are put on it while this director is master). */
  vrrpIface: string;
  /** Its IPv4 address there (VRRP adverts come from it). */
  vrrpAddr: string;
  /** Interface the sync daemon multicasts over. */
  syncIface: string;
}

export interface HealthCheckModel {
  type: 'tcp';
  intervalS: number;
  timeoutS: number;
  /** Failed checks after the first before the real server is taken out. */
  retries: number;
}

export interface HaModel {
  /** Highest priority (the initial master) first. */
  directors: HaDirectorModel[];
  /** Segment the VIPs live on; every VIP lies in its subnet, so clients reach whichever director holds it on-link. */
  segment: string;
  routerId: number;
  advertIntervalS: number;
  preempt: boolean;
  preemptDelayS: number;
  /** Absent: no connection synchronisation. */
  /** refreshS: net.ipv4.vs.sync_refresh_period (s; 0 = the kernel's default, off). */
  sync?: { segment: string; syncId: number; threshold: number; period: number; refreshS: number };
  /** Service name -> its health check. */
  healthChecks: Record<string, HealthCheckModel>;
  /** Every VIP the group holds (CIDR with the segment's prefix length). */
  vips: string[];
  source?: SourceRef;
}

export function nodeByName(lab: LabModel, name: string): NodeModel {
  const n = lab.nodes.find((x) => x.name === name);
  if (!n) throw new Error(`lab ${lab.name} has no node named ${name}`);
  return n;
}
