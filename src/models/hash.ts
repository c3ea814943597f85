// The integer hashes the IPVS schedulers use (include/linux/hash.h, old ip_vs_sh.c/ip_vs_dh.c).
// All arithmetic is unsigned 32-bit: Math.imul gives the low 32 bits of the product, >>> 0 makes
// the result unsigned.

/** GOLDEN_RATIO_32 of include/linux/hash.h. */
export const GOLDEN_RATIO_32 = 0x61c88647;

/** The multiplier of the pre-hash_32 sh/dh/lblc code ("2654435761UL", Knuth's golden ratio prime). */
export const OLD_IPVS_MULTIPLIER = 2654435761;

/** hash_32(val, bits): (val * GOLDEN_RATIO_32) mod 2^32, top `bits` bits (generic __hash_32, x86). */
export function hash32(val: number, bits: number): number {
  if (bits <= 0) return 0;
  return (Math.imul(val >>> 0, GOLDEN_RATIO_32) >>> 0) >>> (32 - bits);
}

/** Old sh/dh bucket: (key * 2654435761) & mask; only the low bits of key matter. */
export function oldMultiplicativeBucket(key: number, bits: number): number {
  return (Math.imul(key >>> 0, OLD_IPVS_MULTIPLIER | 0) >>> 0) & ((1 << bits) - 1);
}

/** Greatest common divisor of two positive integers. */
export function gcd(a: number, b: number): number {
  while (b) [a, b] = [b, a % b];
  return a;
}

/** fls(): position of the most significant set bit, 1-based; fls(0) = 0. */
export function fls(x: number): number {
  return x === 0 ? 0 : 32 - Math.clz32(x >>> 0);
}
