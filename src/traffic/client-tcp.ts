// One TCP connection of the traffic client: connect (from a chosen source), send the request line and
// payload, read the identity line and the announced payload, then close (or hold), keeping the write
// side open until the answer is complete.
import * as net from 'net';
import type { Flow, FlowCallbacks, FlowSpec } from './client-flow';
import { FlowRecord, outcomeOf } from './client-flow';
import { MAX_REQUEST_LINE, formatRequest, parseIdentity, patternPayload, plainAddress } from './protocol';

const CLOSE_REQUEST = 'close\n';

export class TcpFlow implements Flow {
  private readonly r: FlowRecord;
  private sock: net.Socket | null = null;
  private timer: NodeJS.Timeout | null = null;
  private stage: 'connect' | 'answer' | 'payload' = 'connect';
  private head: Buffer = Buffer.alloc(0);
  private expected = -1;
  private got = 0;
  private closing = false;

  constructor(private readonly spec: FlowSpec, runStart: number, cb: FlowCallbacks) {
    this.r = new FlowRecord(spec, runStart, cb);
  }

  start(): void {
    const s = this.spec;
    const sock = new net.Socket({ allowHalfOpen: false });
    this.sock = sock;
    this.r.rec.stage = 'connect';
    this.timer = setTimeout(() => this.onTimeout(), s.timeoutMs);
    sock.on('error', (e: NodeJS.ErrnoException) => this.onError(e));
    sock.on('close', () => this.onClose());
    sock.on('data', (d: Buffer) => this.onData(d));
    sock.once('connect', () => this.onConnect());
    const opts: net.TcpNetConnectOpts = { host: s.dst, port: s.dport, noDelay: true };
    if (s.src !== null) opts.localAddress = s.src;
    if (s.sport !== null) opts.localPort = s.sport;
    sock.connect(opts);
  }

  release(): void {
    if (this.spec.hold === 'release' && this.r.rec.outcome === 'answered') this.closeNow();
  }

  abort(): void {
    if (!this.r.settled) this.r.failed('error', 'ABORTED');
    this.sock?.destroy();
  }

  private onConnect(): void {
    const sock = this.sock!;
    this.r.connected();
    this.r.rec.src = plainAddress(sock.localAddress ?? '');
    this.r.rec.sport = sock.localPort ?? null;
    this.stage = 'answer';
    this.r.rec.stage = 'answer';
    const line = formatRequest({ id: this.spec.id, up: this.spec.up, down: this.spec.down, echo: this.spec.echo, hold: this.spec.hold !== 0 });
    if (this.spec.up > 0) sock.write(Buffer.concat([Buffer.from(line, 'latin1'), patternPayload(this.spec.up)]));
    else sock.write(line);
  }

  private onData(d: Buffer): void {
    if (this.stage === 'answer') {
      this.head = this.head.length ? Buffer.concat([this.head, d]) : d;
      const nl = this.head.indexOf(10);
      if (nl < 0) {
        if (this.head.length > MAX_REQUEST_LINE) this.fail('error', 'EPROTO');
        return;
      }
      let id;
      try {
        id = parseIdentity(this.head.subarray(0, nl).toString('latin1'));
      } catch {
        this.fail('error', 'EPROTO');
        return;
      }
      const rec = this.r.rec;
      rec.server = id.server;
      rec.local = id.local;
      rec.lport = id.lport;
      rec.peer = id.peer;
      rec.pport = id.pport;
      this.expected = id.bytes;
      this.stage = 'payload';
      rec.stage = 'payload';
      d = this.head.subarray(nl + 1);
      this.head = Buffer.alloc(0);
    }
    if (this.stage === 'payload') {
      this.got += d.length;
      this.r.rec.bytes = this.got;
      if (this.got >= this.expected) this.onAnswered();
    }
  }

  private onAnswered(): void {
    if (this.r.settled) return;
    this.clearTimer();
    this.r.answered();
    const hold = this.spec.hold;
    if (hold === 0) {
      // The responder closes first; we follow its FIN (allowHalfOpen false). Guard against one that never does.
      this.timer = setTimeout(() => this.sock?.destroy(), this.spec.timeoutMs);
    } else if (typeof hold === 'number') {
      this.timer = setTimeout(() => this.closeNow(), hold);
    }
  }

  private closeNow(): void {
    if (this.closing || !this.sock) return;
    this.closing = true;
    this.clearTimer();
    this.r.heldUntilNow();
    // Ask the responder to close first (any data on a held connection does), so TIME_WAIT lands on the
    // server and a chosen source port can be used again at once. We follow its FIN (allowHalfOpen false).
    this.sock.write(CLOSE_REQUEST);
    // A responder that does not close (not ours): give up after the timeout.
    this.timer = setTimeout(() => this.sock?.destroy(), this.spec.timeoutMs);
  }

  private onTimeout(): void {
    this.timer = null;
    this.fail('timeout', null);
  }

  private onError(e: NodeJS.ErrnoException): void {
    const code = e.code ?? 'EUNKNOWN';
    if (this.r.settled) {
      if (this.r.rec.outcome === 'answered' && this.r.rec.afterAnswer === null) this.r.rec.afterAnswer = code;
      return;
    }
    if (e.syscall === 'bind') this.r.rec.stage = 'bind';
    this.r.failed(outcomeOf(code), code);
    this.clearTimer();
  }

  private onClose(): void {
    this.clearTimer();
    if (!this.r.settled) this.r.failed('closed', null);
    if (this.r.rec.outcome === 'answered' && this.spec.hold !== 0 && !this.closing) {
      // The responder (or a director) ended a held connection before we let go.
      this.r.heldUntilNow();
      if (this.r.rec.afterAnswer === null) this.r.rec.afterAnswer = 'EOF';
    }
    this.r.final();
  }

  private fail(outcome: 'timeout' | 'error', code: string | null): void {
    this.r.failed(outcome, code);
    this.clearTimer();
    this.sock?.destroy();
  }

  private clearTimer(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }
}
