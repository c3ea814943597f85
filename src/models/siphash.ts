// SipHash as used by the kernel's hsiphash() (lib/siphash.c), which ip_vs_mh.c uses for Maglev's
// offsets, skips and client lookups. On 64-bit kernels hsiphash is *SipHash-1-3* with the 64-bit
// SipHash state and a key of two 64-bit words, truncated to the low 32 bits of the result
// ("we make HalfSipHash1-3 actually be SipHash1-3" in lib/siphash.c). 32-bit kernels use real
// HalfSipHash-1-3, which this module does not model (the lab's VM is x86-64).
//
// Two implementations: a fast one on pairs of 32-bit halves (used by the models) and a BigInt one
// written straight from the SipHash paper (used by the tests as an independent cross-check).

/** SipHash key: two 64-bit words given as [hi, lo] 32-bit halves each. */
export interface SipKey {
  k0hi: number; k0lo: number;
  k1hi: number; k1lo: number;
}

export function sipKeyFromWords(k0: bigint, k1: bigint): SipKey {
  const m = 0xffffffffn;
  return {
    k0hi: Number((k0 >> 32n) & m), k0lo: Number(k0 & m),
    k1hi: Number((k1 >> 32n) & m), k1lo: Number(k1 & m),
  };
}

/** Key from 16 bytes, little-endian words (the SipHash paper's test-vector convention). */
export function sipKeyFromBytes(key: Uint8Array): SipKey {
  if (key.length !== 16) throw new Error(`SipHash key must be 16 bytes, got ${key.length}`);
  const rd = (o: number) => (key[o] | (key[o + 1] << 8) | (key[o + 2] << 16) | (key[o + 3] << 24)) >>> 0;
  return { k0lo: rd(0), k0hi: rd(4), k1lo: rd(8), k1hi: rd(12) };
}

// State as 8 unsigned 32-bit halves; rounds mutate it in place.
class SipState {
  v0h = 0; v0l = 0; v1h = 0; v1l = 0; v2h = 0; v2l = 0; v3h = 0; v3l = 0;

  init(k: SipKey): void {
    // "somepseudorandomlygeneratedbytes"
    this.v0h = (0x736f6d65 ^ k.k0hi) >>> 0; this.v0l = (0x70736575 ^ k.k0lo) >>> 0;
    this.v1h = (0x646f7261 ^ k.k1hi) >>> 0; this.v1l = (0x6e646f6d ^ k.k1lo) >>> 0;
    this.v2h = (0x6c796765 ^ k.k0hi) >>> 0; this.v2l = (0x6e657261 ^ k.k0lo) >>> 0;
    this.v3h = (0x74656462 ^ k.k1hi) >>> 0; this.v3l = (0x79746573 ^ k.k1lo) >>> 0;
  }

  round(): void {
    let lo: number, h: number, l: number;
    // v0 += v1
    lo = this.v0l + this.v1l; this.v0h = (this.v0h + this.v1h + (lo > 0xffffffff ? 1 : 0)) >>> 0; this.v0l = lo >>> 0;
    // v1 = rotl(v1, 13); v1 ^= v0
    h = this.v1h; l = this.v1l;
    this.v1h = ((h << 13) | (l >>> 19)) >>> 0; this.v1l = ((l << 13) | (h >>> 19)) >>> 0;
    this.v1h = (this.v1h ^ this.v0h) >>> 0; this.v1l = (this.v1l ^ this.v0l) >>> 0;
    // v0 = rotl(v0, 32)
    h = this.v0h; this.v0h = this.v0l; this.v0l = h;
    // v2 += v3
    lo = this.v2l + this.v3l; this.v2h = (this.v2h + this.v3h + (lo > 0xffffffff ? 1 : 0)) >>> 0; this.v2l = lo >>> 0;
    // v3 = rotl(v3, 16); v3 ^= v2
    h = this.v3h; l = this.v3l;
    this.v3h = ((h << 16) | (l >>> 16)) >>> 0; this.v3l = ((l << 16) | (h >>> 16)) >>> 0;
    this.v3h = (this.v3h ^ this.v2h) >>> 0; this.v3l = (this.v3l ^ this.v2l) >>> 0;
    // v0 += v3
    lo = this.v0l + this.v3l; this.v0h = (this.v0h + this.v3h + (lo > 0xffffffff ? 1 : 0)) >>> 0; this.v0l = lo >>> 0;
    // v3 = rotl(v3, 21); v3 ^= v0
    h = this.v3h; l = this.v3l;
    this.v3h = ((h << 21) | (l >>> 11)) >>> 0; this.v3l = ((l << 21) | (h >>> 11)) >>> 0;
    this.v3h = (this.v3h ^ this.v0h) >>> 0; this.v3l = (this.v3l ^ this.v0l) >>> 0;
    // v2 += v1
    lo = this.v2l + this.v1l; this.v2h = (this.v2h + this.v1h + (lo > 0xffffffff ? 1 : 0)) >>> 0; this.v2l = lo >>> 0;
    // v1 = rotl(v1, 17); v1 ^= v2
    h = this.v1h; l = this.v1l;
    this.v1h = ((h << 17) | (l >>> 15)) >>> 0; this.v1l = ((l << 17) | (h >>> 15)) >>> 0;
    this.v1h = (this.v1h ^ this.v2h) >>> 0; this.v1l = (this.v1l ^ this.v2l) >>> 0;
    // v2 = rotl(v2, 32)
    h = this.v2h; this.v2h = this.v2l; this.v2l = h;
  }

  compress(mh: number, ml: number, c: number): void {
    this.v3h = (this.v3h ^ mh) >>> 0; this.v3l = (this.v3l ^ ml) >>> 0;
    for (let i = 0; i < c; i++) this.round();
    this.v0h = (this.v0h ^ mh) >>> 0; this.v0l = (this.v0l ^ ml) >>> 0;
  }

  /** Finalisation with d rounds; returns the 64-bit result as [hi, lo]. */
  finish(bh: number, bl: number, c: number, d: number): [number, number] {
    this.compress(bh, bl, c);
    this.v2l = (this.v2l ^ 0xff) >>> 0;
    for (let i = 0; i < d; i++) this.round();
    return [
      (this.v0h ^ this.v1h ^ this.v2h ^ this.v3h) >>> 0,
      (this.v0l ^ this.v1l ^ this.v2l ^ this.v3l) >>> 0,
    ];
  }
}

const shared = new SipState();

/** SipHash-c-d of a byte string; returns [hi, lo] of the 64-bit output. */
export function sipHash(key: SipKey, msg: Uint8Array, c = 2, d = 4): [number, number] {
  const s = shared;
  s.init(key);
  const full = msg.length - (msg.length % 8);
  const rd = (o: number) => (msg[o] | (msg[o + 1] << 8) | (msg[o + 2] << 16) | (msg[o + 3] << 24)) >>> 0;
  for (let o = 0; o < full; o += 8) s.compress(rd(o + 4), rd(o), c);
  let bl = 0, bh = ((msg.length & 0xff) << 24) >>> 0;
  for (let i = full; i < msg.length; i++) {
    const sh = (i - full) * 8;
    if (sh < 32) bl = (bl | (msg[i] << sh)) >>> 0;
    else bh = (bh | (msg[i] << (sh - 32))) >>> 0;
  }
  return s.finish(bh, bl, c, d);
}

/**
 * The kernel's hsiphash() of one 4-byte value on a 64-bit kernel: SipHash-1-3 over the value's
 * in-memory bytes, low 32 bits of the result. `bigEndianHost` swaps the bytes as a big-endian
 * machine would store the native u32 (the kernel hashes `&v`, so results differ by endianness).
 */
export function hsiphashU32(v: number, key: SipKey, bigEndianHost = false): number {
  let m = v >>> 0;
  if (bigEndianHost) m = (((m & 0xff) << 24) | ((m & 0xff00) << 8) | ((m >>> 8) & 0xff00) | (m >>> 24)) >>> 0;
  const s = shared;
  s.init(key);
  // len = 4: b = 4 << 56 | le32(data)
  return s.finish(0x04000000, m, 1, 3)[1];
}

// ---------------------------------------------------------------------------------------------
// Reference implementation with BigInt, from the SipHash paper's description (for tests).

const MASK64 = (1n << 64n) - 1n;
const rotl64 = (x: bigint, b: bigint) => ((x << b) | (x >> (64n - b))) & MASK64;

export function sipHashBigInt(k0: bigint, k1: bigint, msg: Uint8Array, c = 2, d = 4): bigint {
  let v0 = 0x736f6d6570736575n ^ k0;
  let v1 = 0x646f72616e646f6dn ^ k1;
  let v2 = 0x6c7967656e657261n ^ k0;
  let v3 = 0x7465646279746573n ^ k1;
  const round = () => {
    v0 = (v0 + v1) & MASK64; v1 = rotl64(v1, 13n); v1 ^= v0; v0 = rotl64(v0, 32n);
    v2 = (v2 + v3) & MASK64; v3 = rotl64(v3, 16n); v3 ^= v2;
    v0 = (v0 + v3) & MASK64; v3 = rotl64(v3, 21n); v3 ^= v0;
    v2 = (v2 + v1) & MASK64; v1 = rotl64(v1, 17n); v1 ^= v2; v2 = rotl64(v2, 32n);
  };
  const blocks: bigint[] = [];
  const n = msg.length;
  for (let o = 0; o + 8 <= n; o += 8) {
    let m = 0n;
    for (let i = 7; i >= 0; i--) m = (m << 8n) | BigInt(msg[o + i]);
    blocks.push(m);
  }
  let last = BigInt(n & 0xff) << 56n;
  const tail = n - (n % 8);
  for (let i = n - 1; i >= tail; i--) last |= BigInt(msg[i]) << BigInt(8 * (i - tail));
  blocks.push(last);
  for (const m of blocks) {
    v3 ^= m;
    for (let i = 0; i < c; i++) round();
    v0 ^= m;
  }
  v2 ^= 0xffn;
  for (let i = 0; i < d; i++) round();
  return (v0 ^ v1 ^ v2 ^ v3) & MASK64;
}
