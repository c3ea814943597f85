// rr — round robin (net/netfilter/ipvs/ip_vs_rr.c).
// State: a cursor on the circular destination list (initially the list head). schedule() walks
// forward from the cursor and takes the first destination that is not overloaded and has weight > 0.
// A walk that started on a real destination gets a second pass over the list, in which the
// starting destination itself is checked last (it is eligible). del_dest of the cursor moves the
// cursor to the deleted destination's predecessor, so the next pick is its successor.
// add_dest/upd_dest leave the cursor alone.

import type { Dest } from '../dest';
import type { SchedPacket, Scheduler, SchedulerHost } from '../scheduler';

export class RoundRobinScheduler implements Scheduler {
  readonly name = 'rr';
  readonly deterministic = true;
  /** null = the list head sentinel. */
  protected cursor: Dest | null = null;

  constructor(protected readonly host: SchedulerHost) {}

  protected eligible(d: Dest): boolean {
    return !d.overload && d.weight > 0;
  }

  delDest(d: Dest): void {
    // Called after d was unlinked; the host passes the index it had (listIndex is kept until then).
    if (this.cursor === d) {
      const i = d.listIndex; // index d occupied before removal
      this.cursor = i > 0 ? this.host.list[i - 1] : null;
    }
  }

  schedule(_pkt: SchedPacket): Dest | null {
    const list = this.host.list;
    const n = list.length;
    const last = this.cursor;
    const lastPos = last ? last.listIndex : -1;
    let pos = lastPos;
    let pass = 0;
    do {
      for (let i = pos + 1; i < n; i++) {
        const d = list[i];
        if (this.eligible(d)) {
          this.cursor = d;
          return d;
        }
        if (d === last) return null;
      }
      pos = -1;
      pass++;
    } while (pass < 2 && last !== null);
    return null;
  }

  describeState(): Record<string, unknown> {
    return { cursor: this.cursor ? this.cursor.name : 'head' };
  }
}

export const createRr = (host: SchedulerHost): Scheduler => new RoundRobinScheduler(host);
