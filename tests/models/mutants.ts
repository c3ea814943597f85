// Deliberately wrong scheduler models. Each changes one detail a plausible re-implementation
// could get wrong; the scenario files must tell every one of them apart from the reference model
// with the same connection-by-connection comparison the exact suites apply to a kernel.

import type { Dest } from '../../src/models/dest';
import { SVC_F_SCHED2, type SchedPacket, type Scheduler, type SchedulerFactory, type SchedulerHost, type SchedulerName } from '../../src/models/scheduler';
import { DestinationHashScheduler } from '../../src/models/schedulers/dh';
import { WeightedFailoverScheduler } from '../../src/models/schedulers/fo';
import { LocalityLeastConnectionScheduler, lblcOverloaded } from '../../src/models/schedulers/lblc';
import { MaglevHashScheduler } from '../../src/models/schedulers/mh';
import { RoundRobinScheduler } from '../../src/models/schedulers/rr';
import { SourceHashScheduler } from '../../src/models/schedulers/sh';
import { weightedLeast } from '../../src/models/schedulers/weighted-least';
import { connOverhead } from '../../src/models/schedulers/wlc';
import { WeightedRoundRobinScheduler } from '../../src/models/schedulers/wrr';

export interface Mutant {
  name: string;
  scheduler: SchedulerName;
  what: string;
  factory: SchedulerFactory;
}

class WrrOffByOne extends WeightedRoundRobinScheduler {
  protected override matches(d: Dest): boolean {
    return !d.overload && d.weight > this.cw; // kernel: >=
  }
}

class WrrPlainMaxWeight extends WeightedRoundRobinScheduler {
  protected override adjustedMaxWeight(): number {
    return this.maxWeight(); // kernel: max - (di - 1)
  }
}

class RrResetsOnChange extends RoundRobinScheduler {
  addDest(): void { this.cursor = null; }
  updDest(): void { this.cursor = null; }
}

class RrForgetsDeletedCursor extends RoundRobinScheduler {
  override delDest(d: Dest): void {
    if (this.cursor === d) this.cursor = null; // kernel: predecessor of d
  }
}

/** lc with "<=": the last of equally loaded servers wins (kernel: the first). */
const lcLastWins = (host: SchedulerHost): Scheduler => ({
  name: 'lc',
  deterministic: true,
  schedule(): Dest | null {
    let least: Dest | null = null;
    for (const d of host.list) {
      if (d.overload || d.weight === 0) continue;
      if (least === null || d.overhead <= least.overhead) least = d;
    }
    return least;
  },
});

/** lc counting every connection alike (forgets active * 256). */
const lcFlatOverhead = (host: SchedulerHost): Scheduler => ({
  name: 'lc',
  deterministic: true,
  schedule(): Dest | null {
    let least: Dest | null = null;
    for (const d of host.list) {
      if (d.overload || d.weight === 0) continue;
      if (least === null || d.totalConns < least.totalConns) least = d;
    }
    return least;
  },
});

/** wlc with the stale "<<5" weighting of active connections from the comment in ip_vs_lc.c. */
const wlcShift5 = (host: SchedulerHost): Scheduler => ({
  name: 'wlc',
  deterministic: true,
  schedule: () => weightedLeast(host.list, (d) => d.activeConns * 32 + d.inactConns),
});

/** wlc comparing with ">=": the last of equally loaded servers wins. */
const wlcLastOfEquals = (host: SchedulerHost): Scheduler => ({
  name: 'wlc',
  deterministic: true,
  schedule(): Dest | null {
    let least: Dest | null = null;
    for (const d of host.list) {
      if (d.overload || d.weight <= 0) continue;
      if (least === null || connOverhead(least) * d.weight >= connOverhead(d) * least.weight) least = d;
    }
    return least;
  },
});

/** sed computed like wlc. */
const sedAsWlc = (host: SchedulerHost): Scheduler => ({ name: 'sed', deterministic: true, schedule: () => weightedLeast(host.list, connOverhead) });

/** nq without the "first idle server" shortcut, i.e. sed. */
const nqWithoutIdle = (host: SchedulerHost): Scheduler => ({ name: 'nq', deterministic: true, schedule: () => weightedLeast(host.list, (d) => d.activeConns + 1) });

class FoLastOfEquals extends WeightedFailoverScheduler {
  override schedule(): Dest | null {
    let best: Dest | null = null;
    for (const d of this.host.list) if (!d.overload && d.weight > 0 && (best === null || d.weight >= best.weight)) best = d;
    return best;
  }
}

/** ovf with "active >= weight" as the overflow test (kernel: active > weight). */
const ovfGreaterEqual = (host: SchedulerHost): Scheduler => ({
  name: 'ovf',
  deterministic: true,
  schedule(): Dest | null {
    let best: Dest | null = null;
    for (const d of host.list) {
      if (d.overload || d.activeConns >= d.weight || d.weight === 0) continue;
      if (best === null || d.weight > best.weight) best = d;
    }
    return best;
  },
});

class ShIgnoresPort extends SourceHashScheduler {
  override key(pkt: SchedPacket): number {
    return pkt.saddr.fold >>> 0; // drops sh-port
  }
}

const shOldHash = (host: SchedulerHost): Scheduler => new SourceHashScheduler(host, { hash: 'old' });

/** mh whose table follows the current weight instead of last_weight. */
class MhUsesWeight extends MaglevHashScheduler {
  override updDest(d: Dest): void {
    const saved = this.host.list.map((x) => x.lastWeight);
    this.host.list.forEach((x) => (x.lastWeight = x.weight));
    this.reassign();
    this.host.list.forEach((x, i) => (x.lastWeight = saved[i]));
    void d;
  }
}

/** mh that ignores mh-port. */
class MhIgnoresPort extends MaglevHashScheduler {
  override portOf(pkt: SchedPacket): number {
    void SVC_F_SCHED2;
    void pkt;
    return 0;
  }
}

class DhHashesSource extends DestinationHashScheduler {
  override bucketOf(pkt: SchedPacket): number {
    return super.bucketOf({ ...pkt, daddr: pkt.saddr });
  }
}

/** lblc that also rejects a cached server carrying the OVERLOAD flag. */
class LblcHonoursOverloadFlag extends LocalityLeastConnectionScheduler {
  override schedule(pkt: SchedPacket): Dest | null {
    const en = this.cache.get(pkt.daddr.text);
    if (en && en.dest.overload && en.dest.available && en.dest.weight > 0 && !lblcOverloaded(en.dest, this.host.list)) {
      const d = weightedLeast(this.host.list, connOverhead);
      if (d) en.dest = d;
      return d;
    }
    return super.schedule(pkt);
  }
}

/** lblcr that keeps only the last chosen server (i.e. behaves like lblc). */
const lblcrAsLblc = (host: SchedulerHost): Scheduler => new LocalityLeastConnectionScheduler(host);

export const MUTANTS: Mutant[] = [
  { name: 'wrr-off-by-one', scheduler: 'wrr', what: 'weight > cw instead of >=', factory: (h) => new WrrOffByOne(h) },
  { name: 'wrr-plain-mw', scheduler: 'wrr', what: 'mw without the - (di - 1) adjustment', factory: (h) => new WrrPlainMaxWeight(h) },
  { name: 'rr-reset-on-change', scheduler: 'rr', what: 'cursor back to the head on add/edit', factory: (h) => new RrResetsOnChange(h) },
  { name: 'rr-forget-deleted-cursor', scheduler: 'rr', what: 'cursor to the head when its server is deleted', factory: (h) => new RrForgetsDeletedCursor(h) },
  { name: 'lc-last-wins-ties', scheduler: 'lc', what: 'tie-break on the last instead of the first server', factory: lcLastWins },
  { name: 'lc-flat-overhead', scheduler: 'lc', what: 'active and inactive connections weigh the same', factory: lcFlatOverhead },
  { name: 'wlc-shift-5', scheduler: 'wlc', what: 'active * 32 (the stale comment) instead of * 256', factory: wlcShift5 },
  { name: 'wlc-last-of-equals', scheduler: 'wlc', what: 'ties go to the last server', factory: wlcLastOfEquals },
  { name: 'sed-as-wlc', scheduler: 'sed', what: 'counts inactive connections', factory: sedAsWlc },
  { name: 'nq-without-idle', scheduler: 'nq', what: 'no first-idle shortcut', factory: nqWithoutIdle },
  { name: 'fo-last-of-equals', scheduler: 'fo', what: 'last of equal weights wins', factory: (h) => new FoLastOfEquals(h) },
  { name: 'ovf-greater-equal', scheduler: 'ovf', what: 'overflows at active >= weight', factory: ovfGreaterEqual },
  { name: 'sh-ignores-port', scheduler: 'sh', what: 'sh-port ignored', factory: (h) => new ShIgnoresPort(h) },
  { name: 'sh-old-hash', scheduler: 'sh', what: 'pre-hash_32 multiplicative hash', factory: shOldHash },
  { name: 'mh-uses-weight', scheduler: 'mh', what: 'table from weight, not last_weight', factory: (h) => new MhUsesWeight(h) },
  { name: 'mh-ignores-port', scheduler: 'mh', what: 'mh-port ignored', factory: (h) => new MhIgnoresPort(h) },
  { name: 'dh-hashes-source', scheduler: 'dh', what: 'hashes the source instead of the destination address', factory: (h) => new DhHashesSource(h) },
  { name: 'lblc-honours-overload', scheduler: 'lblc', what: 'rejects a cached server with the OVERLOAD flag', factory: (h) => new LblcHonoursOverloadFlag(h) },
  { name: 'lblcr-as-lblc', scheduler: 'lblcr', what: 'one server per address instead of a set', factory: lblcrAsLblc },
];
