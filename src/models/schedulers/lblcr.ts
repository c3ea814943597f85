// lblcr — locality-based least connection with replication (net/netfilter/ipvs/ip_vs_lblcr.c).
// The cache maps a destination address to a *set* of destinations (new members go to the set's
// head; insert/erase update set.lastmod). On a hit: d = the set member with the least
// overhead/weight (first member that is not overloaded, AVAILABLE and weight > 0, then strict
// comparison, members must be AVAILABLE to win); if the set has > 1 member and was not modified for
// lblcr_expiration, its most loaded member (overhead/weight, first with weight > 0) is erased. d is
// used unless missing or lblc-overloaded (active > weight while some destination has
// active * 2 < weight); then wlc over all destinations picks one, which joins the set. On a miss
// wlc picks and a new entry {d} is created.

import type { Dest } from '../dest';
import type { SchedPacket, Scheduler, SchedulerHost } from '../scheduler';
import { addrKey, cacheEntryAlive, lblcOverloaded, LBLC_MAX_ENTRIES } from './lblc';
import { weightedLeast } from './weighted-least';
import { connOverhead } from './wlc';

interface DestSet {
  /** Members, head first. */
  members: Dest[];
  lastmod: number;
}

interface LblcrEntry {
  set: DestSet;
  lastuse: number;
}

function setMin(set: DestSet): Dest | null {
  const m = set.members;
  let i = 0;
  let least: Dest | null = null;
  for (; i < m.length; i++) {
    const d = m[i];
    if (d.overload) continue;
    if (d.weight > 0 && d.available) {
      least = d;
      break;
    }
  }
  if (!least) return null;
  let loh = connOverhead(least);
  for (i++; i < m.length; i++) {
    const d = m[i];
    if (d.overload) continue;
    const doh = connOverhead(d);
    if (loh * d.weight > doh * least.weight && d.available) {
      least = d;
      loh = doh;
    }
  }
  return least;
}

function setMax(set: DestSet): Dest | null {
  const m = set.members;
  let i = 0;
  let most: Dest | null = null;
  for (; i < m.length; i++) {
    if (m[i].weight > 0) {
      most = m[i];
      break;
    }
  }
  if (!most) return null;
  let moh = connOverhead(most);
  for (i++; i < m.length; i++) {
    const d = m[i];
    const doh = connOverhead(d);
    if (moh * d.weight < doh * most.weight && d.weight > 0) {
      most = d;
      moh = doh;
    }
  }
  return most;
}

export class LocalityReplicatedScheduler implements Scheduler {
  readonly name = 'lblcr';
  readonly deterministic = true;
  readonly cache = new Map<string, LblcrEntry>();

  constructor(protected readonly host: SchedulerHost) {}

  private insert(set: DestSet, d: Dest): void {
    if (set.members.includes(d)) return;
    set.members.unshift(d);
    set.lastmod = this.host.now();
  }

  schedule(pkt: SchedPacket): Dest | null {
    const now = this.host.now();
    const key = addrKey(pkt.daddr);
    let en = this.cache.get(key);
    if (en && !cacheEntryAlive(this.host, en.lastuse, this.host.lblcrExpiration, `lblcr entry for ${key}`)) {
      this.cache.delete(key);
      en = undefined;
    }
    if (this.cache.size > LBLC_MAX_ENTRIES) this.host.warn(`lblcr cache holds ${this.cache.size} entries (> ${LBLC_MAX_ENTRIES}): size-driven collection is not modelled`, 'lblcr-cache-size');
    if (en) {
      en.lastuse = now;
      let d = setMin(en.set);
      if (en.set.members.length > 1 && now - en.set.lastmod > this.host.lblcrExpiration) {
        const m = setMax(en.set);
        if (m) {
          en.set.members.splice(en.set.members.indexOf(m), 1);
          en.set.lastmod = now;
        }
      }
      if (d && !lblcOverloaded(d, this.host.list)) return d;
      d = weightedLeast(this.host.list, connOverhead);
      if (d === null) return null;
      this.insert(en.set, d);
      return d;
    }
    const d = weightedLeast(this.host.list, connOverhead);
    if (d === null) return null;
    this.cache.set(key, { set: { members: [d], lastmod: now }, lastuse: now });
    return d;
  }

  describeState(): Record<string, unknown> {
    return { entries: Object.fromEntries([...this.cache].map(([k, e]) => [k, e.set.members.map((d) => d.name)])) };
  }
}

export const createLblcr = (host: SchedulerHost): Scheduler => new LocalityReplicatedScheduler(host);
