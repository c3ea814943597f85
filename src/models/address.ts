// IP addresses as the IPVS schedulers see them: raw bytes, the 32-bit "fold" the kernel hashes
// (ip_vs_sh.c / ip_vs_dh.c / ip_vs_mh.c / ip_vs_lblc*.c: IPv4 as a host-order u32, IPv6 as the XOR
// of its four 32-bit words taken in host order), and netmask application for persistence.

export type AddressFamily = 4 | 6;

export interface Address {
  readonly family: AddressFamily;
  /** Network-order bytes (4 or 16). */
  readonly bytes: Uint8Array;
  /** The kernel's addr_fold converted with ntohl: an unsigned 32-bit number. */
  readonly fold: number;
  /** Canonical text form (dotted quad, or RFC 5952 compressed IPv6). */
  readonly text: string;
}

export class AddressError extends Error {
  override name = 'AddressError';
}

function word(b: Uint8Array, i: number): number {
  return ((b[i] << 24) | (b[i + 1] << 16) | (b[i + 2] << 8) | b[i + 3]) >>> 0;
}

function foldOf(bytes: Uint8Array): number {
  if (bytes.length === 4) return word(bytes, 0);
  return (word(bytes, 0) ^ word(bytes, 4) ^ word(bytes, 8) ^ word(bytes, 12)) >>> 0;
}

/**
 * A dotted quad as a 32-bit number, or -1: exactly four parts, each 0 or 1..3 digits without a
 * leading zero, each at most 255 (a character scan: a million flow addresses are parsed per scenario).
 */
function parseV4Number(text: string): number {
  let n = 0;
  let parts = 0;
  let i = 0;
  const len = text.length;
  while (parts < 4) {
    const start = i;
    let v = 0;
    while (i < len) {
      const c = text.charCodeAt(i);
      if (c < 48 || c > 57) break;
      v = v * 10 + (c - 48);
      i++;
    }
    const digits = i - start;
    if (digits === 0 || digits > 3 || (digits > 1 && text.charCodeAt(start) === 48) || v > 255) return -1;
    n = n * 256 + v;
    parts++;
    if (parts < 4) {
      if (i >= len || text.charCodeAt(i) !== 46) return -1;
      i++;
    }
  }
  return i === len ? n : -1;
}

function parseV4(text: string): Uint8Array | null {
  const n = parseV4Number(text);
  return n < 0 ? null : new Uint8Array([n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff]);
}

function parseV6(text: string): Uint8Array | null {
  if (!/^[0-9a-fA-F:.]+$/.test(text)) return null;
  let head = text;
  let tailV4: Uint8Array | null = null;
  const lastColon = text.lastIndexOf(':');
  if (text.includes('.')) {
    tailV4 = parseV4(text.slice(lastColon + 1));
    if (!tailV4) return null;
    head = text.slice(0, lastColon + 1) + '0:0';
  }
  const dbl = head.indexOf('::');
  if (dbl !== head.lastIndexOf('::')) return null;
  const groupsOf = (s: string): string[] => (s === '' ? [] : s.split(':'));
  let groups: string[];
  if (dbl >= 0) {
    const left = groupsOf(head.slice(0, dbl));
    const right = groupsOf(head.slice(dbl + 2));
    const missing = 8 - left.length - right.length;
    if (missing < 1) return null;
    groups = [...left, ...Array(missing).fill('0'), ...right];
  } else {
    groups = groupsOf(head);
  }
  if (groups.length !== 8) return null;
  const out = new Uint8Array(16);
  for (let i = 0; i < 8; i++) {
    if (!/^[0-9a-fA-F]{1,4}$/.test(groups[i])) return null;
    const v = parseInt(groups[i], 16);
    out[2 * i] = v >> 8;
    out[2 * i + 1] = v & 0xff;
  }
  if (tailV4) out.set(tailV4, 12);
  return out;
}

function formatV6(b: Uint8Array): string {
  const g: number[] = [];
  for (let i = 0; i < 8; i++) g.push((b[2 * i] << 8) | b[2 * i + 1]);
  // longest run of >= 2 zero groups, first one on ties (RFC 5952)
  let bestStart = -1, bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (g[i] !== 0) { i++; continue; }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen && j - i >= 2) { bestStart = i; bestLen = j - i; }
    i = j;
  }
  const hex = (xs: number[]) => xs.map((x) => x.toString(16)).join(':');
  if (bestStart < 0) return hex(g);
  return `${hex(g.slice(0, bestStart))}::${hex(g.slice(bestStart + bestLen))}`;
}

/**
 * An IPv4 address kept as its number; the bytes are made when first asked for (schedulers hash the
 * fold, connections are keyed by it: most of a large scenario's addresses never need their bytes).
 */
class V4Address implements Address {
  readonly family = 4 as const;
  #bytes: Uint8Array | undefined;
  #text: string | undefined;
  constructor(readonly fold: number, text?: string) {
    this.#text = text;
  }
  get bytes(): Uint8Array {
    const n = this.fold;
    return (this.#bytes ??= new Uint8Array([n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff]));
  }
  get text(): string {
    const n = this.fold;
    return (this.#text ??= `${n >>> 24}.${(n >>> 16) & 0xff}.${(n >>> 8) & 0xff}.${n & 0xff}`);
  }
  /** As a plain address object serialises (family, bytes, fold, text). */
  toJSON(): object {
    return { family: this.family, bytes: this.bytes, fold: this.fold, text: this.text };
  }
}

function v4(n: number, text?: string): Address {
  return new V4Address(n >>> 0, text);
}

function make(bytes: Uint8Array): Address {
  if (bytes.length === 4) return v4(word(bytes, 0));
  return { family: 6, bytes, fold: foldOf(bytes), text: formatV6(bytes) };
}

/** Parses an IPv4 or IPv6 address; throws AddressError naming the text otherwise. */
export function parseAddress(text: string): Address {
  if (typeof text !== 'string') throw new AddressError(`not an address: ${JSON.stringify(text)}`);
  if (!text.includes(':')) {
    const n = parseV4Number(text);
    if (n < 0) throw new AddressError(`not an IPv4 or IPv6 address: ${JSON.stringify(text)}`);
    return v4(n, text); // the text of a dotted quad without leading zeros is its canonical form
  }
  const b = parseV6(text);
  if (!b) throw new AddressError(`not an IPv4 or IPv6 address: ${JSON.stringify(text)}`);
  return make(b);
}

export function addressFromBytes(bytes: Uint8Array): Address {
  if (bytes.length !== 4 && bytes.length !== 16) throw new AddressError(`address must have 4 or 16 bytes, got ${bytes.length}`);
  return make(new Uint8Array(bytes));
}

export function addressFromV4Number(n: number): Address {
  return v4(n >>> 0);
}

/** Keeps the first `prefixLen` bits (the persistence netmask: IPv4 mask or IPv6 prefix length). */
export function maskAddress(a: Address, prefixLen: number): Address {
  const bits = a.bytes.length * 8;
  if (!Number.isInteger(prefixLen) || prefixLen < 0 || prefixLen > bits) {
    throw new AddressError(`prefix length ${prefixLen} out of range 0..${bits} for ${a.text}`);
  }
  if (prefixLen === bits) return a;
  const out = new Uint8Array(a.bytes);
  for (let i = 0; i < out.length; i++) {
    const keep = Math.max(0, Math.min(8, prefixLen - 8 * i));
    out[i] &= keep === 0 ? 0 : (0xff << (8 - keep)) & 0xff;
  }
  return make(out);
}

/**
 * Parses an IPv4 netmask given as dotted quad ("255.255.255.0") or prefix length (24, "/24").
 * Non-contiguous masks are rejected: ipvsadm accepts them but they make persistence groups
 * that no replayer can reason about.
 */
export function parseV4Netmask(mask: string | number): number {
  if (typeof mask === 'number') {
    if (!Number.isInteger(mask) || mask < 0 || mask > 32) throw new AddressError(`IPv4 prefix length ${mask} out of range 0..32`);
    return mask;
  }
  const m = /^\/?([0-9]{1,2})$/.exec(mask);
  if (m) return parseV4Netmask(Number(m[1]));
  const b = parseV4(mask);
  if (!b) throw new AddressError(`not an IPv4 netmask: ${JSON.stringify(mask)}`);
  const v = word(b, 0);
  let len = 0;
  while (len < 32 && (v & (0x80000000 >>> len)) !== 0) len++;
  const rebuilt = len === 0 ? 0 : (0xffffffff << (32 - len)) >>> 0;
  if (rebuilt !== v) throw new AddressError(`netmask ${mask} is not contiguous`);
  return len;
}

export function sameAddress(a: Address, b: Address): boolean {
  if (a.bytes.length !== b.bytes.length) return false;
  for (let i = 0; i < a.bytes.length; i++) if (a.bytes[i] !== b.bytes[i]) return false;
  return true;
}
