// A window over the bytes of a capture: either a whole Buffer in memory or a file read in large chunks,
// so readers can stream files of any size with bounded memory.
import * as fs from 'fs';

export interface ByteSource {
  readonly name: string;
  /** The current window; `need` returns indices into it. Valid until the next `need` call. */
  readonly buf: Buffer;
  /** Make bytes [pos, pos+n) available. Returns the index of `pos` in `buf`, or -1 when the data ends
   *  before pos+n (then `available(pos)` says how many bytes there are). */
  need(pos: number, n: number): number;
  /** Number of bytes that exist at and after `pos` (within the current window or up to end of data). */
  available(pos: number): number;
  close(): void;
}

export class BufferSource implements ByteSource {
  constructor(readonly buf: Buffer, readonly name = '<buffer>') {}
  need(pos: number, n: number): number {
    return pos + n <= this.buf.length ? pos : -1;
  }
  available(pos: number): number {
    return Math.max(0, this.buf.length - pos);
  }
  close(): void {}
}

const DEFAULT_CHUNK = 8 * 1024 * 1024;

/** Reads a file sequentially in chunks. Positions must not go backwards past the start of the window. */
export class FileSource implements ByteSource {
  buf: Buffer;
  /** File offset of buf[0]. */
  private base = 0;
  /** Valid bytes in buf. */
  private len = 0;
  private eof = false;
  private fd: number;

  constructor(readonly name: string, chunkSize = DEFAULT_CHUNK) {
    this.fd = fs.openSync(name, 'r');
    this.buf = Buffer.allocUnsafe(chunkSize);
  }

  need(pos: number, n: number): number {
    const rel = pos - this.base;
    if (rel >= 0 && rel + n <= this.len) return rel;
    if (rel < 0) throw new Error(`internal: FileSource asked for byte ${pos} before its window at ${this.base}`);
    if (this.eof) return -1;
    this.refill(pos, n);
    const r = pos - this.base;
    return r + n <= this.len ? r : -1;
  }

  available(pos: number): number {
    // Only meaningful after `need` returned -1, which happens only once the file end has been read.
    return Math.max(0, this.base + this.len - pos);
  }

  private refill(pos: number, n: number): void {
    // Keep the bytes from pos on, move them to the front, grow if one structure is larger than the buffer.
    const keepFrom = Math.min(pos - this.base, this.len);
    const keep = this.len - keepFrom;
    if (n > this.buf.length) {
      const bigger = Buffer.allocUnsafe(Math.max(n, this.buf.length * 2));
      this.buf.copy(bigger, 0, keepFrom, this.len);
      this.buf = bigger;
    } else if (keep > 0 && keepFrom > 0) {
      this.buf.copy(this.buf, 0, keepFrom, this.len);
    }
    this.base += keepFrom;
    this.len = keep;
    // Skip forward if pos lies beyond what we had (a reader skipping a large block).
    if (pos > this.base + this.len) {
      this.base = pos;
      this.len = 0;
    }
    while (this.len < this.buf.length) {
      const got = fs.readSync(this.fd, this.buf, this.len, this.buf.length - this.len, this.base + this.len);
      if (got === 0) {
        this.eof = true;
        break;
      }
      this.len += got;
      if (pos - this.base + n <= this.len && this.len >= this.buf.length / 2) break;
    }
  }

  close(): void {
    if (this.fd >= 0) fs.closeSync(this.fd);
    this.fd = -1;
  }
}
