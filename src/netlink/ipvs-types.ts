// Public types of the IPVS client: virtual services, destinations (real servers), statistics, sync
// daemons, timeouts and connection entries, in the vocabulary of ipvsadm. Plain data only; the wire
// encoding lives in ipvs-wire.ts.
import type { IpFamily } from './address';

export type { IpFamily };
export type IpvsProtocol = 'tcp' | 'udp' | 'sctp';

/**
 * How a destination is reached (ipvsadm -m / -g / -i; "Forward" column of ipvsadm -L):
 * masq = NAT, route = direct routing (gatewaying), tunnel = IP encapsulation, local = the director
 * itself. `bypass` only appears on connections (cache bypass), never on a configured destination.
 */
export type ForwardMethod = 'masq' | 'local' | 'tunnel' | 'route' | 'bypass';

export type TunnelType = 'ipip' | 'gue' | 'gre';

/** A service reached by address, protocol and port (ipvsadm -t / -u / --sctp-service). */
export interface AddressServiceKey {
  family: IpFamily;
  protocol: IpvsProtocol;
  address: string;
  port: number;
}

/** A service selected by firewall mark (ipvsadm -f, with -6 for IPv6). */
export interface FwmarkServiceKey {
  family: IpFamily;
  fwmark: number;
}

export type ServiceKey = AddressServiceKey | FwmarkServiceKey;

export function isFwmarkKey(k: ServiceKey): k is FwmarkServiceKey {
  return (k as FwmarkServiceKey).fwmark !== undefined;
}

/** Everything settable on a service besides its key. */
export interface ServiceSettings {
  /** Scheduler name: rr, wrr, lc, wlc, lblc, lblcr, dh, sh, sed, nq, fo, ovf, mh, twos, or "none". */
  scheduler: string;
  /**
   * IP_VS_SVC_F_* bits: PERSISTENT 0x1, ONEPACKET 0x4, SCHED1 0x8, SCHED2 0x10, SCHED3 0x20
   * (see SVC_F; serviceFlags() builds them from names). HASHED (0x2) is the kernel's own and is
   * reported separately as `hashed`.
   */
  flags: number;
  /** Persistence timeout in seconds (meaningful with the PERSISTENT flag). */
  timeout: number;
  /** Persistence granularity: IPv4 dotted mask ("255.255.255.0"), IPv6 prefix length ("64"). */
  netmask: string;
  /** Persistence engine ("sip"), or undefined for none. */
  peName?: string;
}

/** What addService / editService take. Omitted settings get ipvsadm's defaults. */
export type ServiceSpec = ServiceKey &
  Partial<ServiceSettings> & {
    /**
     * Which flag bits this request sets (IPVS_SVC_ATTR_FLAGS carries {flags, mask}; the kernel keeps
     * (old & ~mask) | (flags & mask)). Default 0xffffffff: `flags` replaces all of them, as ipvsadm does.
     */
    flagsMask?: number;
  };

/** Counters and rates of a service or destination. */
export interface IpvsStats {
  conns: number;
  inPkts: number;
  outPkts: number;
  inBytes: number;
  outBytes: number;
  /** Rates, estimated every 2 s: connections/s, packets/s, bytes/s. */
  cps: number;
  inPps: number;
  outPps: number;
  inBps: number;
  outBps: number;
}

/** A service as the kernel reports it. */
export type IpvsService = ServiceKey &
  ServiceSettings & {
    /** The kernel's IP_VS_SVC_F_HASHED bit (set on every service it has hashed). */
    hashed: boolean;
    /** From IPVS_SVC_ATTR_STATS64 when the kernel sends it, else from the 32-bit STATS. */
    stats: IpvsStats;
    /** The 32-bit IPVS_SVC_ATTR_STATS nest as received (counters wrap at 2^32, bytes do not). */
    stats32?: IpvsStats;
  };

export interface TunnelSettings {
  type: TunnelType;
  /** GUE: destination UDP port (required, non-zero). Ignored by the kernel for ipip and gre. */
  port?: number;
  /** IP_VS_TUNNEL_ENCAP_FLAG_CSUM: checksum the encapsulation (--tun-csum). */
  csum?: boolean;
  /** IP_VS_TUNNEL_ENCAP_FLAG_REMCSUM: remote checksum offload (--tun-remcsum). */
  remcsum?: boolean;
}

/** What addDestination / editDestination take. Omitted settings get ipvsadm's defaults. */
export interface DestinationSpec {
  address: string;
  port: number;
  /** Address family of the destination; defaults to the family of `address`. May differ from the
   *  service's only for tunnelled destinations. */
  family?: IpFamily;
  /** Default "route" (direct routing), as ipvsadm. */
  forward?: Exclude<ForwardMethod, 'bypass'>;
  /** 0..2147483647 (ipvsadm allows 0..65535); default 1. */
  weight?: number;
  /** Upper connection threshold (0 = none). */
  upperThreshold?: number;
  /** Lower connection threshold (0 = none). */
  lowerThreshold?: number;
  tunnel?: TunnelSettings;
}

/** A destination as the kernel reports it. */
export interface IpvsDestination {
  address: string;
  port: number;
  family: IpFamily;
  forward: ForwardMethod;
  weight: number;
  upperThreshold: number;
  lowerThreshold: number;
  /** Present when the kernel reports tunnel attributes and the method is "tunnel". */
  tunnel?: Required<Pick<TunnelSettings, 'type' | 'csum' | 'remcsum'>> & { port: number };
  activeConns: number;
  inactiveConns: number;
  persistConns: number;
  stats: IpvsStats;
  stats32?: IpvsStats;
}

/** The three timeouts ipvsadm --set changes (seconds; 0 in a set request = leave unchanged). */
export interface IpvsTimeouts {
  tcp: number;
  tcpFin: number;
  udp: number;
}

export interface IpvsInfo {
  /** IP_VS_VERSION_CODE, e.g. 0x010201. */
  versionCode: number;
  /** "1.2.1" */
  version: string;
  /** Buckets of the connection hash table. */
  connTableSize: number;
}

export type SyncDaemonState = 'master' | 'backup';

export interface SyncDaemonSpec {
  state: SyncDaemonState;
  /** Multicast interface (ipvsadm default eth0). */
  mcastInterface: string;
  /** 0..255 */
  syncId: number;
  /** UDP payload size of sync messages. */
  syncMaxLen?: number;
  /** Multicast group, IPv4 or IPv6 (default 224.0.0.81). */
  mcastGroup?: string;
  mcastPort?: number;
  mcastTtl?: number;
}

export type SyncDaemon = SyncDaemonSpec;

/** One entry of /proc/net/ip_vs_conn (connections and persistence templates). */
export interface IpvsConnection {
  /** "TCP", "UDP", "SCTP", or "IP" for fwmark persistence templates. */
  protocol: string;
  family: IpFamily;
  clientAddress: string;
  clientPort: number;
  virtualAddress: string;
  virtualPort: number;
  /** Family of the destination address (may differ from `family` for tunnelled destinations). */
  destFamily: IpFamily;
  destAddress: string;
  destPort: number;
  /** Protocol state name as the kernel prints it: ESTABLISHED, SYN_RECV, UDP, NONE, ... */
  state: string;
  /** Seconds until the entry expires. */
  expires: number;
  /** A persistence template (client port 0) rather than a connection. */
  template: boolean;
  peName?: string;
  peData?: string;
  /** From /proc/net/ip_vs_conn_sync: whether the entry was created locally or by the sync daemon. */
  origin?: 'local' | 'sync';
}
