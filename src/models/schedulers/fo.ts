// fo — weighted failover (net/netfilter/ipvs/ip_vs_fo.c).
// Every new connection goes to the non-overloaded destination with the highest weight; strict ">"
// so the first of equal weights (in list order) wins. Weight 0 never qualifies (hw starts at 0).

import type { Dest } from '../dest';
import type { SchedPacket, Scheduler, SchedulerHost } from '../scheduler';

export class WeightedFailoverScheduler implements Scheduler {
  readonly name = 'fo';
  readonly deterministic = true;
  constructor(protected readonly host: SchedulerHost) {}

  schedule(_pkt: SchedPacket): Dest | null {
    let best: Dest | null = null;
    let hw = 0;
    for (const d of this.host.list) {
      if (!d.overload && d.weight > hw) {
        best = d;
        hw = d.weight;
      }
    }
    return best;
  }
}

export const createFo = (host: SchedulerHost): Scheduler => new WeightedFailoverScheduler(host);
