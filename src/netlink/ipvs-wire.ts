// Encoding of IPVS requests and decoding of IPVS replies (generic netlink family "IPVS").
//
// Layout facts the kernel relies on (include/uapi/linux/ip_vs.h, net/netfilter/ipvs/ip_vs_ctl.c):
//  - SVC_ATTR_PORT, DEST_ATTR_PORT, DEST_ATTR_TUN_PORT and DAEMON_ATTR_MCAST_GROUP are network order;
//    every other integer is host order.
//  - Addresses are raw bytes (4 or 16); the kernel answers with the 16-byte union nf_inet_addr, whose
//    first 4 bytes hold an IPv4 address.
//  - SVC_ATTR_NETMASK is a u32 holding the IPv4 mask bytes in network order, or the IPv6 prefix length.
//  - SVC_ATTR_FLAGS is struct ip_vs_flags {u32 flags; u32 mask}.
//  - STATS has u32 counters and rates except u64 byte counters; STATS64 has u64 everywhere.
import { IpFamily, formatAddress, parseAddress } from './address';
import { AttrSet, NetlinkDecodeError, encodeAttr, encodeNested, payload, readU32, writeU32 } from './attr';
import {
  AF_INET,
  AF_INET6,
  CONN_F,
  DAEMON_STATE,
  IPPROTO,
  IPVS_CMD_ATTR,
  IPVS_DAEMON_ATTR,
  IPVS_DEST_ATTR,
  IPVS_INFO_ATTR,
  IPVS_STATS_ATTR,
  IPVS_SVC_ATTR,
  IP_VS_IFNAME_MAXLEN,
  IP_VS_PENAME_MAXLEN,
  IP_VS_SCHEDNAME_MAXLEN,
  SVC_F,
  TUNNEL_FLAG,
  TUNNEL_TYPE,
} from './ipvs-constants';
import {
  DestinationSpec,
  ForwardMethod,
  IpvsDestination,
  IpvsInfo,
  IpvsProtocol,
  IpvsService,
  IpvsStats,
  IpvsTimeouts,
  ServiceKey,
  ServiceSpec,
  SyncDaemon,
  SyncDaemonSpec,
  TunnelType,
  isFwmarkKey,
} from './ipvs-types';

const svcNames = invert(IPVS_SVC_ATTR, 'IPVS_SVC_ATTR_');
const destNames = invert(IPVS_DEST_ATTR, 'IPVS_DEST_ATTR_');
const daemonNames = invert(IPVS_DAEMON_ATTR, 'IPVS_DAEMON_ATTR_');
const statsNames = invert(IPVS_STATS_ATTR, 'IPVS_STATS_ATTR_');

function invert(o: Record<string, number>, prefix: string): Record<number, string> {
  return Object.fromEntries(Object.entries(o).map(([k, v]) => [v, prefix + k]));
}

export const familyToAf = (f: IpFamily): number => (f === 4 ? AF_INET : AF_INET6);

export function afToFamily(af: number, where: string): IpFamily {
  if (af === AF_INET) return 4;
  if (af === AF_INET6) return 6;
  throw new NetlinkDecodeError(`${where}: unknown address family ${af}`);
}

const protoNumbers: Record<IpvsProtocol, number> = { tcp: IPPROTO.TCP, udp: IPPROTO.UDP, sctp: IPPROTO.SCTP };

export function protocolNumber(p: IpvsProtocol): number {
  const n = protoNumbers[p];
  if (n === undefined) throw new Error(`unknown IPVS protocol "${p}" (expected tcp, udp or sctp)`);
  return n;
}

export function protocolName(n: number): IpvsProtocol {
  switch (n) {
    case IPPROTO.TCP:
      return 'tcp';
    case IPPROTO.UDP:
      return 'udp';
    case IPPROTO.SCTP:
      return 'sctp';
    default:
      throw new NetlinkDecodeError(`IPVS service with unknown protocol number ${n}`);
  }
}

const forwardNumbers: Record<ForwardMethod, number> = {
  masq: CONN_F.MASQ,
  local: CONN_F.LOCALNODE,
  tunnel: CONN_F.TUNNEL,
  route: CONN_F.DROUTE,
  bypass: CONN_F.BYPASS,
};

export function forwardNumber(m: ForwardMethod): number {
  const n = forwardNumbers[m];
  if (n === undefined) throw new Error(`unknown forwarding method "${m}" (expected masq, route, tunnel or local)`);
  return n;
}

export function forwardName(n: number): ForwardMethod {
  const e = Object.entries(forwardNumbers).find(([, v]) => v === (n & CONN_F.FWD_MASK));
  if (!e) throw new NetlinkDecodeError(`IPVS destination with unknown forwarding method ${n}`);
  return e[0] as ForwardMethod;
}

const tunnelNumbers: Record<TunnelType, number> = { ipip: TUNNEL_TYPE.IPIP, gue: TUNNEL_TYPE.GUE, gre: TUNNEL_TYPE.GRE };

export function tunnelTypeNumber(t: TunnelType): number {
  const n = tunnelNumbers[t];
  if (n === undefined) throw new Error(`unknown tunnel type "${t}" (expected ipip, gue or gre)`);
  return n;
}

export function tunnelTypeName(n: number): TunnelType {
  const e = Object.entries(tunnelNumbers).find(([, v]) => v === n);
  if (!e) throw new NetlinkDecodeError(`IPVS destination with unknown tunnel type ${n}`);
  return e[0] as TunnelType;
}

/** The address bytes of `text`, checked against the family it must have. */
function addressBytes(text: string, family: IpFamily, what: string): Buffer {
  const p = parseAddress(text, what);
  if (p.family !== family) throw new Error(`${what} ${text} is IPv${p.family} but the family is IPv${family}`);
  return p.bytes;
}

function checkPort(port: number, what: string): void {
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`${what} ${port} is not a port number (0..65535)`);
}

function checkName(s: string, max: number, what: string): void {
  if (Buffer.byteLength(s) >= max) throw new Error(`${what} "${s}" is too long (at most ${max - 1} bytes)`);
}

/** Default netmask for a family: all ones (IPv4) or /128 (IPv6). */
export function defaultNetmask(family: IpFamily): string {
  return family === 4 ? '255.255.255.255' : '128';
}

/** The u32 payload of SVC_ATTR_NETMASK. */
export function netmaskPayload(netmask: string, family: IpFamily): Buffer {
  if (family === 4) {
    const p = parseAddress(netmask, 'IPv4 persistence netmask');
    if (p.family !== 4) throw new Error(`IPv4 persistence netmask "${netmask}" must be a dotted mask like 255.255.255.0`);
    return p.bytes; // network order, as the kernel compares it with addresses
  }
  // The kernel checks the range (1..128, EINVAL otherwise); only the form is checked here.
  const n = Number(netmask.replace(/^\//, ''));
  if (!/^\/?\d+$/.test(netmask) || !Number.isInteger(n) || n > 0xffffffff) {
    throw new Error(`IPv6 persistence netmask "${netmask}" must be a prefix length (1..128)`);
  }
  return payload.u32(n);
}

export function netmaskFromPayload(d: Buffer, family: IpFamily): string {
  if (d.length < 4) throw new NetlinkDecodeError(`IPVS service: IPVS_SVC_ATTR_NETMASK has ${d.length} bytes, expected 4`);
  return family === 4 ? formatAddress(d.subarray(0, 4), 4) : String(readU32(d, 0));
}

/** Key attributes of a service (enough for DEL_SERVICE, GET_*, NEW_DEST...). */
export function serviceKeyAttrs(k: ServiceKey): Buffer[] {
  const attrs = [encodeAttr(IPVS_SVC_ATTR.AF, payload.u16(familyToAf(k.family)))];
  if (isFwmarkKey(k)) {
    if (!Number.isInteger(k.fwmark) || k.fwmark < 1 || k.fwmark > 0xffffffff) {
      throw new Error(`fwmark ${k.fwmark} is not valid (1..4294967295)`);
    }
    attrs.push(encodeAttr(IPVS_SVC_ATTR.FWMARK, payload.u32(k.fwmark)));
  } else {
    checkPort(k.port, 'service port');
    attrs.push(encodeAttr(IPVS_SVC_ATTR.PROTOCOL, payload.u16(protocolNumber(k.protocol))));
    attrs.push(encodeAttr(IPVS_SVC_ATTR.ADDR, addressBytes(k.address, k.family, 'virtual address')));
    attrs.push(encodeAttr(IPVS_SVC_ATTR.PORT, payload.be16(k.port)));
  }
  return attrs;
}

/** The CMD_ATTR_SERVICE nest with the key only. */
export function encodeServiceKey(k: ServiceKey): Buffer {
  return encodeNested(IPVS_CMD_ATTR.SERVICE, serviceKeyAttrs(k));
}

/** The CMD_ATTR_SERVICE nest of a full service (NEW_SERVICE / SET_SERVICE), with ipvsadm's defaults. */
export function encodeService(s: ServiceSpec): Buffer {
  const scheduler = s.scheduler ?? 'wlc';
  checkName(scheduler, IP_VS_SCHEDNAME_MAXLEN, 'scheduler name');
  const attrs = serviceKeyAttrs(s);
  attrs.push(encodeAttr(IPVS_SVC_ATTR.SCHED_NAME, payload.string(scheduler)));
  if (s.peName) {
    checkName(s.peName, IP_VS_PENAME_MAXLEN, 'persistence engine name');
    attrs.push(encodeAttr(IPVS_SVC_ATTR.PE_NAME, payload.string(s.peName)));
  }
  const flags = Buffer.alloc(8);
  writeU32(flags, 0, (s.flags ?? 0) >>> 0);
  writeU32(flags, 4, (s.flagsMask ?? 0xffffffff) >>> 0);
  attrs.push(encodeAttr(IPVS_SVC_ATTR.FLAGS, flags));
  attrs.push(encodeAttr(IPVS_SVC_ATTR.TIMEOUT, payload.u32(s.timeout ?? 0)));
  attrs.push(encodeAttr(IPVS_SVC_ATTR.NETMASK, netmaskPayload(s.netmask ?? defaultNetmask(s.family), s.family)));
  return encodeNested(IPVS_CMD_ATTR.SERVICE, attrs);
}

/** The CMD_ATTR_DEST nest: full for NEW_DEST / SET_DEST, address and port only for DEL_DEST. */
export function encodeDestination(d: DestinationSpec, full: boolean): Buffer {
  const parsed = parseAddress(d.address, 'real server address');
  const family = d.family ?? parsed.family;
  if (family !== parsed.family) {
    throw new Error(`real server address ${d.address} is IPv${parsed.family} but family IPv${family} was given`);
  }
  checkPort(d.port, 'real server port');
  const attrs = [
    encodeAttr(IPVS_DEST_ATTR.ADDR, parsed.bytes),
    encodeAttr(IPVS_DEST_ATTR.PORT, payload.be16(d.port)),
  ];
  if (full) {
    // DEST_ATTR_WEIGHT is a u32; the kernel refuses values above INT_MAX with ERANGE.
    const weight = d.weight ?? 1;
    if (!Number.isInteger(weight) || weight < 0 || weight > 0xffffffff) {
      throw new Error(`weight ${weight} of real server ${d.address} does not fit the u32 weight attribute`);
    }
    attrs.push(encodeAttr(IPVS_DEST_ATTR.ADDR_FAMILY, payload.u16(familyToAf(family))));
    attrs.push(encodeAttr(IPVS_DEST_ATTR.FWD_METHOD, payload.u32(forwardNumber(d.forward ?? 'route'))));
    attrs.push(encodeAttr(IPVS_DEST_ATTR.WEIGHT, payload.u32(weight)));
    attrs.push(encodeAttr(IPVS_DEST_ATTR.U_THRESH, payload.u32(d.upperThreshold ?? 0)));
    attrs.push(encodeAttr(IPVS_DEST_ATTR.L_THRESH, payload.u32(d.lowerThreshold ?? 0)));
    if (d.tunnel) {
      const t = d.tunnel;
      const flags = (t.csum ? TUNNEL_FLAG.CSUM : 0) | (t.remcsum ? TUNNEL_FLAG.REMCSUM : 0);
      attrs.push(encodeAttr(IPVS_DEST_ATTR.TUN_TYPE, payload.u8(tunnelTypeNumber(t.type))));
      checkPort(t.port ?? 0, 'tunnel port');
      attrs.push(encodeAttr(IPVS_DEST_ATTR.TUN_PORT, payload.be16(t.port ?? 0)));
      attrs.push(encodeAttr(IPVS_DEST_ATTR.TUN_FLAGS, payload.u16(flags)));
    }
  }
  return encodeNested(IPVS_CMD_ATTR.DEST, attrs);
}

export function encodeDaemon(d: SyncDaemonSpec, full: boolean): Buffer {
  const attrs = [encodeAttr(IPVS_DAEMON_ATTR.STATE, payload.u32(daemonStateNumber(d.state)))];
  if (full) {
    checkName(d.mcastInterface, IP_VS_IFNAME_MAXLEN, 'multicast interface name');
    attrs.push(encodeAttr(IPVS_DAEMON_ATTR.MCAST_IFN, payload.string(d.mcastInterface)));
    if (!Number.isInteger(d.syncId) || d.syncId < 0 || d.syncId > 255) throw new Error(`sync id ${d.syncId} is out of range (0..255)`);
    attrs.push(encodeAttr(IPVS_DAEMON_ATTR.SYNC_ID, payload.u32(d.syncId)));
    if (d.syncMaxLen) attrs.push(encodeAttr(IPVS_DAEMON_ATTR.SYNC_MAXLEN, payload.u16(d.syncMaxLen)));
    if (d.mcastPort) attrs.push(encodeAttr(IPVS_DAEMON_ATTR.MCAST_PORT, payload.u16(d.mcastPort)));
    if (d.mcastTtl) attrs.push(encodeAttr(IPVS_DAEMON_ATTR.MCAST_TTL, payload.u8(d.mcastTtl)));
    if (d.mcastGroup) {
      const g = parseAddress(d.mcastGroup, 'multicast group');
      // MCAST_GROUP is a __be32: the address bytes as they are.
      attrs.push(encodeAttr(g.family === 4 ? IPVS_DAEMON_ATTR.MCAST_GROUP : IPVS_DAEMON_ATTR.MCAST_GROUP6, g.bytes));
    }
  }
  return encodeNested(IPVS_CMD_ATTR.DAEMON, attrs);
}

function daemonStateNumber(s: string): number {
  if (s === 'master') return DAEMON_STATE.MASTER;
  if (s === 'backup') return DAEMON_STATE.BACKUP;
  throw new Error(`sync daemon state "${s}" must be master or backup`);
}

export function encodeTimeouts(t: Partial<IpvsTimeouts>): Buffer[] {
  const out: Buffer[] = [];
  if (t.tcp !== undefined) out.push(encodeAttr(IPVS_CMD_ATTR.TIMEOUT_TCP, payload.u32(t.tcp)));
  if (t.tcpFin !== undefined) out.push(encodeAttr(IPVS_CMD_ATTR.TIMEOUT_TCP_FIN, payload.u32(t.tcpFin)));
  if (t.udp !== undefined) out.push(encodeAttr(IPVS_CMD_ATTR.TIMEOUT_UDP, payload.u32(t.udp)));
  return out;
}

// ---- decoding ----

function decodeStats(a: AttrSet | undefined, wide: boolean): IpvsStats | undefined {
  if (!a) return undefined;
  const S = IPVS_STATS_ATTR;
  const num = (t: number, w: boolean): number => {
    const v = w ? a.u64(t) : a.u32(t);
    return v === undefined ? 0 : Number(v);
  };
  return {
    conns: num(S.CONNS, wide),
    inPkts: num(S.INPKTS, wide),
    outPkts: num(S.OUTPKTS, wide),
    inBytes: num(S.INBYTES, true),
    outBytes: num(S.OUTBYTES, true),
    cps: num(S.CPS, wide),
    inPps: num(S.INPPS, wide),
    outPps: num(S.OUTPPS, wide),
    inBps: num(S.INBPS, wide),
    outBps: num(S.OUTBPS, wide),
  };
}

const zeroStats = (): IpvsStats => ({
  conns: 0,
  inPkts: 0,
  outPkts: 0,
  inBytes: 0,
  outBytes: 0,
  cps: 0,
  inPps: 0,
  outPps: 0,
  inBps: 0,
  outBps: 0,
});

/** Address bytes from the kernel (16-byte nf_inet_addr, or exactly 4/16 bytes) for a family. */
function addressFromKernel(d: Buffer, family: IpFamily, where: string): string {
  const need = family === 4 ? 4 : 16;
  if (d.length < need) throw new NetlinkDecodeError(`${where}: address has ${d.length} bytes, expected at least ${need}`);
  return formatAddress(d.subarray(0, need), family);
}

/** Decode the attributes of one GET_SERVICE reply (its CMD_ATTR_SERVICE nest). */
export function decodeServiceReply(attrs: Buffer): IpvsService {
  const top = new AttrSet(attrs, 'IPVS service reply');
  const a = top.nested(IPVS_CMD_ATTR.SERVICE, 'IPVS service', svcNames);
  if (!a) throw new NetlinkDecodeError('IPVS service reply has no IPVS_CMD_ATTR_SERVICE');
  return decodeService(a);
}

export function decodeService(a: AttrSet): IpvsService {
  const S = IPVS_SVC_ATTR;
  const family = afToFamily(a.must(S.AF, a.u16(S.AF)), 'IPVS service');
  const flagsRaw = a.must(S.FLAGS, a.raw(S.FLAGS));
  if (flagsRaw.length < 4) throw new NetlinkDecodeError(`IPVS service: IPVS_SVC_ATTR_FLAGS has ${flagsRaw.length} bytes`);
  const flags = readU32(flagsRaw, 0);
  const settings = {
    scheduler: a.string(S.SCHED_NAME) ?? '',
    flags: flags & ~SVC_F.HASHED,
    timeout: a.u32(S.TIMEOUT) ?? 0,
    netmask: netmaskFromPayload(a.must(S.NETMASK, a.raw(S.NETMASK)), family),
    hashed: (flags & SVC_F.HASHED) !== 0,
  };
  const peName = a.string(S.PE_NAME);
  const stats64 = decodeStats(a.nested(S.STATS64, 'IPVS service STATS64', statsNames), true);
  const stats32 = decodeStats(a.nested(S.STATS, 'IPVS service STATS', statsNames), false);
  const common = {
    ...settings,
    ...(peName ? { peName } : {}),
    stats: stats64 ?? stats32 ?? zeroStats(),
    ...(stats32 ? { stats32 } : {}),
  };
  const fwmark = a.u32(S.FWMARK);
  if (fwmark) return { family, fwmark, ...common };
  return {
    family,
    protocol: protocolName(a.must(S.PROTOCOL, a.u16(S.PROTOCOL))),
    address: addressFromKernel(a.must(S.ADDR, a.raw(S.ADDR)), family, 'IPVS service'),
    port: a.must(S.PORT, a.be16(S.PORT)),
    ...common,
  };
}

/** Decode the attributes of one GET_DEST reply. `serviceFamily` is used when the kernel predates
 *  IPVS_DEST_ATTR_ADDR_FAMILY (before 3.18). */
export function decodeDestinationReply(attrs: Buffer, serviceFamily: IpFamily): IpvsDestination {
  const top = new AttrSet(attrs, 'IPVS destination reply');
  const a = top.nested(IPVS_CMD_ATTR.DEST, 'IPVS destination', destNames);
  if (!a) throw new NetlinkDecodeError('IPVS destination reply has no IPVS_CMD_ATTR_DEST');
  const D = IPVS_DEST_ATTR;
  const af = a.u16(D.ADDR_FAMILY);
  const family = af === undefined ? serviceFamily : afToFamily(af, 'IPVS destination');
  const forward = forwardName(a.must(D.FWD_METHOD, a.u32(D.FWD_METHOD)));
  const stats64 = decodeStats(a.nested(D.STATS64, 'IPVS destination STATS64', statsNames), true);
  const stats32 = decodeStats(a.nested(D.STATS, 'IPVS destination STATS', statsNames), false);
  const out: IpvsDestination = {
    address: addressFromKernel(a.must(D.ADDR, a.raw(D.ADDR)), family, 'IPVS destination'),
    port: a.must(D.PORT, a.be16(D.PORT)),
    family,
    forward,
    weight: a.must(D.WEIGHT, a.u32(D.WEIGHT)),
    upperThreshold: a.u32(D.U_THRESH) ?? 0,
    lowerThreshold: a.u32(D.L_THRESH) ?? 0,
    activeConns: a.u32(D.ACTIVE_CONNS) ?? 0,
    inactiveConns: a.u32(D.INACT_CONNS) ?? 0,
    persistConns: a.u32(D.PERSIST_CONNS) ?? 0,
    stats: stats64 ?? stats32 ?? zeroStats(),
  };
  if (stats32) out.stats32 = stats32;
  const tunType = a.u8(D.TUN_TYPE);
  if (forward === 'tunnel' && tunType !== undefined) {
    const flags = a.u16(D.TUN_FLAGS) ?? 0;
    out.tunnel = {
      type: tunnelTypeName(tunType),
      port: a.be16(D.TUN_PORT) ?? 0,
      csum: (flags & TUNNEL_FLAG.CSUM) !== 0,
      remcsum: (flags & TUNNEL_FLAG.REMCSUM) !== 0,
    };
  }
  return out;
}

export function decodeDaemonReply(attrs: Buffer): SyncDaemon {
  const top = new AttrSet(attrs, 'IPVS daemon reply');
  const a = top.nested(IPVS_CMD_ATTR.DAEMON, 'IPVS sync daemon', daemonNames);
  if (!a) throw new NetlinkDecodeError('IPVS daemon reply has no IPVS_CMD_ATTR_DAEMON');
  const D = IPVS_DAEMON_ATTR;
  const state = a.must(D.STATE, a.u32(D.STATE));
  const out: SyncDaemon = {
    state: state === DAEMON_STATE.BACKUP ? 'backup' : 'master',
    mcastInterface: a.must(D.MCAST_IFN, a.string(D.MCAST_IFN)),
    syncId: a.must(D.SYNC_ID, a.u32(D.SYNC_ID)),
  };
  const maxlen = a.u16(D.SYNC_MAXLEN);
  if (maxlen) out.syncMaxLen = maxlen;
  const port = a.u16(D.MCAST_PORT);
  if (port) out.mcastPort = port;
  const ttl = a.u8(D.MCAST_TTL);
  if (ttl) out.mcastTtl = ttl;
  const g4 = a.raw(D.MCAST_GROUP);
  const g6 = a.raw(D.MCAST_GROUP6);
  if (g4 && g4.length >= 4) out.mcastGroup = formatAddress(g4.subarray(0, 4), 4);
  else if (g6 && g6.length >= 16) out.mcastGroup = formatAddress(g6.subarray(0, 16), 6);
  return out;
}

export function decodeTimeouts(attrs: Buffer): IpvsTimeouts {
  const a = new AttrSet(attrs, 'IPVS timeouts');
  return {
    tcp: a.u32(IPVS_CMD_ATTR.TIMEOUT_TCP) ?? 0,
    tcpFin: a.u32(IPVS_CMD_ATTR.TIMEOUT_TCP_FIN) ?? 0,
    udp: a.u32(IPVS_CMD_ATTR.TIMEOUT_UDP) ?? 0,
  };
}

export function decodeInfo(attrs: Buffer): IpvsInfo {
  const a = new AttrSet(attrs, 'IPVS info', { 1: 'IPVS_INFO_ATTR_VERSION', 2: 'IPVS_INFO_ATTR_CONN_TAB_SIZE' });
  const v = a.must(IPVS_INFO_ATTR.VERSION, a.u32(IPVS_INFO_ATTR.VERSION));
  return {
    versionCode: v,
    version: `${(v >> 16) & 0xff}.${(v >> 8) & 0xff}.${v & 0xff}`,
    connTableSize: a.must(IPVS_INFO_ATTR.CONN_TAB_SIZE, a.u32(IPVS_INFO_ATTR.CONN_TAB_SIZE)),
  };
}
