// IP address text <-> bytes, without the network stack. Formatting follows glibc's inet_ntop (what
// ipvsadm prints): lowercase, the longest run (>= 2) of zero groups compressed to "::", the first run
// on a tie, and IPv4-compatible / IPv4-mapped addresses with a dotted tail.
import * as net from 'net';

export type IpFamily = 4 | 6;

export interface ParsedAddress {
  family: IpFamily;
  /** 4 or 16 bytes, network order. */
  bytes: Buffer;
}

export function parseAddress(text: string, what = 'address'): ParsedAddress {
  const t = text.trim();
  if (net.isIPv4(t)) return { family: 4, bytes: Buffer.from(t.split('.').map((x) => parseInt(x, 10))) };
  if (net.isIPv6(t)) return { family: 6, bytes: parseIPv6(t) };
  throw new Error(`${what} "${text}" is not an IPv4 or IPv6 address`);
}

export function addressFamily(text: string): IpFamily | undefined {
  if (net.isIPv4(text)) return 4;
  if (net.isIPv6(text)) return 6;
  return undefined;
}

function parseIPv6(t: string): Buffer {
  const out = Buffer.alloc(16);
  let s = t;
  let tail4: number[] = [];
  const lastColon = s.lastIndexOf(':');
  if (s.slice(lastColon + 1).includes('.')) {
    tail4 = s
      .slice(lastColon + 1)
      .split('.')
      .map((x) => parseInt(x, 10));
    s = s.slice(0, lastColon + 1) + '0:0';
  }
  const [head, rest] = s.includes('::') ? s.split('::') : [s, undefined];
  const h = head ? head.split(':').filter((x) => x !== '') : [];
  const r = rest !== undefined ? rest.split(':').filter((x) => x !== '') : [];
  const groups = rest === undefined ? h : [...h, ...Array(8 - h.length - r.length).fill('0'), ...r];
  groups.forEach((g, i) => out.writeUInt16BE(parseInt(g, 16), i * 2));
  if (tail4.length === 4) tail4.forEach((b, i) => (out[12 + i] = b));
  return out;
}

export function formatAddress(bytes: Buffer, family: IpFamily): string {
  if (family === 4) return `${bytes[0]}.${bytes[1]}.${bytes[2]}.${bytes[3]}`;
  const w: number[] = [];
  for (let i = 0; i < 8; i++) w.push(bytes.readUInt16BE(i * 2));
  // longest run of zero words (first one on a tie), only if at least 2 long
  let best = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (w[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && w[j] === 0) j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  if (bestLen < 2) best = -1;
  // The same walk as glibc's inet_ntop6.
  let out = '';
  for (let i = 0; i < 8; i++) {
    if (best >= 0 && i >= best && i < best + bestLen) {
      if (i === best) out += ':';
      continue;
    }
    if (i !== 0) out += ':';
    if (i === 6 && best === 0 && (bestLen === 6 || (bestLen === 5 && w[5] === 0xffff))) {
      out += `${bytes[12]}.${bytes[13]}.${bytes[14]}.${bytes[15]}`;
      return out;
    }
    out += w[i]!.toString(16);
  }
  if (best >= 0 && best + bestLen === 8) out += ':';
  return out;
}

/** The canonical text of an address (so "2001:DB8:0::1" and "2001:db8::1" compare equal). */
export function canonicalAddress(text: string): string {
  const p = parseAddress(text);
  return formatAddress(p.bytes, p.family);
}

/** IPv4 dotted mask -> prefix length, or undefined if the mask is not contiguous. */
export function maskToPrefix(mask: string): number | undefined {
  const b = parseAddress(mask, 'netmask');
  if (b.family !== 4) return undefined;
  const n = b.bytes.readUInt32BE(0);
  const inv = ~n >>> 0;
  if ((inv & (inv + 1)) !== 0) return undefined;
  return 32 - Math.log2(inv + 1);
}

export function prefixToMask(len: number): string {
  const n = len === 0 ? 0 : (0xffffffff << (32 - len)) >>> 0;
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}
