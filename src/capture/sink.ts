// Where capture writers put their bytes: memory (tests, small merges) or a file with a write buffer.
import * as fs from 'fs';

export interface ByteSink {
  /** Copies `data`; the caller may reuse its buffer afterwards. */
  write(data: Uint8Array): void;
  close(): void;
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

export class FileSink implements ByteSink {
  private fd: number;
  private buf: Buffer;
  private len = 0;

  constructor(readonly path: string, bufferSize = 1 << 20) {
    this.fd = fs.openSync(path, 'w');
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
    this.flush();
    fs.closeSync(this.fd);
    this.fd = -1;
  }
}
