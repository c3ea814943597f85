// The "ipvs" director driver: kernel IPVS programmed over generic netlink with vslab's own client.
//
// apply() reconciles the kernel's table with the model's services in one batch of requests, then reads
// the table back and reports any difference. Real servers are added in the model's order, exactly as
// `ipvsadm -R` adds the -a lines of a file; the kernel keeps them newest first (ipvs-semantics.md
// §1.2), which is the order its schedulers scan.
//
// Full-NAT is IPVS masquerading plus source NAT: opened on a lab node (the registry does that), the driver
// also loads the Full-NAT source-NAT table (src/director/fullnat-snat.ts) and turns net.ipv4.vs.conntrack
// on, without which those rules never see IPVS-forwarded packets. Opened on a bare DirectorHost (unit
// tests, the scheduler replayer), it programs kernel IPVS's table only.
//
// capabilities() asks the kernel rather than guessing from a version number: it tries each scheduler,
// persistence engine and tunnel type on a scratch fwmark service and removes it again.
import * as fs from 'fs';
import { canonicalAddress } from '../netlink/address';
import { IpvsClient, IpvsChange, IpvsServiceWithDestinations } from '../netlink/ipvs';
import type { IpvsError } from '../netlink/ipvs-errors';
import type { DestinationSpec, IpvsDestination, ServiceKey } from '../netlink/ipvs-types';
import { NETLINK_GENERIC } from '../netlink/transport';
import type { LabNode } from '../backend/types';
import type { LabModel, ServiceModel } from '../topology/model';
import { pairRealServers } from './diff';
import { fullnatSnatRuleset, loadFullnatSnat } from './fullnat-snat';
import { directorHost, type DirectorHost } from './host';
import type { DirectorDriverDefinition } from './registry';
import {
  destId,
  destinationSpecOf,
  directorServiceOf,
  keyId,
  serviceKeyOf,
  serviceSpecOf,
} from './ipvs-model';
import {
  ApplyOptions,
  ApplyResult,
  DirectorApplyError,
  DirectorCapabilities,
  DirectorConnection,
  DirectorCounters,
  DirectorDifference,
  DirectorDriver,
  DirectorService,
  DirectorServiceStats,
} from './types';

/** Every scheduler mainline IPVS has had (ip_vs_<name>.ko). */
export const IPVS_SCHEDULERS = ['rr', 'wrr', 'lc', 'wlc', 'lblc', 'lblcr', 'dh', 'sh', 'sed', 'nq', 'fo', 'ovf', 'mh', 'twos'];
const PROBE_FWMARK = 0x7ffffff0;

export class IpvsDirector implements DirectorDriver {
  readonly kind = 'ipvs';
  private caps?: Promise<DirectorCapabilities>;

  private constructor(
    private readonly host: DirectorHost,
    readonly client: IpvsClient,
    private readonly lab?: IpvsLabContext,
  ) {}

  get node(): string {
    return this.host.name;
  }

  /** What this kernel's IPVS cannot hold: the model's limits, then (once probed) a scheduler it has no module for. */
  unsupported(s: ServiceModel): string | undefined {
    const why = ipvsDeclines(s);
    if (why) return why;
    const have = this.probed?.schedulers;
    if (have && !have.includes(s.scheduler)) return `scheduler ${s.scheduler}: this kernel's IPVS cannot load ip_vs_${s.scheduler} (it has ${have.join(', ')})`;
    return undefined;
  }

  /** The capabilities once probed (unsupported() is asked after capabilities() has resolved). */
  private probed?: DirectorCapabilities;

  /** `lab`: the director's node and model, for the host settings Full-NAT needs (see above). */
  static async open(host: DirectorHost, lab?: IpvsLabContext): Promise<IpvsDirector> {
    const client = await IpvsClient.open(host.netlink(NETLINK_GENERIC), { readFile: (p) => host.readFile(p) });
    return new IpvsDirector(host, client, lab);
  }

  /** Full-NAT's source NAT and IPVS conntrack on the director node (only when opened on a lab node). */
  private async hostSettings(services: ServiceModel[]): Promise<string[]> {
    if (!this.lab) return [];
    const ruleset = fullnatSnatRuleset({ ...this.lab.model, services }, this.node);
    await loadFullnatSnat(this.lab.node, ruleset);
    if (!ruleset) return [];
    const r = await this.lab.node.exec(['sh', '-c', 'echo 1 > /proc/sys/net/ipv4/vs/conntrack']);
    if (r.code !== 0) throw new DirectorApplyError(this.node, [`cannot enable net.ipv4.vs.conntrack for Full-NAT: ${r.stderr.trim()}`]);
    return ['load the Full-NAT source-NAT table (inet vslab_fullnat)', 'net.ipv4.vs.conntrack = 1 (Full-NAT source NAT sees IPVS-forwarded packets)'];
  }

  capabilities(): Promise<DirectorCapabilities> {
    this.caps ??= this.probe().then((c) => (this.probed = c));
    return this.caps;
  }

  private async probe(): Promise<DirectorCapabilities> {
    const info = await this.client.info();
    let kernel = '';
    try {
      kernel = (await this.host.readFile('/proc/sys/kernel/osrelease')).trim();
    } catch {
      /* not fatal */
    }
    const key: ServiceKey = { family: 4, fwmark: PROBE_FWMARK };
    const exists = await this.client.getService(key).then(
      () => true,
      () => false,
    );
    if (exists) throw new Error(`director ${this.node}: fwmark ${PROBE_FWMARK} is in use; capabilities() needs it as a scratch service`);
    // One add + delete per scheduler, all in one batch.
    const schedResults = await this.client.batch(
      IPVS_SCHEDULERS.flatMap((sched): IpvsChange[] => [
        { op: 'addService', service: { ...key, scheduler: sched } },
        { op: 'deleteService', service: key },
      ]),
    );
    const schedulers = IPVS_SCHEDULERS.filter((_, i) => schedResults[2 * i] === null);
    const peOk = await this.client.batch([
      { op: 'addService', service: { ...key, scheduler: 'rr', flags: 1, timeout: 60, peName: 'sip' } },
      { op: 'deleteService', service: key },
    ]);
    // Tunnel types: add tunnelled destinations, read them back (kernels before 5.3 ignore the
    // tunnel attributes and report none).
    await this.client.addService({ ...key, scheduler: 'rr' });
    const tunnelTypes: Array<'ipip' | 'gue' | 'gre'> = ['ipip'];
    let mixed = false;
    try {
      const probes: Array<[DestinationSpec, 'gue' | 'gre' | 'mixed']> = [
        [{ address: '198.18.255.1', port: 0, forward: 'tunnel', tunnel: { type: 'gue', port: 6080 } }, 'gue'],
        [{ address: '198.18.255.2', port: 0, forward: 'tunnel', tunnel: { type: 'gre' } }, 'gre'],
        [{ address: '2001:db8:ffff:ffff::1', port: 0, forward: 'tunnel' }, 'mixed'],
      ];
      const res = await this.client.batch(probes.map(([d]) => ({ op: 'addDestination', service: key, destination: d })));
      const back = await this.client.listDestinations(key);
      probes.forEach(([d, what], i) => {
        if (res[i]) return;
        const got = back.find((b) => b.address === canonicalAddress(d.address));
        if (what === 'mixed') mixed = !!got;
        else if (got?.tunnel?.type === what) tunnelTypes.push(what);
      });
    } finally {
      await this.client.deleteService(key);
    }
    return {
      kind: 'ipvs',
      implementation: `Linux IPVS ${info.version}${kernel ? ` (kernel ${kernel})` : ''}`,
      protocols: ['tcp', 'udp', 'sctp'],
      families: [4, 6],
      methods: ['nat', 'dr', 'tun', 'fullnat'],
      schedulers,
      schedulerFlags: ['flag-1', 'flag-2', 'flag-3', 'sh-fallback', 'sh-port', 'mh-fallback', 'mh-port'],
      tunnelTypes,
      tunnelFlags: tunnelTypes.length > 1 ? ['tun-nocsum', 'tun-csum', 'tun-remcsum'] : [],
      mixedFamilyTunnels: mixed,
      persistence: true,
      persistenceEngines: peOk[0] === null ? ['sip'] : [],
      onePacket: true,
      fwmark: true,
      thresholds: true,
      weightZero: true,
      stats: true,
      rates: true,
      countersFoldMs: 2000,
      thresholdCounts: 'active+inactive',
      connections: true,
    };
  }

  private checkDirector(services: ServiceModel[]): void {
    const foreign = services.filter((s) => s.director !== this.node);
    if (foreign.length) {
      throw new DirectorApplyError(
        this.node,
        foreign.map((s) => `service ${s.name} is directed by ${s.director}, not ${this.node}`),
      );
    }
  }

  async apply(services: ServiceModel[], opts: ApplyOptions = {}): Promise<ApplyResult> {
    this.checkDirector(services);
    const problems: string[] = [];
    const desired = new Map<string, ServiceModel>();
    for (const s of services) {
      try {
        const id = keyId(serviceKeyOf(s));
        if (desired.has(id)) problems.push(`services ${desired.get(id)!.name} and ${s.name} are the same IPVS service (${id})`);
        desired.set(id, s);
        serviceSpecOf(s);
      } catch (e) {
        problems.push((e as Error).message);
      }
    }
    if (problems.length) throw new DirectorApplyError(this.node, problems);

    const changes: IpvsChange[] = [];
    const log: string[] = [];
    const names: string[] = [];
    const push = (c: IpvsChange, line: string, name: string) => {
      changes.push(c);
      log.push(line);
      names.push(name);
    };
    const current = new Map<string, IpvsServiceWithDestinations>();
    if (opts.mode === 'replace') {
      push({ op: 'flush' }, 'flush', '(all)');
    } else {
      for (const s of await this.client.snapshot()) current.set(keyId(s), s);
    }

    for (const [id, cur] of current) {
      if (!desired.has(id)) push({ op: 'deleteService', service: cur }, `delete service ${id} (not in the model)`, id);
    }
    for (const [id, s] of desired) {
      const spec = serviceSpecOf(s);
      const key = serviceKeyOf(s);
      const cur = current.get(id);
      if (!cur) {
        push({ op: 'addService', service: spec }, `add service ${s.name} (${id})`, s.name);
        for (const r of s.realServers) {
          const d = destinationSpecOf(r);
          push({ op: 'addDestination', service: key, destination: d }, `add real server ${destId(d.address, d.port)} to ${s.name}`, s.name);
        }
        continue;
      }
      const settingsDiffer =
        cur.scheduler !== spec.scheduler ||
        cur.flags !== spec.flags ||
        (((spec.flags ?? 0) & 1) !== 0 && (cur.timeout !== spec.timeout || !sameNetmask(cur.netmask, spec.netmask!, s.family))) ||
        (cur.peName ?? '') !== '';
      if (settingsDiffer) push({ op: 'editService', service: spec }, `edit service ${s.name} (${id})`, s.name);
      const want = new Map(s.realServers.map((r) => [destId(r.addr, r.port), destinationSpecOf(r)]));
      for (const d of cur.destinations) {
        const did = destId(d.address, d.port);
        if (!want.has(did)) push({ op: 'deleteDestination', service: key, destination: { address: d.address, port: d.port } }, `delete real server ${did} from ${s.name} (not in the model)`, s.name);
      }
      for (const [did, d] of want) {
        const have = cur.destinations.find((x) => destId(x.address, x.port) === did);
        if (!have) push({ op: 'addDestination', service: key, destination: d }, `add real server ${did} to ${s.name}`, s.name);
        else if (destinationDiffers(have, d)) push({ op: 'editDestination', service: key, destination: d }, `edit real server ${did} of ${s.name}`, s.name);
      }
    }

    const results = changes.length ? await this.client.batch(changes) : [];
    const failed = results
      .map((e, i) => (e ? `${names[i]}: ${(e as IpvsError).message}` : undefined))
      .filter((x): x is string => !!x);
    if (failed.length) throw new DirectorApplyError(this.node, failed);
    log.push(...(await this.hostSettings(services)));
    const differences = await this.diff(services);
    return { changes: changes.length, log, differences };
  }

  async readBack(services: ServiceModel[] = []): Promise<DirectorService[]> {
    const byId = new Map(services.map((s) => [keyId(serviceKeyOf(s)), s]));
    return (await this.client.snapshot()).map((s) => directorServiceOf(s, byId.get(keyId(s))));
  }

  async diff(services: ServiceModel[]): Promise<DirectorDifference[]> {
    const out: DirectorDifference[] = [];
    const snap = await this.client.snapshot();
    const held = new Map(snap.map((s) => [keyId(s), s]));
    const asked = new Map(services.map((s) => [keyId(serviceKeyOf(s)), s]));
    for (const [id, s] of held) if (!asked.has(id)) out.push({ service: id, what: 'unexpected' });
    for (const [id, want] of asked) {
      const cur = held.get(id);
      if (!cur) {
        out.push({ service: want.name, what: 'missing', expected: id });
        continue;
      }
      const got = directorServiceOf(cur, want);
      const field = (what: string, expected: unknown, actual: unknown, rs?: string) => {
        if (JSON.stringify(expected) !== JSON.stringify(actual)) out.push({ service: want.name, ...(rs ? { realServer: rs } : {}), what, expected, actual });
      };
      field('scheduler', want.scheduler, got.scheduler);
      field('flags', [...want.flags].sort(), [...got.flags].sort());
      field('onePacket', want.onePacket, got.onePacket);
      field('persistence', want.persistence ? normPersistence(want.persistence, want.family) : undefined, got.persistence ? normPersistence(got.persistence, got.family) : undefined);
      if (got.persistenceEngine) field('persistenceEngine', undefined, got.persistenceEngine);
      for (const [rid, r, g] of pairRealServers(want, got, destId, out)) {
        field('weight', r.weight, g.weight, rid);
        field('upper', r.upper, g.upper, rid);
        field('lower', r.lower, g.lower, rid);
        field('method', r.method, g.method, rid);
        field('family', r.family, g.family, rid);
        if (r.method === 'tun') {
          const t = r.tunnel ?? { type: 'ipip' as const, flags: [] };
          const wantT = { type: t.type, flags: t.flags.filter((f) => f !== 'tun-nocsum').sort(), ...(t.type === 'gue' ? { port: t.port } : {}) };
          const gt = g.tunnel ? { type: g.tunnel.type, flags: [...g.tunnel.flags].sort(), ...(g.tunnel.type === 'gue' ? { port: g.tunnel.port } : {}) } : undefined;
          field('tunnel', wantT, gt, rid);
        }
      }
    }
    return out;
  }

  async stats(services: ServiceModel[] = []): Promise<DirectorServiceStats[]> {
    const byId = new Map(services.map((s) => [keyId(serviceKeyOf(s)), s.name]));
    return (await this.client.snapshot()).map((s) => ({
      service: byId.get(keyId(s)) ?? keyId(s),
      counters: counters(s.stats),
      realServers: s.destinations.map((d) => ({
        addr: d.address,
        port: d.port,
        counters: counters(d.stats),
        activeConns: d.activeConns,
        inactiveConns: d.inactiveConns,
        persistConns: d.persistConns,
      })),
    }));
  }

  async connections(): Promise<DirectorConnection[]> {
    return (await this.client.connections()).map((c) => ({
      protocol: c.protocol,
      family: c.family,
      client: { addr: c.clientAddress, port: c.clientPort },
      virtual: { addr: c.virtualAddress, port: c.virtualPort },
      realServer: { addr: c.destAddress, port: c.destPort, family: c.destFamily },
      state: c.state,
      expires: c.expires,
      template: c.template,
    }));
  }

  async flush(): Promise<void> {
    await this.client.flush();
    if (this.lab) await loadFullnatSnat(this.lab.node, undefined);
  }

  async close(): Promise<void> {
    this.host.close();
  }
}

/** The lab node and model an IPVS driver programs (for Full-NAT's source NAT). */
export interface IpvsLabContext {
  node: LabNode;
  model: LabModel;
}

function counters(s: DirectorCounters): DirectorCounters {
  return { ...s };
}

function sameNetmask(a: string, b: string, family: 4 | 6): boolean {
  return family === 4 ? canonicalAddress(a) === canonicalAddress(b) : Number(a) === Number(b);
}

function normPersistence(p: { timeout: number; netmask: string }, family: 4 | 6) {
  return { timeout: p.timeout, netmask: family === 4 ? canonicalAddress(p.netmask) : String(Number(p.netmask)) };
}

function destinationDiffers(have: IpvsDestination, want: DestinationSpec): boolean {
  if (have.forward !== want.forward) return true;
  if (have.weight !== (want.weight ?? 1)) return true;
  if (have.upperThreshold !== (want.upperThreshold ?? 0) || have.lowerThreshold !== (want.lowerThreshold ?? 0)) return true;
  if (want.forward === 'tunnel') {
    const t = want.tunnel ?? { type: 'ipip' as const };
    const h = have.tunnel;
    if (!h) return t.type !== 'ipip';
    if (h.type !== t.type || h.csum !== !!t.csum || h.remcsum !== !!t.remcsum) return true;
    if (t.type === 'gue' && h.port !== (t.port ?? 0)) return true;
  }
  return false;
}

/** The host kernel has IPVS (otherwise kernel IPVS runs in a VM). */
export function hostHasIpvs(): boolean {
  return fs.existsSync('/proc/net/ip_vs') || fs.existsSync('/sys/module/ip_vs');
}

export const ipvsDriver: DirectorDriverDefinition = {
  name: 'ipvs',
  summary: 'kernel IPVS over generic netlink (vslab\'s own client); Full-NAT = masquerading + nftables source NAT',
  unavailable: (backend) => (backend !== 'vm' && !hostHasIpvs()
    ? `this host kernel has no IPVS, and --backend ${backend} runs on the host kernel: use --backend vm`
    : undefined),
  declines: (_model, _node, s) => ipvsDeclines(s),
  open: (lab, node) => IpvsDirector.open(directorHost(lab.node(node)), { node: lab.node(node), model: lab.model }),
};

/** Kernel IPVS rewrites and forwards packets: a proxy (two TCP connections) is another kind of implementation. */
export function ipvsDeclines(s: ServiceModel): string | undefined {
  return s.realServers.some((r) => r.method === 'proxy') ? 'method proxy: kernel IPVS forwards packets, it does not end the client\'s connection and open its own (use --director haproxy or nginx)' : undefined;
}
