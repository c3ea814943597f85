// `ipvsadm -L -n` style text from IPVS client data, column for column as ipvsadm 1.31 prints it
// (ipvsadm.c print_title / print_service_entry / print_largenum / list_conn / list_timeout /
// list_daemon), so a listing from vslab can be compared with one from the real tool and read by
// people who know ipvsadm.
import { canonicalAddress } from '../netlink/address';
import { SVC_F } from '../netlink/ipvs-constants';
import type {
  ForwardMethod,
  IpFamily,
  IpvsConnection,
  IpvsInfo,
  IpvsStats,
  IpvsTimeouts,
  ServiceKey,
  ServiceSettings,
  SyncDaemon,
  TunnelSettings,
} from '../netlink/ipvs-types';
import { isFwmarkKey } from '../netlink/ipvs-types';
import { compareDestinationsLikeIpvsadm, compareServicesLikeIpvsadm, schedFlagNames } from './ipvsadm-save';

export interface ListDestination {
  address: string;
  port: number;
  family?: IpFamily;
  forward: ForwardMethod;
  weight: number;
  upperThreshold?: number;
  lowerThreshold?: number;
  activeConns?: number;
  inactiveConns?: number;
  persistConns?: number;
  tunnel?: TunnelSettings;
  stats?: IpvsStats;
}

export type ListService = ServiceKey &
  ServiceSettings & {
    stats?: IpvsStats;
    destinations: ListDestination[];
  };

export interface ListOptions {
  /** Which listing: the default one, or --stats / --rate / --thresholds / --persistent-conn / --tun-info. */
  view?: 'default' | 'stats' | 'rate' | 'thresholds' | 'persistent-conn' | 'tun-info';
  /** --exact: full numbers in stats and rate views. */
  exact?: boolean;
  /** --nosort: keep the given (kernel) order. */
  nosort?: boolean;
}

const pad = (s: string | number, w: number): string => String(s).padEnd(w);
const padL = (s: string | number, w: number): string => String(s).padStart(w);

/** ipvsadm's print_largenum. */
export function largeNumber(n: number, exact = false): string {
  if (exact) {
    const s = String(n);
    return padL(s, s.length <= 8 ? 9 : s.length + 1);
  }
  if (n < 1e8) return padL(n, 9);
  if (n < 1e9) return padL(Math.floor(n / 1e3), 8) + 'K';
  if (n < 1e11) return padL(Math.floor(n / 1e6), 8) + 'M';
  if (n < 1e14) return padL(Math.floor(n / 1e9), 8) + 'G';
  return padL(Math.floor(n / 1e12), 8) + 'T';
}

function addrPort(address: string, port: number, family: IpFamily): string {
  return family === 6 ? `[${canonicalAddress(address)}]:${port}` : `${canonicalAddress(address)}:${port}`;
}

const fwdNames: Record<ForwardMethod, string> = { masq: 'Masq', local: 'Local', tunnel: 'Tunnel', route: 'Route', bypass: '' };
const protoNames = { tcp: 'TCP', udp: 'UDP', sctp: 'SCTP' } as const;

function title(view: ListOptions['view']): string {
  switch (view) {
    case 'stats':
      return `${pad('Prot LocalAddress:Port', 33)} ${padL('Conns', 8)} ${padL('InPkts', 8)} ${padL('OutPkts', 8)} ${padL('InBytes', 8)} ${padL('OutBytes', 8)}\n  -> RemoteAddress:Port\n`;
    case 'rate':
      return `${pad('Prot LocalAddress:Port', 33)} ${padL('CPS', 8)} ${padL('InPPS', 8)} ${padL('OutPPS', 8)} ${padL('InBPS', 8)} ${padL('OutBPS', 8)}\n  -> RemoteAddress:Port\n`;
    case 'thresholds':
      return `${pad('Prot LocalAddress:Port', 33)} ${pad('Uthreshold', 10)} ${pad('Lthreshold', 10)} ${pad('ActiveConn', 10)} ${pad('InActConn', 10)}\n  -> RemoteAddress:Port\n`;
    case 'persistent-conn':
      return `${pad('Prot LocalAddress:Port', 33)} ${pad('Weight', 9)} ${pad('PersistConn', 11)} ${pad('ActiveConn', 10)} ${pad('InActConn', 10)}\n  -> RemoteAddress:Port\n`;
    case 'tun-info':
      return 'Prot LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward TunnelInfo    Weight ActiveConn InActConn\n';
    default:
      return 'Prot LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n';
  }
}

function serviceName(s: ServiceKey): string {
  if (isFwmarkKey(s)) return s.family === 6 ? `FWM  ${s.fwmark} IPv6` : `FWM  ${s.fwmark}`;
  const name = `${pad(protoNames[s.protocol], 4)} ${addrPort(s.address, s.port, s.family)}`;
  return s.family === 6 ? name : name.slice(0, 33);
}

const zero: IpvsStats = { conns: 0, inPkts: 0, outPkts: 0, inBytes: 0, outBytes: 0, cps: 0, inPps: 0, outPps: 0, inBps: 0, outBps: 0 };

function tunInfo(d: ListDestination): string {
  if (d.forward !== 'tunnel') return 'n/a';
  const t = d.tunnel ?? { type: 'ipip' };
  const c = t.remcsum ? 'r+c' : t.csum ? '+c' : '-c';
  if (t.type === 'gue') return `gue:${t.port ?? 0}:${c}`;
  if (t.type === 'gre') return `gre:${c}`;
  return 'ipip';
}

/** The full `ipvsadm -L -n [view]` output. */
export function formatIpvsadmList(info: Pick<IpvsInfo, 'version' | 'connTableSize'>, services: ListService[], opts: ListOptions = {}): string {
  const view = opts.view ?? 'default';
  let out = `IP Virtual Server version ${info.version} (size=${info.connTableSize})\n`;
  out += title(view);
  const list = opts.nosort ? services : [...services].sort(compareServicesLikeIpvsadm);
  for (const s of list) out += formatServiceEntry(s, { ...opts, view });
  return out;
}

/** One service and its destinations, as in the listing. */
export function formatServiceEntry(s: ListService, opts: ListOptions = {}): string {
  const view = opts.view ?? 'default';
  const exact = opts.exact ?? false;
  const name = serviceName(s);
  const st = s.stats ?? zero;
  let out = '';
  if (view === 'stats') {
    out += pad(name, 33) + [st.conns, st.inPkts, st.outPkts, st.inBytes, st.outBytes].map((n) => largeNumber(n, exact)).join('');
  } else if (view === 'rate') {
    out += pad(name, 33) + [st.cps, st.inPps, st.outPps, st.inBps, st.outBps].map((n) => largeNumber(n, exact)).join('');
  } else if (view === 'thresholds' || view === 'persistent-conn') {
    // ipvsadm prints these views' service lines like the default view
    out += defaultServiceLine(name, s);
  } else {
    out += defaultServiceLine(name, s);
  }
  out += '\n';
  const dests = opts.nosort ? s.destinations : [...s.destinations].sort(compareDestinationsLikeIpvsadm);
  for (const d of dests) {
    const fam = d.family ?? (d.address.includes(':') ? 6 : 4);
    let dn = addrPort(d.address, d.port, fam);
    if (fam !== 6) dn = dn.slice(0, 28);
    const ds = d.stats ?? zero;
    const act = d.activeConns ?? 0;
    const inact = d.inactiveConns ?? 0;
    switch (view) {
      case 'stats':
        out += `  -> ${pad(dn, 28)}` + [ds.conns, ds.inPkts, ds.outPkts, ds.inBytes, ds.outBytes].map((n) => largeNumber(n, exact)).join('') + '\n';
        break;
      case 'rate':
        out += `  -> ${pad(dn, 28)} ${padL(ds.cps, 8)} ${padL(ds.inPps, 8)} ${padL(ds.outPps, 8)}` + largeNumber(ds.inBps, exact) + largeNumber(ds.outBps, exact) + '\n';
        break;
      case 'thresholds':
        out += `  -> ${pad(dn, 28)} ${pad(d.upperThreshold ?? 0, 10)} ${pad(d.lowerThreshold ?? 0, 10)} ${pad(act, 10)} ${pad(inact, 10)}\n`;
        break;
      case 'persistent-conn':
        out += `  -> ${pad(dn, 28)} ${pad(d.weight, 9)} ${pad(d.persistConns ?? 0, 11)} ${pad(act, 10)} ${pad(inact, 10)}\n`;
        break;
      case 'tun-info':
        out += `  -> ${pad(dn, 28)} ${pad(fwdNames[d.forward], 7)} ${pad(tunInfo(d), 13)} ${pad(d.weight, 6)} ${pad(act, 10)} ${pad(inact, 10)}\n`;
        break;
      default:
        out += `  -> ${pad(dn, 28)} ${pad(fwdNames[d.forward], 7)} ${pad(d.weight, 6)} ${pad(act, 10)} ${pad(inact, 10)}\n`;
    }
  }
  return out;
}

function defaultServiceLine(name: string, s: ListService): string {
  let line = `${name} ${s.scheduler}`;
  const f = s.flags;
  if (f & (SVC_F.SCHED1 | SVC_F.SCHED2 | SVC_F.SCHED3)) line += ` (${schedFlagNames(s.scheduler, f)})`;
  if (f & SVC_F.PERSISTENT) {
    line += ` persistent ${s.timeout}`;
    if (s.family === 4 && canonicalAddress(s.netmask) !== '255.255.255.255') line += ` mask ${canonicalAddress(s.netmask)}`;
    if (s.family === 6 && Number(s.netmask) !== 128) line += ` mask ${Number(s.netmask)}`;
    if (s.peName) line += ` pe ${s.peName}`;
  }
  if (f & SVC_F.ONEPACKET) line += ' ops';
  return line;
}

/** `ipvsadm -L -n -c [--persistent-conn]`. */
export function formatIpvsadmConnections(conns: IpvsConnection[], opts: { persistentConn?: boolean } = {}): string {
  let out = 'IPVS connection entries\n';
  out += opts.persistentConn
    ? `pro expire ${pad('state', 11)} ${pad('source', 18)} ${pad('virtual', 18)} ${pad('destination', 18)} ${pad('pe name', 16)} pe_data\n`
    : `pro expire ${pad('state', 11)} ${pad('source', 18)} ${pad('virtual', 18)} destination\n`;
  for (const c of conns) {
    const m = Math.floor(c.expires / 60);
    const sec = c.expires % 60;
    const expire = `${String(m).padStart(2, '0')}:${String(sec).padStart(2, '0')}`;
    const cn = addrPort(c.clientAddress, c.clientPort, c.family);
    const vn = addrPort(c.virtualAddress, c.virtualPort, c.family);
    const dn = addrPort(c.destAddress, c.destPort, c.destFamily);
    if (opts.persistentConn && c.peName !== undefined && c.peData !== undefined) {
      out += `${pad(c.protocol, 3)} ${pad(expire, 6)} ${pad(c.state, 11)} ${pad(cn, 18)} ${pad(vn, 18)} ${pad(dn, 16)} ${pad(c.peName, 18)} ${c.peData}\n`;
    } else {
      out += `${pad(c.protocol, 3)} ${pad(expire, 6)} ${pad(c.state, 11)} ${pad(cn, 18)} ${pad(vn, 18)} ${dn}\n`;
    }
  }
  return out;
}

/** `ipvsadm -L --timeout`. */
export function formatIpvsadmTimeouts(t: IpvsTimeouts): string {
  return `Timeout (tcp tcpfin udp): ${t.tcp} ${t.tcpFin} ${t.udp}\n`;
}

/** `ipvsadm -L --daemon`. */
export function formatIpvsadmDaemons(daemons: SyncDaemon[]): string {
  let out = '';
  // ipvsadm prints master before backup
  const order = [...daemons].sort((a, b) => (a.state === b.state ? 0 : a.state === 'master' ? -1 : 1));
  for (const d of order) {
    out += `${d.state} sync daemon (mcast=${d.mcastInterface}, syncid=${d.syncId}`;
    if (d.syncMaxLen) out += `, maxlen=${d.syncMaxLen}`;
    if (d.mcastGroup) out += `, group=${d.mcastGroup}`;
    if (d.mcastPort) out += `, port=${d.mcastPort}`;
    if (d.mcastTtl) out += `, ttl=${d.mcastTtl}`;
    out += ')\n';
  }
  return out;
}
