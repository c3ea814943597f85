// A client for the kernel's IPVS generic netlink family: what ipvsadm does, as typed calls.
//
//   const ipvs = await IpvsClient.open(new LocalNetlinkTransport('/run/netns/lab-dir'));
//   await ipvs.addService({ family: 4, protocol: 'tcp', address: '198.18.0.10', port: 80, scheduler: 'rr' });
//   await ipvs.addDestination(svc, { address: '198.18.1.11', port: 80, forward: 'masq', weight: 2 });
//
// Every kernel rejection becomes an IpvsError saying which operation on which service/destination
// failed and why. batch() sends many changes with few round trips (what `ipvsadm -R` does one by one).
import { GenlClient, GenlClientOptions, GenlRequest } from './genl';
import { IPVS_CMD, IPVS_GENL_NAME, IPVS_GENL_VERSION } from './ipvs-constants';
import { NamespaceFileReader, readConnections } from './ipvs-conn';
import { IpvsError, IpvsErrorContext, IpvsOperation } from './ipvs-errors';
import type {
  DestinationSpec,
  IpvsConnection,
  IpvsDestination,
  IpvsInfo,
  IpvsService,
  IpvsTimeouts,
  ServiceKey,
  ServiceSpec,
  SyncDaemon,
  SyncDaemonSpec,
  SyncDaemonState,
} from './ipvs-types';
import {
  decodeDaemonReply,
  decodeDestinationReply,
  decodeInfo,
  decodeServiceReply,
  decodeTimeouts,
  encodeDaemon,
  encodeDestination,
  encodeService,
  encodeServiceKey,
  encodeTimeouts,
} from './ipvs-wire';
import type { NetlinkTransport } from './transport';

/** One change for batch(). */
export type IpvsChange =
  | { op: 'addService'; service: ServiceSpec }
  | { op: 'editService'; service: ServiceSpec }
  | { op: 'deleteService'; service: ServiceKey }
  | { op: 'addDestination'; service: ServiceKey; destination: DestinationSpec }
  | { op: 'editDestination'; service: ServiceKey; destination: DestinationSpec }
  | { op: 'deleteDestination'; service: ServiceKey; destination: Pick<DestinationSpec, 'address' | 'port'> & Partial<DestinationSpec> }
  | { op: 'zero'; service?: ServiceKey }
  | { op: 'flush' };

/** A service with its destinations, in kernel order (newest destination first). */
export type IpvsServiceWithDestinations = IpvsService & { destinations: IpvsDestination[] };

export interface IpvsClientOptions extends GenlClientOptions {
  /** Reads files in the director's namespace; needed for connections(). */
  readFile?: NamespaceFileReader;
}

export class IpvsClient {
  private constructor(
    readonly genl: GenlClient,
    readonly familyId: number,
    private readonly readFile?: NamespaceFileReader,
  ) {}

  /** Resolve the IPVS family over `transport` (cached per transport) and return a client. */
  static async open(transport: NetlinkTransport, opts: IpvsClientOptions = {}): Promise<IpvsClient> {
    const genl = new GenlClient(transport, opts);
    const fam = await genl.family(IPVS_GENL_NAME);
    return new IpvsClient(genl, fam.id, opts.readFile);
  }

  private req(cmd: number, attrs: Buffer[], dump = false): GenlRequest {
    return { familyId: this.familyId, cmd, version: IPVS_GENL_VERSION, attrs, dump };
  }

  private async call(ctx: IpvsErrorContext, r: GenlRequest) {
    const [o] = await this.genl.batch([r]);
    if (!o) throw new Error(`${ctx.operation}: no reply`);
    if (!o.ok) throw new IpvsError(ctx, o.errno, o.extack);
    return o.replies;
  }

  private static change(c: IpvsChange): { ctx: IpvsErrorContext; cmd: number; attrs: () => Buffer[] } {
    switch (c.op) {
      case 'addService':
        return { ctx: { operation: 'add service', service: c.service }, cmd: IPVS_CMD.NEW_SERVICE, attrs: () => [encodeService(c.service)] };
      case 'editService':
        return { ctx: { operation: 'edit service', service: c.service }, cmd: IPVS_CMD.SET_SERVICE, attrs: () => [encodeService(c.service)] };
      case 'deleteService':
        return { ctx: { operation: 'delete service', service: c.service }, cmd: IPVS_CMD.DEL_SERVICE, attrs: () => [encodeServiceKey(c.service)] };
      case 'addDestination':
        return {
          ctx: { operation: 'add destination', service: c.service, destination: c.destination },
          cmd: IPVS_CMD.NEW_DEST,
          attrs: () => [encodeServiceKey(c.service), encodeDestination(c.destination, true)],
        };
      case 'editDestination':
        return {
          ctx: { operation: 'edit destination', service: c.service, destination: c.destination },
          cmd: IPVS_CMD.SET_DEST,
          attrs: () => [encodeServiceKey(c.service), encodeDestination(c.destination, true)],
        };
      case 'deleteDestination':
        return {
          ctx: { operation: 'delete destination', service: c.service, destination: c.destination },
          cmd: IPVS_CMD.DEL_DEST,
          attrs: () => [encodeServiceKey(c.service), encodeDestination(c.destination, false)],
        };
      case 'zero':
        return c.service
          ? { ctx: { operation: 'zero counters', service: c.service }, cmd: IPVS_CMD.ZERO, attrs: () => [encodeServiceKey(c.service!)] }
          : { ctx: { operation: 'zero counters' }, cmd: IPVS_CMD.ZERO, attrs: () => [] };
      case 'flush':
        return { ctx: { operation: 'flush' }, cmd: IPVS_CMD.FLUSH, attrs: () => [] };
    }
  }

  /**
   * Apply changes in order with few round trips. The kernel runs every request even after one fails,
   * so the result has one entry per change: null, or the IpvsError of that change. Encoding errors
   * (a malformed address, a weight out of range) are thrown before anything is sent.
   */
  async batch(changes: IpvsChange[]): Promise<Array<IpvsError | null>> {
    const prepared = changes.map((c) => IpvsClient.change(c));
    const reqs = prepared.map((p) => this.req(p.cmd, p.attrs()));
    const outcomes = await this.genl.batch(reqs);
    return outcomes.map((o, i) => (o.ok ? null : new IpvsError(prepared[i]!.ctx, o.errno, o.extack)));
  }

  /** Apply one change, throwing its IpvsError. */
  async apply(change: IpvsChange): Promise<void> {
    const p = IpvsClient.change(change);
    await this.call(p.ctx, this.req(p.cmd, p.attrs()));
  }

  addService(s: ServiceSpec): Promise<void> {
    return this.apply({ op: 'addService', service: s });
  }
  /** Replace a service's settings. Like `ipvsadm -E`, omitted settings go back to their defaults; to
   *  change single flag bits, pass flagsMask. */
  editService(s: ServiceSpec): Promise<void> {
    return this.apply({ op: 'editService', service: s });
  }
  deleteService(k: ServiceKey): Promise<void> {
    return this.apply({ op: 'deleteService', service: k });
  }
  addDestination(k: ServiceKey, d: DestinationSpec): Promise<void> {
    return this.apply({ op: 'addDestination', service: k, destination: d });
  }
  /** Replace a destination's settings (omitted ones go back to ipvsadm's defaults, like `ipvsadm -e`). */
  editDestination(k: ServiceKey, d: DestinationSpec): Promise<void> {
    return this.apply({ op: 'editDestination', service: k, destination: d });
  }
  deleteDestination(k: ServiceKey, d: Pick<DestinationSpec, 'address' | 'port'>): Promise<void> {
    return this.apply({ op: 'deleteDestination', service: k, destination: d });
  }
  /** Zero the counters of one service, or of everything. */
  zero(k?: ServiceKey): Promise<void> {
    return this.apply(k ? { op: 'zero', service: k } : { op: 'zero' });
  }
  /** Delete every service (ipvsadm -C). */
  flush(): Promise<void> {
    return this.apply({ op: 'flush' });
  }

  async getService(k: ServiceKey): Promise<IpvsService> {
    const replies = await this.call({ operation: 'get service', service: k }, this.req(IPVS_CMD.GET_SERVICE, [encodeServiceKey(k)]));
    const r = replies[0];
    if (!r) throw new IpvsError({ operation: 'get service', service: k }, 3 /* ESRCH */);
    return decodeServiceReply(r.attrs);
  }

  /** All services, in the kernel's dump order. */
  async listServices(): Promise<IpvsService[]> {
    const replies = await this.call({ operation: 'list services' }, this.req(IPVS_CMD.GET_SERVICE, [], true));
    return replies.map((r) => decodeServiceReply(r.attrs));
  }

  /** Destinations of a service in kernel order (newest first; ipvsadm -L --nosort shows this order). */
  async listDestinations(k: ServiceKey): Promise<IpvsDestination[]> {
    const replies = await this.call({ operation: 'list destinations', service: k }, this.req(IPVS_CMD.GET_DEST, [encodeServiceKey(k)], true));
    // The kernel answers a dump for a service that does not exist with an empty dump, not ESRCH.
    if (replies.length === 0) await this.getService(k).catch((e: IpvsError) => {
      throw new IpvsError({ operation: 'list destinations', service: k }, e.errno, e.extack);
    });
    return replies.map((r) => decodeDestinationReply(r.attrs, k.family));
  }

  /** Every service with its destinations (what ipvsadm -Ln shows). */
  async snapshot(): Promise<IpvsServiceWithDestinations[]> {
    const services = await this.listServices();
    const out: IpvsServiceWithDestinations[] = [];
    // one round trip for all destination dumps
    const outcomes = await this.genl.batch(services.map((s) => this.req(IPVS_CMD.GET_DEST, [encodeServiceKey(s)], true)));
    services.forEach((s, i) => {
      const o = outcomes[i]!;
      if (!o.ok) throw new IpvsError({ operation: 'list destinations', service: s }, o.errno, o.extack);
      out.push({ ...s, destinations: o.replies.map((r) => decodeDestinationReply(r.attrs, s.family)) });
    });
    return out;
  }

  async info(): Promise<IpvsInfo> {
    const replies = await this.call({ operation: 'get info' }, this.req(IPVS_CMD.GET_INFO, []));
    if (!replies[0]) throw new Error('get info: the kernel sent no reply');
    return decodeInfo(replies[0].attrs);
  }

  async getTimeouts(): Promise<IpvsTimeouts> {
    const replies = await this.call({ operation: 'get timeouts' }, this.req(IPVS_CMD.GET_CONFIG, []));
    if (!replies[0]) throw new Error('get timeouts: the kernel sent no reply');
    return decodeTimeouts(replies[0].attrs);
  }

  /** Set the TCP, TCP FIN and UDP timeouts (seconds). Omitted or 0 leaves a timeout unchanged. */
  async setTimeouts(t: Partial<IpvsTimeouts>): Promise<void> {
    await this.call({ operation: 'set timeouts' }, this.req(IPVS_CMD.SET_CONFIG, encodeTimeouts(t)));
  }

  async startDaemon(d: SyncDaemonSpec): Promise<void> {
    await this.call({ operation: 'start sync daemon', daemon: d }, this.req(IPVS_CMD.NEW_DAEMON, [encodeDaemon(d, true)]));
  }

  async stopDaemon(state: SyncDaemonState): Promise<void> {
    const d = { state, mcastInterface: '', syncId: 0 };
    await this.call({ operation: 'stop sync daemon', daemon: d }, this.req(IPVS_CMD.DEL_DAEMON, [encodeDaemon(d, false)]));
  }

  async listDaemons(): Promise<SyncDaemon[]> {
    const replies = await this.call({ operation: 'list sync daemons' }, this.req(IPVS_CMD.GET_DAEMON, [], true));
    return replies.map((r) => decodeDaemonReply(r.attrs));
  }

  /** The connection table (and persistence templates), read from /proc/net/ip_vs_conn[_sync]. */
  async connections(opts: { sync?: boolean } = {}): Promise<IpvsConnection[]> {
    if (!this.readFile) {
      throw new Error('connections(): this IpvsClient was opened without a readFile function for the director namespace');
    }
    return readConnections(this.readFile, opts);
  }
}

export type { IpvsOperation };
