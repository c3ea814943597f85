// lc — least connection (net/netfilter/ipvs/ip_vs_lc.c).
// Picks the destination with the smallest overhead (active * 256 + inactive) among those not
// overloaded and with weight != 0; strict "<" so the first in list order wins ties. The weight's
// value is otherwise ignored.

import type { Dest } from '../dest';
import type { SchedPacket, Scheduler, SchedulerHost } from '../scheduler';

export class LeastConnectionScheduler implements Scheduler {
  readonly name = 'lc';
  readonly deterministic = true;
  constructor(protected readonly host: SchedulerHost) {}

  schedule(_pkt: SchedPacket): Dest | null {
    let least: Dest | null = null;
    let loh = 0;
    for (const d of this.host.list) {
      if (d.overload || d.weight === 0) continue;
      const doh = d.overhead;
      if (least === null || doh < loh) {
        least = d;
        loh = doh;
      }
    }
    return least;
  }
}

export const createLc = (host: SchedulerHost): Scheduler => new LeastConnectionScheduler(host);
