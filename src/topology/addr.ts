// IPv4/IPv6 address arithmetic for the address plan. Addresses are handled as BigInt so both
// families share one code path.
import * as net from 'net';
import type { Family } from './model';

export interface Prefix {
  family: Family;
  /** Network address as an integer (host bits zero). */
  base: bigint;
  len: number;
}

const BITS: Record<Family, number> = { 4: 32, 6: 128 };

export function familyOf(addr: string): Family | 0 {
  const v = net.isIP(addr);
  return v === 4 ? 4 : v === 6 ? 6 : 0;
}

export function toBig(addr: string): bigint {
  const f = familyOf(addr);
  if (f === 4) return addr.split('.').reduce((a, o) => (a << 8n) | BigInt(Number(o)), 0n);
  if (f === 6) {
    let s = addr;
    // An embedded IPv4 tail (::ffff:1.2.3.4) becomes two hextets.
    const m = /(\d+\.\d+\.\d+\.\d+)$/.exec(s);
    if (m) {
      const v = toBig(m[1]);
      s = s.slice(0, -m[1].length) + ((v >> 16n) & 0xffffn).toString(16) + ':' + (v & 0xffffn).toString(16);
    }
    const [head, tail] = s.includes('::') ? s.split('::') : [s, undefined];
    const h = head ? head.split(':') : [];
    const t = tail !== undefined && tail !== '' ? tail.split(':') : [];
    const fill = tail !== undefined ? 8 - h.length - t.length : 0;
    const parts = [...h, ...Array(fill).fill('0'), ...t];
    return parts.reduce((a, p) => (a << 16n) | BigInt(parseInt(p || '0', 16)), 0n);
  }
  throw new Error(`not an IP address: ${addr}`);
}

export function fromBig(v: bigint, family: Family): string {
  if (family === 4) return [24n, 16n, 8n, 0n].map((s) => String((v >> s) & 0xffn)).join('.');
  const parts: string[] = [];
  for (let i = 7; i >= 0; i--) parts.push(((v >> BigInt(i * 16)) & 0xffffn).toString(16));
  // Compress the longest run of zero hextets (RFC 5952).
  let best = -1, bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (parts[i] !== '0') { i++; continue; }
    let j = i;
    while (j < 8 && parts[j] === '0') j++;
    if (j - i > bestLen && j - i > 1) { best = i; bestLen = j - i; }
    i = j;
  }
  if (best < 0) return parts.join(':');
  return parts.slice(0, best).join(':') + '::' + parts.slice(best + bestLen).join(':');
}

/** Canonical text form (lower case, compressed) of an address. */
export function canonical(addr: string): string {
  const f = familyOf(addr);
  if (!f) throw new Error(`not an IP address: ${addr}`);
  return fromBig(toBig(addr), f);
}

function mask(len: number, family: Family): bigint {
  const bits = BITS[family];
  return len === 0 ? 0n : ((1n << BigInt(len)) - 1n) << BigInt(bits - len);
}

/** Parses "198.18.0.0/24" (host bits must be zero unless allowHostBits). Returns an error string on failure. */
export function parsePrefix(text: string, allowHostBits = false): Prefix | string {
  const m = /^([^/]+)\/(\d{1,3})$/.exec(text.trim());
  if (!m) return `"${text}" is not a prefix in CIDR form (address/length)`;
  const family = familyOf(m[1]);
  if (!family) return `"${m[1]}" is not an IP address`;
  const len = Number(m[2]);
  if (len > BITS[family]) return `prefix length /${len} is too long for IPv${family}`;
  const v = toBig(m[1]);
  const base = v & mask(len, family);
  if (!allowHostBits && base !== v) return `"${text}" has host bits set (did you mean ${fromBig(base, family)}/${len}?)`;
  return { family, base, len };
}

export function prefixText(p: Prefix): string {
  return `${fromBig(p.base, p.family)}/${p.len}`;
}

export function contains(p: Prefix, addr: string): boolean {
  const f = familyOf(addr);
  if (f !== p.family) return false;
  return (toBig(addr) & mask(p.len, p.family)) === p.base;
}

export function overlaps(a: Prefix, b: Prefix): boolean {
  if (a.family !== b.family) return false;
  const len = Math.min(a.len, b.len);
  const m = mask(len, a.family);
  return (a.base & m) === (b.base & m);
}

/** The n-th address of a prefix (n = 0 is the network address). */
export function nthAddr(p: Prefix, n: number | bigint): string {
  return fromBig(p.base + BigInt(n), p.family);
}

export function size(p: Prefix): bigint {
  return 1n << BigInt(BITS[p.family] - p.len);
}

/** Is the address the network or (IPv4) broadcast address of the prefix? */
export function isReservedInPrefix(p: Prefix, addr: string): boolean {
  const v = toBig(addr);
  if (v === p.base && p.len < BITS[p.family] - 1) return true;
  return p.family === 4 && p.len < 31 && v === p.base + size(p) - 1n;
}

/** The lab supernets: every lab address must lie inside one of them. */
export const LAB_SUPERNETS: Prefix[] = [parsePrefix('198.18.0.0/15') as Prefix, parsePrefix('2001:db8::/32') as Prefix];

export function inLabSupernet(addr: string): boolean {
  return LAB_SUPERNETS.some((s) => contains(s, addr));
}

export function prefixInLabSupernet(p: Prefix): boolean {
  return LAB_SUPERNETS.some((s) => s.family === p.family && s.len <= p.len && overlaps(s, p));
}

export function hostPrefixLen(family: Family): number {
  return BITS[family];
}
