// Address text forms as tcpdump prints them (inet_ntop) and their parsing for the packet builder.

export function ipv4ToString(b: Uint8Array, o: number): string {
  return `${b[o]}.${b[o + 1]}.${b[o + 2]}.${b[o + 3]}`;
}

const HEX = '0123456789abcdef';
const BYTE_HEX: string[] = Array.from({ length: 256 }, (_, i) => HEX[i >> 4] + HEX[i & 15]);

export function macToString(b: Uint8Array, o: number): string {
  return `${BYTE_HEX[b[o]]}:${BYTE_HEX[b[o + 1]]}:${BYTE_HEX[b[o + 2]]}:${BYTE_HEX[b[o + 3]]}:${BYTE_HEX[b[o + 4]]}:${BYTE_HEX[b[o + 5]]}`;
}

export function toHex(b: Uint8Array, start: number, end: number): string {
  let s = '';
  for (let i = start; i < end; i++) s += BYTE_HEX[b[i]];
  return s;
}

/** RFC 5952 text, with the embedded-IPv4 forms glibc's inet_ntop uses (::a.b.c.d, ::ffff:a.b.c.d). */
export function ipv6ToString(b: Uint8Array, o: number): string {
  const w: number[] = new Array(8);
  for (let i = 0; i < 8; i++) w[i] = (b[o + 2 * i] << 8) | b[o + 2 * i + 1];
  let bestBase = -1, bestLen = 0, curBase = -1, curLen = 0;
  for (let i = 0; i < 8; i++) {
    if (w[i] === 0) {
      if (curBase < 0) { curBase = i; curLen = 1; } else curLen++;
      if (curLen > bestLen) { bestBase = curBase; bestLen = curLen; }
    } else curBase = -1;
  }
  if (bestLen < 2) bestBase = -1;
  let s = '';
  for (let i = 0; i < 8; i++) {
    if (bestBase >= 0 && i >= bestBase && i < bestBase + bestLen) {
      if (i === bestBase) s += ':';
      continue;
    }
    if (i > 0) s += ':';
    if (i === 6 && bestBase === 0 && (bestLen === 6 || (bestLen === 5 && w[5] === 0xffff))) {
      s += ipv4ToString(b, o + 12);
      break;
    }
    s += w[i].toString(16);
  }
  if (bestBase >= 0 && bestBase + bestLen === 8) s += ':';
  return s;
}

export function parseIpv4(text: string): Buffer {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(text);
  if (!m) throw new Error(`"${text}" is not an IPv4 address`);
  const out = Buffer.alloc(4);
  for (let i = 0; i < 4; i++) {
    const v = Number(m[i + 1]);
    if (v > 255) throw new Error(`"${text}" is not an IPv4 address (${v} > 255)`);
    out[i] = v;
  }
  return out;
}

export function parseIpv6(text: string): Buffer {
  const bad = () => new Error(`"${text}" is not an IPv6 address`);
  let s = text;
  const tail: number[] = [];
  if (s.includes('.')) {
    const lastColon = s.lastIndexOf(':');
    if (lastColon < 0) throw bad();
    const v4 = parseIpv4(s.slice(lastColon + 1));
    tail.push((v4[0] << 8) | v4[1], (v4[2] << 8) | v4[3]);
    const prefix = s.slice(0, lastColon + 1);
    s = prefix.endsWith('::') ? prefix : s.slice(0, lastColon);
  }
  const parts = s.split('::');
  if (parts.length > 2) throw bad();
  const group = (g: string): number[] => (g === '' ? [] : g.split(':').map((x) => {
    if (!/^[0-9a-fA-F]{1,4}$/.test(x)) throw bad();
    return parseInt(x, 16);
  }));
  const head = group(parts[0]);
  const rest = parts.length === 2 ? group(parts[1]) : [];
  const total = head.length + rest.length + tail.length;
  if (parts.length === 1 ? total !== 8 : total > 7) throw bad();
  const words = [...head, ...new Array(8 - total).fill(0), ...rest, ...tail];
  const out = Buffer.alloc(16);
  words.forEach((w, i) => out.writeUInt16BE(w, 2 * i));
  return out;
}

export function parseMac(text: string): Buffer {
  const m = /^([0-9a-fA-F]{1,2})[:-]([0-9a-fA-F]{1,2})[:-]([0-9a-fA-F]{1,2})[:-]([0-9a-fA-F]{1,2})[:-]([0-9a-fA-F]{1,2})[:-]([0-9a-fA-F]{1,2})$/.exec(text);
  if (!m) throw new Error(`"${text}" is not a MAC address`);
  return Buffer.from(m.slice(1).map((x) => parseInt(x, 16)));
}

/** Parses either family; the length of the result says which. */
export function parseIp(text: string): Buffer {
  return text.includes(':') ? parseIpv6(text) : parseIpv4(text);
}
