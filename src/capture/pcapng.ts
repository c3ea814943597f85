// pcapng: sections (SHB) in either byte order, interfaces (IDB with if_name, if_tsresol, if_tsoffset,
// if_fcslen), Enhanced, Simple and obsolete Packet blocks; other block types are skipped.
import { CaptureReader, hex32, u16, u32 } from './reader';
import type { ByteSource } from './source';
import type { ByteSink } from './sink';

export const BT_SHB = 0x0a0d0d0a;
const BT_IDB = 1;
const BT_PB = 2;
const BT_SPB = 3;
const BT_EPB = 6;
const BOM = 0x1a2b3c4d;
/** Blocks larger than this are treated as corruption rather than allocated. */
const MAX_BLOCK = 64 * 1024 * 1024;

/** How an interface's 64-bit timestamps are turned into seconds + nanoseconds. */
interface TsRule {
  /** 'us': 10^-6 (the default); 'dec': 10^-n with n <= 9 (long division); 'big': anything else (BigInt). */
  kind: 'us' | 'dec' | 'big';
  divisor: number;
  /** Multiplier from remainder units to nanoseconds (dec). */
  nsPerUnit: number;
  /** Raw if_tsresol byte. */
  resol: number;
  offsetSec: number;
}

function tsRule(resol: number, offsetSec: number): TsRule {
  if (resol === 6) return { kind: 'us', divisor: 1e6, nsPerUnit: 1000, resol, offsetSec };
  if (!(resol & 0x80) && resol <= 9) return { kind: 'dec', divisor: 10 ** resol, nsPerUnit: 10 ** (9 - resol), resol, offsetSec };
  return { kind: 'big', divisor: 0, nsPerUnit: 0, resol, offsetSec };
}

export class PcapngReader extends CaptureReader {
  readonly format = 'pcapng' as const;
  /** Byte order of the current section. */
  littleEndian = true;
  /** Number of sections seen so far. */
  sections = 0;
  /** shb_userappl / shb_os / shb_hardware of the first section, when present. */
  readonly sectionInfo: { userAppl?: string; os?: string; hardware?: string } = {};
  private pos = 0;
  /** Index in `interfaces` of the current section's interface 0. */
  private ifBase = 0;
  private readonly rules: TsRule[] = [];

  constructor(src: ByteSource) {
    super(src);
    const i = src.need(0, 12);
    if (i < 0) this.fail(0, `file too short for a pcapng section header: ${src.available(0)} of at least 28 bytes`);
    const t = u32(src.buf, i, true);
    if (t !== BT_SHB) this.fail(0, `not a pcapng file: first block type ${hex32(t)} is not a section header (0x0a0d0d0a)`);
    this.readSectionHeader();
  }

  private blockLength(pos: number, i: number, minLen: number, what: string): number {
    const len = u32(this.src.buf, i + 4, this.littleEndian);
    if (len < minLen) this.fail(pos, `${what} block length ${len} is below the minimum ${minLen}`);
    if (len % 4 !== 0) this.fail(pos, `${what} block length ${len} is not a multiple of 4`);
    if (len > MAX_BLOCK) this.fail(pos, `${what} block length ${len} exceeds the ${MAX_BLOCK}-byte limit; the file is corrupt`);
    return len;
  }

  /** Makes the whole block available and checks its trailing length copy. Returns its index in buf. */
  private wholeBlock(pos: number, len: number, what: string): number {
    const i = this.src.need(pos, len);
    if (i < 0) this.fail(pos, `truncated ${what} block: it claims ${len} bytes but the file ends after ${this.src.available(pos)}`);
    const trail = u32(this.src.buf, i + len - 4, this.littleEndian);
    if (trail !== len) this.fail(pos + len - 4, `${what} block's trailing length ${trail} differs from its leading length ${len}`);
    return i;
  }

  private readSectionHeader(): void {
    const pos = this.pos;
    let i = this.src.need(pos, 16);
    if (i < 0) this.fail(pos, `truncated section header block: ${this.src.available(pos)} of at least 28 bytes`);
    const bomLe = u32(this.src.buf, i + 8, true);
    if (bomLe === BOM) this.littleEndian = true;
    else if (u32(this.src.buf, i + 8, false) === BOM) this.littleEndian = false;
    else this.fail(pos + 8, `section header byte-order magic ${hex32(bomLe)} is neither 0x1a2b3c4d nor its byte swap`);
    const len = this.blockLength(pos, i, 28, 'section header');
    i = this.wholeBlock(pos, len, 'section header');
    const b = this.src.buf;
    const le = this.littleEndian;
    const major = u16(b, i + 12, le);
    const minor = u16(b, i + 14, le);
    if (major !== 1) this.fail(pos + 12, `unsupported pcapng version ${major}.${minor} (expected 1.x)`);
    const first = this.sections === 0;
    this.parseOptions(pos, i, i + 24, i + len - 4, (code, vs, vl) => {
      if (!first) return;
      const text = () => b.toString('utf8', vs, vs + vl);
      if (code === 2) this.sectionInfo.hardware = text();
      else if (code === 3) this.sectionInfo.os = text();
      else if (code === 4) this.sectionInfo.userAppl = text();
    });
    this.sections++;
    this.ifBase = this.interfaces.length;
    this.pos = pos + len;
  }

  private parseOptions(blockPos: number, blockIdx: number, start: number, end: number, each: (code: number, valueIdx: number, valueLen: number) => void): void {
    const b = this.src.buf;
    const le = this.littleEndian;
    let o = start;
    while (o + 4 <= end) {
      const code = u16(b, o, le);
      const olen = u16(b, o + 2, le);
      if (code === 0) break;
      if (o + 4 + olen > end) {
        this.fail(blockPos + (o - blockIdx), `option ${code} with length ${olen} runs past the end of its block`);
      }
      each(code, o + 4, olen);
      o += 4 + ((olen + 3) & ~3);
    }
  }

  private readInterface(pos: number, i: number, len: number): void {
    const b = this.src.buf;
    const le = this.littleEndian;
    const linkType = u16(b, i + 8, le);
    const snapLen = u32(b, i + 12, le);
    let name = '';
    let description: string | undefined;
    let resol = 6;
    let offsetSec = 0;
    let fcsLen = 0;
    this.parseOptions(pos, i, i + 16, i + len - 4, (code, vs, vl) => {
      if (code === 2) name = b.toString('utf8', vs, vs + vl);
      else if (code === 3) description = b.toString('utf8', vs, vs + vl);
      else if (code === 9) {
        if (vl < 1) this.fail(pos + (vs - i), 'if_tsresol option is empty');
        resol = b[vs];
        if ((resol & 0x7f) > 63 || (!(resol & 0x80) && resol > 19)) this.fail(pos + (vs - i), `if_tsresol ${resol} is out of range`);
      } else if (code === 13 && vl >= 1) fcsLen = b[vs];
      else if (code === 14 && vl >= 8) {
        const hi = u32(b, le ? vs + 4 : vs, le) | 0;
        const lo = u32(b, le ? vs : vs + 4, le);
        offsetSec = hi * 4294967296 + lo;
      }
    });
    const iface = { linkType, name, snapLen, fcsLen, ...(description !== undefined ? { description } : {}) };
    this.interfaces.push(iface);
    this.rules.push(tsRule(resol, offsetSec));
  }

  private setTimestamp(hi: number, lo: number, rule: TsRule): void {
    if (rule.kind === 'us') {
      const v = hi * 4294967296 + lo;
      const sec = Math.floor(v / 1e6);
      this.tsSec = sec + rule.offsetSec;
      this.tsNsec = (v - sec * 1e6) * 1000;
    } else if (rule.kind === 'dec') {
      // Long division of the 64-bit value by a divisor below 2^30, 16 bits at a time, exact in doubles.
      const d = rule.divisor;
      let r = 0;
      let q = 0;
      let cur = hi >>> 16;
      let qd = Math.floor(cur / d);
      r = cur - qd * d;
      q = qd;
      cur = r * 65536 + (hi & 0xffff);
      qd = Math.floor(cur / d);
      r = cur - qd * d;
      q = q * 65536 + qd;
      cur = r * 65536 + (lo >>> 16);
      qd = Math.floor(cur / d);
      r = cur - qd * d;
      q = q * 65536 + qd;
      cur = r * 65536 + (lo & 0xffff);
      qd = Math.floor(cur / d);
      r = cur - qd * d;
      q = q * 65536 + qd;
      this.tsSec = q + rule.offsetSec;
      this.tsNsec = r * rule.nsPerUnit;
    } else {
      const v = (BigInt(hi) << 32n) | BigInt(lo);
      const binary = (rule.resol & 0x80) !== 0;
      const n = BigInt(rule.resol & 0x7f);
      const per = binary ? 1n << n : 10n ** n;
      const sec = v / per;
      const rem = v % per;
      this.tsSec = Number(sec) + rule.offsetSec;
      this.tsNsec = Number((rem * 1000000000n) / per);
    }
  }

  next(): boolean {
    const src = this.src;
    for (;;) {
      const pos = this.pos;
      let i = src.need(pos, 8);
      if (i < 0) {
        const a = src.available(pos);
        if (a === 0) return false;
        this.fail(pos, `truncated block header: file ends ${a} bytes into an 8-byte block header`);
      }
      const le = this.littleEndian;
      const type = u32(src.buf, i, le);
      if (type === BT_SHB) {
        this.readSectionHeader();
        continue;
      }
      if (type === BT_EPB) {
        const len = this.blockLength(pos, i, 32, 'enhanced packet');
        i = this.wholeBlock(pos, len, 'enhanced packet');
        const b = src.buf;
        const id = u32(b, i + 8, le);
        const cap = u32(b, i + 20, le);
        if (cap > len - 32) this.fail(pos + 20, `enhanced packet block's captured length ${cap} exceeds the ${len - 32} bytes its block holds`);
        const g = this.ifBase + id;
        if (id >= this.interfaces.length - this.ifBase) this.fail(pos + 8, `enhanced packet block refers to interface ${id}, but the section defines only ${this.interfaces.length - this.ifBase}`);
        this.setTimestamp(u32(b, i + 12, le), u32(b, i + 16, le), this.rules[g]);
        this.ifIndex = g;
        this.linkType = this.interfaces[g].linkType;
        this.data = b;
        this.dataOff = i + 28;
        this.capLen = cap;
        this.origLen = u32(b, i + 24, le);
        this.recordOffset = pos;
        this.pos = pos + len;
        this.count++;
        return true;
      }
      if (type === BT_SPB) {
        const len = this.blockLength(pos, i, 16, 'simple packet');
        i = this.wholeBlock(pos, len, 'simple packet');
        if (this.interfaces.length - this.ifBase < 1) this.fail(pos, 'simple packet block before any interface description block');
        const b = src.buf;
        const g = this.ifBase;
        const orig = u32(b, i + 8, le);
        const snap = this.interfaces[g].snapLen;
        let cap = Math.min(orig, len - 16);
        if (snap > 0) cap = Math.min(cap, snap);
        this.ifIndex = g;
        this.linkType = this.interfaces[g].linkType;
        this.tsSec = 0;
        this.tsNsec = 0;
        this.data = b;
        this.dataOff = i + 12;
        this.capLen = cap;
        this.origLen = orig;
        this.recordOffset = pos;
        this.pos = pos + len;
        this.count++;
        return true;
      }
      if (type === BT_PB) {
        const len = this.blockLength(pos, i, 32, 'packet');
        i = this.wholeBlock(pos, len, 'packet');
        const b = src.buf;
        const id = u16(b, i + 8, le);
        const cap = u32(b, i + 20, le);
        if (cap > len - 32) this.fail(pos + 20, `packet block's captured length ${cap} exceeds the ${len - 32} bytes its block holds`);
        if (id >= this.interfaces.length - this.ifBase) this.fail(pos + 8, `packet block refers to interface ${id}, but the section defines only ${this.interfaces.length - this.ifBase}`);
        const g = this.ifBase + id;
        this.setTimestamp(u32(b, i + 12, le), u32(b, i + 16, le), this.rules[g]);
        this.ifIndex = g;
        this.linkType = this.interfaces[g].linkType;
        this.data = b;
        this.dataOff = i + 28;
        this.capLen = cap;
        this.origLen = u32(b, i + 24, le);
        this.recordOffset = pos;
        this.pos = pos + len;
        this.count++;
        return true;
      }
      const what = type === BT_IDB ? 'interface description' : `type ${hex32(type)}`;
      const len = this.blockLength(pos, i, type === BT_IDB ? 20 : 12, what);
      i = this.wholeBlock(pos, len, what);
      if (type === BT_IDB) this.readInterface(pos, i, len);
      this.pos = pos + len;
    }
  }
}

export interface PcapngInterfaceOptions {
  linkType?: number;
  /** if_name; for lab captures "node:iface". */
  name?: string;
  description?: string;
  snapLen?: number;
}

export interface PcapngWriterOptions {
  bigEndian?: boolean;
  /** shb_userappl (default "vslab"). */
  userAppl?: string;
}

/** Writes one section; interfaces use nanosecond timestamps (if_tsresol 9). */
export class PcapngWriter {
  private readonly le: boolean;
  private interfaces = 0;
  private readonly epbHead = Buffer.alloc(28);
  private readonly tail = Buffer.alloc(8);

  constructor(private readonly sink: ByteSink, opts: PcapngWriterOptions = {}) {
    this.le = !opts.bigEndian;
    const body: Buffer[] = [];
    const fixed = Buffer.alloc(16);
    this.w32(fixed, BOM, 0);
    this.w16(fixed, 1, 4);
    this.w16(fixed, 0, 6);
    fixed.writeInt32LE(-1, 8); // section length unknown (-1 is all ones in both byte orders)
    fixed.writeInt32LE(-1, 12);
    body.push(fixed, this.options([[4, Buffer.from(opts.userAppl ?? 'vslab')]]));
    this.block(BT_SHB, Buffer.concat(body));
  }

  private w32(b: Buffer, v: number, o: number): void {
    if (this.le) b.writeUInt32LE(v >>> 0, o);
    else b.writeUInt32BE(v >>> 0, o);
  }
  private w16(b: Buffer, v: number, o: number): void {
    if (this.le) b.writeUInt16LE(v, o);
    else b.writeUInt16BE(v, o);
  }

  private options(opts: Array<[number, Buffer]>): Buffer {
    const parts: Buffer[] = [];
    for (const [code, value] of opts) {
      const h = Buffer.alloc(4);
      this.w16(h, code, 0);
      this.w16(h, value.length, 2);
      parts.push(h, value, Buffer.alloc((4 - (value.length % 4)) % 4));
    }
    if (parts.length) parts.push(Buffer.alloc(4)); // opt_endofopt
    return Buffer.concat(parts);
  }

  private block(type: number, body: Buffer): void {
    const len = 12 + body.length;
    const h = Buffer.alloc(8);
    this.w32(h, type, 0);
    this.w32(h, len, 4);
    const t = Buffer.alloc(4);
    this.w32(t, len, 0);
    this.sink.write(h);
    this.sink.write(body);
    this.sink.write(t);
  }

  /** Adds an interface; returns its index for writePacket. */
  addInterface(opts: PcapngInterfaceOptions = {}): number {
    const fixed = Buffer.alloc(8);
    this.w16(fixed, opts.linkType ?? 1, 0);
    this.w32(fixed, opts.snapLen ?? 0, 4);
    const o: Array<[number, Buffer]> = [];
    if (opts.name) o.push([2, Buffer.from(opts.name)]);
    if (opts.description) o.push([3, Buffer.from(opts.description)]);
    o.push([9, Buffer.from([9])]);
    this.block(BT_IDB, Buffer.concat([fixed, this.options(o)]));
    return this.interfaces++;
  }

  /** Enhanced packet block with a nanosecond timestamp. */
  writePacket(ifIndex: number, tsSec: number, tsNsec: number, data: Uint8Array, origLen = data.length): void {
    if (ifIndex < 0 || ifIndex >= this.interfaces) throw new Error(`pcapng writer: interface ${ifIndex} was not added (have ${this.interfaces})`);
    // 64-bit nanosecond count split into 32-bit halves without losing precision:
    // v = A*65536 + B with A = floor(sec/65536)*1e9, B = (sec%65536)*1e9 + nsec (both < 2^53).
    const secHi = Math.floor(tsSec / 65536);
    const A = secHi * 1e9;
    const B = (tsSec - secHi * 65536) * 1e9 + tsNsec;
    const aHi = Math.floor(A / 65536);
    const C = (A - aHi * 65536) * 65536 + B;
    const cHi = Math.floor(C / 4294967296);
    const hi = aHi + cHi;
    const lo = C - cHi * 4294967296;
    const pad = (4 - (data.length % 4)) % 4;
    const len = 32 + data.length + pad;
    const h = this.epbHead;
    this.w32(h, BT_EPB, 0);
    this.w32(h, len, 4);
    this.w32(h, ifIndex, 8);
    this.w32(h, hi, 12);
    this.w32(h, lo, 16);
    this.w32(h, data.length, 20);
    this.w32(h, origLen, 24);
    this.sink.write(h);
    this.sink.write(data);
    const t = this.tail;
    t.fill(0);
    this.w32(t, len, pad);
    this.sink.write(t.subarray(0, pad + 4));
  }

  /** Simple packet block (no timestamp, interface 0). */
  writeSimplePacket(data: Uint8Array, origLen = data.length): void {
    if (this.interfaces < 1) throw new Error('pcapng writer: a simple packet block needs interface 0 to be added first');
    const pad = (4 - (data.length % 4)) % 4;
    const h = Buffer.alloc(4);
    this.w32(h, origLen, 0);
    this.block(BT_SPB, Buffer.concat([h, Buffer.from(data), Buffer.alloc(pad)]));
  }

  close(): void {
    this.sink.close();
  }
}
