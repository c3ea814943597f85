#!/usr/bin/env node
// Long-lived TCP flows for the HA suite, run inside lab nodes. Node built-ins only.
//
//   stream.js serve --name rs1 --port 81
//     accepts connections; writes {"server":"rs1"} and a newline, then echoes every byte back.
//   stream.js client --target 198.18.0.100:81 --flows 10 --sport 30000 [--interval 50]
//     opens the flows (source ports sport..sport+flows-1), sends one line per flow every interval ms and
//     checks each echo byte for byte. Prints {"event":"up",...} once every flow has its identity; on a
//     "stop" line on stdin it stops sending, waits for the echoes in flight, closes and prints
//     {"event":"report",...}: per flow the real server, lines sent and echoed intact, the largest gap
//     between two echoes (ms), whether it was reset or broke. Times are this machine's wall clock (ms),
//     the same clock as the captures and the fault actions in the lab.
import * as net from 'net';
import * as readline from 'readline';

export interface StreamFlowReport {
  k: number;
  sport: number;
  server: string | null;
  sent: number;
  echoed: number;
  /** Largest time between two consecutive echoes (or connect and the first), ms. */
  maxGapMs: number;
  /** When that gap began (wall clock, ms). */
  maxGapAt: number;
  /** "ECONNRESET", "mismatch", "closed", "timeout", or null when the flow ran and closed cleanly. */
  error: string | null;
  /** Every echoed byte equalled what was sent, in order, and nothing was missing at the end. */
  intact: boolean;
}

export interface StreamUpEvent { event: 'up'; at: number; flows: Array<{ k: number; sport: number; server: string | null }> }
export interface StreamReportEvent { event: 'report'; startedAt: number; stoppedAt: number; intervalMs: number; flows: StreamFlowReport[] }

function arg(argv: string[], name: string, dflt?: string): string {
  const i = argv.indexOf(`--${name}`);
  const v = i >= 0 ? argv[i + 1] : dflt;
  if (v === undefined) throw new Error(`--${name} is required`);
  return v;
}

function print(o: unknown): void {
  process.stdout.write(JSON.stringify(o) + '\n');
}

function serve(argv: string[]): void {
  const name = arg(argv, 'name');
  const port = Number(arg(argv, 'port'));
  const server = net.createServer((s) => {
    s.setNoDelay(true);
    s.write(JSON.stringify({ server: name }) + '\n');
    s.on('data', (d) => s.write(d));
    s.on('error', () => s.destroy());
    s.on('end', () => s.end());
  });
  server.listen({ host: '::', port }, () => print({ event: 'ready', port }));
  process.on('SIGTERM', () => {
    server.close();
    process.exit(0);
  });
}

class StreamFlow {
  server: string | null = null;
  sent = 0;
  echoed = 0;
  maxGapMs = 0;
  maxGapAt = 0;
  error: string | null = null;
  private expected = '';
  private buf = '';
  private lastRx = Date.now();
  private closed = false;
  readonly sock: net.Socket;

  constructor(readonly k: number, readonly sport: number, host: string, port: number, private readonly onIdentity: () => void) {
    this.sock = net.connect({ host, port, localPort: sport });
    this.sock.setNoDelay(true);
    this.sock.setEncoding('latin1');
    this.sock.on('data', (d: string) => this.rx(d));
    this.sock.on('error', (e: NodeJS.ErrnoException) => { this.error ??= e.code ?? e.message; this.closed = true; this.onIdentity(); });
    this.sock.on('close', () => { if (!this.closed) this.error ??= 'closed'; this.closed = true; this.onIdentity(); });
  }

  private rx(d: string): void {
    const now = Date.now();
    if (now - this.lastRx > this.maxGapMs) { this.maxGapMs = now - this.lastRx; this.maxGapAt = this.lastRx; }
    this.lastRx = now;
    this.buf += d;
    if (this.server === null) {
      const nl = this.buf.indexOf('\n');
      if (nl < 0) return;
      try { this.server = String((JSON.parse(this.buf.slice(0, nl)) as { server: string }).server); } catch { this.error ??= 'mismatch'; }
      this.buf = this.buf.slice(nl + 1);
      this.onIdentity();
    }
    // Compare what came back with what was sent, byte for byte.
    const n = Math.min(this.buf.length, this.expected.length);
    if (this.buf.slice(0, n) !== this.expected.slice(0, n)) { this.error ??= 'mismatch'; this.sock.destroy(); return; }
    const done = this.buf.slice(0, n);
    this.echoed += (done.match(/\n/g) ?? []).length;
    this.buf = this.buf.slice(n);
    this.expected = this.expected.slice(n);
  }

  get open(): boolean { return !this.closed; }
  get pending(): number { return this.expected.length; }

  tick(): void {
    if (this.closed || this.server === null) return;
    const line = `${this.k} ${this.sent} ${'x'.repeat(16)}\n`;
    this.expected += line;
    this.sent++;
    this.sock.write(line);
  }

  finish(): void {
    if (this.closed) return;
    this.closed = true;
    // A flow whose echoes never came (its real server failed): reset it. Closed gracefully, the kernel would keep
    // retransmitting its unacknowledged data after this process exits, into the next test's capture.
    if (this.pending > 0 || this.error !== null) this.sock.resetAndDestroy();
    else this.sock.end();
  }

  report(): StreamFlowReport {
    return { k: this.k, sport: this.sport, server: this.server, sent: this.sent, echoed: this.echoed, maxGapMs: this.maxGapMs, maxGapAt: this.maxGapAt, error: this.error, intact: this.error === null && this.pending === 0 && this.echoed === this.sent };
  }
}

function client(argv: string[]): void {
  const [host, portText] = (() => { const t = arg(argv, 'target'); const i = t.lastIndexOf(':'); return [t.slice(0, i).replace(/^\[|\]$/g, ''), t.slice(i + 1)]; })();
  const flowsN = Number(arg(argv, 'flows', '1'));
  const sport = Number(arg(argv, 'sport'));
  const intervalMs = Number(arg(argv, 'interval', '50'));
  const upTimeoutMs = Number(arg(argv, 'up-timeout', '15000'));
  const startedAt = Date.now();
  let upSent = false;
  const flows: StreamFlow[] = [];
  const checkUp = (): void => {
    if (upSent || flows.length < flowsN) return;
    if (flows.every((f) => f.server !== null || !f.open)) {
      upSent = true;
      print({ event: 'up', at: Date.now(), flows: flows.map((f) => ({ k: f.k, sport: f.sport, server: f.server })) } satisfies StreamUpEvent);
    }
  };
  for (let k = 0; k < flowsN; k++) flows.push(new StreamFlow(k, sport + k, host, Number(portText), checkUp));
  setTimeout(() => { for (const f of flows) if (f.server === null && f.open) { f.error ??= 'timeout'; f.sock.destroy(); } checkUp(); }, upTimeoutMs);
  const timer = setInterval(() => { for (const f of flows) f.tick(); }, intervalMs);
  let stopping = false;
  const stop = async (): Promise<void> => {
    if (stopping) return;
    stopping = true;
    clearInterval(timer);
    const stoppedAt = Date.now();
    // Echoes still in flight come back within a few round trips; a broken flow never.
    for (let i = 0; i < 60 && flows.some((f) => f.open && f.pending > 0); i++) await new Promise((r) => setTimeout(r, 50));
    for (const f of flows) if (f.open && f.pending > 0) f.error ??= 'timeout';
    const reports = flows.map((f) => f.report());
    for (const f of flows) f.finish();
    print({ event: 'report', startedAt, stoppedAt, intervalMs, flows: reports } satisfies StreamReportEvent);
    setTimeout(() => process.exit(0), 300);
  };
  readline.createInterface({ input: process.stdin }).on('line', (l) => { if (l.trim() === 'stop') void stop(); });
  // The same on SIGTERM: the harness's fallback when its "stop" line does not arrive.
  process.on('SIGTERM', () => void stop());
}

if (require.main === module) {
  const [mode, ...rest] = process.argv.slice(2);
  try {
    if (mode === 'serve') serve(rest);
    else if (mode === 'client') client(rest);
    else throw new Error('usage: stream.js serve --name NAME --port P | client --target ADDR:PORT --flows N --sport P [--interval MS]');
  } catch (e) {
    process.stderr.write(`stream.js: ${(e as Error).message}\n`);
    process.exit(2);
  }
}
