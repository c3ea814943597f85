// Full decoding: turns the layer map found by scanFrame into JSON layer objects (layers.ts) and verifies
// checksums. Build these objects only when they are needed; the scan alone answers flow questions fast.
import { ipv4ToString, ipv6ToString, macToString, toHex } from './addr';
import { fold, pseudo4, pseudo6, sum16 } from './checksum';
import type {
  ArpLayer, DecodedPacket, EthLayer, GreLayer, GueLayer, IcmpLayer, Ipv4Layer, Ipv4Option, Ipv6Ext, Ipv6Layer, Layer,
  NullLayer, SllLayer, TcpLayer, TcpOption, UdpLayer, VlanLayer, VxlanLayer,
} from './layers';
import {
  E_BEYOND, E_GRE_VERSION, E_GUE_VERSION, E_IP_LEN, E_IP_VERSION, E_IPV4_IHL, E_IPV6_EXT, E_LINKTYPE, E_NONE, E_TCP_OFF,
  E_TOO_DEEP, E_TRUNCATED, E_UDP_LEN, FrameScan, L_ARP, L_ETH, L_GRE, L_GUE, L_ICMP, L_ICMPV6, L_IPV4, L_IPV6, L_NULL,
  L_SLL, L_SLL2, L_TCP, L_UDP, L_VLAN, L_VXLAN, LAYER_NAMES, MAX_LAYERS, scanFrame, type ScanOptions,
} from './scan';

export interface DecodeOptions extends ScanOptions {
  /** Add a final `payload` layer with the payload bytes in hex. */
  payload?: boolean;
}

const TCP_FLAG_LETTERS = 'FSRPAUECN';

export function tcpFlagsString(bits: number): string {
  let s = '';
  for (let i = 0; i < 9; i++) if (bits & (1 << i)) s += TCP_FLAG_LETTERS[i];
  return s;
}

export function tcpFlagsBits(flags: string): number {
  let v = 0;
  for (const c of flags) {
    const i = TCP_FLAG_LETTERS.indexOf(c.toUpperCase());
    if (i < 0) throw new Error(`TCP flags "${flags}": "${c}" is not one of ${TCP_FLAG_LETTERS}`);
    v |= 1 << i;
  }
  return v;
}

const IPV6_EXT_NAMES: Record<number, Ipv6Ext['type']> = { 0: 'hbh', 43: 'routing', 44: 'frag', 51: 'ah', 60: 'dest', 135: 'mobility', 139: 'hip', 140: 'shim6' };
const IPV4_OPT_NAMES: Record<number, string> = { 0: 'eol', 1: 'nop', 7: 'rr', 68: 'ts', 130: 'sec', 131: 'lsrr', 133: 'esec', 136: 'sid', 137: 'ssrr', 148: 'ra', 82: 'traceroute', 25: 'qs', 31: 'uoa' };

/** Text for a scan error, naming the byte offset within the frame. */
export function scanErrorText(s: FrameScan): string {
  const at = s.errorAt;
  const what = LAYER_NAMES[s.errorLayer] ?? 'header';
  const v = s.errorValue;
  switch (s.error) {
    case E_TRUNCATED: return `${what} header at byte ${at} is cut short by the capture (snap length): it needs ${v} bytes, the capture has ${s.capEnd - s.start - at}`;
    case E_BEYOND: return `${what} header at byte ${at} runs past the end of the frame or of the length the enclosing layer declares (it needs ${v} bytes)`;
    case E_IP_VERSION: return `${what} header at byte ${at} has IP version ${v}`;
    case E_IPV4_IHL: return `ipv4 header at byte ${at} has a header length of ${v} bytes (minimum 20)`;
    case E_IP_LEN: return `ipv4 header at byte ${at} has total length ${v}, shorter than its own header`;
    case E_UDP_LEN: return `udp header at byte ${at} has length ${v} (minimum 8)`;
    case E_TCP_OFF: return `tcp header at byte ${at} has a data offset of ${v} bytes (minimum 20)`;
    case E_TOO_DEEP: return `more than ${MAX_LAYERS} layers at byte ${at} (encapsulation loop?)`;
    case E_LINKTYPE: return `link type ${v} is not supported`;
    case E_GUE_VERSION: return `gue header at byte ${at} has version ${v} (only 0 and 1 exist)`;
    case E_GRE_VERSION: return `gre header at byte ${at} has version ${v} (only 0 and 1 exist)`;
    case E_IPV6_EXT: return `ipv6 extension header chain at byte ${at} is longer than 16 headers`;
    default: return `decoding stopped at byte ${at}`;
  }
}

function u16(b: Uint8Array, o: number): number {
  return (b[o] << 8) | b[o + 1];
}
function u32(b: Uint8Array, o: number): number {
  return ((b[o] << 24) | (b[o + 1] << 16) | (b[o + 2] << 8) | b[o + 3]) >>> 0;
}

function tcpOptions(b: Uint8Array, start: number, end: number): TcpOption[] {
  const out: TcpOption[] = [];
  let o = start;
  while (o < end) {
    const kind = b[o];
    if (kind === 0) {
      out.push({ kind, name: 'eol' });
      break;
    }
    if (kind === 1) {
      out.push({ kind, name: 'nop' });
      o++;
      continue;
    }
    if (o + 1 >= end) {
      out.push({ kind, name: 'malformed', error: 'option kind without a length byte at the end of the header' });
      break;
    }
    const len = b[o + 1];
    if (len < 2 || o + len > end) {
      out.push({ kind, name: 'malformed', len, error: `length ${len} ${len < 2 ? 'is below 2' : 'runs past the end of the header'}` });
      break;
    }
    const v = o + 2;
    const data = () => toHex(b, v, o + len);
    switch (kind) {
      case 2: out.push(len === 4 ? { kind, name: 'mss', len, value: u16(b, v) } : { kind, name: 'mss', len, data: data() }); break;
      case 3: out.push(len === 3 ? { kind, name: 'wscale', len, value: b[v] } : { kind, name: 'wscale', len, data: data() }); break;
      case 4: out.push({ kind, name: 'sackOK', len }); break;
      case 5: {
        const blocks: Array<[number, number]> = [];
        for (let q = v; q + 8 <= o + len; q += 8) blocks.push([u32(b, q), u32(b, q + 4)]);
        out.push({ kind, name: 'sack', len, blocks });
        break;
      }
      case 8: out.push(len === 10 ? { kind, name: 'timestamp', len, tsval: u32(b, v), tsecr: u32(b, v + 4) } : { kind, name: 'timestamp', len, data: data() }); break;
      case 19: out.push({ kind, name: 'md5', len, data: data() }); break;
      case 28: out.push(len === 4 ? { kind, name: 'userTimeout', len, value: u16(b, v) } : { kind, name: 'userTimeout', len, data: data() }); break;
      case 29: out.push({ kind, name: 'tcpAo', len, data: data() }); break;
      case 30: out.push({ kind, name: 'mptcp', len, data: data() }); break;
      case 34: out.push({ kind, name: 'tfo', len, data: data() }); break;
      case 253:
      case 254:
        // TOA (Full-NAT client address): 254/8 = port + IPv4, 254/20 or 253/20 = port + IPv6.
        if (len === 8) out.push({ kind, name: 'toa', len, port: u16(b, v), addr: ipv4ToString(b, v + 2) });
        else if (len === 20) out.push({ kind, name: 'toa', len, port: u16(b, v), addr: ipv6ToString(b, v + 2) });
        else if (len >= 4) out.push({ kind, name: 'exp', len, exid: u16(b, v), data: toHex(b, v + 2, o + len) });
        else out.push({ kind, name: 'exp', len, data: data() });
        break;
      default: out.push({ kind, name: 'unknown', len, data: data() });
    }
    o += len;
  }
  return out;
}

function ipv4Options(b: Uint8Array, start: number, end: number): Ipv4Option[] {
  const out: Ipv4Option[] = [];
  let o = start;
  while (o < end) {
    const t = b[o];
    const name = IPV4_OPT_NAMES[t] ?? 'unknown';
    if (t === 0) {
      out.push({ type: t, name, len: 1 });
      break;
    }
    if (t === 1) {
      out.push({ type: t, name, len: 1 });
      o++;
      continue;
    }
    const len = o + 1 < end ? b[o + 1] : 0;
    if (len < 2 || o + len > end) {
      out.push({ type: t, name: 'malformed', len, data: toHex(b, o, end) });
      break;
    }
    if (t === 31 && len === 8) out.push({ type: t, name, len, port: u16(b, o + 2), addr: ipv4ToString(b, o + 4) });
    else out.push({ type: t, name, len, data: toHex(b, o + 2, o + len) });
    o += len;
  }
  return out;
}

function hwAddr(b: Uint8Array, o: number, n: number): string {
  if (n === 6) return macToString(b, o);
  const parts: string[] = [];
  for (let i = 0; i < n; i++) parts.push(b[o + i].toString(16).padStart(2, '0'));
  return parts.join(':');
}

export class PacketDecoder {
  readonly scan: FrameScan;
  private readonly withPayload: boolean;

  constructor(opts: DecodeOptions = {}) {
    this.scan = new FrameScan(opts);
    this.withPayload = !!opts.payload;
  }

  /** Decodes one frame. Never throws on packet contents; problems are reported in `error`. */
  decode(b: Uint8Array, start: number, capLen: number, linkType: number, origLen = capLen): DecodedPacket {
    const s = this.scan;
    const n = scanFrame(s, b, start, capLen, linkType, origLen);
    const layers: Layer[] = [];
    const cap = s.capEnd;
    for (let i = 0; i < n; i++) {
      const o = s.off[i];
      const h = s.hlen[i];
      const partial = s.partial[i] === 1;
      const quoted = s.quotedFrom >= 0 && i >= s.quotedFrom;
      // Bytes that really exist for this layer's region (quoted data ends with the ICMP message).
      let avail = cap;
      if (quoted) avail = Math.min(cap, s.end[s.quotedFrom - 1]);
      const whole = !partial && s.end[i] <= avail;
      let layer: Layer;
      switch (s.type[i]) {
        case L_ETH:
          layer = { type: 'eth', src: macToString(b, o + 6), dst: macToString(b, o), ethertype: u16(b, o + 12) } satisfies EthLayer;
          break;
        case L_VLAN: {
          const tci = u16(b, o);
          layer = { type: 'vlan', id: tci & 0xfff, pcp: tci >> 13, dei: (tci >> 12) & 1, ethertype: u16(b, o + 2) } satisfies VlanLayer;
          break;
        }
        case L_SLL:
          layer = { type: 'sll', pktType: u16(b, o), hatype: u16(b, o + 2), addr: hwAddr(b, o + 6, Math.min(8, u16(b, o + 4))), proto: u16(b, o + 14) } satisfies SllLayer;
          break;
        case L_SLL2:
          layer = { type: 'sll2', proto: u16(b, o), ifindex: u32(b, o + 4), hatype: u16(b, o + 8), pktType: b[o + 10], addr: hwAddr(b, o + 12, Math.min(8, b[o + 11])) } satisfies SllLayer;
          break;
        case L_NULL: {
          const le = b[o] | (b[o + 1] << 8);
          layer = { type: 'null', family: le !== 0 ? le : u16(b, o + 2) } satisfies NullLayer;
          break;
        }
        case L_ARP: {
          const hl = b[o + 4];
          const pl = b[o + 5];
          const pa = (q: number) => (pl === 4 ? ipv4ToString(b, q) : pl === 16 ? ipv6ToString(b, q) : toHex(b, q, q + pl));
          layer = {
            type: 'arp', op: u16(b, o + 6), htype: u16(b, o), ptype: u16(b, o + 2),
            hwsrc: hwAddr(b, o + 8, hl), psrc: pa(o + 8 + hl), hwdst: hwAddr(b, o + 8 + hl + pl, hl), pdst: pa(o + 8 + 2 * hl + pl),
          } satisfies ArpLayer;
          break;
        }
        case L_IPV4: {
          const ihl = (b[o] & 15) * 4;
          const frag = u16(b, o + 6);
          const hdrPresent = Math.min(h, ihl);
          const ok = h >= ihl ? fold(sum16(b, o, o + ihl)) === 0xffff : null;
          layer = {
            type: 'ipv4', src: ipv4ToString(b, o + 12), dst: ipv4ToString(b, o + 16), ttl: b[o + 8], proto: b[o + 9], id: u16(b, o + 4),
            tos: b[o + 1], len: u16(b, o + 2), ihl, df: (frag & 0x4000) !== 0, mf: (frag & 0x2000) !== 0, fragOffset: (frag & 0x1fff) * 8,
            options: ipv4Options(b, o + 20, o + hdrPresent), checksum: u16(b, o + 10), checksumOk: ok,
          } satisfies Ipv4Layer;
          break;
        }
        case L_IPV6: {
          const ext: Ipv6Ext[] = [];
          let nh = b[o + 6];
          let q = o + 40;
          while (q < o + h) {
            const type = IPV6_EXT_NAMES[nh];
            const el = nh === 44 ? 8 : nh === 51 ? (b[q + 1] + 2) * 4 : (b[q + 1] + 1) * 8;
            const e: Ipv6Ext = { type, nh: b[q], len: el };
            if (nh === 44) {
              const f = u16(b, q + 2);
              e.fragOffset = f & 0xfff8;
              e.mf = (f & 1) === 1;
              e.fragId = u32(b, q + 4);
            } else if (nh === 43) {
              e.routingType = b[q + 2];
              e.segmentsLeft = b[q + 3];
            }
            ext.push(e);
            nh = b[q];
            q += el;
          }
          const w = u32(b, o);
          layer = {
            type: 'ipv6', src: ipv6ToString(b, o + 8), dst: ipv6ToString(b, o + 24), hlim: b[o + 7], nh: b[o + 6], proto: nh,
            tc: (w >>> 20) & 0xff, flow: w & 0xfffff, plen: u16(b, o + 4), ext,
          } satisfies Ipv6Layer;
          break;
        }
        case L_GRE: {
          const f = u16(b, o);
          const g: GreLayer = { type: 'gre', proto: u16(b, o + 2), version: f & 7 };
          let q = o + 4;
          if (f & 0xc000) {
            if (f & 0x8000) {
              g.checksum = u16(b, q);
              g.checksumOk = whole ? fold(sum16(b, o, s.end[i])) === 0xffff : null;
            }
            q += 4;
          }
          if (f & 0x2000) {
            g.key = u32(b, q);
            q += 4;
          }
          if (f & 0x1000) g.seq = u32(b, q);
          if (f & 0x4000) g.routing = true;
          layer = g;
          break;
        }
        case L_UDP: {
          if (partial) {
            layer = { type: 'udp', sport: u16(b, o), dport: u16(b, o + 2) } as UdpLayer;
            if (h >= 6) (layer as UdpLayer).len = u16(b, o + 4);
            break;
          }
          const len = u16(b, o + 4);
          const ck = u16(b, o + 6);
          let ok: boolean | null = null;
          if (ck === 0) {
            // No checksum: allowed over IPv4, and over IPv6 only for tunnels (RFC 6935/6936).
            const ip = this.enclosingIp(i);
            const dport = u16(b, o + 2);
            ok = ip >= 0 && s.type[ip] === L_IPV6 ? dport === s.guePort || dport === s.vxlanPort : true;
          } else if (whole && !this.fragmented(i, b)) {
            ok = fold(this.pseudo(i, b, 17, len) + sum16(b, o, o + len)) === 0xffff;
          }
          layer = { type: 'udp', sport: u16(b, o), dport: u16(b, o + 2), len, checksum: ck, checksumOk: ok, payloadLen: len - 8 } satisfies UdpLayer;
          break;
        }
        case L_GUE: {
          if (h === 0) {
            layer = { type: 'gue', version: 1, control: false, hlen: 0, proto: b[o] >> 4 === 6 ? 41 : 4, flags: 0 } satisfies GueLayer;
            break;
          }
          const g: GueLayer = { type: 'gue', version: b[o] >> 6, control: ((b[o] >> 5) & 1) === 1, hlen: b[o] & 0x1f, proto: b[o + 1], flags: u16(b, o + 2) };
          if (h > 4) g.options = toHex(b, o + 4, o + h);
          layer = g;
          break;
        }
        case L_VXLAN:
          layer = { type: 'vxlan', flags: b[o], vni: (b[o + 4] << 16) | (b[o + 5] << 8) | b[o + 6] } satisfies VxlanLayer;
          break;
        case L_TCP: {
          if (partial && h < 20) {
            const t = { type: 'tcp', sport: u16(b, o), dport: u16(b, o + 2) } as TcpLayer;
            if (h >= 8) t.seq = u32(b, o + 4);
            if (h >= 12) t.ack = u32(b, o + 8);
            if (h >= 14) t.flags = tcpFlagsString(((b[o + 12] & 1) << 8) | b[o + 13]);
            if (h >= 16) t.window = u16(b, o + 14);
            layer = t;
            break;
          }
          // A header cut by the capture (partial) keeps its declared length; options are read as far as present.
          const doff = (b[o + 12] >> 4) * 4;
          const segLen = s.end[i] - o;
          const ok = whole && !this.fragmented(i, b) ? fold(this.pseudo(i, b, 6, segLen) + sum16(b, o, o + segLen)) === 0xffff : null;
          layer = {
            type: 'tcp', sport: u16(b, o), dport: u16(b, o + 2), seq: u32(b, o + 4), ack: u32(b, o + 8),
            flags: tcpFlagsString(((b[o + 12] & 1) << 8) | b[o + 13]), window: u16(b, o + 14), urgent: u16(b, o + 18), hlen: doff,
            options: tcpOptions(b, o + 20, o + h), checksum: u16(b, o + 16), checksumOk: ok, payloadLen: segLen - doff,
          } satisfies TcpLayer;
          break;
        }
        case L_ICMP:
        case L_ICMPV6: {
          const v6 = s.type[i] === L_ICMPV6;
          const t = b[o];
          const ic = { type: v6 ? 'icmpv6' : 'icmp', icmpType: t, code: b[o + 1] } as IcmpLayer;
          if (h >= 4) ic.checksum = u16(b, o + 2);
          if (partial) {
            layer = ic;
            break;
          }
          const msgLen = s.end[i] - o;
          if (!whole || this.fragmented(i, b)) ic.checksumOk = null;
          else if (v6) ic.checksumOk = fold(this.pseudo(i, b, 58, msgLen) + sum16(b, o, o + msgLen)) === 0xffff;
          else ic.checksumOk = fold(sum16(b, o, o + msgLen)) === 0xffff;
          const end = Math.min(s.end[i], avail);
          if (v6) {
            if (t === 128 || t === 129) { ic.id = u16(b, o + 4); ic.seq = u16(b, o + 6); ic.payloadLen = msgLen - 8; }
            else if (t === 2) ic.mtu = u32(b, o + 4);
            else if (t === 4) ic.pointer = u32(b, o + 4);
            else if ((t === 135 || t === 136 || t === 137) && o + 24 <= end) ic.target = ipv6ToString(b, o + 8);
          } else {
            if (t === 0 || t === 8 || (t >= 13 && t <= 18)) { ic.id = u16(b, o + 4); ic.seq = u16(b, o + 6); ic.payloadLen = msgLen - 8; }
            else if (t === 3 && ic.code === 4) ic.mtu = u16(b, o + 6);
            else if (t === 5) ic.gateway = ipv4ToString(b, o + 4);
            else if (t === 12) ic.pointer = b[o + 4];
          }
          layer = ic;
          break;
        }
        default:
          continue;
      }
      if (quoted) layer.quoted = true;
      if (partial) layer.partial = true;
      layers.push(layer);
    }
    const pkt: DecodedPacket = { len: origLen, capLen, layers };
    if (capLen < origLen) pkt.truncated = true;
    if (s.error !== E_NONE) pkt.error = scanErrorText(s);
    if (this.withPayload && n > 0 && s.partial[n - 1] === 0) {
      const last = n - 1;
      let ps = s.off[last] + s.hlen[last];
      // Neighbour discovery: the target address is reported as a field, the payload starts after it.
      if (s.type[last] === L_ICMPV6 && b[s.off[last]] >= 135 && b[s.off[last]] <= 137) ps += 16;
      const claimed = s.end[last];
      const avail = s.quotedFrom >= 0 ? Math.min(cap, s.end[s.quotedFrom - 1]) : cap;
      const pe = Math.min(claimed, avail);
      const quotedPayload = s.quotedFrom >= 0 && s.quotedFrom <= last;
      if (claimed > ps && s.error === E_NONE) {
        const p = { type: 'payload' as const, len: claimed - ps, data: pe > ps ? toHex(b, ps, pe) : '' };
        layers.push(quotedPayload ? { ...p, quoted: true } : p);
      }
    }
    return pkt;
  }

  /** Index of the nearest IP layer before layer i, or -1. */
  private enclosingIp(i: number): number {
    const s = this.scan;
    for (let j = i - 1; j >= 0; j--) if (s.type[j] === L_IPV4 || s.type[j] === L_IPV6) return j;
    return -1;
  }

  /** True when the transport layer i sits in a first fragment (its segment is not all in this packet). */
  private fragmented(i: number, b: Uint8Array): boolean {
    const s = this.scan;
    const ip = this.enclosingIp(i);
    if (ip < 0) return false;
    const o = s.off[ip];
    if (s.type[ip] === L_IPV4) return (b[o + 6] & 0x20) !== 0;
    // IPv6: a fragment header with the M flag.
    let nh = b[o + 6];
    let q = o + 40;
    while (q < o + s.hlen[ip]) {
      if (nh === 44) return (b[q + 3] & 1) === 1;
      const el = nh === 51 ? (b[q + 1] + 2) * 4 : (b[q + 1] + 1) * 8;
      nh = b[q];
      q += el;
    }
    return false;
  }

  private pseudo(i: number, b: Uint8Array, proto: number, len: number): number {
    const s = this.scan;
    const ip = this.enclosingIp(i);
    if (ip < 0) return 0;
    const o = s.off[ip];
    return s.type[ip] === L_IPV4 ? pseudo4(b, o + 12, o + 16, proto, len) : pseudo6(b, o + 8, o + 24, proto, len);
  }
}

/** Convenience: decode one frame held in its own buffer. */
export function decodeFrame(data: Uint8Array, linkType = 1, opts: DecodeOptions = {}, origLen = data.length): DecodedPacket {
  return new PacketDecoder(opts).decode(data, 0, data.length, linkType, origLen);
}
