// nq — never queue (net/netfilter/ipvs/ip_vs_nq.c).
// Scans in list order skipping overloaded and weight-0 destinations; the first one with no active
// connection is returned at once. Otherwise it behaves like sed (overhead active + 1, strict
// comparison loh * W(d) > doh * W(least), first wins ties). The kernel compares in unsigned int
// here; values stay far below 2^32 in any lab scenario (asserted).

import type { Dest } from '../dest';
import type { SchedPacket, Scheduler, SchedulerHost } from '../scheduler';

export class NeverQueueScheduler implements Scheduler {
  readonly name = 'nq';
  readonly deterministic = true;
  constructor(protected readonly host: SchedulerHost) {}

  schedule(_pkt: SchedPacket): Dest | null {
    let least: Dest | null = null;
    let loh = 0;
    for (const d of this.host.list) {
      if (d.overload || d.weight === 0) continue;
      const doh = d.activeConns + 1;
      if (d.activeConns === 0) return d;
      if (least === null) {
        least = d;
        loh = doh;
        continue;
      }
      const a = loh * d.weight, b = doh * least.weight;
      if (a > 0xffffffff || b > 0xffffffff) throw new Error(`nq comparison would overflow the kernel's unsigned int (${a}, ${b})`);
      if (a > b) {
        least = d;
        loh = doh;
      }
    }
    return least;
  }
}

export const createNq = (host: SchedulerHost): Scheduler => new NeverQueueScheduler(host);
