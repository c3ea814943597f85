// Where capture writers put their bytes: memory (tests, small merges) or a file with a write buffer.
import * as fs from 'fs';
import * as path from 'path';

export interface ByteSink {
  /** Copies `data`; the caller may reuse its buffer afterwards. */
  write(data: Uint8Array): void;
  /** Finishes the output. */
  close(): void;
  /** Gives up: whatever was written is thrown away (a failed merge leaves no partial file). */
  abort?(): void;
}

export class MemorySink implements ByteSink {
  private chunks: Buffer[] = [];
  write(data: Uint8Array): void {
    this.chunks.push(Buffer.from(data));
  }
  close(): void {}
  toBuffer(): Buffer {
    return Buffer.concat(this.chunks);
  }
}

/**
 * A file written in full or not at all: bytes go to a new temporary file beside `path` (created
 * exclusively, so it never follows a planted symlink), close() renames it over `path`, abort()
 * removes it. An existing file at `path` is untouched until the new one is complete.
 */
export class FileSink implements ByteSink {
  private fd: number;
  private buf: Buffer;
  private len = 0;
  readonly tmpPath: string;

  constructor(readonly path: string, bufferSize = 1 << 20) {
    this.tmpPath = path + `.${process.pid}.${Math.random().toString(36).slice(2, 10)}.tmp`;
    this.fd = fs.openSync(this.tmpPath, 'wx', 0o644);
    this.buf = Buffer.allocUnsafe(bufferSize);
  }

  write(data: Uint8Array): void {
    if (this.len + data.length > this.buf.length) this.flush();
    if (data.length > this.buf.length) {
      fs.writeSync(this.fd, data);
      return;
    }
    this.buf.set(data, this.len);
    this.len += data.length;
  }

  private flush(): void {
    let o = 0;
    while (o < this.len) o += fs.writeSync(this.fd, this.buf, o, this.len - o);
    this.len = 0;
  }

  close(): void {
    if (this.fd < 0) return;
    try {
      this.flush();
      fs.closeSync(this.fd);
      this.fd = -1;
      fs.renameSync(this.tmpPath, this.path);
    } catch (e) {
      this.abort();
      throw e;
    }
  }

  abort(): void {
    if (this.fd >= 0) fs.closeSync(this.fd);
    this.fd = -1;
    fs.rmSync(this.tmpPath, { force: true });
  }
}

/** True when `a` and `b` name the same existing file (through links, "..", hard links). */
export function sameFile(a: string, b: string): boolean {
  try {
    const sa = fs.statSync(a);
    const sb = fs.statSync(b);
    return sa.dev === sb.dev && sa.ino === sb.ino;
  } catch {
    return path.resolve(a) === path.resolve(b);
  }
}
