// Classic libpcap files: both byte orders, microsecond (0xa1b2c3d4) and nanosecond (0xa1b23c4d) variants.
import { CaptureReader, hex32, u32 } from './reader';
import type { ByteSource } from './source';
import type { ByteSink } from './sink';

export const PCAP_MAGIC_US = 0xa1b2c3d4;
export const PCAP_MAGIC_NS = 0xa1b23c4d;
const PCAP_MAGIC_MODIFIED = 0xa1b2cd34;
/** libpcap refuses records larger than this unless the header's snaplen is larger. */
const MAX_SNAPLEN = 262144;

export class PcapReader extends CaptureReader {
  readonly format = 'pcap' as const;
  readonly littleEndian: boolean;
  readonly nanosecond: boolean;
  readonly version: string;
  private pos = 24;
  private readonly maxCap: number;

  constructor(src: ByteSource) {
    super(src);
    const i = src.need(0, 24);
    if (i < 0) this.fail(0, `file too short for a pcap header: ${src.available(0)} of 24 bytes`);
    const b = src.buf;
    const magicLe = u32(b, i, true);
    const magicBe = u32(b, i, false);
    let le: boolean;
    let ns: boolean;
    if (magicLe === PCAP_MAGIC_US || magicLe === PCAP_MAGIC_NS) {
      le = true;
      ns = magicLe === PCAP_MAGIC_NS;
    } else if (magicBe === PCAP_MAGIC_US || magicBe === PCAP_MAGIC_NS) {
      le = false;
      ns = magicBe === PCAP_MAGIC_NS;
    } else if (magicLe === PCAP_MAGIC_MODIFIED || magicBe === PCAP_MAGIC_MODIFIED) {
      this.fail(0, 'this is a "modified" (Kuznetzov) pcap file, which is not supported; convert it with `editcap -F pcap`');
    } else {
      this.fail(0, `not a pcap file: magic ${hex32(magicBe)}`);
    }
    this.littleEndian = le;
    this.nanosecond = ns;
    const major = le ? b[i + 4] | (b[i + 5] << 8) : (b[i + 4] << 8) | b[i + 5];
    const minor = le ? b[i + 6] | (b[i + 7] << 8) : (b[i + 6] << 8) | b[i + 7];
    if (major !== 2) this.fail(4, `unsupported pcap version ${major}.${minor} (expected 2.x)`);
    this.version = `${major}.${minor}`;
    const snapLen = u32(b, i + 16, le);
    const network = u32(b, i + 20, le);
    // LINKTYPE field: low 16 bits link type; bit 26 says bits 28-31 hold the FCS length in 16-bit words.
    const fcsLen = network & 0x04000000 ? (network >>> 28) * 2 : 0;
    this.interfaces.push({ linkType: network & 0xffff, name: '', snapLen, fcsLen });
    this.linkType = network & 0xffff;
    this.maxCap = Math.max(snapLen, MAX_SNAPLEN);
  }

  next(): boolean {
    const src = this.src;
    const pos = this.pos;
    let i = src.need(pos, 16);
    if (i < 0) {
      const a = src.available(pos);
      if (a === 0) return false;
      this.fail(pos, `truncated record header: file ends ${a} bytes into the 16-byte header of packet ${this.count + 1}`);
    }
    let b = src.buf;
    let sec: number, frac: number, cap: number, orig: number;
    if (this.littleEndian) {
      sec = (b[i] | (b[i + 1] << 8) | (b[i + 2] << 16) | (b[i + 3] << 24)) >>> 0;
      frac = (b[i + 4] | (b[i + 5] << 8) | (b[i + 6] << 16) | (b[i + 7] << 24)) >>> 0;
      cap = (b[i + 8] | (b[i + 9] << 8) | (b[i + 10] << 16) | (b[i + 11] << 24)) >>> 0;
      orig = (b[i + 12] | (b[i + 13] << 8) | (b[i + 14] << 16) | (b[i + 15] << 24)) >>> 0;
    } else {
      sec = ((b[i] << 24) | (b[i + 1] << 16) | (b[i + 2] << 8) | b[i + 3]) >>> 0;
      frac = ((b[i + 4] << 24) | (b[i + 5] << 16) | (b[i + 6] << 8) | b[i + 7]) >>> 0;
      cap = ((b[i + 8] << 24) | (b[i + 9] << 16) | (b[i + 10] << 8) | b[i + 11]) >>> 0;
      orig = ((b[i + 12] << 24) | (b[i + 13] << 16) | (b[i + 14] << 8) | b[i + 15]) >>> 0;
    }
    if (cap > this.maxCap) {
      this.fail(pos, `packet ${this.count + 1} claims ${cap} captured bytes, more than the limit ${this.maxCap}; the file is corrupt`);
    }
    if (this.nanosecond ? frac >= 1e9 : frac >= 1e6) {
      this.fail(pos + 4, `packet ${this.count + 1} has a timestamp fraction of ${frac} ${this.nanosecond ? 'ns' : 'µs'}, which is not below one second; the file is corrupt`);
    }
    i = src.need(pos, 16 + cap);
    if (i < 0) {
      this.fail(pos, `truncated packet ${this.count + 1}: its record says ${cap} captured bytes but the file ends after ${Math.max(0, src.available(pos) - 16)}`);
    }
    b = src.buf;
    this.data = b;
    this.dataOff = i + 16;
    this.capLen = cap;
    this.origLen = orig;
    this.tsSec = sec;
    this.tsNsec = this.nanosecond ? frac : frac * 1000;
    this.recordOffset = pos;
    this.pos = pos + 16 + cap;
    this.count++;
    return true;
  }
}

export interface PcapWriterOptions {
  linkType?: number;
  snapLen?: number;
  /** Nanosecond timestamps (magic 0xa1b23c4d) instead of microseconds. */
  nanosecond?: boolean;
  bigEndian?: boolean;
}

export class PcapWriter {
  private readonly le: boolean;
  private readonly ns: boolean;
  private readonly hdr = Buffer.alloc(16);

  constructor(private readonly sink: ByteSink, opts: PcapWriterOptions = {}) {
    this.le = !opts.bigEndian;
    this.ns = !!opts.nanosecond;
    const h = Buffer.alloc(24);
    const w32 = (v: number, o: number) => (this.le ? h.writeUInt32LE(v >>> 0, o) : h.writeUInt32BE(v >>> 0, o));
    const w16 = (v: number, o: number) => (this.le ? h.writeUInt16LE(v, o) : h.writeUInt16BE(v, o));
    w32(this.ns ? PCAP_MAGIC_NS : PCAP_MAGIC_US, 0);
    w16(2, 4);
    w16(4, 6);
    w32(0, 8);
    w32(0, 12);
    w32(opts.snapLen ?? MAX_SNAPLEN, 16);
    w32(opts.linkType ?? 1, 20);
    sink.write(h);
  }

  writePacket(tsSec: number, tsNsec: number, data: Uint8Array, origLen = data.length): void {
    const h = this.hdr;
    const frac = this.ns ? tsNsec : Math.floor(tsNsec / 1000);
    if (this.le) {
      h.writeUInt32LE(tsSec >>> 0, 0);
      h.writeUInt32LE(frac, 4);
      h.writeUInt32LE(data.length, 8);
      h.writeUInt32LE(origLen, 12);
    } else {
      h.writeUInt32BE(tsSec >>> 0, 0);
      h.writeUInt32BE(frac, 4);
      h.writeUInt32BE(data.length, 8);
      h.writeUInt32BE(origLen, 12);
    }
    this.sink.write(h);
    this.sink.write(data);
  }

  close(): void {
    this.sink.close();
  }
}
