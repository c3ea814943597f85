// sed — shortest expected delay (net/netfilter/ipvs/ip_vs_sed.c).
// Same scan as wlc, with overhead = active + 1 (inactive connections are ignored).

import type { Dest } from '../dest';
import type { SchedPacket, Scheduler, SchedulerHost } from '../scheduler';
import { weightedLeast } from './weighted-least';

export const expectedDelayOverhead = (d: Dest): number => d.activeConns + 1;

export class ShortestExpectedDelayScheduler implements Scheduler {
  readonly name = 'sed';
  readonly deterministic = true;
  constructor(protected readonly host: SchedulerHost) {}
  schedule(_pkt: SchedPacket): Dest | null {
    return weightedLeast(this.host.list, expectedDelayOverhead);
  }
}

export const createSed = (host: SchedulerHost): Scheduler => new ShortestExpectedDelayScheduler(host);
