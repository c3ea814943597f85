// Build packets from layer descriptions that use the same field names as the decoder's JSON layers, so
// `buildPacket(decodeFrame(x).layers)` gives back x and the oracle can write expected packets as layers.
// Derived fields (next-protocol numbers, lengths, checksums) are computed when absent; when present they are
// kept as given (to craft broken packets) unless `recompute` is set.
import { parseIp, parseIpv4, parseIpv6, parseMac } from './addr';
import { finish, pseudo4, pseudo6, sum16 } from './checksum';
import { tcpFlagsBits } from './decode';
import type { Ipv4Option, Ipv6Ext, Layer, TcpOption } from './layers';
import { LINKTYPE_ETHERNET, LINKTYPE_LINUX_SLL, LINKTYPE_LINUX_SLL2, LINKTYPE_NULL, LINKTYPE_RAW } from './linktype';

type Spec<L> = L extends Layer ? Partial<Omit<L, 'type'>> & { type: L['type'] } : never;

/** Builder-only extras. */
export interface BuildExtras {
  /** eth: pad the frame to the 60-byte Ethernet minimum. */
  pad?: boolean;
  /** icmp/icmpv6 errors: keep only this many bytes of the quoted datagram that follows. */
  quoteLen?: number;
  /** gre: set the C bit and compute the checksum. */
  csum?: boolean;
}

export interface PayloadSpec {
  type: 'payload';
  /** Hex string or bytes. */
  data?: string | Uint8Array;
  /** UTF-8 text. */
  text?: string;
  /** Length of a zero-filled payload (when neither data nor text is given). */
  len?: number;
  quoted?: true;
}

/** TCP options in a spec: the name is enough for the known kinds (kind defaults from it). */
export type TcpOptionSpec = Partial<TcpOption> & { name: string };
export type Ipv4OptionSpec = Partial<Ipv4Option> & { type: number };
export type Ipv6ExtSpec = Partial<Ipv6Ext> & { type: Ipv6Ext['type'] };

type Nested<S> = S extends { type: 'tcp' } ? Omit<S, 'options'> & { options?: TcpOptionSpec[] }
  : S extends { type: 'ipv4' } ? Omit<S, 'options'> & { options?: Ipv4OptionSpec[] }
  : S extends { type: 'ipv6' } ? Omit<S, 'ext'> & { ext?: Ipv6ExtSpec[] }
  : S;

export type LayerSpec = (Nested<Exclude<Spec<Layer>, { type: 'payload' }>> & BuildExtras) | PayloadSpec;

export interface BuildOptions {
  /** Recompute every derived field even when the layer gives a value. */
  recompute?: boolean;
}

const IP_PROTO: Record<string, number> = { tcp: 6, udp: 17, icmp: 1, icmpv6: 58, ipv4: 4, ipv6: 41, gre: 47 };
const ETHERTYPE: Record<string, number> = { ipv4: 0x0800, ipv6: 0x86dd, arp: 0x0806, vlan: 0x8100, eth: 0x6558 };
const EXT_CODE: Record<Ipv6Ext['type'], number> = { hbh: 0, routing: 43, frag: 44, ah: 51, dest: 60, mobility: 135, hip: 139, shim6: 140 };

export const DEFAULTS = {
  macSrc: '02:00:00:00:00:01',
  macDst: '02:00:00:00:00:02',
  ipv4Src: '198.18.0.1',
  ipv4Dst: '198.18.0.2',
  ipv6Src: '2001:db8::1',
  ipv6Dst: '2001:db8::2',
};

function hexBytes(h: string, what: string): Buffer {
  if (h.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(h)) throw new Error(`${what}: "${h}" is not an even-length hex string`);
  return Buffer.from(h, 'hex');
}

function pick<T>(given: T | undefined, derived: T, recompute: boolean): T {
  return given === undefined || recompute ? derived : given;
}

function encodeTcpOptions(opts: TcpOptionSpec[]): Buffer {
  const parts: Buffer[] = [];
  for (const o of opts) {
    const kind = o.kind ?? kindByName(o.name);
    let body: Buffer;
    switch (o.name) {
      case 'eol': parts.push(Buffer.from([0])); continue;
      case 'nop': parts.push(Buffer.from([1])); continue;
      case 'mss': body = o.data !== undefined ? hexBytes(o.data, 'mss') : u16b(o.value ?? 1460); break;
      case 'wscale': body = o.data !== undefined ? hexBytes(o.data, 'wscale') : Buffer.from([o.value ?? 7]); break;
      case 'sackOK': body = Buffer.alloc(0); break;
      case 'sack': body = Buffer.concat((o.blocks ?? []).map(([l, r]) => Buffer.concat([u32b(l), u32b(r)]))); break;
      case 'timestamp': body = o.data !== undefined ? hexBytes(o.data, 'timestamp') : Buffer.concat([u32b(o.tsval ?? 0), u32b(o.tsecr ?? 0)]); break;
      case 'userTimeout': body = o.data !== undefined ? hexBytes(o.data, 'userTimeout') : u16b(o.value ?? 0); break;
      case 'toa': {
        const a = parseIp(o.addr ?? '0.0.0.0');
        body = Buffer.concat([u16b(o.port ?? 0), a]);
        break;
      }
      case 'exp': body = Buffer.concat([o.exid !== undefined ? u16b(o.exid) : Buffer.alloc(0), hexBytes(o.data ?? '', 'exp')]); break;
      default: body = hexBytes(o.data ?? '', `tcp option ${o.name}`);
    }
    const len = o.name === 'malformed' && o.len !== undefined ? o.len : 2 + body.length;
    parts.push(Buffer.from([kind, len]), body);
  }
  const raw = Buffer.concat(parts);
  return Buffer.concat([raw, Buffer.alloc((4 - (raw.length % 4)) % 4)]);
}

function kindByName(name: string): number {
  const k: Record<string, number> = { eol: 0, nop: 1, mss: 2, wscale: 3, sackOK: 4, sack: 5, timestamp: 8, md5: 19, userTimeout: 28, tcpAo: 29, mptcp: 30, tfo: 34, toa: 254, exp: 254 };
  const v = k[name];
  if (v === undefined) throw new Error(`tcp option "${name}" needs a numeric kind`);
  return v;
}

function encodeIpv4Options(opts: Ipv4OptionSpec[]): Buffer {
  const parts: Buffer[] = [];
  for (const o of opts) {
    if (o.type === 0 || o.type === 1) {
      parts.push(Buffer.from([o.type]));
      continue;
    }
    const body = o.type === 31 && o.addr !== undefined ? Buffer.concat([u16b(o.port ?? 0), parseIpv4(o.addr)]) : hexBytes(o.data ?? '', `ipv4 option ${o.type}`);
    parts.push(Buffer.from([o.type, 2 + body.length]), body);
  }
  const raw = Buffer.concat(parts);
  return Buffer.concat([raw, Buffer.alloc((4 - (raw.length % 4)) % 4)]);
}

function u16b(v: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(v & 0xffff);
  return b;
}
function u32b(v: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(v >>> 0);
  return b;
}

function payloadBytes(p: PayloadSpec): Buffer {
  if (p.data !== undefined) return typeof p.data === 'string' ? hexBytes(p.data, 'payload') : Buffer.from(p.data);
  if (p.text !== undefined) return Buffer.from(p.text, 'utf8');
  return Buffer.alloc(p.len ?? 0);
}

function ipAddrs(spec: LayerSpec): { src: Buffer; dst: Buffer; v6: boolean } {
  if (spec.type === 'ipv4') return { src: parseIpv4(spec.src ?? DEFAULTS.ipv4Src), dst: parseIpv4(spec.dst ?? DEFAULTS.ipv4Dst), v6: false };
  if (spec.type === 'ipv6') return { src: parseIpv6(spec.src ?? DEFAULTS.ipv6Src), dst: parseIpv6(spec.dst ?? DEFAULTS.ipv6Dst), v6: true };
  throw new Error('internal: not an IP layer');
}

/** The link type a packet built from these layers should be written with. */
export function linkTypeOf(specs: LayerSpec[]): number {
  switch (specs[0]?.type) {
    case 'eth': return LINKTYPE_ETHERNET;
    case 'sll': return LINKTYPE_LINUX_SLL;
    case 'sll2': return LINKTYPE_LINUX_SLL2;
    case 'null': return LINKTYPE_NULL;
    default: return LINKTYPE_RAW;
  }
}

/** Builds the wire bytes of a packet from its layers (outermost first). */
export function buildPacket(specs: LayerSpec[], opts: BuildOptions = {}): Buffer {
  const rc = !!opts.recompute;
  let inner: Buffer = Buffer.alloc(0);
  for (let i = specs.length - 1; i >= 0; i--) {
    const sp = specs[i];
    const nextType = specs[i + 1]?.type;
    const ipIdx = (() => {
      for (let j = i - 1; j >= 0; j--) if (specs[j].type === 'ipv4' || specs[j].type === 'ipv6') return j;
      return -1;
    })();
    const pseudo = (proto: number, b: Buffer): number => {
      if (ipIdx < 0) return 0;
      const a = ipAddrs(specs[ipIdx]);
      const ab = Buffer.concat([a.src, a.dst]);
      return a.v6 ? pseudo6(ab, 0, 16, proto, b.length) : pseudo4(ab, 0, 4, proto, b.length);
    };
    switch (sp.type) {
      case 'payload':
        inner = Buffer.concat([payloadBytes(sp), inner]);
        break;
      case 'eth': {
        const h = Buffer.alloc(14);
        parseMac(sp.dst ?? DEFAULTS.macDst).copy(h, 0);
        parseMac(sp.src ?? DEFAULTS.macSrc).copy(h, 6);
        h.writeUInt16BE(pick(sp.ethertype, ETHERTYPE[nextType ?? ''] ?? 0x88b5, rc), 12);
        inner = Buffer.concat([h, inner]);
        if (sp.pad && inner.length < 60) inner = Buffer.concat([inner, Buffer.alloc(60 - inner.length)]);
        break;
      }
      case 'vlan': {
        const h = Buffer.alloc(4);
        h.writeUInt16BE((((sp.pcp ?? 0) & 7) << 13) | (((sp.dei ?? 0) & 1) << 12) | ((sp.id ?? 1) & 0xfff));
        h.writeUInt16BE(pick(sp.ethertype, ETHERTYPE[nextType ?? ''] ?? 0x88b5, rc), 2);
        inner = Buffer.concat([h, inner]);
        break;
      }
      case 'sll': case 'sll2': {
        const addr = parseMac(sp.addr ?? DEFAULTS.macSrc);
        const proto = pick(sp.proto, ETHERTYPE[nextType ?? ''] ?? 0, rc);
        let h: Buffer;
        if (sp.type === 'sll') {
          h = Buffer.alloc(16);
          h.writeUInt16BE(sp.pktType ?? 0, 0);
          h.writeUInt16BE(sp.hatype ?? 1, 2);
          h.writeUInt16BE(6, 4);
          addr.copy(h, 6);
          h.writeUInt16BE(proto, 14);
        } else {
          h = Buffer.alloc(20);
          h.writeUInt16BE(proto, 0);
          h.writeUInt32BE(sp.ifindex ?? 1, 4);
          h.writeUInt16BE(sp.hatype ?? 1, 8);
          h[10] = sp.pktType ?? 0;
          h[11] = 6;
          addr.copy(h, 12);
        }
        inner = Buffer.concat([h, inner]);
        break;
      }
      case 'null': {
        const h = Buffer.alloc(4);
        h.writeUInt32LE(pick(sp.family, nextType === 'ipv6' ? 10 : 2, rc));
        inner = Buffer.concat([h, inner]);
        break;
      }
      case 'arp': {
        const v6 = (sp.psrc ?? '').includes(':');
        const pl = v6 ? 16 : 4;
        const h = Buffer.alloc(8 + 2 * (6 + pl));
        h.writeUInt16BE(sp.htype ?? 1, 0);
        h.writeUInt16BE(sp.ptype ?? 0x0800, 2);
        h[4] = 6;
        h[5] = pl;
        h.writeUInt16BE(sp.op ?? 1, 6);
        parseMac(sp.hwsrc ?? DEFAULTS.macSrc).copy(h, 8);
        parseIp(sp.psrc ?? DEFAULTS.ipv4Src).copy(h, 14);
        parseMac(sp.hwdst ?? '00:00:00:00:00:00').copy(h, 14 + pl);
        parseIp(sp.pdst ?? DEFAULTS.ipv4Dst).copy(h, 20 + pl);
        inner = Buffer.concat([h, inner]);
        break;
      }
      case 'ipv4': {
        const options = encodeIpv4Options(sp.options ?? []);
        const ihl = pick(sp.ihl, 20 + options.length, rc);
        const h = Buffer.alloc(20 + options.length);
        const a = ipAddrs(sp);
        h[0] = 0x40 | ((ihl / 4) & 15);
        h[1] = sp.tos ?? 0;
        h.writeUInt16BE(pick(sp.len, h.length + inner.length, rc) & 0xffff, 2);
        h.writeUInt16BE(sp.id ?? 0, 4);
        h.writeUInt16BE((sp.df ? 0x4000 : 0) | (sp.mf ? 0x2000 : 0) | (((sp.fragOffset ?? 0) / 8) & 0x1fff), 6);
        h[8] = sp.ttl ?? 64;
        h[9] = pick(sp.proto, IP_PROTO[nextType ?? ''] ?? 253, rc);
        a.src.copy(h, 12);
        a.dst.copy(h, 16);
        options.copy(h, 20);
        h.writeUInt16BE(pick(sp.checksum, finish(sum16(h, 0, h.length)), rc), 10);
        inner = Buffer.concat([h, inner]);
        break;
      }
      case 'ipv6': {
        const upper = pick(sp.proto, IP_PROTO[nextType ?? ''] ?? 59, rc);
        const exts = sp.ext ?? [];
        const extBufs: Buffer[] = [];
        for (let k = 0; k < exts.length; k++) {
          const e = exts[k];
          const nh = pick(e.nh, k + 1 < exts.length ? EXT_CODE[exts[k + 1].type] : upper, rc);
          let eb: Buffer;
          if (e.type === 'frag') {
            eb = Buffer.alloc(8);
            eb.writeUInt16BE(((e.fragOffset ?? 0) & 0xfff8) | (e.mf ? 1 : 0), 2);
            eb.writeUInt32BE((e.fragId ?? 0) >>> 0, 4);
          } else if (e.type === 'ah') {
            const len = Math.max(12, e.len ?? 12);
            eb = Buffer.alloc(len);
            eb[1] = len / 4 - 2;
          } else {
            const len = Math.max(8, e.len ?? 8);
            if (len % 8 !== 0) throw new Error(`ipv6 extension ${e.type}: length ${len} is not a multiple of 8`);
            eb = Buffer.alloc(len);
            eb[1] = len / 8 - 1;
            if (e.type === 'routing') {
              eb[2] = e.routingType ?? 0;
              eb[3] = e.segmentsLeft ?? 0;
            } else if (len - 2 >= 2) {
              eb[2] = 1; // PadN filling the option area
              eb[3] = len - 4;
            }
          }
          eb[0] = nh;
          extBufs.push(eb);
        }
        const ext = Buffer.concat(extBufs);
        const h = Buffer.alloc(40);
        const a = ipAddrs(sp);
        h.writeUInt32BE(((6 << 28) | (((sp.tc ?? 0) & 0xff) << 20) | ((sp.flow ?? 0) & 0xfffff)) >>> 0, 0);
        h.writeUInt16BE(pick(sp.plen, ext.length + inner.length, rc) & 0xffff, 4);
        h[6] = pick(sp.nh, exts.length ? EXT_CODE[exts[0].type] : upper, rc);
        h[7] = sp.hlim ?? 64;
        a.src.copy(h, 8);
        a.dst.copy(h, 24);
        inner = Buffer.concat([h, ext, inner]);
        break;
      }
      case 'gre': {
        const withC = sp.csum || sp.checksum !== undefined;
        const f = (withC ? 0x8000 : 0) | (sp.key !== undefined ? 0x2000 : 0) | (sp.seq !== undefined ? 0x1000 : 0) | ((sp.version ?? 0) & 7);
        const parts: Buffer[] = [u16b(f), u16b(pick(sp.proto, ETHERTYPE[nextType ?? ''] ?? 0, rc))];
        const csumAt = withC ? 4 : -1;
        if (withC) parts.push(Buffer.alloc(4));
        if (sp.key !== undefined) parts.push(u32b(sp.key));
        if (sp.seq !== undefined) parts.push(u32b(sp.seq));
        const msg = Buffer.concat([...parts, inner]);
        if (withC) {
          const given = sp.csum && sp.checksum === undefined ? undefined : sp.checksum;
          msg.writeUInt16BE(pick(given, finish(sum16(msg, 0, msg.length)), rc), csumAt);
        }
        inner = msg;
        break;
      }
      case 'gue': {
        if ((sp.version ?? 0) === 1) break; // version 1: the inner IP header follows the UDP header directly
        const options = sp.options ? hexBytes(sp.options, 'gue options') : Buffer.alloc(0);
        const h = Buffer.alloc(4);
        const hlen = pick(sp.hlen, options.length / 4, rc);
        h[0] = ((sp.version ?? 0) << 6) | (sp.control ? 0x20 : 0) | (hlen & 0x1f);
        h[1] = pick(sp.proto, IP_PROTO[nextType ?? ''] ?? 0, rc);
        h.writeUInt16BE(sp.flags ?? 0, 2);
        inner = Buffer.concat([h, options, inner]);
        break;
      }
      case 'vxlan': {
        const h = Buffer.alloc(8);
        h[0] = sp.flags ?? 0x08;
        h.writeUIntBE((sp.vni ?? 0) & 0xffffff, 4, 3);
        inner = Buffer.concat([h, inner]);
        break;
      }
      case 'udp': {
        const h = Buffer.alloc(8);
        const dflt = nextType === 'gue' ? 6080 : nextType === 'vxlan' ? 4789 : 1024;
        h.writeUInt16BE(sp.sport ?? 1024, 0);
        h.writeUInt16BE(sp.dport ?? dflt, 2);
        const len = pick(sp.len, 8 + inner.length, rc);
        h.writeUInt16BE(len & 0xffff, 4);
        const msg = Buffer.concat([h, inner]);
        let ck = finish(pseudo(17, msg) + sum16(msg, 0, msg.length));
        if (ck === 0) ck = 0xffff; // zero means "no checksum" for UDP
        msg.writeUInt16BE(pick(sp.checksum, ck, rc), 6);
        inner = msg;
        break;
      }
      case 'tcp': {
        const options = encodeTcpOptions(sp.options ?? []);
        const hlen = pick(sp.hlen, 20 + options.length, rc);
        const h = Buffer.alloc(20 + options.length);
        h.writeUInt16BE(sp.sport ?? 1024, 0);
        h.writeUInt16BE(sp.dport ?? 80, 2);
        h.writeUInt32BE((sp.seq ?? 0) >>> 0, 4);
        h.writeUInt32BE((sp.ack ?? 0) >>> 0, 8);
        const fl = tcpFlagsBits(sp.flags ?? 'S');
        h[12] = (((hlen / 4) & 15) << 4) | ((fl >> 8) & 1);
        h[13] = fl & 0xff;
        h.writeUInt16BE(sp.window ?? 65535, 14);
        h.writeUInt16BE(sp.urgent ?? 0, 18);
        options.copy(h, 20);
        const msg = Buffer.concat([h, inner]);
        msg.writeUInt16BE(pick(sp.checksum, finish(pseudo(6, msg) + sum16(msg, 0, msg.length)), rc), 16);
        inner = msg;
        break;
      }
      case 'icmp': case 'icmpv6': {
        const v6 = sp.type === 'icmpv6';
        const t = sp.icmpType ?? (v6 ? 128 : 8);
        const h = Buffer.alloc(8);
        h[0] = t;
        h[1] = sp.code ?? 0;
        if (sp.id !== undefined || sp.seq !== undefined) {
          h.writeUInt16BE(sp.id ?? 0, 4);
          h.writeUInt16BE(sp.seq ?? 0, 6);
        }
        if (sp.mtu !== undefined) {
          if (v6) h.writeUInt32BE(sp.mtu, 4);
          else h.writeUInt16BE(sp.mtu, 6);
        }
        if (sp.gateway !== undefined) parseIpv4(sp.gateway).copy(h, 4);
        if (sp.pointer !== undefined) {
          if (v6) h.writeUInt32BE(sp.pointer, 4);
          else h[4] = sp.pointer;
        }
        let body = inner;
        if (sp.quoteLen !== undefined) body = body.subarray(0, sp.quoteLen);
        if (sp.target !== undefined) body = Buffer.concat([parseIpv6(sp.target), body]);
        const msg = Buffer.concat([h, body]);
        const ck = v6 ? finish(pseudo(58, msg) + sum16(msg, 0, msg.length)) : finish(sum16(msg, 0, msg.length));
        msg.writeUInt16BE(pick(sp.checksum, ck, rc), 2);
        inner = msg;
        break;
      }
      default: {
        const never: never = sp;
        throw new Error(`cannot build a layer of type ${(never as { type: string }).type}`);
      }
    }
  }
  return inner;
}
