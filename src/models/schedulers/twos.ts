// twos — weighted random "power of two choices" (net/netfilter/ipvs/ip_vs_twos.c, v5.12+).
// total = sum of the weights of the eligible destinations (not overloaded, weight > 0); two random
// integers r1, r2 uniform in [0, total] (inclusive: the kernel draws modulo total + 1); each picks
// the first eligible destination whose cumulative weight reaches it (so the first eligible
// destination has weight + 1 chances out of total + 1). The second pick wins only if its load is
// strictly lower: W2 * overhead1 > W1 * overhead2 (overhead = active * 256 + inactive).
//
// Non-deterministic: schedule() samples with the service's seeded generator; choices() returns the
// exact distribution of the outcome given the current counters, which is what a conformance check
// compares the kernel's observed pick against.

import type { Dest } from '../dest';
import type { Choice, SchedPacket, Scheduler, SchedulerHost } from '../scheduler';

export class TwoChoicesScheduler implements Scheduler {
  readonly name = 'twos';
  readonly deterministic = false;
  constructor(protected readonly host: SchedulerHost) {}

  private eligible(): Dest[] {
    return this.host.list.filter((d) => !d.overload && d.weight > 0);
  }

  /** The destination a random value r in [0, total] selects. */
  private pick(el: Dest[], r: number): Dest {
    for (const d of el) {
      r -= d.weight;
      if (r <= 0) return d;
    }
    return el[el.length - 1]; // unreachable for r <= total
  }

  private decide(c1: Dest, c2: Dest): Dest {
    return c2.weight * c1.overhead > c1.weight * c2.overhead ? c2 : c1;
  }

  schedule(_pkt: SchedPacket): Dest | null {
    const el = this.eligible();
    if (el.length === 0) return null;
    let total = 0;
    for (const d of el) total += d.weight;
    const r1 = this.host.random.below(total + 1);
    const r2 = this.host.random.below(total + 1);
    return this.decide(this.pick(el, r1), this.pick(el, r2));
  }

  choices(_pkt: SchedPacket): Choice[] {
    const el = this.eligible();
    if (el.length === 0) return [{ dest: null, probability: 1 }];
    let total = 0;
    for (const d of el) total += d.weight;
    // P(pick = d): first eligible gets W + 1 of the total + 1 values of r, others W.
    const p = el.map((d, i) => (d.weight + (i === 0 ? 1 : 0)) / (total + 1));
    const out = new Map<Dest, number>();
    for (let i = 0; i < el.length; i++) {
      for (let j = 0; j < el.length; j++) {
        const d = this.decide(el[i], el[j]);
        out.set(d, (out.get(d) ?? 0) + p[i] * p[j]);
      }
    }
    return [...out.entries()].map(([dest, probability]) => ({ dest, probability }));
  }
}

export const createTwos = (host: SchedulerHost): Scheduler => new TwoChoicesScheduler(host);
