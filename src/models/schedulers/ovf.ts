// ovf — weighted overflow (net/netfilter/ipvs/ip_vs_ovf.c).
// Skips destinations that are overloaded, have weight 0, or whose *active* connections exceed their
// weight; among the rest the highest weight wins, the first of equal weights in list order. So a
// destination keeps receiving while active <= weight (it can reach weight + 1 active connections).

import type { Dest } from '../dest';
import type { SchedPacket, Scheduler, SchedulerHost } from '../scheduler';

export class WeightedOverflowScheduler implements Scheduler {
  readonly name = 'ovf';
  readonly deterministic = true;
  constructor(protected readonly host: SchedulerHost) {}

  schedule(_pkt: SchedPacket): Dest | null {
    let best: Dest | null = null;
    let hw = 0;
    for (const d of this.host.list) {
      const w = d.weight;
      if (d.overload || d.activeConns > w || w === 0) continue;
      if (best === null || w > hw) {
        best = d;
        hw = w;
      }
    }
    return best;
  }
}

export const createOvf = (host: SchedulerHost): Scheduler => new WeightedOverflowScheduler(host);
