// Extract the uncompressed ELF kernel (vmlinux) from an x86 bzImage.
// qemu boots an ELF vmlinux through the PVH entry point, skipping the in-guest decompression that
// costs ~6 s under TCG here (boot 8.4-9 s -> 2.5-3.2 s, docs/vm.md).
//
// The bzImage setup header says where the compressed payload is (boot protocol >= 2.08:
// payload_offset at 0x248, payload_length at 0x24c, relative to the protected-mode code that starts
// after (setup_sects + 1) * 512 bytes); its first bytes say how it is compressed.
import * as fs from 'fs';
import * as zlib from 'zlib';
import { runTool } from './proc';

const ELF_MAGIC = Buffer.from([0x7f, 0x45, 0x4c, 0x46]);

export function isElf(file: string): boolean {
  const fd = fs.openSync(file, 'r');
  try {
    const b = Buffer.alloc(4);
    fs.readSync(fd, b, 0, 4, 0);
    return b.equals(ELF_MAGIC);
  } finally {
    fs.closeSync(fd);
  }
}

interface Payload {
  data: Buffer;
  format: 'gzip' | 'xz' | 'zstd' | 'lz4' | 'lzma' | 'bzip2';
}

/** The compressed kernel inside a bzImage, or an error saying why the file is not one. */
export function bzImagePayload(image: Buffer, where: string): Payload {
  if (image.length < 0x250 || image.toString('latin1', 0x202, 0x206) !== 'HdrS') {
    throw new Error(`${where} is neither an ELF vmlinux nor an x86 bzImage (no "HdrS" setup header)`);
  }
  const version = image.readUInt16LE(0x206);
  if (version < 0x208) throw new Error(`${where}: boot protocol ${version.toString(16)} is older than 2.08 (no payload fields)`);
  const setupSects = image[0x1f1] || 4;
  const start = (setupSects + 1) * 512 + image.readUInt32LE(0x248);
  const length = image.readUInt32LE(0x24c);
  if (start + length > image.length) throw new Error(`${where}: payload (${start}+${length}) runs past the end of the file`);
  const data = image.subarray(start, start + length);
  const m = (...bytes: number[]) => bytes.every((b, i) => data[i] === b);
  if (m(0x1f, 0x8b)) return { data, format: 'gzip' };
  if (m(0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00)) return { data, format: 'xz' };
  if (m(0x28, 0xb5, 0x2f, 0xfd)) return { data, format: 'zstd' };
  if (m(0x02, 0x21, 0x4c, 0x18)) return { data, format: 'lz4' };
  if (m(0x5d, 0x00, 0x00)) return { data, format: 'lzma' };
  if (m(0x42, 0x5a, 0x68)) return { data, format: 'bzip2' };
  throw new Error(`${where}: unknown kernel compression (payload starts ${data.subarray(0, 6).toString('hex')})`);
}

const decompressors: Record<Exclude<Payload['format'], 'gzip'>, [string, string[]]> = {
  xz: ['xz', ['-dc', '--single-stream']],
  lzma: ['xz', ['-dc', '--format=lzma']],
  zstd: ['zstd', ['-dcq']],
  lz4: ['lz4', ['-dc']],
  bzip2: ['bzip2', ['-dc']],
};

/**
 * Write the ELF vmlinux contained in the bzImage `image` to `out`. Except for gzip, the kernel build
 * appends the 4-byte uncompressed size after the compressed stream; it is cut off before decompressing.
 */
export async function extractVmlinux(image: string, out: string): Promise<void> {
  const payload = bzImagePayload(fs.readFileSync(image), image);
  const tmp = `${out}.tmp-${process.pid}`;
  try {
    if (payload.format === 'gzip') {
      fs.writeFileSync(tmp, zlib.gunzipSync(payload.data));
    } else {
      const [cmd, args] = decompressors[payload.format];
      const fd = fs.openSync(tmp, 'w');
      let r;
      try {
        r = await runTool(cmd, args, { input: payload.data.subarray(0, payload.data.length - 4), stdoutFd: fd });
      } finally {
        fs.closeSync(fd);
      }
      if (r.code !== 0) {
        throw new Error(`cannot decompress the ${payload.format} kernel in ${image} with ${cmd}: ${r.stderr.trim() || `exit ${r.code}`}` +
          ` (install the ${cmd} package if it is missing)`);
      }
    }
    if (!isElf(tmp)) throw new Error(`the kernel decompressed from ${image} is not an ELF file`);
    fs.renameSync(tmp, out);
  } finally {
    fs.rmSync(tmp, { force: true });
  }
}
