// Lab-model services <-> IPVS services and destinations. Pure: no I/O.
//
// Method mapping: nat -> masq, dr -> route, tun -> tunnel; fullnat -> masq, because mainline IPVS has
// no Full-NAT: the lab gives the director an nftables SNAT ruleset (NodeModel.nftables) that rewrites
// the source behind IPVS, as kube-proxy does. Read back, a masq destination is "nat" (or "fullnat"
// when the model asked for fullnat; IPVS cannot tell them apart).
import { canonicalAddress } from '../netlink/address';
import { SVC_F } from '../netlink/ipvs-constants';
import type {
  DestinationSpec,
  ForwardMethod,
  IpvsDestination,
  IpvsService,
  ServiceKey,
  ServiceSpec,
  TunnelSettings,
} from '../netlink/ipvs-types';
import { isFwmarkKey } from '../netlink/ipvs-types';
import type { ForwardingMethod, RealServerModel, ServiceModel } from '../topology/model';
import type { DirectorRealServer, DirectorService } from './types';

export const SCHED_FLAG_BITS: Record<string, number> = {
  'flag-1': SVC_F.SCHED1,
  'flag-2': SVC_F.SCHED2,
  'flag-3': SVC_F.SCHED3,
  'sh-fallback': SVC_F.SCHED1,
  'sh-port': SVC_F.SCHED2,
  'mh-fallback': SVC_F.SCHED1,
  'mh-port': SVC_F.SCHED2,
};

/** Names of scheduler flag bits as ipvsadm spells them for this scheduler. */
export function schedulerFlagNames(scheduler: string, flags: number): string[] {
  const out: string[] = [];
  if (scheduler === 'sh' || scheduler === 'mh') {
    if (flags & SVC_F.SCHED1) out.push(`${scheduler}-fallback`);
    if (flags & SVC_F.SCHED2) out.push(`${scheduler}-port`);
    if (flags & SVC_F.SCHED3) out.push('flag-3');
  } else {
    if (flags & SVC_F.SCHED1) out.push('flag-1');
    if (flags & SVC_F.SCHED2) out.push('flag-2');
    if (flags & SVC_F.SCHED3) out.push('flag-3');
  }
  return out;
}

export function serviceKeyOf(s: ServiceModel): ServiceKey {
  if (s.fwmark !== undefined) return { family: s.family, fwmark: s.fwmark };
  if (!s.vip) throw new Error(`service ${s.name} has neither a VIP nor a fwmark`);
  return { family: s.family, protocol: s.protocol, address: canonicalAddress(s.vip), port: s.port };
}

export function keyId(k: ServiceKey): string {
  return isFwmarkKey(k) ? `FWM ${k.fwmark}${k.family === 6 ? ' IPv6' : ''}` : `${k.protocol.toUpperCase()} ${k.family === 6 ? `[${canonicalAddress(k.address)}]` : canonicalAddress(k.address)}:${k.port}`;
}

export function destId(addr: string, port: number): string {
  const a = canonicalAddress(addr);
  return a.includes(':') ? `[${a}]:${port}` : `${a}:${port}`;
}

const methodToForward: Record<Exclude<ForwardingMethod, 'proxy'>, Exclude<ForwardMethod, 'bypass' | 'local'>> = {
  nat: 'masq',
  fullnat: 'masq',
  dr: 'route',
  tun: 'tunnel',
};

/** IPVS forwards packets; a proxy service is declined before it gets here (ipvs.ts declines). */
function ipvsCannotProxy(): never {
  throw new Error('kernel IPVS forwards packets: it cannot be a proxy (method proxy)');
}

export function serviceSpecOf(s: ServiceModel): ServiceSpec {
  let flags = 0;
  for (const f of s.flags) {
    const bit = SCHED_FLAG_BITS[f];
    if (bit === undefined) throw new Error(`service ${s.name}: unknown scheduler flag "${f}"`);
    flags |= bit;
  }
  if (s.persistence) flags |= SVC_F.PERSISTENT;
  if (s.onePacket) flags |= SVC_F.ONEPACKET;
  return {
    ...serviceKeyOf(s),
    scheduler: s.scheduler,
    flags,
    timeout: s.persistence?.timeout ?? 0,
    netmask: s.persistence?.netmask ?? (s.family === 4 ? '255.255.255.255' : '128'),
  };
}

export function tunnelOf(r: RealServerModel): TunnelSettings | undefined {
  if (r.method !== 'tun') return undefined;
  const t = r.tunnel ?? { type: 'ipip' as const, flags: [] };
  const out: TunnelSettings = { type: t.type };
  if (t.type === 'gue') out.port = t.port ?? 0;
  if (t.flags.includes('tun-csum')) out.csum = true;
  if (t.flags.includes('tun-remcsum')) out.remcsum = true;
  return out;
}

export function destinationSpecOf(r: RealServerModel): DestinationSpec {
  const d: DestinationSpec = {
    address: canonicalAddress(r.addr),
    port: r.port,
    family: r.family,
    forward: methodToForward[r.method === 'proxy' ? ipvsCannotProxy() : r.method],
    weight: r.weight,
    upperThreshold: r.upper,
    lowerThreshold: r.lower,
  };
  const t = tunnelOf(r);
  if (t) d.tunnel = t;
  return d;
}

function tunnelFlagNames(t: { csum?: boolean; remcsum?: boolean }): string[] {
  const out: string[] = [];
  if (t.csum) out.push('tun-csum');
  if (t.remcsum) out.push('tun-remcsum');
  return out;
}

/** A destination as the kernel holds it, in model terms. `asked` disambiguates nat/fullnat. */
export function realServerOf(d: IpvsDestination, asked?: RealServerModel): DirectorRealServer {
  let method: DirectorRealServer['method'];
  switch (d.forward) {
    case 'masq':
      method = asked?.method === 'fullnat' ? 'fullnat' : 'nat';
      break;
    case 'route':
      method = 'dr';
      break;
    case 'tunnel':
      method = 'tun';
      break;
    default:
      method = 'local';
  }
  const out: DirectorRealServer = {
    addr: d.address,
    family: d.family,
    port: d.port,
    weight: d.weight,
    upper: d.upperThreshold,
    lower: d.lowerThreshold,
    method,
    activeConns: d.activeConns,
    inactiveConns: d.inactiveConns,
    persistConns: d.persistConns,
  };
  if (d.forward === 'tunnel') {
    const t = d.tunnel ?? { type: 'ipip' as const, port: 0, csum: false, remcsum: false };
    out.tunnel = { type: t.type, flags: tunnelFlagNames(t), ...(t.type === 'gue' ? { port: t.port } : {}) };
  }
  return out;
}

/** A service as the kernel holds it, in model terms. */
export function directorServiceOf(s: IpvsService & { destinations: IpvsDestination[] }, asked?: ServiceModel): DirectorService {
  const persistent = (s.flags & SVC_F.PERSISTENT) !== 0;
  const out: DirectorService = {
    protocol: isFwmarkKey(s) ? (asked?.protocol ?? 'tcp') : s.protocol,
    family: s.family,
    port: isFwmarkKey(s) ? (asked?.port ?? 0) : s.port,
    scheduler: s.scheduler,
    flags: schedulerFlagNames(s.scheduler, s.flags),
    onePacket: (s.flags & SVC_F.ONEPACKET) !== 0,
    realServers: s.destinations.map((d) => {
      const m = asked?.realServers.find((r) => destId(r.addr, r.port) === destId(d.address, d.port));
      return realServerOf(d, m);
    }),
  };
  if (asked) out.name = asked.name;
  if (isFwmarkKey(s)) {
    out.fwmark = s.fwmark;
    if (asked?.vip) out.vip = asked.vip;
  } else {
    out.vip = s.address;
  }
  if (persistent) out.persistence = { timeout: s.timeout, netmask: s.netmask };
  if (s.peName) out.persistenceEngine = s.peName;
  return out;
}
