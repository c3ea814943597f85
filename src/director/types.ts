// What every director driver offers (kernel IPVS, nftables, haproxy, a native Full-NAT program...).
// A driver programs the services of one director node from the Lab model, reads back what the
// implementation actually holds, says how the two differ, and reports counters and connections in one
// vocabulary. Capabilities say what the implementation can express, so suites can mark a test "not
// applicable" instead of failing it (a director without tunnels, without persistence...).
import type { BackgroundClass } from '../oracle/accounting';
import type { Family, ForwardingMethod, Protocol, ServiceModel, TunnelType } from '../topology/model';

export interface DirectorCapabilities {
  /** Driver kind, e.g. "ipvs". */
  kind: string;
  /** Human-readable description of the implementation under test, e.g. "Linux IPVS 1.2.1 (kernel 6.12.95)". */
  implementation: string;
  protocols: Protocol[];
  families: Family[];
  /** Forwarding methods of the Lab model the driver can program. */
  methods: ForwardingMethod[];
  /** Scheduler names that can be programmed. */
  schedulers: string[];
  /** Scheduler flags ("sh-port", "flag-1", ...) that can be programmed. */
  schedulerFlags: string[];
  tunnelTypes: TunnelType[];
  /** Tunnel checksum flags ("tun-csum", "tun-remcsum", "tun-nocsum"). */
  tunnelFlags: string[];
  /** Real servers of another address family than the service (IPVS: tunnels only). */
  mixedFamilyTunnels: boolean;
  persistence: boolean;
  /** Persistence engines ("sip"). */
  persistenceEngines: string[];
  onePacket: boolean;
  fwmark: boolean;
  /** Upper/lower connection thresholds per real server. */
  thresholds: boolean;
  /** Weight 0 quiesces a real server (kept, gets no new connections). */
  weightZero: boolean;
  /**
   * What counts against a real server's upper threshold: 'active+inactive' for kernel IPVS (closing and
   * TIME_WAIT entries count until they expire, ip_vs_dest_totalconns), 'active' for open connections only
   * (haproxy maxconn). Absent: 'active'.
   */
  thresholdCounts?: 'active' | 'active+inactive';
  /** Per-service and per-real-server counters (connections, packets, bytes). */
  stats: boolean;
  /** Estimated rates (cps, pps, bps). */
  rates: boolean;
  /**
   * How long a packet may take to show in the counters, in ms: kernel IPVS folds its per-CPU counters into
   * what it reports every 2 s; 0 for counters read live. Absent: 2000 (assume folding).
   */
  countersFoldMs?: number;
  /** A readable connection table. */
  connections: boolean;
  /** A proxy's transparent variant: the server leg from the client's address (absent: no). */
  transparent?: boolean;
  /** Methods whose connections appear in that table, when not all of `methods` do (nftables DR has no conntrack). */
  connectionMethods?: ForwardingMethod[];
  /** Methods whose traffic the counters count, when not all of `methods` do. */
  statsMethods?: ForwardingMethod[];
  /**
   * Packets the implementation legitimately emits besides forwarding (health-check probes, keepalives):
   * classes the forwarding suite's packet accounting counts instead of failing (src/oracle/background.ts).
   * Kernel IPVS declares none.
   */
  background?: BackgroundClass[];
}

/** A real server as the director holds it, in Lab-model terms. */
export interface DirectorRealServer {
  addr: string;
  family: Family;
  port: number;
  weight: number;
  upper: number;
  lower: number;
  /** The model method it corresponds to; "fullnat" is reported as "nat" by drivers that cannot tell. */
  method: ForwardingMethod | 'local';
  tunnel?: { type: TunnelType; port?: number; flags: string[] };
  activeConns?: number;
  inactiveConns?: number;
  persistConns?: number;
}

/** A service as the director holds it, in Lab-model terms. */
export interface DirectorService {
  /** The model service it matches (by key), when there is one. */
  name?: string;
  protocol: Protocol;
  family: Family;
  vip?: string;
  port: number;
  fwmark?: number;
  scheduler: string;
  flags: string[];
  persistence?: { timeout: number; netmask: string };
  onePacket: boolean;
  persistenceEngine?: string;
  /** A proxy opening the server leg from the client's address (read back from the proxy's configuration). */
  transparent?: boolean;
  realServers: DirectorRealServer[];
}

/** One difference between what the model asks and what the director holds. */
export interface DirectorDifference {
  /** Model service name, or the director's key for a service the model does not have. */
  service: string;
  /** "addr:port" of the real server, for real-server differences. */
  realServer?: string;
  /** "missing" (asked, not held), "unexpected" (held, not asked) or a field name. */
  what: 'missing' | 'unexpected' | string;
  expected?: unknown;
  actual?: unknown;
}

export interface DirectorCounters {
  conns: number;
  inPkts: number;
  outPkts: number;
  inBytes: number;
  outBytes: number;
  cps: number;
  inPps: number;
  outPps: number;
  inBps: number;
  outBps: number;
}

export interface DirectorServiceStats {
  service: string;
  counters: DirectorCounters;
  realServers: Array<{
    addr: string;
    port: number;
    counters: DirectorCounters;
    activeConns: number;
    inactiveConns: number;
    persistConns: number;
  }>;
}

/** One connection (or persistence template) the director tracks. */
export interface DirectorConnection {
  protocol: string;
  family: Family;
  client: { addr: string; port: number };
  virtual: { addr: string; port: number };
  realServer: { addr: string; port: number; family: Family };
  /** Protocol state as the implementation names it (IPVS: ESTABLISHED, SYN_RECV, UDP, NONE...). */
  state: string;
  /** Seconds until it expires. */
  expires: number;
  /** A persistence template rather than a connection. */
  template: boolean;
}

export interface ApplyResult {
  /** Changes sent to the director (0 when it already matched). */
  changes: number;
  /** What was done, one line each, for logs: "add service web4", "edit real server 198.18.1.11:8080 of web4". */
  log: string[];
  /** Read back after applying: what still differs from the model (empty when the director took it all as asked). */
  differences: DirectorDifference[];
}

export interface ApplyOptions {
  /**
   * "reconcile" (default): change only what differs, keeping connections and counters of services that
   * stay. "replace": remove everything and add the services afresh, so the director's internal order
   * (IPVS keeps real servers newest-first) depends only on the model's order.
   */
  mode?: 'reconcile' | 'replace';
}

/** Thrown by apply() when the model asks for something the driver cannot express or the director rejects. */
export class DirectorApplyError extends Error {
  override name = 'DirectorApplyError';
  constructor(
    readonly director: string,
    readonly problems: string[],
  ) {
    super(`director ${director}: ${problems.length} problem(s) applying the services:\n  - ${problems.join('\n  - ')}`);
  }
}

export interface DirectorDriver {
  readonly kind: string;
  /** The director node this driver programs. */
  readonly node: string;
  capabilities(): Promise<DirectorCapabilities>;
  /**
   * Why this implementation cannot express `service` (a scheduler, method or feature it lacks), or
   * undefined when it can. Such services are not programmed, and tests using them are not applicable.
   * Drivers without it take every service the Lab model can describe.
   */
  unsupported?(service: ServiceModel): string | undefined;
  /**
   * Make the director hold exactly `services` (those of the model whose director is this node):
   * add what is missing, change what differs, remove what the model does not have. Idempotent.
   */
  apply(services: ServiceModel[], opts?: ApplyOptions): Promise<ApplyResult>;
  /** What the director holds now, in model terms (names filled in for services matching `services`). */
  readBack(services?: ServiceModel[]): Promise<DirectorService[]>;
  /** Differences between `services` and what the director holds; empty when they agree. */
  diff(services: ServiceModel[]): Promise<DirectorDifference[]>;
  stats(services?: ServiceModel[]): Promise<DirectorServiceStats[]>;
  connections(): Promise<DirectorConnection[]>;
  /** Remove every service. */
  flush(): Promise<void>;
  /** Release sockets and other resources (does not change the director). */
  close(): Promise<void>;
}

/** The services of a model that a director node directs. */
export function servicesOf(services: ServiceModel[], director: string): ServiceModel[] {
  return services.filter((s) => s.director === director);
}
