// Decode every packet of a capture into JSON layers, tagged with index, timestamp and link name.
import { openCaptureBuffer, openCaptureFile } from '../capture/open';
import type { CaptureReader } from '../capture/reader';
import { PacketDecoder, type DecodeOptions } from './decode';
import { tsString, type DecodedPacket } from './layers';

export function decodeCurrent(r: CaptureReader, dec: PacketDecoder): DecodedPacket {
  const p = dec.decode(r.data, r.dataOff, r.capLen, r.linkType, r.origLen);
  return { index: r.count - 1, ts: tsString(r.tsSec, r.tsNsec), link: r.interfaceName(r.ifIndex), ...p };
}

/** Reads and decodes a whole capture (file path or bytes). Throws CaptureFormatError on a bad file. */
export function decodeCapture(source: string | Buffer, opts: DecodeOptions = {}): DecodedPacket[] {
  return decodeCaptureWithInterfaces(source, opts).packets;
}

/** Like decodeCapture, also returning every interface the file declares (even those without packets). */
export function decodeCaptureWithInterfaces(source: string | Buffer, opts: DecodeOptions = {}): { packets: DecodedPacket[]; interfaces: string[] } {
  const r = typeof source === 'string' ? openCaptureFile(source) : openCaptureBuffer(source);
  const dec = new PacketDecoder(opts);
  const packets: DecodedPacket[] = [];
  try {
    while (r.next()) packets.push(decodeCurrent(r, dec));
    return { packets, interfaces: r.interfaces.map((_, i) => r.interfaceName(i)) };
  } finally {
    r.close();
  }
}

/** Groups decoded packets by their link name. */
export function byLink(packets: DecodedPacket[]): Map<string, DecodedPacket[]> {
  const m = new Map<string, DecodedPacket[]>();
  for (const p of packets) {
    const k = p.link ?? '';
    let l = m.get(k);
    if (!l) m.set(k, (l = []));
    l.push(p);
  }
  return m;
}
