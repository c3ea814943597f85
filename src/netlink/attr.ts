// Netlink attributes (struct nlattr, <linux/netlink.h>): a 4-byte header {u16 nla_len; u16 nla_type}
// followed by the payload, padded to a multiple of 4. nla_len counts the header and the payload but
// not the padding. The two top bits of nla_type are flags: NLA_F_NESTED (the payload is itself a list
// of attributes) and NLA_F_NET_BYTEORDER. Integers in netlink are in host byte order unless a
// protocol says otherwise (IPVS ports are network order, for instance).
import { HOST_LITTLE_ENDIAN } from './byteorder';

export const NLA_HDRLEN = 4;
export const NLA_ALIGNTO = 4;
export const NLA_F_NESTED = 0x8000;
export const NLA_F_NET_BYTEORDER = 0x4000;
export const NLA_TYPE_MASK = 0xffff & ~(NLA_F_NESTED | NLA_F_NET_BYTEORDER);

export function nlaAlign(len: number): number {
  return (len + NLA_ALIGNTO - 1) & ~(NLA_ALIGNTO - 1);
}

/** One encoded attribute: header, payload and zero padding. */
export function encodeAttr(type: number, payload: Buffer, flags = 0): Buffer {
  const len = NLA_HDRLEN + payload.length;
  if (len > 0xffff) throw new RangeError(`netlink attribute type ${type} is too long (${len} bytes, max 65535)`);
  const out = Buffer.alloc(nlaAlign(len));
  writeU16(out, 0, len);
  writeU16(out, 2, (type & NLA_TYPE_MASK) | flags);
  payload.copy(out, NLA_HDRLEN);
  return out;
}

/** A nested attribute (NLA_F_NESTED set) holding already-encoded child attributes. */
export function encodeNested(type: number, children: Buffer[]): Buffer {
  return encodeAttr(type, Buffer.concat(children), NLA_F_NESTED);
}

// Payload helpers. Host byte order unless the name says "be" (big-endian, network order).
export const payload = {
  u8(v: number): Buffer {
    checkUint(v, 0xff, 'u8');
    return Buffer.from([v]);
  },
  u16(v: number): Buffer {
    checkUint(v, 0xffff, 'u16');
    const b = Buffer.alloc(2);
    writeU16(b, 0, v);
    return b;
  },
  be16(v: number): Buffer {
    checkUint(v, 0xffff, 'be16');
    const b = Buffer.alloc(2);
    b.writeUInt16BE(v, 0);
    return b;
  },
  u32(v: number): Buffer {
    checkUint(v, 0xffffffff, 'u32');
    const b = Buffer.alloc(4);
    writeU32(b, 0, v);
    return b;
  },
  u64(v: bigint): Buffer {
    const b = Buffer.alloc(8);
    if (HOST_LITTLE_ENDIAN) b.writeBigUInt64LE(v, 0);
    else b.writeBigUInt64BE(v, 0);
    return b;
  },
  /** NUL-terminated string (NLA_NUL_STRING / NLA_STRING as libnl and iproute2 send them). */
  string(s: string): Buffer {
    return Buffer.concat([Buffer.from(s, 'utf8'), Buffer.from([0])]);
  },
  bytes(b: Buffer | Uint8Array): Buffer {
    return Buffer.from(b);
  },
};

function checkUint(v: number, max: number, what: string): void {
  if (!Number.isInteger(v) || v < 0 || v > max) throw new RangeError(`${v} does not fit a netlink ${what} (0..${max})`);
}

export function writeU16(b: Buffer, off: number, v: number): void {
  if (HOST_LITTLE_ENDIAN) b.writeUInt16LE(v, off);
  else b.writeUInt16BE(v, off);
}
export function writeU32(b: Buffer, off: number, v: number): void {
  if (HOST_LITTLE_ENDIAN) b.writeUInt32LE(v >>> 0, off);
  else b.writeUInt32BE(v >>> 0, off);
}
export function readU16(b: Buffer, off: number): number {
  return HOST_LITTLE_ENDIAN ? b.readUInt16LE(off) : b.readUInt16BE(off);
}
export function readU32(b: Buffer, off: number): number {
  return HOST_LITTLE_ENDIAN ? b.readUInt32LE(off) : b.readUInt32BE(off);
}
export function readI32(b: Buffer, off: number): number {
  return HOST_LITTLE_ENDIAN ? b.readInt32LE(off) : b.readInt32BE(off);
}
export function readU64(b: Buffer, off: number): bigint {
  return HOST_LITTLE_ENDIAN ? b.readBigUInt64LE(off) : b.readBigUInt64BE(off);
}

/** A decoded attribute. `type` has the flag bits removed. */
export interface NlAttr {
  type: number;
  nested: boolean;
  netByteOrder: boolean;
  data: Buffer;
}

/** Thrown when bytes received from the kernel (or a relay) do not form valid netlink. */
export class NetlinkDecodeError extends Error {
  override name = 'NetlinkDecodeError';
}

/** Split a buffer holding a sequence of attributes. Trailing padding (< 4 bytes) is ignored. */
export function decodeAttrs(buf: Buffer, where = 'attributes'): NlAttr[] {
  const out: NlAttr[] = [];
  let off = 0;
  while (off + NLA_HDRLEN <= buf.length) {
    const len = readU16(buf, off);
    const rawType = readU16(buf, off + 2);
    if (len < NLA_HDRLEN || off + len > buf.length) {
      throw new NetlinkDecodeError(
        `malformed netlink ${where}: attribute at offset ${off} claims length ${len} but ${buf.length - off} bytes remain`,
      );
    }
    out.push({
      type: rawType & NLA_TYPE_MASK,
      nested: (rawType & NLA_F_NESTED) !== 0,
      netByteOrder: (rawType & NLA_F_NET_BYTEORDER) !== 0,
      data: buf.subarray(off + NLA_HDRLEN, off + len),
    });
    off += nlaAlign(len);
  }
  return out;
}

/**
 * Attributes of one level, indexed by type, with typed getters that say which attribute of which
 * object was missing or malformed. The last occurrence of a type wins (as nla_parse does).
 */
export class AttrSet {
  private readonly byType = new Map<number, NlAttr>();
  readonly list: NlAttr[];

  constructor(
    buf: Buffer,
    /** What these attributes describe, for error messages, e.g. "IPVS service". */
    readonly what: string,
    /** Attribute names for error messages. */
    private readonly names: Record<number, string> = {},
  ) {
    this.list = decodeAttrs(buf, what);
    for (const a of this.list) this.byType.set(a.type, a);
  }

  has(type: number): boolean {
    return this.byType.has(type);
  }

  raw(type: number): Buffer | undefined {
    return this.byType.get(type)?.data;
  }

  private name(type: number): string {
    return this.names[type] ?? `attribute ${type}`;
  }

  private sized(type: number, size: number): Buffer | undefined {
    const a = this.byType.get(type);
    if (!a) return undefined;
    if (a.data.length < size) {
      throw new NetlinkDecodeError(`${this.what}: ${this.name(type)} has ${a.data.length} bytes, expected ${size}`);
    }
    return a.data;
  }

  /** `v` (the result of one of the getters for `type`), or an error naming the missing attribute. */
  must<T>(type: number, v: T | undefined): T {
    if (v === undefined) throw new NetlinkDecodeError(`${this.what}: ${this.name(type)} is missing`);
    return v;
  }

  u8(type: number): number | undefined {
    return this.sized(type, 1)?.readUInt8(0);
  }
  u16(type: number): number | undefined {
    const d = this.sized(type, 2);
    return d && readU16(d, 0);
  }
  be16(type: number): number | undefined {
    return this.sized(type, 2)?.readUInt16BE(0);
  }
  u32(type: number): number | undefined {
    const d = this.sized(type, 4);
    return d && readU32(d, 0);
  }
  u64(type: number): bigint | undefined {
    const d = this.sized(type, 8);
    return d && readU64(d, 0);
  }
  /** A string attribute; stops at the first NUL. */
  string(type: number): string | undefined {
    const d = this.byType.get(type)?.data;
    if (!d) return undefined;
    const nul = d.indexOf(0);
    return d.subarray(0, nul < 0 ? d.length : nul).toString('utf8');
  }
  nested(type: number, what: string, names: Record<number, string> = {}): AttrSet | undefined {
    const d = this.byType.get(type)?.data;
    return d ? new AttrSet(d, what, names) : undefined;
  }
}
