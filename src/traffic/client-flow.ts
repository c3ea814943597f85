// One connection (TCP) or exchange (UDP) of the traffic client, and what the variants share.
import { performance } from 'perf_hooks';
import type { ClientConnEvent, Outcome, Stage } from './events';
import type { Proto } from './protocol';

export interface FlowSpec {
  i: number;
  id: string;
  proto: Proto;
  dst: string;
  dport: number;
  /** Source address to bind, or null for the kernel's choice. */
  src: string | null;
  /** Source port to bind, or null for an ephemeral one. */
  sport: number | null;
  timeoutMs: number;
  /** Payload bytes sent after the request line. */
  up: number;
  /** Bytes asked from the responder, or undefined for its default. */
  down: number | undefined;
  echo: boolean | undefined;
  /** Hold an answered TCP connection: a number of ms, 'release' (until release()), or 0 (close at once). */
  hold: number | 'release';
}

export interface FlowCallbacks {
  /** Called once when the flow no longer needs a concurrency slot: answered, or failed (`rec` as it stands then). */
  settled(answered: boolean, rec: ClientConnEvent): void;
  /** Called once with the final record when the socket is gone. */
  final(rec: ClientConnEvent): void;
}

export interface Flow {
  start(): void;
  /** Close a connection held with hold='release' (no-op otherwise or when already closed). */
  release(): void;
  /** Stop now (SIGTERM before the run finished): an unsettled flow ends as `error`/ABORTED. */
  abort(): void;
}

const ms = (t: number): number => Math.round(t * 1000) / 1000;

/** Classifies a socket error code into an outcome. */
export function outcomeOf(code: string): Outcome {
  switch (code) {
    case 'ECONNREFUSED':
      return 'refused';
    case 'ECONNRESET':
    case 'EPIPE':
    case 'ECONNABORTED':
      return 'reset';
    case 'ETIMEDOUT':
      return 'timeout';
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
    case 'EHOSTDOWN':
    case 'ENETDOWN':
    case 'ENONET':
    case 'EACCES':
      return 'unreachable';
    default:
      return 'error';
  }
}

/** The bookkeeping every flow variant does: timing, the record, settling exactly once. */
export class FlowRecord {
  readonly rec: ClientConnEvent;
  private readonly t0: number;
  private settledOnce = false;
  private finalOnce = false;
  answeredAt: number | null = null;

  constructor(spec: FlowSpec, private readonly runStart: number, private readonly cb: FlowCallbacks) {
    this.t0 = performance.now();
    this.rec = {
      event: 'conn', i: spec.i, proto: spec.proto, id: spec.id, src: spec.src, sport: spec.sport, dst: spec.dst, dport: spec.dport,
      outcome: 'error', stage: 'bind', code: null, server: null, local: null, lport: null, peer: null, pport: null,
      start: ms(this.t0 - runStart), connectMs: null, answerMs: null, heldMs: null, totalMs: 0, bytes: 0, afterAnswer: null,
    };
  }

  get settled(): boolean {
    return this.settledOnce;
  }

  connected(): void {
    this.rec.connectMs = ms(performance.now() - this.t0);
  }

  answered(): void {
    if (this.settledOnce) return;
    this.settledOnce = true;
    this.answeredAt = performance.now();
    this.rec.outcome = 'answered';
    this.rec.stage = null;
    this.rec.code = null;
    this.rec.answerMs = ms(this.answeredAt - this.t0);
    this.cb.settled(true, this.rec);
  }

  failed(outcome: Outcome, code: string | null): void {
    if (this.settledOnce) return;
    this.settledOnce = true;
    this.rec.outcome = outcome;
    this.rec.code = code;
    this.cb.settled(false, this.rec);
  }

  heldUntilNow(): void {
    if (this.answeredAt !== null) this.rec.heldMs = ms(performance.now() - this.answeredAt);
  }

  final(): void {
    if (this.finalOnce) return;
    this.finalOnce = true;
    if (!this.settledOnce) this.failed('error', 'EINTERNAL');
    this.rec.totalMs = ms(performance.now() - this.t0);
    this.cb.final(this.rec);
  }
}
