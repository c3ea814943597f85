// Just enough rtnetlink to build a lab: links (veth, bridge), link state, addresses, routes.
// Requests are batched: one sendmsg per namespace per phase, one ACK per request.
import { canonical, familyOf, parsePrefix, toBig, type Prefix } from '../topology/addr';
import { native } from '../native';

const NLMSG_ERROR = 2;
const NLMSG_DONE = 3;
const F_REQUEST = 0x1, F_ACK = 0x4, F_EXCL = 0x200, F_CREATE = 0x400, F_DUMP = 0x300, F_ACK_TLVS = 0x200;
export const RTM = { NEWLINK: 16, DELLINK: 17, GETLINK: 18, SETLINK: 19, NEWADDR: 20, NEWROUTE: 24, DELROUTE: 25, GETROUTE: 26 } as const;
const IFLA = { ADDRESS: 1, IFNAME: 3, MTU: 4, MASTER: 10, LINKINFO: 18, NET_NS_FD: 28 } as const;
const IFLA_INFO_KIND = 1, IFLA_INFO_DATA = 2, VETH_INFO_PEER = 1, IFLA_BR_FORWARD_DELAY = 1;
const IFA_ADDRESS = 1, IFA_LOCAL = 2, IFA_FLAGS = 8, IFA_F_NODAD = 0x02;
const RTA_DST = 1, RTA_GATEWAY = 5;
const IFF_UP = 0x1;
export const RT_TABLE_MAIN = 254;
export const RTPROT_STATIC = 4;
/** Routes vslab adds in the host namespace carry this protocol number, so gc can find them. */
export const RTPROT_VSLAB = 245;
export const RTN_UNICAST = 1, RTN_UNREACHABLE = 7;
const AF_INET = 2, AF_INET6 = 10, AF_UNSPEC = 0;

function align4(n: number): number {
  return (n + 3) & ~3;
}

/** Builds one attribute (header + payload, padded). */
export function attr(type: number, payload: Buffer): Buffer {
  const len = 4 + payload.length;
  const b = Buffer.alloc(align4(len));
  b.writeUInt16LE(len, 0);
  b.writeUInt16LE(type, 2);
  payload.copy(b, 4);
  return b;
}
export const nested = (type: number, ...children: Buffer[]) => attr(type | 0x8000, Buffer.concat(children));
export const strAttr = (type: number, s: string) => attr(type, Buffer.from(s + '\0'));
export const u32Attr = (type: number, v: number) => { const b = Buffer.alloc(4); b.writeUInt32LE(v >>> 0); return attr(type, b); };
function macBuf(mac: string): Buffer {
  return Buffer.from(mac.split(':').map((h) => parseInt(h, 16)));
}
export function addrBuf(addr: string): Buffer {
  const f = familyOf(addr);
  const v = toBig(addr);
  const n = f === 4 ? 4 : 16;
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[n - 1 - i] = Number((v >> BigInt(8 * i)) & 0xffn);
  return b;
}

function ifinfo(index = 0, flags = 0, change = 0, family = AF_UNSPEC): Buffer {
  const b = Buffer.alloc(16);
  b.writeUInt8(family, 0);
  b.writeInt32LE(index, 4);
  b.writeUInt32LE(flags, 8);
  b.writeUInt32LE(change, 12);
  return b;
}

export interface NlRequest {
  type: number;
  flags: number;
  body: Buffer;
  /** What this request does, for error messages. */
  what: string;
}

/** A batch of requests for one netlink socket; `run` sends them in one go and maps errors back. */
export class RtnlBatch {
  private reqs: NlRequest[] = [];
  add(r: NlRequest): this {
    this.reqs.push(r);
    return this;
  }
  get size(): number {
    return this.reqs.length;
  }
  /** Sends every request; throws one Error naming every request the kernel refused. */
  run(fd: number, where: string, tolerate: (errno: number, r: NlRequest) => boolean = () => false): void {
    if (!this.reqs.length) return;
    const seqBase = nextSeq;
    nextSeq += this.reqs.length;
    const msgs = this.reqs.map((r, i) => encodeMsg(r.type, r.flags | F_REQUEST | F_ACK, seqBase + i, r.body));
    const reply = native().netlinkTransact(fd, Buffer.concat(msgs), 10_000);
    const problems: string[] = [];
    for (const m of parseMessages(reply)) {
      if (m.type !== NLMSG_ERROR) continue;
      const err = decodeError(m);
      if (err.errno === 0) continue;
      const req = this.reqs[m.seq - seqBase];
      if (!req) continue;
      if (tolerate(err.errno, req)) continue;
      problems.push(`${req.what}: ${err.message}`);
    }
    this.reqs = [];
    if (problems.length) throw new Error(`in ${where}: ${problems.join('; ')}`);
  }
}

let nextSeq = 1;

export function encodeMsg(type: number, flags: number, seq: number, body: Buffer): Buffer {
  const h = Buffer.alloc(16);
  h.writeUInt32LE(16 + body.length, 0);
  h.writeUInt16LE(type, 4);
  h.writeUInt16LE(flags, 6);
  h.writeUInt32LE(seq, 8);
  h.writeUInt32LE(0, 12);
  return Buffer.concat([h, body, Buffer.alloc(align4(body.length) - body.length)]);
}

export interface NlMessage {
  type: number;
  flags: number;
  seq: number;
  payload: Buffer;
}

export function parseMessages(buf: Buffer): NlMessage[] {
  const out: NlMessage[] = [];
  let off = 0;
  while (off + 16 <= buf.length) {
    const len = buf.readUInt32LE(off);
    if (len < 16 || off + len > buf.length) throw new Error(`malformed netlink reply: message of length ${len} at byte ${off} of ${buf.length}`);
    out.push({ type: buf.readUInt16LE(off + 4), flags: buf.readUInt16LE(off + 6), seq: buf.readUInt32LE(off + 8), payload: buf.subarray(off + 16, off + len) });
    off += align4(len);
  }
  return out;
}

export function parseAttrs(buf: Buffer): Map<number, Buffer> {
  const m = new Map<number, Buffer>();
  let off = 0;
  while (off + 4 <= buf.length) {
    const len = buf.readUInt16LE(off);
    if (len < 4 || off + len > buf.length) break;
    m.set(buf.readUInt16LE(off + 2) & 0x3fff, buf.subarray(off + 4, off + len));
    off += align4(len);
  }
  return m;
}

const ERRNO: Record<number, string> = { 1: 'EPERM', 2: 'ENOENT', 3: 'ESRCH', 13: 'EACCES', 16: 'EBUSY', 17: 'EEXIST', 19: 'ENODEV', 22: 'EINVAL', 34: 'ERANGE', 95: 'EOPNOTSUPP', 97: 'EAFNOSUPPORT', 99: 'EADDRNOTAVAIL', 101: 'ENETUNREACH' };
const ERRTEXT: Record<number, string> = { 1: 'operation not permitted', 2: 'no such object', 3: 'no such process/entry', 16: 'busy', 17: 'already exists', 19: 'no such device', 22: 'invalid argument', 34: 'out of range', 95: 'not supported by this kernel', 97: 'address family not supported', 99: 'address not available', 101: 'network unreachable' };

/** Decodes an NLMSG_ERROR payload: errno 0 is an ACK. Includes the kernel's extended-ACK message if any. */
export function decodeError(m: NlMessage): { errno: number; message: string } {
  const errno = -m.payload.readInt32LE(0);
  if (errno === 0) return { errno, message: 'ok' };
  let ext = '';
  if (m.flags & F_ACK_TLVS) {
    // With NETLINK_CAP_ACK only the original header (16 bytes) is echoed.
    const echoedLen = 16;
    const tlvs = parseAttrs(m.payload.subarray(4 + echoedLen));
    const msg = tlvs.get(1);
    if (msg) ext = msg.toString('utf8').replace(/\0.*$/s, '');
  }
  const name = ERRNO[errno] ?? `errno ${errno}`;
  return { errno, message: `${ext || ERRTEXT[errno] || 'refused'} (${name})` };
}

// ---- request builders ------------------------------------------------------------------------

export function newVeth(name: string, mac: string, mtu: number, peerName: string, peerNsFd: number, peerMac?: string): NlRequest {
  const peer = Buffer.concat([ifinfo(), strAttr(IFLA.IFNAME, peerName), u32Attr(IFLA.MTU, mtu), u32Attr(IFLA.NET_NS_FD, peerNsFd), ...(peerMac ? [attr(IFLA.ADDRESS, macBuf(peerMac))] : [])]);
  const body = Buffer.concat([
    ifinfo(), strAttr(IFLA.IFNAME, name), attr(IFLA.ADDRESS, macBuf(mac)), u32Attr(IFLA.MTU, mtu),
    nested(IFLA.LINKINFO, strAttr(IFLA_INFO_KIND, 'veth'), nested(IFLA_INFO_DATA, attr(VETH_INFO_PEER, peer))),
  ]);
  return { type: RTM.NEWLINK, flags: F_CREATE | F_EXCL, body, what: `create veth ${name} (peer ${peerName})` };
}

export function newBridge(name: string, mtu: number): NlRequest {
  const body = Buffer.concat([
    ifinfo(), strAttr(IFLA.IFNAME, name), u32Attr(IFLA.MTU, mtu),
    nested(IFLA.LINKINFO, strAttr(IFLA_INFO_KIND, 'bridge'), nested(IFLA_INFO_DATA, u32Attr(IFLA_BR_FORWARD_DELAY, 0))),
  ]);
  return { type: RTM.NEWLINK, flags: F_CREATE | F_EXCL, body, what: `create bridge ${name}` };
}

/** Brings a device (by name) up, optionally enslaving it to a master (by index). */
export function setUp(name: string, masterIndex?: number): NlRequest {
  const body = Buffer.concat([ifinfo(0, IFF_UP, IFF_UP), strAttr(IFLA.IFNAME, name), ...(masterIndex ? [u32Attr(IFLA.MASTER, masterIndex)] : [])]);
  return { type: RTM.NEWLINK, flags: 0, body, what: `bring ${name} up${masterIndex ? ' and attach it to its bridge' : ''}` };
}

export function newAddr(ifindex: number, dev: string, cidr: string): NlRequest {
  const p = parsePrefix(cidr, true) as Prefix;
  const addr = canonical(cidr.split('/')[0]);
  const h = Buffer.alloc(8);
  h.writeUInt8(p.family === 4 ? AF_INET : AF_INET6, 0);
  h.writeUInt8(p.len, 1);
  h.writeUInt8(p.family === 6 ? IFA_F_NODAD : 0, 2);
  h.writeUInt8(0, 3);
  h.writeUInt32LE(ifindex, 4);
  const a = addrBuf(addr);
  const body = Buffer.concat([h, attr(IFA_LOCAL, a), attr(IFA_ADDRESS, a), u32Attr(IFA_FLAGS, p.family === 6 ? IFA_F_NODAD : 0)]);
  return { type: RTM.NEWADDR, flags: F_CREATE | F_EXCL, body, what: `add address ${cidr} to ${dev}` };
}

export function routeMsg(type: number, to: string, opts: { via?: string; routeType?: number; protocol?: number; flags?: number }): NlRequest {
  const isDefault = to === 'default' || to === 'default6';
  const family = to === 'default' ? 4 : to === 'default6' ? 6 : (parsePrefix(to) as Prefix).family;
  const p: Prefix | undefined = isDefault ? undefined : (parsePrefix(to) as Prefix);
  const h = Buffer.alloc(12);
  h.writeUInt8(family === 4 ? AF_INET : AF_INET6, 0);
  h.writeUInt8(p ? p.len : 0, 1);
  h.writeUInt8(RT_TABLE_MAIN, 4);
  h.writeUInt8(opts.protocol ?? RTPROT_STATIC, 5);
  h.writeUInt8(0, 6); // scope universe
  h.writeUInt8(opts.routeType ?? RTN_UNICAST, 7);
  const attrs: Buffer[] = [];
  if (p) attrs.push(attr(RTA_DST, addrBuf(to.split('/')[0])));
  if (opts.via) attrs.push(attr(RTA_GATEWAY, addrBuf(opts.via)));
  const body = Buffer.concat([h, ...attrs]);
  const verb = type === RTM.DELROUTE ? 'delete' : 'add';
  return { type, flags: opts.flags ?? (type === RTM.NEWROUTE ? F_CREATE | F_EXCL : 0), body, what: `${verb} route ${to}${opts.via ? ' via ' + opts.via : ''}` };
}

/** Dumps the links of the namespace the socket lives in: name -> ifindex. */
export function linkIndexes(fd: number): Map<string, number> {
  const req = encodeMsg(RTM.GETLINK, F_REQUEST | F_DUMP, nextSeq++, ifinfo());
  const out = new Map<string, number>();
  for (const m of parseMessages(native().netlinkTransact(fd, req, 10_000))) {
    if (m.type === NLMSG_DONE) break;
    if (m.type !== RTM.NEWLINK) continue;
    const index = m.payload.readInt32LE(4);
    const name = parseAttrs(m.payload.subarray(16)).get(IFLA.IFNAME);
    if (name) out.set(name.toString('utf8').replace(/\0.*$/s, ''), index);
  }
  return out;
}

export interface RouteEntry {
  family: 4 | 6;
  dst: string;
  protocol: number;
  type: number;
  table: number;
}

/** Dumps the main-table routes of the namespace the socket lives in. */
export function dumpRoutes(fd: number): RouteEntry[] {
  const out: RouteEntry[] = [];
  for (const fam of [AF_INET, AF_INET6]) {
    const h = Buffer.alloc(12);
    h.writeUInt8(fam, 0);
    const req = encodeMsg(RTM.GETROUTE, F_REQUEST | F_DUMP, nextSeq++, h);
    for (const m of parseMessages(native().netlinkTransact(fd, req, 10_000))) {
      if (m.type !== RTM.NEWROUTE) continue;
      const p = m.payload;
      const dstLen = p.readUInt8(1);
      const a = parseAttrs(p.subarray(12));
      const table = a.get(15)?.readUInt32LE(0) ?? p.readUInt8(4);
      const dstB = a.get(RTA_DST);
      const family = fam === AF_INET ? 4 : 6;
      let dst = family === 4 ? '0.0.0.0' : '::';
      if (dstB) dst = family === 4 ? [...dstB].join('.') : canonical(dstB.toString('hex').match(/.{4}/g)!.join(':'));
      out.push({ family, dst: `${dst}/${dstLen}`, protocol: p.readUInt8(5), type: p.readUInt8(7), table });
    }
  }
  return out;
}
