// Host side of the guest agent protocol (guest/agent/protocol.h describes the frames; keep both in step).
// Frame: u32 length (of what follows) | u32 id | u8 type | fields, each u32 length + bytes. Little-endian.

export const AGENT_PROTOCOL = '2';
export const AGENT_PORT_NAME = 'vslab.agent';

export const FrameType = {
  Ping: 0x01,
  Run: 0x02,
  Stdin: 0x03,
  Signal: 0x04,
  Netlink: 0x05,
  Fetch: 0x06,
  Put: 0x07,
  Poweroff: 0x08,

  Hello: 0x80,
  Pong: 0x81,
  Exit: 0x82,
  Started: 0x83,
  Output: 0x84,
  NlReply: 0x85,
  Chunk: 0x86,
  End: 0x87,
  Error: 0x88,
  Ok: 0x89,
} as const;

export interface Frame {
  id: number;
  type: number;
  fields: Buffer[];
}

export type Field = string | Buffer | number;

export function encodeFrame(id: number, type: number, fields: Field[]): Buffer {
  const bufs = fields.map((f) => (Buffer.isBuffer(f) ? f : Buffer.from(String(f))));
  const len = 5 + bufs.reduce((n, b) => n + 4 + b.length, 0);
  const out = Buffer.allocUnsafe(4 + len);
  out.writeUInt32LE(len, 0);
  out.writeUInt32LE(id >>> 0, 4);
  out.writeUInt8(type, 8);
  let off = 9;
  for (const b of bufs) {
    out.writeUInt32LE(b.length, off);
    b.copy(out, off + 4);
    off += 4 + b.length;
  }
  return out;
}

/** Reassembles frames from a byte stream that may split or merge them arbitrarily. */
export class FrameDecoder {
  private pending: Buffer[] = [];
  private pendingLen = 0;
  /** Bytes needed before the next frame is complete (0: its length is not known yet). */
  private need = 0;

  constructor(private readonly maxFrame = 512 << 20) {}

  /** Feed bytes; returns the complete frames they finish. Throws on a corrupt stream. */
  push(chunk: Buffer): Frame[] {
    this.pending.push(chunk);
    this.pendingLen += chunk.length;
    const frames: Frame[] = [];
    if (this.pendingLen < 4 || this.pendingLen < this.need) return frames;
    let buf = this.pending.length === 1 ? this.pending[0] : Buffer.concat(this.pending, this.pendingLen);
    let off = 0;
    while (buf.length - off >= 4) {
      const len = buf.readUInt32LE(off);
      if (len < 5 || len > this.maxFrame) throw new Error(`corrupt frame from the guest agent (length ${len})`);
      if (buf.length - off - 4 < len) {
        this.need = 4 + len;
        break;
      }
      this.need = 0;
      frames.push(decodeBody(buf.subarray(off + 4, off + 4 + len)));
      off += 4 + len;
    }
    buf = buf.subarray(off);
    this.pending = buf.length ? [Buffer.from(buf)] : [];
    this.pendingLen = buf.length;
    return frames;
  }
}

function decodeBody(b: Buffer): Frame {
  const id = b.readUInt32LE(0);
  const type = b.readUInt8(4);
  const fields: Buffer[] = [];
  let off = 5;
  while (off < b.length) {
    if (off + 4 > b.length) throw new Error(`corrupt frame from the guest agent (type ${type})`);
    const fl = b.readUInt32LE(off);
    if (off + 4 + fl > b.length) throw new Error(`corrupt frame from the guest agent (type ${type}: field past the end)`);
    fields.push(b.subarray(off + 4, off + 4 + fl));
    off += 4 + fl;
  }
  return { id, type, fields };
}
