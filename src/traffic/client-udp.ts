// One UDP exchange of the traffic client: a socket bound to the chosen source and connected to the
// target (so ICMP errors come back as ECONNREFUSED/EHOSTUNREACH), one request datagram, one reply.
// No retransmission: a lost datagram is a timeout, so the counts stay exact.
import * as dgram from 'dgram';
import * as net from 'net';
import type { Flow, FlowCallbacks, FlowSpec } from './client-flow';
import { FlowRecord, outcomeOf } from './client-flow';
import { formatRequest, parseIdentity, patternPayload, plainAddress } from './protocol';

export class UdpFlow implements Flow {
  private readonly r: FlowRecord;
  private sock: dgram.Socket | null = null;
  private timer: NodeJS.Timeout | null = null;
  private closed = false;

  constructor(private readonly spec: FlowSpec, runStart: number, cb: FlowCallbacks) {
    this.r = new FlowRecord(spec, runStart, cb);
  }

  start(): void {
    const s = this.spec;
    const v6 = net.isIP(s.dst) === 6;
    const sock = dgram.createSocket({ type: v6 ? 'udp6' : 'udp4' });
    this.sock = sock;
    this.r.rec.stage = 'bind';
    this.timer = setTimeout(() => this.finish('timeout', null), s.timeoutMs);
    sock.on('error', (e: NodeJS.ErrnoException) => {
      const code = e.code ?? 'EUNKNOWN';
      this.finish(outcomeOf(code), code);
    });
    sock.on('message', (msg) => this.onMessage(msg));
    sock.bind({ address: s.src ?? (v6 ? '::' : '0.0.0.0'), port: s.sport ?? 0, exclusive: true }, () => {
      if (this.closed) return;
      sock.connect(s.dport, s.dst, (err?: Error) => {
        if (this.closed) return;
        if (err) {
          const code = (err as NodeJS.ErrnoException).code ?? 'EUNKNOWN';
          this.r.rec.stage = 'connect';
          this.finish(outcomeOf(code), code);
          return;
        }
        const local = sock.address();
        this.r.rec.src = plainAddress(local.address);
        this.r.rec.sport = local.port;
        this.r.rec.stage = 'answer';
        const line = Buffer.from(formatRequest({ id: s.id, up: s.up, down: s.down, echo: s.echo }), 'latin1');
        sock.send(s.up > 0 ? Buffer.concat([line, patternPayload(s.up)]) : line);
      });
    });
  }

  release(): void {
    // Nothing is held for UDP.
  }

  abort(): void {
    this.finish('error', 'ABORTED');
  }

  private onMessage(msg: Buffer): void {
    const nl = msg.indexOf(10);
    if (nl < 0) return;
    let id;
    try {
      id = parseIdentity(msg.subarray(0, nl).toString('latin1'));
    } catch {
      return; // not for us; keep waiting
    }
    if (id.id !== this.spec.id) return; // a late reply to an earlier exchange from the same port
    const rec = this.r.rec;
    rec.server = id.server;
    rec.local = id.local;
    rec.lport = id.lport;
    rec.peer = id.peer;
    rec.pport = id.pport;
    rec.bytes = msg.length - nl - 1;
    if (rec.bytes >= id.bytes) this.finish('answered', null);
    else {
      rec.stage = 'payload';
      this.finish('error', 'ETRUNCATED');
    }
  }

  private finish(outcome: 'answered' | ReturnType<typeof outcomeOf>, code: string | null): void {
    if (this.closed) return;
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    if (outcome === 'answered') this.r.answered();
    else this.r.failed(outcome, code);
    try {
      this.sock?.close();
    } catch {
      // already closed
    }
    this.r.final();
  }
}
