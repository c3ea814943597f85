// lblc — locality-based least connection (net/netfilter/ipvs/ip_vs_lblc.c).
// A per-service cache maps the packet's destination address to one destination. A cached
// destination is used while it is AVAILABLE, has weight > 0 and is not "overloaded" in lblc's own
// sense (active > weight while some destination has active * 2 < weight) -- the OVERLOAD flag is
// not consulted for cached entries. Otherwise wlc picks (skipping OVERLOAD) and the entry is
// created or replaced. Entries unused for lblc_expiration (default 24 h) are collected by a timer
// (every 60 s, full check every 30th run), whose phase the model cannot know: lookups in that window
// are reported as timing-dependent.

import type { Address } from '../address';
import type { Dest } from '../dest';
import type { SchedPacket, Scheduler, SchedulerHost } from '../scheduler';
import { weightedLeast } from './weighted-least';
import { connOverhead } from './wlc';

/** Full GC check interval: CHECK_EXPIRE_INTERVAL (60 s) * COUNT_FOR_FULL_EXPIRATION (30). */
export const LBLC_FULL_CHECK_PERIOD = 60 * 30;
export const LBLC_MAX_ENTRIES = 1024 * 16;

export function addrKey(a: Address): string {
  return a.text;
}

/** is_overloaded() of ip_vs_lblc.c / ip_vs_lblcr.c. */
export function lblcOverloaded(d: Dest, list: readonly Dest[]): boolean {
  if (d.activeConns > d.weight) {
    for (const x of list) if (x.activeConns * 2 < x.weight) return true;
  }
  return false;
}

/**
 * Whether a cache entry last used at `lastuse` is still there at `now`: certainly yes before
 * expiration, certainly not after expiration plus one full-check period (+ one timer tick).
 */
export function cacheEntryAlive(host: SchedulerHost, lastuse: number, expiration: number, what: string): boolean {
  const idle = host.now() - lastuse;
  if (idle <= expiration) return true;
  if (idle > expiration + LBLC_FULL_CHECK_PERIOD + 60) return false;
  host.warn(`${what} idle for ${idle} s: its garbage collection (expiration ${expiration} s, checked every ${LBLC_FULL_CHECK_PERIOD} s) may or may not have run; the model assumes it did not`);
  return true;
}

interface LblcEntry {
  dest: Dest;
  lastuse: number;
}

export class LocalityLeastConnectionScheduler implements Scheduler {
  readonly name = 'lblc';
  readonly deterministic = true;
  readonly cache = new Map<string, LblcEntry>();

  constructor(protected readonly host: SchedulerHost) {}

  schedule(pkt: SchedPacket): Dest | null {
    const key = addrKey(pkt.daddr);
    let en = this.cache.get(key);
    if (en && !cacheEntryAlive(this.host, en.lastuse, this.host.lblcExpiration, `lblc entry for ${key}`)) {
      this.cache.delete(key);
      en = undefined;
    }
    if (this.cache.size > LBLC_MAX_ENTRIES) this.host.warn(`lblc cache holds ${this.cache.size} entries (> ${LBLC_MAX_ENTRIES}): the kernel's size-driven collection of entries idle > 6 min is not modelled`, 'lblc-cache-size');
    if (en) {
      en.lastuse = this.host.now();
      const d = en.dest;
      if (d.available && d.weight > 0 && !lblcOverloaded(d, this.host.list)) return d;
    }
    const d = weightedLeast(this.host.list, connOverhead);
    if (d === null) return null;
    if (en) en.dest = d;
    else this.cache.set(key, { dest: d, lastuse: this.host.now() });
    return d;
  }

  describeState(): Record<string, unknown> {
    return { entries: Object.fromEntries([...this.cache].map(([k, e]) => [k, e.dest.name])) };
  }
}

export const createLblc = (host: SchedulerHost): Scheduler => new LocalityLeastConnectionScheduler(host);
