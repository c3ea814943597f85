// Internet checksum (RFC 1071) with IPv4 and IPv6 pseudo-headers.

/** Unfolded ones'-complement sum of the 16-bit big-endian words in b[start, end) (odd tail padded). */
export function sum16(b: Uint8Array, start: number, end: number, acc = 0): number {
  let i = start;
  const last = end - 7;
  for (; i < last; i += 8) {
    acc += ((b[i] << 8) | b[i + 1]) + ((b[i + 2] << 8) | b[i + 3]) + ((b[i + 4] << 8) | b[i + 5]) + ((b[i + 6] << 8) | b[i + 7]);
  }
  for (; i + 1 < end; i += 2) acc += (b[i] << 8) | b[i + 1];
  if (i < end) acc += b[i] << 8;
  return acc;
}

export function fold(acc: number): number {
  while (acc > 0xffff) acc = (acc % 65536) + Math.floor(acc / 65536);
  return acc;
}

/** The checksum field value that makes the summed region verify. */
export function finish(acc: number): number {
  return ~fold(acc) & 0xffff;
}

/** True when a region that includes its checksum field sums to all ones. */
export function verifies(acc: number): boolean {
  return fold(acc) === 0xffff;
}

/** Sum of the IPv4 pseudo-header (addresses at b[srcOff], b[dstOff]). */
export function pseudo4(b: Uint8Array, srcOff: number, dstOff: number, proto: number, len: number): number {
  return sum16(b, srcOff, srcOff + 4) + sum16(b, dstOff, dstOff + 4) + proto + len;
}

/** Sum of the IPv6 pseudo-header. */
export function pseudo6(b: Uint8Array, srcOff: number, dstOff: number, nh: number, len: number): number {
  return sum16(b, srcOff, srcOff + 16) + sum16(b, dstOff, dstOff + 16) + Math.floor(len / 65536) + (len & 0xffff) + nh;
}
