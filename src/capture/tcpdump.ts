// tcpdump lifecycle: one capture per link end, started inside the node through LabNode.spawn, ready only
// once tcpdump says "listening on", stopped with SIGTERM after the file has stopped growing and tcpdump has
// said (SIGUSR1) that it wrote every packet it received, and checked against tcpdump's own counters so
// that a lost packet fails loudly instead of skewing a verdict. A link that never falls quiet (health
// checks every 80 ms) still stops cleanly: packets after the stop point are not the test's.
//
// Measured on this machine: `-U` alone lost 276 of 2000 packets at stop; `-U --immediate-mode` (with a
// 4 MiB kernel buffer) kept 2000/2000, so both are always used.
import * as fs from 'fs';
import * as path from 'path';
import type { LabNode, NodeProcess, RunningLab } from '../backend/types';
import { mergeCaptures, type MergeResult } from './merge';

export interface TcpdumpOptions {
  /** Interface inside the node. */
  iface: string;
  /** Snap length in bytes (default 262144: whole packets). */
  snapLen?: number;
  /** Kernel capture buffer in KiB (-B; default 4096). */
  bufferKiB?: number;
  /** BPF filter expression. */
  filter?: string;
  /** Nanosecond timestamps (--time-stamp-precision=nano; default true). */
  nanosecond?: boolean;
  /** Extra tcpdump arguments, e.g. ["-Z", "root"] in a VM guest without a tcpdump user. */
  extraArgs?: string[];
  /** Output file name inside node.workDir (default "capture-<iface>.pcap"). */
  fileName?: string;
  /** How long to wait for "listening on" (default 15 s). */
  readyTimeoutMs?: number;
  /** tcpdump binary (default "tcpdump"). */
  binary?: string;
}

export interface CaptureCounts {
  /** "N packets captured": written to the file. */
  captured: number;
  /** "N packets received by filter". */
  receivedByFilter: number;
  /** "N packets dropped by kernel": lost for lack of buffer space. */
  droppedByKernel: number;
  /** "N packets dropped by interface" (the interface's own rx drops; not a capture loss), when printed. */
  droppedByInterface?: number;
  /**
   * Packets the kernel queued for tcpdump but tcpdump never wrote because they came while it was being
   * stopped, after its file had been quiet for the settle time (a late IPv6 neighbour probe, say):
   * tcpdump stops reading at SIGTERM and still counts what reached its buffer. Not a loss of the traffic
   * that came before. They are counted after the stop point (`completeAt`) when tcpdump reported one, else
   * after a quiet settle time; a busy link with no stop point is a CaptureLossError instead.
   */
  arrivedWhileStopping?: number;
  /**
   * tcpdump's own counts at the stop point (asked for with SIGUSR1 once the stop began), when it had
   * written every packet it had received: everything up to there is in the file, so packets unwritten at
   * its exit came after that point.
   */
  completeAt?: { captured: number; receivedByFilter: number };
}

export interface StopOptions {
  /** Wait until the file has not grown for this long before stopping (default 150 ms, at most 5 s in all). */
  settleMs?: number;
  /** Time to wait for tcpdump to exit after SIGTERM (default 10 s). */
  exitTimeoutMs?: number;
  /** Return the counts instead of throwing when packets were dropped. */
  allowLoss?: boolean;
}

export class CaptureLossError extends Error {
  override name = 'CaptureLossError';
  constructor(readonly link: string, readonly counts: CaptureCounts, detail: string) {
    super(`capture on ${link} lost packets: ${detail} (captured ${counts.captured}, received by filter ${counts.receivedByFilter}, dropped by kernel ${counts.droppedByKernel}); raise bufferKiB or reduce the traffic rate`);
  }
}

export class CaptureStartError extends Error {
  override name = 'CaptureStartError';
}

/**
 * Parses the last statistics line tcpdump prints on SIGUSR1 while it runs ("tcpdump: 5 packets captured,
 * 7 packets received by filter, 0 packets dropped by kernel"): `captured` counts packets fully written
 * (tcpdump defers the line while it writes one), `receivedByFilter` those the kernel queued for it.
 */
export function parseTcpdumpInfo(stderr: string): CaptureCounts | undefined {
  const re = /(\d+) packets? captured, (\d+) packets? received by filter, (\d+) packets? dropped by kernel/g;
  let last: RegExpExecArray | null = null;
  for (let m = re.exec(stderr); m; m = re.exec(stderr)) last = m;
  return last ? { captured: Number(last[1]), receivedByFilter: Number(last[2]), droppedByKernel: Number(last[3]) } : undefined;
}

/** Parses tcpdump's closing statistics from its standard error. */
export function parseTcpdumpCounts(stderr: string): CaptureCounts | undefined {
  const num = (re: RegExp) => {
    const m = re.exec(stderr);
    return m ? Number(m[1]) : undefined;
  };
  const captured = num(/^(\d+) packets? captured/m);
  const received = num(/^(\d+) packets? received by filter/m);
  const dropped = num(/^(\d+) packets? dropped by kernel/m);
  if (captured === undefined || received === undefined || dropped === undefined) return undefined;
  const ifdrop = num(/^(\d+) packets? dropped by interface/m);
  return { captured, receivedByFilter: received, droppedByKernel: dropped, ...(ifdrop !== undefined ? { droppedByInterface: ifdrop } : {}) };
}

export function tcpdumpArgs(opts: TcpdumpOptions, file: string): string[] {
  const args = [
    opts.binary ?? 'tcpdump', '-i', opts.iface, '-n', '-U', '--immediate-mode',
    '-s', String(opts.snapLen ?? 262144), '-B', String(opts.bufferKiB ?? 4096),
  ];
  if (opts.nanosecond !== false) args.push('--time-stamp-precision=nano');
  args.push(...(opts.extraArgs ?? []), '-w', file);
  if (opts.filter) args.push(opts.filter);
  return args;
}

export class TcpdumpCapture {
  private stderr = '';
  private exited: Promise<{ code: number | null; signal: string | null }>;
  private stopped = false;
  private hasExited = false;

  private constructor(
    readonly node: LabNode,
    readonly iface: string,
    /** Path of the capture file in the node (under workDir). */
    readonly file: string,
    private readonly proc: NodeProcess,
    private readonly opts: TcpdumpOptions,
  ) {
    proc.stderr.setEncoding('utf8');
    proc.stderr.on('data', (d: string) => {
      this.stderr += d;
    });
    proc.stdout.resume();
    this.exited = proc.wait();
    this.exited.then(() => { this.hasExited = true; }, () => { this.hasExited = true; }); // also: never an unhandled rejection
  }

  /** "node:iface", the link name the capture is known by. */
  get link(): string {
    return `${this.node.name}:${this.iface}`;
  }

  /** Starts tcpdump and resolves once it is listening (so traffic may start). */
  static async start(node: LabNode, opts: TcpdumpOptions): Promise<TcpdumpCapture> {
    const file = path.join(node.workDir, opts.fileName ?? `capture-${opts.iface}.pcap`);
    const proc = node.spawn(tcpdumpArgs(opts, file));
    const cap = new TcpdumpCapture(node, opts.iface, file, proc, opts);
    const timeout = opts.readyTimeoutMs ?? 15000;
    await new Promise<void>((resolve, reject) => {
      let done = false;
      const finish = (err?: Error) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        proc.stderr.off('data', onData);
        if (err) reject(err);
        else resolve();
      };
      const onData = () => {
        if (cap.stderr.includes('listening on')) finish();
      };
      const timer = setTimeout(() => {
        proc.kill('SIGKILL');
        finish(new CaptureStartError(`tcpdump on ${cap.link} did not report "listening on" within ${timeout} ms; stderr: ${cap.stderr.trim() || '(empty)'}`));
      }, timeout);
      proc.stderr.on('data', onData);
      onData();
      cap.exited.then((st) => {
        // Let the last stderr chunk arrive before reporting.
        setImmediate(() => finish(new CaptureStartError(`tcpdump on ${cap.link} exited before listening (code ${st.code}, signal ${st.signal}): ${cap.stderr.trim() || '(no message)'}; command: ${tcpdumpArgs(opts, file).join(' ')}`)));
      }, (e: Error) => finish(new CaptureStartError(`tcpdump on ${cap.link}: lost before listening: ${e.message}`)));
    });
    return cap;
  }

  private async fileSize(): Promise<number> {
    try {
      return fs.statSync(this.file).size;
    } catch {
      const r = await this.node.exec(['stat', '-c', '%s', this.file], { timeoutMs: 5000 });
      return r.code === 0 ? Number(r.stdout.trim()) : -1;
    }
  }

  /** Asks tcpdump for its counts (SIGUSR1) and resolves with its answer, or undefined (see nextInfo). */
  private ask(timeoutMs: number): Promise<CaptureCounts | undefined> {
    const from = this.stderr.length;
    this.proc.kill('SIGUSR1');
    return this.nextInfo(from, timeoutMs);
  }

  /**
   * Resolves with the next statistics line tcpdump prints after `from` characters of its standard error,
   * or undefined if none comes within `timeoutMs` or tcpdump exits.
   */
  private nextInfo(from: number, timeoutMs: number): Promise<CaptureCounts | undefined> {
    return new Promise((resolve) => {
      let done = false;
      const finish = (v: CaptureCounts | undefined) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        this.proc.stderr.off('data', onData);
        resolve(v);
      };
      const onData = () => {
        const info = parseTcpdumpInfo(this.stderr.slice(from));
        if (info) finish(info);
      };
      const timer = setTimeout(() => finish(undefined), timeoutMs);
      this.proc.stderr.on('data', onData);
      this.exited.then(() => setImmediate(() => finish(parseTcpdumpInfo(this.stderr.slice(from)))), () => finish(undefined));
      onData();
    });
  }

  /**
   * Waits until the link has been quiet for `settle` ms (at most `maxMs`): tcpdump's count of packets
   * received by its filter (SIGUSR1) has not moved for that long. Asking tcpdump costs a signal, where
   * watching the file's size costs a `stat` process per look in a VM guest (ten captures looking every
   * 50 ms kept a TCG guest's CPU busy). A tcpdump that does not answer is watched by its file's size.
   */
  private async waitQuiet(settle: number, maxMs: number): Promise<boolean> {
    const deadline = Date.now() + maxMs;
    const step = Math.min(50, settle);
    let bySize = false;
    let last = -1;
    let stableSince = Date.now();
    while (Date.now() < deadline) {
      let now: number;
      if (!bySize) {
        const info = await this.ask(1000);
        if (info) now = info.receivedByFilter;
        else {
          bySize = true;
          now = await this.fileSize();
        }
      } else now = await this.fileSize();
      if (now !== last) {
        last = now;
        stableSince = Date.now();
      } else if (Date.now() - stableSince >= settle) return true;
      await new Promise((r) => setTimeout(r, step));
    }
    return Date.now() - stableSince >= settle;
  }

  /**
   * The stop point: asks tcpdump for its counts (SIGUSR1) until one answer says it has written every
   * packet it has received (with -U each packet is in the file once counted as captured). "behind" when
   * it answered but never caught up in `timeoutMs`; "no answer" when it did not answer at all.
   */
  private async waitCaughtUp(timeoutMs: number): Promise<{ state: 'caught up' | 'behind'; counts: CaptureCounts } | { state: 'no answer' }> {
    const deadline = Date.now() + timeoutMs;
    let last: CaptureCounts | undefined;
    while (Date.now() < deadline) {
      const info = await this.ask(Math.max(1, deadline - Date.now()));
      if (!info) break;
      last = info;
      if (info.droppedByKernel > 0) break;
      if (info.captured >= info.receivedByFilter) return { state: 'caught up', counts: info };
      await new Promise((r) => setTimeout(r, 20));
    }
    return last ? { state: 'behind', counts: last } : { state: 'no answer' };
  }

  /**
   * Waits for the file to stop growing (at most 5 s), finds the stop point (tcpdump has written all it
   * received), stops tcpdump with SIGTERM and checks its counters. Packets unwritten at the exit are a loss
   * unless they reached tcpdump after the stop point (or, when tcpdump cannot tell, after a quiet settle time).
   */
  async stop(opts: StopOptions = {}): Promise<CaptureCounts> {
    if (this.stopped) throw new Error(`capture on ${this.link} was already stopped`);
    this.stopped = true;
    const settle = opts.settleMs ?? 150;
    const quiet = await this.waitQuiet(settle, 5000);
    // On loopback every packet is seen twice and libpcap discards the outgoing copy itself; with a
    // direction filter (-Q) libpcap may discard in user space too. Elsewhere the two counts must agree.
    const userspaceFiltering = this.iface === 'lo' || (this.opts.extraArgs ?? []).some((a) => a === '-Q' || a.startsWith('--direction') || a.startsWith('-Q'));
    const point = !opts.allowLoss && !userspaceFiltering ? await this.waitCaughtUp(5000) : undefined;
    this.proc.kill('SIGTERM');
    const exitTimeout = opts.exitTimeoutMs ?? 10000;
    let timer: NodeJS.Timeout | undefined;
    const st = await Promise.race([
      this.exited,
      new Promise<undefined>((r) => {
        timer = setTimeout(() => r(undefined), exitTimeout);
      }),
    ]);
    clearTimeout(timer);
    if (!st) {
      this.proc.kill('SIGKILL');
      await this.exited;
      throw new Error(`tcpdump on ${this.link} did not exit within ${exitTimeout} ms of SIGTERM; killed it. stderr: ${this.stderr.trim()}`);
    }
    await new Promise((r) => setImmediate(r));
    const counts = parseTcpdumpCounts(this.stderr);
    if (!counts) throw new Error(`tcpdump on ${this.link} ended (code ${st.code}, signal ${st.signal}) without its packet counts; stderr: ${this.stderr.trim() || '(empty)'}`);
    if (!opts.allowLoss) {
      if (counts.droppedByKernel > 0) throw new CaptureLossError(this.link, counts, `${counts.droppedByKernel} dropped by the kernel`);
      if (point?.state === 'caught up') counts.completeAt = { captured: point.counts.captured, receivedByFilter: point.counts.receivedByFilter };
      if (!userspaceFiltering && counts.captured < counts.receivedByFilter) {
        const n = counts.receivedByFilter - counts.captured;
        if (point?.state === 'caught up') {
          // Everything received up to the stop point was written; the unwritten ones came after it.
          counts.arrivedWhileStopping = n;
        } else if (point?.state === 'behind') {
          throw new CaptureLossError(this.link, counts, `${n} received by the filter but not written (tcpdump had not written all it received, ${point.counts.captured} of ${point.counts.receivedByFilter}, at its last count before the stop)`);
        } else if (!quiet) {
          throw new CaptureLossError(this.link, counts, `${n} received by the filter but not written (the file was still growing when the capture had to stop)`);
        } else {
          // With -U every packet tcpdump reads is in the file at once, so after a quiet settle time the
          // unwritten ones reached the kernel's buffer only as tcpdump was stopped.
          counts.arrivedWhileStopping = n;
        }
      }
    }
    return counts;
  }

  /** False once tcpdump has exited (or was stopped or aborted). */
  get running(): boolean {
    return !this.stopped && !this.hasExited;
  }

  /** tcpdump's counts now (SIGUSR1), or undefined if it is not running or does not answer within `timeoutMs`. */
  async counts(timeoutMs = 2000): Promise<CaptureCounts | undefined> {
    return this.running ? this.ask(timeoutMs) : undefined;
  }

  /**
   * A stop point without stopping (a capture kept for the lab's life, cut into per-test windows): waits until
   * the link has been quiet for `settleMs` (at most 5 s), then until tcpdump has written every packet it has
   * received. Its counts then say how many packets of the file come before this point.
   */
  async checkpoint(settleMs: number): Promise<{ state: 'caught up' | 'behind'; counts: CaptureCounts; quiet: boolean } | { state: 'no answer'; quiet: boolean }> {
    const quiet = await this.waitQuiet(settleMs, 5000);
    return { ...(await this.waitCaughtUp(5000)), quiet };
  }

  /** Standard error of tcpdump so far. */
  get messages(): string {
    return this.stderr;
  }

  /** Kills tcpdump without checks (cleanup after a failure). */
  async abort(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.proc.kill('SIGKILL');
    await this.exited;
  }
}

export interface LinkEnd {
  node: LabNode;
  iface: string;
}

/** Every interface of every node of a running lab, as link ends to capture. */
export function labLinkEnds(lab: RunningLab): LinkEnd[] {
  return lab.model.nodes.flatMap((n) => n.interfaces.map((i) => ({ node: lab.node(n.name), iface: i.name })));
}

export interface StoppedCapture {
  link: string;
  file: string;
  counts: CaptureCounts;
}

/** Captures on several link ends at once; stop() checks every one, merge() writes the lab-wide pcapng. */
export class CaptureSet {
  private constructor(readonly captures: TcpdumpCapture[]) {}

  static async start(ends: LinkEnd[], opts: Omit<TcpdumpOptions, 'iface'> = {}): Promise<CaptureSet> {
    const started = await Promise.allSettled(ends.map((e) => TcpdumpCapture.start(e.node, { ...opts, iface: e.iface, fileName: opts.fileName ? `${e.iface}-${opts.fileName}` : undefined })));
    const ok = started.filter((s): s is PromiseFulfilledResult<TcpdumpCapture> => s.status === 'fulfilled').map((s) => s.value);
    const failed = started.filter((s): s is PromiseRejectedResult => s.status === 'rejected');
    if (failed.length) {
      await Promise.all(ok.map((c) => c.abort()));
      throw failed[0].reason;
    }
    return new CaptureSet(ok);
  }

  /** Stops all captures; throws CaptureLossError (after stopping every one) if any lost packets. */
  async stop(opts: StopOptions = {}): Promise<StoppedCapture[]> {
    const res = await Promise.allSettled(this.captures.map((c) => c.stop(opts)));
    const bad = res.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (bad) throw bad.reason;
    return this.captures.map((c, i) => ({ link: c.link, file: c.file, counts: (res[i] as PromiseFulfilledResult<CaptureCounts>).value }));
  }

  /** Copies every capture to the host and merges them by timestamp into one pcapng named node:iface. */
  async merge(outPath: string, scratchDir: string): Promise<MergeResult> {
    fs.mkdirSync(scratchDir, { recursive: true });
    const inputs = [];
    for (const c of this.captures) {
      const local = path.join(scratchDir, `${c.node.name}-${c.iface}.pcap`);
      await c.node.fetchFile(c.file, local);
      inputs.push({ path: local, name: c.link });
    }
    return mergeCaptures(inputs, outPath);
  }
}
