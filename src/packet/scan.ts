// The fast path: walk a frame's headers and record each layer's type, offset, header length and the end
// its length fields claim, plus the innermost flow's 5-tuple — without allocating anything per packet.
// This walk is the one place that decides a packet's structure; decode.ts materialises fields from it.
import {
  LINKTYPE_ETHERNET, LINKTYPE_IPV4, LINKTYPE_IPV6, LINKTYPE_LINUX_SLL, LINKTYPE_LINUX_SLL2, LINKTYPE_LOOP,
  LINKTYPE_NULL, LINKTYPE_RAW,
} from './linktype';

export const L_ETH = 1;
export const L_VLAN = 2;
export const L_ARP = 3;
export const L_IPV4 = 4;
export const L_IPV6 = 5;
export const L_GRE = 6;
export const L_UDP = 7;
export const L_GUE = 8;
export const L_TCP = 9;
export const L_ICMP = 10;
export const L_ICMPV6 = 11;
export const L_VXLAN = 12;
export const L_SLL = 13;
export const L_SLL2 = 14;
export const L_NULL = 15;
export const LAYER_COUNT = 16;
/** JSON `type` of each layer code. */
export const LAYER_NAMES = ['?', 'eth', 'vlan', 'arp', 'ipv4', 'ipv6', 'gre', 'udp', 'gue', 'tcp', 'icmp', 'icmpv6', 'vxlan', 'sll', 'sll2', 'null'];

export const E_NONE = 0;
/** A header is cut short by the end of the captured bytes (snap length or a short frame). */
export const E_TRUNCATED = 1;
export const E_IP_VERSION = 2;
export const E_IPV4_IHL = 3;
export const E_IP_LEN = 4;
export const E_UDP_LEN = 5;
export const E_TCP_OFF = 6;
/** A header runs past the length its enclosing layer declares. */
export const E_BEYOND = 7;
export const E_TOO_DEEP = 8;
export const E_LINKTYPE = 9;
export const E_GUE_VERSION = 10;
export const E_GRE_VERSION = 11;
export const E_IPV6_EXT = 12;

export const MAX_LAYERS = 24;
export const DEFAULT_GUE_PORT = 6080;
export const DEFAULT_VXLAN_PORT = 4789;

export interface ScanOptions {
  /** UDP destination port carrying GUE (default 6080). */
  guePort?: number;
  /** UDP destination port carrying VXLAN (default 4789; 0 disables). */
  vxlanPort?: number;
}

/** Reusable scan result; one per decoding loop. Arrays are indexed by layer number 0..n-1. */
export class FrameScan {
  n = 0;
  readonly type = new Uint8Array(MAX_LAYERS);
  /** Offset of the layer's header in the buffer. */
  readonly off = new Int32Array(MAX_LAYERS);
  /** Header length (bytes present, for a partial quoted header). */
  readonly hlen = new Int32Array(MAX_LAYERS);
  /** End of the region (header + payload) the layer's length fields claim; may lie beyond capEnd. */
  readonly end = new Int32Array(MAX_LAYERS);
  /** 1 when the header is only partly present (allowed inside an ICMP error's quoted datagram). */
  readonly partial = new Uint8Array(MAX_LAYERS);
  start = 0;
  capEnd = 0;
  /** Index of the first layer inside an ICMP/ICMPv6 error's quoted datagram, or -1. */
  quotedFrom = -1;
  /** 1 when the last IP layer is a non-first fragment (its payload is not decoded). */
  fragment = 0;
  error = E_NONE;
  /** Byte offset (from the frame start) where the failing header begins. */
  errorAt = 0;
  /** Layer code of the header that failed. */
  errorLayer = 0;
  /** Extra number for the error text (e.g. the bad length). */
  errorValue = 0;
  /** Innermost IP layer outside any quoted datagram, and its transport layer (-1 if none). */
  ip = -1;
  l4 = -1;
  /** Innermost IP protocol (after IPv6 extension headers), -1 if none. */
  proto = -1;
  sport = 0;
  dport = 0;
  guePort = DEFAULT_GUE_PORT;
  vxlanPort = DEFAULT_VXLAN_PORT;

  constructor(opts: ScanOptions = {}) {
    if (opts.guePort !== undefined) this.guePort = opts.guePort;
    if (opts.vxlanPort !== undefined) this.vxlanPort = opts.vxlanPort;
  }
}

function etherNext(t: number): number {
  switch (t) {
    case 0x0800: return L_IPV4;
    case 0x86dd: return L_IPV6;
    case 0x8100: case 0x88a8: case 0x9100: return L_VLAN;
    case 0x0806: return L_ARP;
    default: return 0;
  }
}

export function ipProtoNext(p: number): number {
  switch (p) {
    case 6: return L_TCP;
    case 17: return L_UDP;
    case 1: return L_ICMP;
    case 58: return L_ICMPV6;
    case 4: return L_IPV4;
    case 41: return L_IPV6;
    case 47: return L_GRE;
    default: return 0;
  }
}

function ipByNibble(b: Uint8Array, p: number, end: number): number {
  if (p >= end) return L_IPV4; // let the IPv4 case report truncation
  const v = b[p] >> 4;
  return v === 6 ? L_IPV6 : L_IPV4;
}

/** Is this IPv6 next-header value an extension header the scanner walks over? */
export function isIpv6Ext(nh: number): boolean {
  return nh === 0 || nh === 43 || nh === 44 || nh === 51 || nh === 60 || nh === 135 || nh === 139 || nh === 140;
}

/**
 * Scan one frame of `capLen` captured bytes at `start` (wire length `origLen`). Never throws; a malformed
 * or cut header stops the walk with `s.error` set. Returns the number of layers.
 */
export function scanFrame(s: FrameScan, b: Uint8Array, start: number, capLen: number, linkType: number, origLen = capLen): number {
  const cap = start + capLen;
  s.n = 0;
  s.start = start;
  s.capEnd = cap;
  s.quotedFrom = -1;
  s.fragment = 0;
  s.error = E_NONE;
  s.ip = -1;
  s.l4 = -1;
  s.proto = -1;
  s.sport = 0;
  s.dport = 0;
  const T = s.type;
  const O = s.off;
  const H = s.hlen;
  const N = s.end;
  let p = start;
  /** End claimed by the innermost enclosing length field. */
  let claimEnd = start + (origLen > capLen ? origLen : capLen);
  /** Bytes actually present for the current region. */
  let dataEnd = claimEnd < cap ? claimEnd : cap;
  let quoted = false;
  /** The capture holds less than the wire frame: headers cut at its end are kept as partial layers. */
  const capCut = capLen < origLen;
  /** The enclosing IP packet is a first fragment: transport lengths may exceed it. */
  let moreFragments = false;
  let next = 0;
  let n = 0;
  let need = 0;
  /** Layer code whose header did not fit in the bytes present (0 if none). */
  let cut = 0;

  switch (linkType) {
    case LINKTYPE_ETHERNET:
      next = L_ETH;
      break;
    case LINKTYPE_RAW: case 12: case 14:
      next = ipByNibble(b, p, cap);
      break;
    case LINKTYPE_IPV4:
      next = L_IPV4;
      break;
    case LINKTYPE_IPV6:
      next = L_IPV6;
      break;
    case LINKTYPE_LINUX_SLL:
      if (p + 16 > cap) {
        s.error = E_TRUNCATED; s.errorAt = 0; s.errorLayer = L_SLL;
        return 0;
      }
      T[0] = L_SLL; O[0] = p; H[0] = 16; N[0] = claimEnd; s.partial[0] = 0; n = 1;
      next = etherNext((b[p + 14] << 8) | b[p + 15]);
      p += 16;
      break;
    case LINKTYPE_LINUX_SLL2:
      if (p + 20 > cap) {
        s.error = E_TRUNCATED; s.errorAt = 0; s.errorLayer = L_SLL2;
        return 0;
      }
      T[0] = L_SLL2; O[0] = p; H[0] = 20; N[0] = claimEnd; s.partial[0] = 0; n = 1;
      next = etherNext((b[p] << 8) | b[p + 1]);
      p += 20;
      break;
    case LINKTYPE_NULL: case LINKTYPE_LOOP: {
      if (p + 4 > cap) {
        s.error = E_TRUNCATED; s.errorAt = 0; s.errorLayer = L_NULL;
        return 0;
      }
      // NULL stores the address family in the writer's byte order, LOOP in network order: accept both.
      const le = b[p] | (b[p + 1] << 8);
      const be = (b[p + 2] << 8) | b[p + 3];
      const fam = le !== 0 ? le : be;
      T[0] = L_NULL; O[0] = p; H[0] = 4; N[0] = claimEnd; s.partial[0] = 0; n = 1;
      next = fam === 2 ? L_IPV4 : fam === 10 || fam === 24 || fam === 28 || fam === 30 ? L_IPV6 : 0;
      p += 4;
      break;
    }
    default:
      s.error = E_LINKTYPE; s.errorAt = 0; s.errorLayer = 0; s.errorValue = linkType;
      return 0;
  }

  scan: while (next !== 0) {
    if (n >= MAX_LAYERS) {
      s.error = E_TOO_DEEP; s.errorAt = p - start; s.errorLayer = next;
      break;
    }
    const kind = next;
    next = 0;
    switch (kind) {
      case L_ETH: {
        need = 14;
        if (p + need > dataEnd) { cut = kind; break scan; }
        const et = (b[p + 12] << 8) | b[p + 13];
        T[n] = L_ETH; O[n] = p; H[n] = 14; N[n] = claimEnd; s.partial[n] = 0; n++;
        p += 14;
        next = etherNext(et);
        continue scan;
      }
      case L_VLAN: {
        need = 4;
        if (p + need > dataEnd) { cut = kind; break scan; }
        T[n] = L_VLAN; O[n] = p; H[n] = 4; N[n] = claimEnd; s.partial[n] = 0; n++;
        next = etherNext((b[p + 2] << 8) | b[p + 3]);
        p += 4;
        continue scan;
      }
      case L_ARP: {
        need = 8;
        if (p + need > dataEnd) { cut = kind; break scan; }
        need = 8 + 2 * (b[p + 4] + b[p + 5]);
        if (p + need > dataEnd) { cut = kind; break scan; }
        T[n] = L_ARP; O[n] = p; H[n] = need; N[n] = claimEnd; s.partial[n] = 0; n++;
        break scan;
      }
      case L_IPV4: {
        need = 20;
        if (p + need > dataEnd) { cut = kind; break scan; }
        const vihl = b[p];
        if (vihl >> 4 !== 4) {
          s.error = E_IP_VERSION; s.errorAt = p - start; s.errorLayer = L_IPV4; s.errorValue = vihl >> 4;
          need = 0;
          break scan;
        }
        const ihl = (vihl & 15) * 4;
        if (ihl < 20) {
          s.error = E_IPV4_IHL; s.errorAt = p - start; s.errorLayer = L_IPV4; s.errorValue = ihl;
          need = 0;
          break scan;
        }
        need = ihl;
        if (p + need > dataEnd) {
          if (quoted || capCut) {
            // A quoted header whose options are cut: keep the fixed part (addresses are there).
            T[n] = L_IPV4; O[n] = p; H[n] = dataEnd - p; N[n] = claimEnd; s.partial[n] = 1; n++;
          }
          cut = kind;
          break scan;
        }
        const tot = (b[p + 2] << 8) | b[p + 3];
        if (tot < ihl) {
          s.error = E_IP_LEN; s.errorAt = p - start; s.errorLayer = L_IPV4; s.errorValue = tot;
          need = 0;
          break scan;
        }
        if (p + tot > claimEnd && !quoted) {
          s.error = E_BEYOND; s.errorAt = p - start; s.errorLayer = L_IPV4; s.errorValue = tot;
          need = 0;
          break scan;
        }
        claimEnd = p + tot;
        if (claimEnd < dataEnd) dataEnd = claimEnd;
        T[n] = L_IPV4; O[n] = p; H[n] = ihl; N[n] = claimEnd; s.partial[n] = 0;
        const proto = b[p + 9];
        moreFragments = (b[p + 6] & 0x20) !== 0;
        if (!quoted) {
          s.ip = n; s.l4 = -1; s.proto = proto; s.sport = 0; s.dport = 0;
        }
        n++;
        p += ihl;
        if ((((b[p - ihl + 6] & 0x1f) << 8) | b[p - ihl + 7]) !== 0) {
          s.fragment = 1;
          break scan;
        }
        next = ipProtoNext(proto);
        continue scan;
      }
      case L_IPV6: {
        need = 40;
        if (p + need > dataEnd) {
          cut = kind;
          break scan;
        }
        if (b[p] >> 4 !== 6) {
          s.error = E_IP_VERSION; s.errorAt = p - start; s.errorLayer = L_IPV6; s.errorValue = b[p] >> 4;
          need = 0;
          break scan;
        }
        const plen = (b[p + 4] << 8) | b[p + 5];
        const ipEnd = plen === 0 ? claimEnd : p + 40 + plen;
        if (ipEnd > claimEnd && !quoted) {
          s.error = E_BEYOND; s.errorAt = p - start; s.errorLayer = L_IPV6; s.errorValue = plen;
          need = 0;
          break scan;
        }
        claimEnd = ipEnd;
        if (claimEnd < dataEnd) dataEnd = claimEnd;
        let nh = b[p + 6];
        let q = p + 40;
        let frag = false;
        let mf = false;
        let exts = 0;
        while (isIpv6Ext(nh)) {
          if (++exts > 16) {
            s.error = E_IPV6_EXT; s.errorAt = q - start; s.errorLayer = L_IPV6; s.errorValue = exts;
            need = 0;
            break scan;
          }
          if (q + 8 > claimEnd) {
            s.error = E_BEYOND; s.errorAt = q - start; s.errorLayer = L_IPV6; s.errorValue = nh;
            need = 0;
            break scan;
          }
          if (q + 8 > dataEnd) {
            need = q + 8 - p;
            if (quoted || capCut) {
              T[n] = L_IPV6; O[n] = p; H[n] = q - p; N[n] = claimEnd; s.partial[n] = 1; n++;
            }
            cut = kind;
            break scan;
          }
          const el = nh === 44 ? 8 : nh === 51 ? (b[q + 1] + 2) * 4 : (b[q + 1] + 1) * 8;
          if (q + el > claimEnd) {
            s.error = E_BEYOND; s.errorAt = q - start; s.errorLayer = L_IPV6; s.errorValue = nh;
            need = 0;
            break scan;
          }
          if (q + el > dataEnd) {
            need = q + el - p;
            if (quoted || capCut) {
              T[n] = L_IPV6; O[n] = p; H[n] = q - p; N[n] = claimEnd; s.partial[n] = 1; n++;
            }
            cut = kind;
            break scan;
          }
          if (nh === 44 && (((b[q + 2] << 8) | b[q + 3]) & 0xfff8) !== 0) frag = true;
          if (nh === 44 && (b[q + 3] & 1) === 1) mf = true;
          nh = b[q];
          q += el;
        }
        T[n] = L_IPV6; O[n] = p; H[n] = q - p; N[n] = claimEnd; s.partial[n] = 0;
        moreFragments = mf;
        if (!quoted) {
          s.ip = n; s.l4 = -1; s.proto = nh; s.sport = 0; s.dport = 0;
        }
        n++;
        p = q;
        if (frag) {
          s.fragment = 1;
          need = 0;
          break scan;
        }
        next = ipProtoNext(nh);
        continue scan;
      }
      case L_TCP: {
        need = 20;
        if (p + need > dataEnd) {
          if ((quoted || capCut) && p + 4 <= dataEnd) {
            T[n] = L_TCP; O[n] = p; H[n] = dataEnd - p; N[n] = claimEnd; s.partial[n] = 1; n++;
          }
          cut = kind;
          break scan;
        }
        const doff = (b[p + 12] >> 4) * 4;
        if (doff < 20) {
          s.error = E_TCP_OFF; s.errorAt = p - start; s.errorLayer = L_TCP; s.errorValue = doff;
          need = 0;
          break scan;
        }
        need = doff;
        if (p + need > dataEnd) {
          if (quoted || capCut) {
            T[n] = L_TCP; O[n] = p; H[n] = dataEnd - p; N[n] = claimEnd; s.partial[n] = 1; n++;
          }
          cut = kind;
          break scan;
        }
        T[n] = L_TCP; O[n] = p; H[n] = doff; N[n] = claimEnd; s.partial[n] = 0;
        if (!quoted) {
          s.l4 = n;
          s.sport = (b[p] << 8) | b[p + 1];
          s.dport = (b[p + 2] << 8) | b[p + 3];
        }
        n++;
        break scan;
      }
      case L_UDP: {
        need = 8;
        if (p + need > dataEnd) {
          if ((quoted || capCut) && p + 4 <= dataEnd) {
            T[n] = L_UDP; O[n] = p; H[n] = dataEnd - p; N[n] = claimEnd; s.partial[n] = 1; n++;
          }
          cut = kind;
          break scan;
        }
        const ulen = (b[p + 4] << 8) | b[p + 5];
        if (ulen < 8) {
          s.error = E_UDP_LEN; s.errorAt = p - start; s.errorLayer = L_UDP; s.errorValue = ulen;
          need = 0;
          break scan;
        }
        if (p + ulen > claimEnd && !quoted && !moreFragments) {
          s.error = E_BEYOND; s.errorAt = p - start; s.errorLayer = L_UDP; s.errorValue = ulen;
          need = 0;
          break scan;
        }
        // In a first fragment the datagram continues in later fragments: its region ends with this packet.
        if (!moreFragments || p + ulen < claimEnd) claimEnd = p + ulen;
        if (claimEnd < dataEnd) dataEnd = claimEnd;
        const sp = (b[p] << 8) | b[p + 1];
        const dp = (b[p + 2] << 8) | b[p + 3];
        T[n] = L_UDP; O[n] = p; H[n] = 8; N[n] = claimEnd; s.partial[n] = 0;
        if (!quoted) {
          s.l4 = n; s.sport = sp; s.dport = dp;
        }
        n++;
        p += 8;
        if (dp === s.guePort && dp !== 0) next = L_GUE;
        else if (dp === s.vxlanPort && dp !== 0) next = L_VXLAN;
        continue scan;
      }
      case L_GUE: {
        need = 4;
        if (p + need > dataEnd) { cut = kind; break scan; }
        const v = b[p] >> 6;
        if (v === 1) {
          // GUE version 1: the IP header follows directly; its version nibble says which.
          T[n] = L_GUE; O[n] = p; H[n] = 0; N[n] = claimEnd; s.partial[n] = 0; n++;
          next = b[p] >> 4 === 6 ? L_IPV6 : L_IPV4;
          continue scan;
        }
        if (v !== 0) {
          s.error = E_GUE_VERSION; s.errorAt = p - start; s.errorLayer = L_GUE; s.errorValue = v;
          need = 0;
          break scan;
        }
        need = 4 + (b[p] & 0x1f) * 4;
        if (p + need > dataEnd) { cut = kind; break scan; }
        T[n] = L_GUE; O[n] = p; H[n] = need; N[n] = claimEnd; s.partial[n] = 0; n++;
        const control = (b[p] >> 5) & 1;
        const proto = b[p + 1];
        p += need;
        if (control) break scan;
        next = ipProtoNext(proto);
        continue scan;
      }
      case L_VXLAN: {
        need = 8;
        if (p + need > dataEnd) { cut = kind; break scan; }
        T[n] = L_VXLAN; O[n] = p; H[n] = 8; N[n] = claimEnd; s.partial[n] = 0; n++;
        p += 8;
        next = L_ETH;
        continue scan;
      }
      case L_GRE: {
        need = 4;
        if (p + need > dataEnd) { cut = kind; break scan; }
        const f = (b[p] << 8) | b[p + 1];
        const ver = f & 7;
        if (ver > 1) {
          s.error = E_GRE_VERSION; s.errorAt = p - start; s.errorLayer = L_GRE; s.errorValue = ver;
          need = 0;
          break scan;
        }
        need = 4 + (f & 0xc000 ? 4 : 0) + (f & 0x2000 ? 4 : 0) + (f & 0x1000 ? 4 : 0) + (ver === 1 && f & 0x0080 ? 4 : 0);
        if (p + need > dataEnd) { cut = kind; break scan; }
        T[n] = L_GRE; O[n] = p; H[n] = need; N[n] = claimEnd; s.partial[n] = 0;
        if (!quoted) s.l4 = n;
        n++;
        const proto = (b[p + 2] << 8) | b[p + 3];
        p += need;
        // RFC 1701 source routing (R bit) and PPTP (version 1) payloads are not decoded further.
        if (f & 0x4000 || ver === 1) break scan;
        next = proto === 0x6558 ? L_ETH : etherNext(proto);
        if (next === L_VLAN || next === L_ARP) next = 0;
        continue scan;
      }
      case L_ICMP:
      case L_ICMPV6: {
        need = 8;
        if (p + need > dataEnd) {
          if ((quoted || capCut) && p + 4 <= dataEnd) {
            T[n] = kind; O[n] = p; H[n] = dataEnd - p; N[n] = claimEnd; s.partial[n] = 1; n++;
          }
          cut = kind;
          break scan;
        }
        const t = b[p];
        T[n] = kind; O[n] = p; H[n] = 8; N[n] = claimEnd; s.partial[n] = 0;
        if (!quoted) s.l4 = n;
        n++;
        p += 8;
        const error = kind === L_ICMP ? t === 3 || t === 4 || t === 5 || t === 11 || t === 12 : t >= 1 && t <= 4;
        if (error && !quoted) {
          quoted = true;
          s.quotedFrom = n;
          next = kind === L_ICMP ? L_IPV4 : L_IPV6;
          continue scan;
        }
        break scan;
      }
      default:
        break scan;
    }
  }
  // A header that did not fit: in the quoted datagram that is normal; elsewhere it is an error.
  if (cut !== 0 && s.error === E_NONE && !quoted) {
    // Cut by the capture (snap length) or the frame itself is too short (malformed).
    s.error = capCut && p + need > cap ? E_TRUNCATED : E_BEYOND;
    s.errorAt = p - start;
    s.errorLayer = cut;
    s.errorValue = need;
  }
  s.n = n;
  return n;
}
