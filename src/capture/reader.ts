// What every capture-file reader offers: a cursor over packet records (no allocation per packet) plus
// convenience copies. pcap.ts and pcapng.ts implement it; `openCapture` picks one by the file's magic.
import { CaptureFormatError } from './errors';
import type { ByteSource } from './source';

export interface CaptureInterface {
  /** LINKTYPE_* value (1 = Ethernet). */
  linkType: number;
  /** Interface name (pcapng if_name; for lab captures "node:iface"); "" when the file has none. */
  name: string;
  /** Snapshot length declared by the file (0 = unlimited). */
  snapLen: number;
  description?: string;
  /** Bytes of frame check sequence at the end of each frame (0 when absent). */
  fcsLen: number;
}

/** One packet record, copied out of the reader. */
export interface CapturedPacket {
  /** 0-based position of the packet in the file. */
  index: number;
  /** Index into the reader's `interfaces`. */
  ifIndex: number;
  linkType: number;
  tsSec: number;
  /** Nanoseconds within the second (0..999999999). */
  tsNsec: number;
  /** Captured bytes (length = captured length). */
  data: Buffer;
  /** Length of the packet on the wire. */
  origLen: number;
  /** Byte offset of the record in the file (for error messages). */
  fileOffset: number;
}

export abstract class CaptureReader implements Iterable<CapturedPacket> {
  abstract readonly format: 'pcap' | 'pcapng';
  readonly interfaces: CaptureInterface[] = [];
  // --- the current record, valid until the next call of next() ---
  /** Buffer holding the current packet's bytes, from dataOff for capLen bytes. */
  data: Buffer = Buffer.alloc(0);
  dataOff = 0;
  capLen = 0;
  origLen = 0;
  tsSec = 0;
  tsNsec = 0;
  ifIndex = 0;
  linkType = 0;
  /** Byte offset of the current record in the file. */
  recordOffset = 0;
  /** Packets returned so far (the current packet's index is count - 1). */
  count = 0;

  constructor(protected readonly src: ByteSource) {}

  get file(): string {
    return this.src.name;
  }

  /** Advance to the next packet record. Returns false at a clean end of file; throws CaptureFormatError
   *  (naming the byte offset) on a truncated or corrupt file. */
  abstract next(): boolean;

  /** A copy of the current record. */
  packet(): CapturedPacket {
    return {
      index: this.count - 1,
      ifIndex: this.ifIndex,
      linkType: this.linkType,
      tsSec: this.tsSec,
      tsNsec: this.tsNsec,
      data: Buffer.from(this.data.subarray(this.dataOff, this.dataOff + this.capLen)),
      origLen: this.origLen,
      fileOffset: this.recordOffset,
    };
  }

  *[Symbol.iterator](): Iterator<CapturedPacket> {
    while (this.next()) yield this.packet();
  }

  /** Name of an interface as a lab link ("node:iface"), falling back to "if<N>". */
  interfaceName(ifIndex: number): string {
    const i = this.interfaces[ifIndex];
    return i && i.name ? i.name : `if${ifIndex}`;
  }

  close(): void {
    this.src.close();
  }

  protected fail(offset: number, problem: string): never {
    throw new CaptureFormatError(this.src.name, offset, problem);
  }
}

export function u16(b: Uint8Array, i: number, le: boolean): number {
  return le ? b[i] | (b[i + 1] << 8) : (b[i] << 8) | b[i + 1];
}

export function u32(b: Uint8Array, i: number, le: boolean): number {
  return le
    ? (b[i] | (b[i + 1] << 8) | (b[i + 2] << 16) | (b[i + 3] << 24)) >>> 0
    : ((b[i] << 24) | (b[i + 1] << 16) | (b[i + 2] << 8) | b[i + 3]) >>> 0;
}

export function hex32(v: number): string {
  return '0x' + (v >>> 0).toString(16).padStart(8, '0');
}
