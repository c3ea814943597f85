// Merging a test's captures (one pcap per link end) into the run directory's capture.pcapng. Unlike a
// plain merge, every captured link is declared as an interface even when it saw no packet: an expectation
// that a link stays silent must be able to tell "captured, nothing there" from "not captured" offline.
import { openCaptureFile } from '../capture/open';
import { PcapngWriter } from '../capture/pcapng';
import type { CaptureReader } from '../capture/reader';
import { FileSink } from '../capture/sink';

export interface LinkCapture {
  path: string;
  /** "node:iface". */
  link: string;
}

export function mergeLinkCaptures(inputs: LinkCapture[], out: string): { packets: number; links: string[] } {
  const readers: CaptureReader[] = [];
  const sink = new FileSink(out);
  try {
    for (const i of inputs) readers.push(openCaptureFile(i.path));
    const writer = new PcapngWriter(sink);
    const ifIndex = readers.map((r, k) => r.interfaces.map((iface, j) => writer.addInterface({
      linkType: iface.linkType, snapLen: iface.snapLen, name: r.interfaces.length > 1 ? `${inputs[k].link}/${j}` : inputs[k].link, description: inputs[k].path,
    })));
    const live = readers.map((r) => r.next());
    let packets = 0;
    for (;;) {
      let best = -1;
      for (let k = 0; k < readers.length; k++) {
        if (!live[k]) continue;
        const a = readers[k];
        const b = best >= 0 ? readers[best] : undefined;
        if (!b || a.tsSec < b.tsSec || (a.tsSec === b.tsSec && a.tsNsec < b.tsNsec)) best = k;
      }
      if (best < 0) break;
      const r = readers[best];
      writer.writePacket(ifIndex[best][r.ifIndex], r.tsSec, r.tsNsec, r.data.subarray(r.dataOff, r.dataOff + r.capLen), r.origLen);
      packets++;
      live[best] = r.next();
    }
    writer.close();
    return { packets, links: inputs.map((i) => i.link) };
  } finally {
    for (const r of readers) r.close();
    sink.close();
  }
}
