// dh — destination hashing (net/netfilter/ipvs/ip_vs_dh.c, current mainline).
// 2^CONFIG_IP_VS_DH_TAB_BITS (default 256) buckets assigned one destination each, cycling through
// the list (weights ignored), rebuilt on add/del only (dh has no upd_dest callback). Bucket =
// hash_32(fold(daddr), bits) of the packet's *destination* address. The bucket's destination is
// refused (no fallback) when not AVAILABLE, weight <= 0, or overloaded.

import { hash32, oldMultiplicativeBucket } from '../hash';
import type { Dest } from '../dest';
import type { SchedPacket, Scheduler, SchedulerHost } from '../scheduler';

export interface DestHashOptions {
  tableBits?: number;
  hash?: 'hash_32' | 'old';
}

export class DestinationHashScheduler implements Scheduler {
  readonly name = 'dh';
  readonly deterministic = true;
  readonly bits: number;
  readonly size: number;
  readonly buckets: (Dest | null)[];
  private readonly hashKind: 'hash_32' | 'old';

  constructor(protected readonly host: SchedulerHost, opts: DestHashOptions = {}) {
    this.bits = opts.tableBits ?? 8;
    this.size = 1 << this.bits;
    this.hashKind = opts.hash ?? 'hash_32';
    this.buckets = new Array(this.size).fill(null);
    this.reassign();
  }

  reassign(): void {
    const list = this.host.list;
    for (let b = 0; b < this.size; b++) this.buckets[b] = list.length ? list[b % list.length] : null;
  }

  addDest(_d: Dest): void { this.reassign(); }
  delDest(_d: Dest): void { this.reassign(); }

  bucketOf(pkt: SchedPacket): number {
    const key = pkt.daddr.fold;
    return this.hashKind === 'old' ? oldMultiplicativeBucket(key, this.bits) : hash32(key, this.bits);
  }

  schedule(pkt: SchedPacket): Dest | null {
    const d = this.buckets[this.bucketOf(pkt)];
    if (!d || !d.available || d.weight <= 0 || d.overload) return null;
    return d;
  }
}

export const createDh = (host: SchedulerHost): Scheduler => new DestinationHashScheduler(host);
