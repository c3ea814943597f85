// Kernel errors of IPVS requests, turned into sentences: which operation on which service or
// destination was rejected, and why, in the terms of ip_vs_ctl.c's checks (and libipvs's wording where
// it has one). The errno and the kernel's extended-ACK text are kept on the error object.
import { NetlinkError, errnoName, errnoText } from './errors';
import type { ExtAck } from './message';
import type { DestinationSpec, ServiceKey, ServiceSpec, SyncDaemonSpec } from './ipvs-types';
import { isFwmarkKey } from './ipvs-types';

export type IpvsOperation =
  | 'add service'
  | 'edit service'
  | 'delete service'
  | 'get service'
  | 'list services'
  | 'add destination'
  | 'edit destination'
  | 'delete destination'
  | 'list destinations'
  | 'zero counters'
  | 'flush'
  | 'start sync daemon'
  | 'stop sync daemon'
  | 'list sync daemons'
  | 'set timeouts'
  | 'get timeouts'
  | 'get info';

/** "TCP 198.18.0.10:80", "UDP [2001:db8::10]:53", "FWM 5", "FWM 5 IPv6" (ipvsadm's spelling). */
export function describeService(k: ServiceKey): string {
  if (isFwmarkKey(k)) return `FWM ${k.fwmark}${k.family === 6 ? ' IPv6' : ''}`;
  return `${k.protocol.toUpperCase()} ${hostPort(k.address, k.port, k.family)}`;
}

export function hostPort(address: string, port: number, family: 4 | 6 = address.includes(':') ? 6 : 4): string {
  return family === 6 ? `[${address}]:${port}` : `${address}:${port}`;
}

export interface IpvsErrorContext {
  operation: IpvsOperation;
  service?: ServiceKey | ServiceSpec;
  destination?: DestinationSpec;
  daemon?: Partial<SyncDaemonSpec>;
}

/** An IPVS request the kernel rejected, with a sentence saying what and why. */
export class IpvsError extends NetlinkError {
  override name = 'IpvsError';
  /** Why, in words (without the operation and target). */
  readonly reason: string;
  /** "add destination 198.18.1.11:80 to TCP 198.18.0.10:80" */
  readonly target: string;

  constructor(
    readonly context: IpvsErrorContext,
    errno: number,
    extack?: ExtAck,
  ) {
    super(context.operation, errno, extack);
    this.target = describeTarget(context);
    this.reason = explain(context, errno, extack);
    this.message = `${this.target}: ${this.reason} (${errnoName(errno)}${extack?.message ? `; kernel: "${extack.message}"` : ''})`;
  }
}

function describeTarget(c: IpvsErrorContext): string {
  const svc = c.service ? describeService(c.service) : undefined;
  const dst = c.destination ? hostPort(c.destination.address, c.destination.port) : undefined;
  switch (c.operation) {
    case 'add destination':
      return `add destination ${dst} to ${svc}`;
    case 'edit destination':
      return `edit destination ${dst} of ${svc}`;
    case 'delete destination':
      return `delete destination ${dst} from ${svc}`;
    case 'list destinations':
      return `list destinations of ${svc}`;
    case 'start sync daemon':
    case 'stop sync daemon':
      return `${c.operation} ${c.daemon?.state ?? ''}`.trim();
    case 'zero counters':
      return svc ? `zero counters of ${svc}` : 'zero all counters';
    default:
      return svc ? `${c.operation} ${svc}` : c.operation;
  }
}

function explain(c: IpvsErrorContext, errno: number, extack?: ExtAck): string {
  const code = errnoName(errno);
  const spec = c.service as ServiceSpec | undefined;
  const d = c.destination;
  const common = (): string | undefined => {
    switch (code) {
      case 'EPERM':
        return 'permission denied: IPVS configuration needs CAP_NET_ADMIN in the namespace';
      case 'EAFNOSUPPORT':
        return 'the address family is not supported (kernel built without IPv6 IPVS support, or an unknown family)';
      case 'ENOMEM':
        return 'the kernel ran out of memory';
      case 'EMSGSIZE':
        return 'the kernel could not fit the reply into a netlink message';
      default:
        return undefined;
    }
  };
  switch (c.operation) {
    case 'add service':
    case 'edit service':
      if (code === 'EEXIST') return 'the service already exists';
      if (code === 'ESRCH') return 'no such service';
      if (code === 'ENOENT') {
        const pe = spec?.peName ? ` or persistence engine "${spec.peName}"` : '';
        return `scheduler "${spec?.scheduler ?? 'wlc'}"${pe} not found (the kernel could not load ip_vs_${spec?.scheduler ?? 'wlc'}${spec?.peName ? ` / ip_vs_pe_${spec.peName}` : ''})`;
      }
      if (code === 'EINVAL') {
        const nm = Number(spec?.netmask);
        if (spec?.family === 6 && spec.netmask !== undefined && (!(nm >= 1) || nm > 128)) {
          return `IPv6 persistence netmask ${spec.netmask} is outside 1..128`;
        }
        return extack?.message
          ? `invalid service parameters`
          : 'invalid service parameters (IPv6 netmask outside 1..128, a missing attribute, or a scheduler that rejects the service)';
      }
      break;
    case 'delete service':
    case 'get service':
    case 'zero counters':
    case 'list destinations':
      if (code === 'ESRCH') return 'no such service';
      break;
    case 'add destination':
    case 'edit destination':
    case 'delete destination':
      if (code === 'ESRCH') return 'the service does not exist';
      if (code === 'EEXIST') return 'the destination already exists in this service';
      if (code === 'ENOENT') return 'no such destination in this service';
      if (code === 'ERANGE') {
        const w = d?.weight;
        if (w !== undefined && (w < 0 || w > 0x7fffffff)) return `weight ${w} is out of range (0..2147483647)`;
        if (d && (d.lowerThreshold ?? 0) > (d.upperThreshold ?? 0) && (d.upperThreshold ?? 0) !== 0) {
          return `lower threshold ${d.lowerThreshold} is above upper threshold ${d.upperThreshold}`;
        }
        return 'weight or thresholds out of range (weight above 2147483647, or the lower threshold above the upper one)';
      }
      if (code === 'EINVAL') {
        if (d?.tunnel?.type === 'gue' && !d.tunnel.port) return 'a GUE tunnel needs a non-zero tunnel port';
        return 'invalid destination (address not unicast or not reachable as a real server, a family different from the service without tunnelling, a missing attribute, or more destinations than the scheduler allows)';
      }
      if (code === 'EOPNOTSUPP') return 'not supported by this kernel (tunnel type, or mixed address families)';
      break;
    case 'start sync daemon':
      if (code === 'EEXIST') return `a ${c.daemon?.state ?? ''} sync daemon is already running`.replace('  ', ' ');
      if (code === 'ENODEV') return `no interface named "${c.daemon?.mcastInterface}"`;
      if (code === 'EINVAL') return 'invalid sync daemon parameters (interface, sync id, group or maxlen)';
      break;
    case 'stop sync daemon':
      if (code === 'ESRCH') return `no ${c.daemon?.state ?? ''} sync daemon is running`.replace('  ', ' ');
      break;
    case 'set timeouts':
      if (code === 'EINVAL') return 'invalid timeout values';
      break;
    default:
      break;
  }
  return common() ?? `the kernel rejected it: ${errnoText(errno)}`;
}
