// wlc — weighted least connection, ipvsadm's default (net/netfilter/ipvs/ip_vs_wlc.c).
// Minimises overhead / weight with overhead = active * 256 + inactive; first in list wins ties.

import type { Dest } from '../dest';
import type { SchedPacket, Scheduler, SchedulerHost } from '../scheduler';
import { weightedLeast } from './weighted-least';

export const connOverhead = (d: Dest): number => d.activeConns * 256 + d.inactConns;

export class WeightedLeastConnectionScheduler implements Scheduler {
  readonly name = 'wlc';
  readonly deterministic = true;
  constructor(protected readonly host: SchedulerHost) {}
  schedule(_pkt: SchedPacket): Dest | null {
    return weightedLeast(this.host.list, connOverhead);
  }
}

export const createWlc = (host: SchedulerHost): Scheduler => new WeightedLeastConnectionScheduler(host);
