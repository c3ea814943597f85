import { expect, test } from '@playwright/test';
import { addressFromV4Number, maskAddress, parseAddress, parseV4Netmask } from '../../src/models/address';
import { gcd, fls, hash32, oldMultiplicativeBucket } from '../../src/models/hash';
import { SeededRandom } from '../../src/models/prng';
import { hsiphashU32, sipHash, sipHashBigInt, sipKeyFromBytes, sipKeyFromWords } from '../../src/models/siphash';
import { MH_HASH1, MH_HASH2, mhHashKey } from '../../src/models/schedulers/mh';

const v4 = (s: string) => parseAddress(s).fold;

test.describe('hash_32 (include/linux/hash.h)', () => {
  test('10.0.0.1 lands in bucket 39: worked by hand', () => {
    // 0x0A000001 * 0x61C88647 mod 2^32 = 0x61C88647 + ((0x0A * 0x47) mod 256) << 24
    //   = 0x61C88647 + 0xC6000000 = 0x27C88647 (mod 2^32); top 8 bits 0x27 = 39.
    expect(hash32(0x0a000001, 8)).toBe(0x27);
  });

  test('agrees with the vectors of the independent implementation in ipvs-semantics.md §3.10', () => {
    expect(hash32(v4('10.0.0.1'), 8)).toBe(39);
    expect(hash32(v4('10.0.0.2'), 8)).toBe(137);
    expect(hash32(v4('10.0.0.3'), 8)).toBe(235);
    expect(hash32(v4('192.168.1.10'), 8)).toBe(248);
    expect(hash32(v4('10.0.1.1'), 8)).toBe(240);
    expect(hash32((v4('10.0.0.1') + 40000) >>> 0, 8)).toBe(203);
  });

  test('equals an arbitrary-precision evaluation of (x * GOLDEN_RATIO_32 mod 2^32) >> (32 - bits)', () => {
    const rng = new SeededRandom(3);
    for (let i = 0; i < 2000; i++) {
      const x = rng.nextU32();
      const bits = 1 + rng.below(31);
      const ref = Number(((BigInt(x) * 0x61c88647n) & 0xffffffffn) >> BigInt(32 - bits));
      expect(hash32(x, bits)).toBe(ref);
    }
  });

  test('the pre-hash_32 multiplier only sees the low byte: 10.0.0.1 and 10.0.1.1 collide in bucket 177', () => {
    expect(oldMultiplicativeBucket(v4('10.0.0.1'), 8)).toBe(177);
    expect(oldMultiplicativeBucket(v4('10.0.1.1'), 8)).toBe(177);
  });

  test('gcd and fls', () => {
    expect(gcd(12, 18)).toBe(6);
    expect(gcd(7, 5)).toBe(1);
    expect([0, 1, 2, 3, 63, 64, 100].map(fls)).toEqual([0, 1, 2, 2, 6, 7, 7]);
  });
});

test.describe('addresses and the kernel fold', () => {
  test('IPv4 fold is the host-order u32', () => {
    expect(parseAddress('198.18.0.2').fold).toBe(0xc6120002);
    expect(addressFromV4Number(0xc6120002).text).toBe('198.18.0.2');
  });

  test('IPv6 fold is the XOR of the four 32-bit words (2001:db8::1 -> 0x20010db9)', () => {
    const a = parseAddress('2001:db8::1');
    expect(a.fold).toBe((0x20010db8 ^ 0 ^ 0 ^ 1) >>> 0);
    expect(a.text).toBe('2001:db8::1');
    expect(parseAddress('2001:0db8:0000:0000:0001:0000:0000:0001').text).toBe('2001:db8::1:0:0:1'); // RFC 5952: first of equally long zero runs
    expect(parseAddress('::ffff:198.18.0.1').bytes.slice(12)).toEqual(new Uint8Array([198, 18, 0, 1]));
  });

  test('bad addresses are refused with the text quoted', () => {
    for (const bad of ['198.18.1', '198.18.0.256', '01.2.3.4', '2001:db8::1::2', 'fe80::1%eth0', 'x']) {
      expect(() => parseAddress(bad)).toThrow(JSON.stringify(bad));
    }
  });

  test('netmask application (persistence granularity)', () => {
    expect(maskAddress(parseAddress('198.18.7.9'), 24).text).toBe('198.18.7.0');
    expect(maskAddress(parseAddress('198.18.7.9'), 20).text).toBe('198.18.0.0');
    expect(maskAddress(parseAddress('2001:db8:2:3:4::9'), 64).text).toBe('2001:db8:2:3::');
    expect(parseV4Netmask('255.255.255.0')).toBe(24);
    expect(parseV4Netmask('/16')).toBe(16);
    expect(parseV4Netmask(32)).toBe(32);
    expect(() => parseV4Netmask('255.0.255.0')).toThrow(/not contiguous/);
  });
});

test.describe('SipHash / hsiphash (lib/siphash.c)', () => {
  const key = sipKeyFromBytes(new Uint8Array(16).map((_, i) => i));
  const hex = ([hi, lo]: [number, number]) => hi.toString(16).padStart(8, '0') + lo.toString(16).padStart(8, '0');

  test('SipHash-2-4 reproduces the reference vectors of the SipHash paper', () => {
    expect(hex(sipHash(key, new Uint8Array(15).map((_, i) => i)))).toBe('a129ca6149be45e5');
    expect(hex(sipHash(key, new Uint8Array(0)))).toBe('726fdb47dd0e0e31');
    expect(sipHashBigInt(0x0706050403020100n, 0x0f0e0d0c0b0a0908n, new Uint8Array(15).map((_, i) => i)).toString(16)).toBe('a129ca6149be45e5');
  });

  test('the 32-bit-halves implementation equals the BigInt one for SipHash-2-4 and -1-3', () => {
    const rng = new SeededRandom(11);
    for (let i = 0; i < 300; i++) {
      const k0 = (BigInt(rng.nextU32()) << 32n) | BigInt(rng.nextU32());
      const k1 = (BigInt(rng.nextU32()) << 32n) | BigInt(rng.nextU32());
      const msg = new Uint8Array(rng.below(24)).map(() => rng.below(256));
      for (const [c, d] of [[2, 4], [1, 3]]) {
        const [hi, lo] = sipHash(sipKeyFromWords(k0, k1), msg, c, d);
        expect((BigInt(hi) << 32n) | BigInt(lo)).toBe(sipHashBigInt(k0, k1, msg, c, d));
      }
    }
  });

  test('hsiphash of a u32 is the low 32 bits of SipHash-1-3 over its little-endian bytes', () => {
    const rng = new SeededRandom(5);
    for (let i = 0; i < 200; i++) {
      const v = rng.nextU32();
      const bytes = new Uint8Array([v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, v >>> 24]);
      const ref = sipHashBigInt(2654435761n, 2654435761n, bytes, 1, 3) & 0xffffffffn;
      expect(hsiphashU32(v, MH_HASH1)).toBe(Number(ref));
      const be = new Uint8Array([...bytes].reverse());
      expect(hsiphashU32(v, MH_HASH1, true)).toBe(Number(sipHashBigInt(2654435761n, 2654435761n, be, 1, 3) & 0xffffffffn));
    }
  });

  test('Maglev offsets/skips agree with the independent implementation in ipvs-semantics.md §3.12', () => {
    const os = (a: string) => [mhHashKey(parseAddress(a), 80, MH_HASH1, 0) % 4093, (mhHashKey(parseAddress(a), 80, MH_HASH2, 0) % 4092) + 1];
    expect(os('10.1.0.1')).toEqual([310, 1461]);
    expect(os('10.1.0.2')).toEqual([2769, 572]);
    expect(os('10.1.0.3')).toEqual([2424, 45]);
    expect(mhHashKey(parseAddress('10.0.0.1'), 0, MH_HASH1, 0)).toBe(50859236);
  });
});
