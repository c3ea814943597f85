// Open a capture (pcap or pcapng, chosen by the file's first four bytes) from a file or a Buffer.
import { CaptureFormatError } from './errors';
import { PcapngReader, BT_SHB } from './pcapng';
import { PcapReader } from './pcap';
import type { CaptureReader, CapturedPacket } from './reader';
import { BufferSource, FileSource, type ByteSource } from './source';

function readerFor(src: ByteSource): CaptureReader {
  const i = src.need(0, 4);
  if (i < 0) {
    src.close();
    throw new CaptureFormatError(src.name, 0, `file too short to be a capture: ${src.available(0)} bytes`);
  }
  try {
    const magic = src.buf.readUInt32LE(i);
    return magic === BT_SHB ? new PcapngReader(src) : new PcapReader(src);
  } catch (e) {
    src.close();
    throw e;
  }
}

/** Streams a capture file with bounded memory (chunkSize bytes at a time). */
export function openCaptureFile(path: string, chunkSize?: number): CaptureReader {
  return readerFor(new FileSource(path, chunkSize));
}

export function openCaptureBuffer(buf: Buffer, name = '<buffer>'): CaptureReader {
  return readerFor(new BufferSource(buf, name));
}

/** Reads every packet of a capture into memory (copies). For large files prefer the cursor of openCaptureFile. */
export function readAllPackets(source: string | Buffer, name?: string): { reader: CaptureReader; packets: CapturedPacket[] } {
  const reader = typeof source === 'string' ? openCaptureFile(source) : openCaptureBuffer(source, name);
  const packets: CapturedPacket[] = [];
  try {
    while (reader.next()) packets.push(reader.packet());
  } finally {
    reader.close();
  }
  return { reader, packets };
}
