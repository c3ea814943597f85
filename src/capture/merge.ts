// Merge the captures of a run (one file per link end) into one pcapng ordered by timestamp, whose
// interfaces are named "node:iface" so a single Wireshark file shows the whole lab.
import * as fs from 'fs';
import * as path from 'path';
import { openCaptureFile } from './open';
import { PcapngWriter } from './pcapng';
import type { CaptureReader } from './reader';
import { CaptureOutputError } from './errors';
import { FileSink, sameFile, type ByteSink } from './sink';

export interface MergeInput {
  path: string;
  /** Interface name for the file's packets, e.g. "director:eth1". A file with several interfaces gets
   *  "<name>/<its own if_name or index>". Default: the file's own interface name, else its base name. */
  name?: string;
}

export interface MergeResult {
  packets: number;
  /** Output interface names in pcapng interface order. */
  interfaces: string[];
}

function outputName(input: MergeInput, reader: CaptureReader, ifIndex: number): string {
  const own = reader.interfaces[ifIndex]?.name || '';
  if (input.name) return reader.interfaces.length > 1 ? `${input.name}/${own || ifIndex}` : input.name;
  return own || `${path.basename(input.path)}${reader.interfaces.length > 1 ? `:if${ifIndex}` : ''}`;
}

/**
 * Merges the inputs (streaming, any size) into `out` (a path or a sink). Ties keep input order.
 * A path is written in full or not at all (a failed merge leaves no file behind, and an existing
 * file is replaced only once the merge is complete); it may not be one of the inputs.
 */
export function mergeCaptures(inputs: MergeInput[], out: string | ByteSink): MergeResult {
  if (typeof out === 'string') {
    const same = inputs.find((i) => sameFile(i.path, out));
    if (same) throw new CaptureOutputError(`the output ${out} is also an input (${same.path}); write the merge to another file`);
    if (fs.existsSync(out) && !fs.statSync(out).isFile()) throw new CaptureOutputError(`the output ${out} exists and is not a regular file`);
  }
  const readers: CaptureReader[] = [];
  let done = false;
  const sink = typeof out === 'string' ? new FileSink(out) : out;
  try {
    for (const i of inputs) readers.push(openCaptureFile(i.path));
    const writer = new PcapngWriter(sink);
    const live = readers.map((r) => r.next());
    const ifMap = readers.map(() => new Map<number, number>());
    const names: string[] = [];
    const declare = (k: number, ifIndex: number): number => {
      const r = readers[k];
      const iface = r.interfaces[ifIndex];
      const name = outputName(inputs[k], r, ifIndex);
      const out = writer.addInterface({ linkType: iface.linkType, name, snapLen: iface.snapLen, description: inputs[k].path });
      ifMap[k].set(ifIndex, out);
      names.push(name);
      return out;
    };
    // Every interface known before the first packet is declared up front, in input order, so that a link
    // that saw no packet still shows as captured (an empty link is evidence for an absence expectation).
    readers.forEach((r, k) => r.interfaces.forEach((_, i) => declare(k, i)));
    let packets = 0;
    for (;;) {
      let best = -1;
      for (let k = 0; k < readers.length; k++) {
        if (!live[k]) continue;
        if (best < 0) {
          best = k;
          continue;
        }
        const a = readers[k];
        const b = readers[best];
        if (a.tsSec < b.tsSec || (a.tsSec === b.tsSec && a.tsNsec < b.tsNsec)) best = k;
      }
      if (best < 0) break;
      const r = readers[best];
      const outIf = ifMap[best].get(r.ifIndex) ?? declare(best, r.ifIndex);
      writer.writePacket(outIf, r.tsSec, r.tsNsec, r.data.subarray(r.dataOff, r.dataOff + r.capLen), r.origLen);
      packets++;
      live[best] = r.next();
    }
    writer.close();
    done = true;
    return { packets, interfaces: names };
  } finally {
    for (const r of readers) r.close();
    if (done) sink.close();
    else if (sink.abort) sink.abort();
    else sink.close();
  }
}
