// wrr — weighted round robin (net/netfilter/ipvs/ip_vs_wrr.c).
// State: cl (cursor: a destination or the list head), cw (current weight), mw (max weight reduced
// by di - 1 so the last pass uses cw = 1), di (gcd of the positive weights, 1 if none).
// schedule(): scan forward from cl for a non-overloaded destination with weight >= cw; at the end of
// the list lower cw by di; when cw drops to <= 0 restart at mw. A full pass at cw <= di (the "last
// pass") that finds nothing ends in "no destination". Any add/del/upd of a destination moves cl to
// the head and recomputes di/mw, keeping cw when still valid (re-aligned when di > 1).

import { gcd } from '../hash';
import type { Dest } from '../dest';
import type { SchedPacket, Scheduler, SchedulerHost } from '../scheduler';

export class WeightedRoundRobinScheduler implements Scheduler {
  readonly name = 'wrr';
  readonly deterministic = true;
  /** null = list head. */
  private cl: Dest | null = null;
  protected cw = 0;
  protected mw = 0;
  protected di = 1;

  constructor(protected readonly host: SchedulerHost) {
    this.di = this.gcdWeight();
    this.mw = this.adjustedMaxWeight();
    this.cw = this.mw;
  }

  /** mw: the largest weight reduced by di - 1, so the last pass runs at cw = 1. */
  protected adjustedMaxWeight(): number {
    return this.maxWeight() - (this.di - 1);
  }

  protected gcdWeight(): number {
    let g = 0;
    for (const d of this.host.list) {
      if (d.weight > 0) g = g > 0 ? gcd(d.weight, g) : d.weight;
    }
    return g || 1;
  }

  protected maxWeight(): number {
    let w = 0;
    for (const d of this.host.list) if (d.weight > w) w = d.weight;
    return w;
  }

  private destChanged(): void {
    this.cl = null;
    this.di = this.gcdWeight();
    this.mw = this.adjustedMaxWeight();
    if (this.cw > this.mw || this.cw === 0) this.cw = this.mw;
    else if (this.di > 1) this.cw = Math.trunc(this.cw / this.di) * this.di + 1;
  }

  addDest(_d: Dest): void { this.destChanged(); }
  delDest(_d: Dest): void { this.destChanged(); }
  updDest(_d: Dest): void { this.destChanged(); }

  protected matches(d: Dest): boolean {
    return !d.overload && d.weight >= this.cw;
  }

  schedule(_pkt: SchedPacket): Dest | null {
    const list = this.host.list;
    const n = list.length;
    if (this.mw === 0) return null; // cl stays where it is
    const last = this.cl;
    let stop: Dest | null = null;
    let lastPass = false;
    let restarted = false;
    let pos = last ? last.listIndex : -1;
    for (;;) {
      for (let i = pos + 1; i < n; i++) {
        const d = list[i];
        if (this.matches(d)) {
          this.cl = d;
          return d;
        }
        if (d === stop) {
          this.cl = d;
          return null;
        }
      }
      // reached the list head
      this.cw -= this.di;
      if (this.cw <= 0) {
        this.cw = this.mw;
        if (lastPass || last === null) {
          this.cl = null;
          return null;
        }
        restarted = true;
      }
      lastPass = this.cw <= this.di;
      if (lastPass && restarted && last !== null) stop = last;
      pos = -1;
    }
  }

  describeState(): Record<string, unknown> {
    return { cl: this.cl ? this.cl.name : 'head', cw: this.cw, mw: this.mw, di: this.di };
  }
}

export const createWrr = (host: SchedulerHost): Scheduler => new WeightedRoundRobinScheduler(host);
