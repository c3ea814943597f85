// Captures kept for a lab's life, cut into per-test windows. Starting a tcpdump per link end for every test
// was a third of a forwarding test's time in a TCG guest (≈0.45 s a test, the ten tcpdumps' starts sharing
// one vCPU). Here each link end's tcpdump starts once and runs until the lab is closed; a test's window is
// the run of packets between two stop points, told apart by tcpdump's own counts:
//
//  - begin: tcpdump's count of packets received by its filter (SIGUSR1). With -U every packet it receives
//    is written in order, so that many records of its file came before the window.
//  - end: the link has been quiet for the settle time and tcpdump has written all it received (the same
//    stop point as a per-test capture's); its count is where the window ends. Packets after it belong to
//    no test (the next window starts at the next test's own mark).
//
// The file is read as it grows (from the last byte read, LabNode.readFileFrom) and each window's records are
// written to a per-link pcap for the host, exactly as a per-test capture's file would have been. A loss
// (the kernel dropped packets for tcpdump, or it never caught up) fails the window and the captures are
// started afresh for the next test; a tcpdump that died is restarted at the next begin.
import * as fs from 'fs';
import * as path from 'path';
import type { LabNode } from '../backend/types';
import { PCAP_MAGIC_NS, PCAP_MAGIC_US, PcapWriter } from './pcap';
import { MemorySink } from './sink';
import { CaptureLossError, type CaptureCounts, type LinkEnd, TcpdumpCapture, type TcpdumpOptions } from './tcpdump';

/** Record boundaries of a classic pcap file read in pieces: what lies before a window is dropped as it goes. */
export class PcapRecordLog {
  private header: Buffer | null = null;
  private littleEndian = true;
  /** Bytes of the file from `bufOffset` on that are not yet consumed. */
  private buf: Buffer = Buffer.alloc(0);
  private bufOffset = 0;
  /** File offsets of whole records in `buf`, record `firstIndex` first. */
  private starts: number[] = [];
  private firstIndex = 0;
  /** Where the next unparsed record begins (a file offset). */
  private parseAt = 24;

  /** Bytes of the file held or consumed so far: where the next read starts. */
  get fileBytes(): number {
    return this.bufOffset + this.buf.length;
  }

  /** Whole records seen so far (all of the file's records, consumed ones included). */
  get records(): number {
    return this.firstIndex + this.starts.length;
  }

  /** Appends the next bytes of the file. Throws on a file that is not a classic pcap. */
  append(data: Buffer): void {
    if (!data.length) return;
    this.buf = this.buf.length ? Buffer.concat([this.buf, data]) : data;
    if (!this.header) {
      if (this.buf.length < 24) return;
      const le = this.buf.readUInt32LE(0);
      const be = this.buf.readUInt32BE(0);
      if (le === PCAP_MAGIC_US || le === PCAP_MAGIC_NS) this.littleEndian = true;
      else if (be === PCAP_MAGIC_US || be === PCAP_MAGIC_NS) this.littleEndian = false;
      else throw new Error(`not a pcap file (magic 0x${be.toString(16)})`);
      this.header = Buffer.from(this.buf.subarray(0, 24));
    }
    for (;;) {
      const at = this.parseAt - this.bufOffset;
      if (at + 16 > this.buf.length) break;
      const caplen = this.littleEndian ? this.buf.readUInt32LE(at + 8) : this.buf.readUInt32BE(at + 8);
      if (caplen > 0x4000000) throw new Error(`pcap record at byte ${this.parseAt} claims ${caplen} bytes`);
      if (at + 16 + caplen > this.buf.length) break;
      this.starts.push(this.parseAt);
      this.parseAt += 16 + caplen;
    }
  }

  /**
   * @param emptyHeader the header to give a window when the file has none yet: tcpdump -U flushes its file
   *   header with the first packet, so a link silent so far has an empty file.
   */
  constructor(private readonly emptyHeader?: Buffer) {}

  /** The file header followed by records [from, to) as a pcap file; records before `to` are then let go. */
  take(from: number, to: number): Buffer {
    if (!this.header && from === to && this.emptyHeader && !this.buf.length) return Buffer.from(this.emptyHeader);
    if (!this.header) throw new Error('no pcap header read yet');
    if (from < this.firstIndex) throw new Error(`records before ${this.firstIndex} were already let go (asked from ${from})`);
    if (to > this.records) throw new Error(`only ${this.records} records read (asked up to ${to})`);
    const off = (i: number) => (i < this.records ? this.starts[i - this.firstIndex] : this.parseAt) - this.bufOffset;
    const body = from < to ? this.buf.subarray(off(from), off(to)) : Buffer.alloc(0);
    const out = Buffer.concat([this.header, body]);
    // Let go of everything before `to`.
    const cut = off(to);
    this.buf = Buffer.from(this.buf.subarray(cut));
    this.bufOffset += cut;
    this.starts = this.starts.slice(to - this.firstIndex);
    this.firstIndex = to;
    return out;
  }
}

interface LinkLog {
  cap: TcpdumpCapture;
  log: PcapRecordLog;
  /** Kernel drops tcpdump reported at the window's start. */
  dropsAtMark: number;
}

export interface CaptureWindow {
  /** Per capture (in LabCaptures order): the record index the window starts at. */
  marks: number[];
  /** The generation of captures the marks belong to. */
  generation: number;
  ended: boolean;
}

export interface WindowFile {
  link: string;
  node: string;
  iface: string;
  /** The window's records as a classic pcap on the host. */
  path: string;
  packets: number;
}

/** Every link end's capture of one lab, kept running between tests. */
export class LabCaptures {
  private links: LinkLog[] = [];
  private generation = 0;
  private broken = true;
  private closed = false;

  /**
   * @param tag part of the capture files' names: a VM guest keeps the files of every lab in it under the node's
   *   name (/vslab/work/<node>), and labs in one guest have nodes of the same names, so the lab's name goes in
   *   (and the process id: a worker that replaced a killed one must not share a file with its leftovers).
   */
  constructor(private readonly ends: LinkEnd[], private readonly opts: Omit<TcpdumpOptions, 'iface'> = {}, private readonly tag = `${process.pid}`) {
    if (!/^[A-Za-z0-9._-]+$/.test(tag)) throw new Error(`capture file tag ${JSON.stringify(tag)}: letters, digits, '.', '_' and '-' only`);
  }

  /** The running captures, in link order (empty before the first window and after close). */
  get captures(): readonly TcpdumpCapture[] {
    return this.links.map((l) => l.cap);
  }

  /** The link names, "node:iface", in capture order. */
  get linkNames(): string[] {
    return this.links.map((l) => l.cap.link);
  }

  private async restart(): Promise<void> {
    await this.abortAll();
    this.generation++;
    const started = await Promise.allSettled(this.ends.map((e) =>
      TcpdumpCapture.start(e.node, { ...this.opts, iface: e.iface, fileName: `lab-capture-${this.tag}-${e.iface}.pcap` })));
    const ok = started.filter((s): s is PromiseFulfilledResult<TcpdumpCapture> => s.status === 'fulfilled').map((s) => s.value);
    const failed = started.find((s): s is PromiseRejectedResult => s.status === 'rejected');
    if (failed) {
      await Promise.all(ok.map((c) => c.abort().catch(() => undefined)));
      throw failed.reason;
    }
    // Every link end of a lab model is an Ethernet interface (veth, macvlan): LINKTYPE_ETHERNET.
    const sink = new MemorySink();
    new PcapWriter(sink, { linkType: 1, snapLen: this.opts.snapLen ?? 262144, nanosecond: this.opts.nanosecond !== false }).close();
    const empty = sink.toBuffer();
    this.links = ok.map((cap) => ({ cap, log: new PcapRecordLog(empty), dropsAtMark: 0 }));
    this.broken = false;
  }

  /** Starts a window: (re)starts the captures if needed, then marks where each one stands. */
  async begin(): Promise<CaptureWindow> {
    if (this.closed) throw new Error('the lab\'s captures were closed');
    if (this.broken || this.links.some((l) => !l.cap.running)) await this.restart();
    let counts = await Promise.all(this.links.map((l) => l.cap.counts(5000)));
    if (counts.some((c) => !c || c.droppedByKernel > 0)) {
      // A tcpdump that does not answer, or one that lost packets before: start afresh.
      await this.restart();
      counts = await Promise.all(this.links.map((l) => l.cap.counts(5000)));
    }
    const marks = counts.map((c, i) => {
      if (!c) throw new Error(`tcpdump on ${this.links[i].cap.link} does not answer for its counts (SIGUSR1)`);
      this.links[i].dropsAtMark = c.droppedByKernel;
      return c.receivedByFilter;
    });
    return { marks, generation: this.generation, ended: false };
  }

  /**
   * Ends a window: waits for every link's stop point, reads what the files gained and writes each link's
   * records of the window to `dir`. Throws CaptureLossError when a link lost packets in the window.
   */
  async end(w: CaptureWindow, dir: string, settleMs: number): Promise<{ files: WindowFile[]; notes: string[]; stopMs: number; fetchMs: number }> {
    if (w.ended) throw new Error('this capture window has already ended');
    w.ended = true;
    if (w.generation !== this.generation || this.broken) throw new Error('the lab\'s captures were restarted during the test');
    const t0 = Date.now();
    const points = await Promise.all(this.links.map((l) => l.cap.checkpoint(settleMs)));
    const t1 = Date.now();
    const notes: string[] = [];
    try {
      const ends = points.map((p, i) => {
        const l = this.links[i];
        if (!l.cap.running) throw new Error(`tcpdump on ${l.cap.link} exited during the test: ${l.cap.messages.trim().split('\n').slice(-3).join(' / ') || '(no message)'}`);
        if (p.state === 'no answer') throw new Error(`tcpdump on ${l.cap.link} did not answer for its counts at the end of the test`);
        const c: CaptureCounts = p.counts;
        if (c.droppedByKernel > l.dropsAtMark) throw new CaptureLossError(l.cap.link, c, `${c.droppedByKernel - l.dropsAtMark} dropped by the kernel`);
        if (p.state === 'behind') throw new CaptureLossError(l.cap.link, c, `tcpdump had written ${c.captured} of the ${c.receivedByFilter} packets it received and did not catch up within 5 s`);
        if (!p.quiet) notes.push(`capture ${l.cap.link}: the link did not fall quiet for ${settleMs} ms within 5 s; the window ends at tcpdump's count then (${c.captured})`);
        return c.captured;
      });
      fs.mkdirSync(dir, { recursive: true });
      const files: WindowFile[] = [];
      for (const [i, l] of this.links.entries()) {
        await this.readUpTo(l, ends[i]);
        const data = l.log.take(w.marks[i], ends[i]);
        const file = path.join(dir, `${l.cap.node.name}-${l.cap.iface}.pcap`);
        fs.writeFileSync(file, data);
        files.push({ link: l.cap.link, node: l.cap.node.name, iface: l.cap.iface, path: file, packets: ends[i] - w.marks[i] });
      }
      return { files, notes, stopMs: t1 - t0, fetchMs: Date.now() - t1 };
    } catch (e) {
      this.broken = true;
      throw e;
    }
  }

  /** Reads the link's file until it holds `records` whole records (tcpdump has written them: -U). */
  private async readUpTo(l: LinkLog, records: number): Promise<void> {
    const node: LabNode = l.cap.node;
    for (let attempt = 0; l.log.records < records; attempt++) {
      if (attempt === 5) throw new Error(`capture ${l.cap.link}: tcpdump counted ${records} packets written but its file holds ${l.log.records}`);
      if (attempt) await new Promise((r) => setTimeout(r, 20 * attempt));
      l.log.append(await node.readFileFrom(l.cap.file, l.log.fileBytes));
    }
  }

  /** Drops a window that will not be ended (its test failed before); the captures go on. */
  forget(w: CaptureWindow): void {
    w.ended = true;
  }

  private async abortAll(): Promise<void> {
    const links = this.links;
    this.links = [];
    await Promise.all(links.map((l) => l.cap.abort().catch(() => undefined)));
  }

  /** Stops every capture (the lab is being closed). */
  async close(): Promise<void> {
    this.closed = true;
    await this.abortAll();
  }
}
