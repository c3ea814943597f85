// sh — source hashing (net/netfilter/ipvs/ip_vs_sh.c, current mainline).
// A table of 2^CONFIG_IP_VS_SH_TAB_BITS (default 8 -> 256) buckets, rebuilt on every add/del/upd:
// walking the list cyclically, each destination fills max(weight, 1) consecutive buckets (a
// weight-0 destination still takes one). Bucket of a packet:
//   (offset + hash_32(fold(saddr) + port, bits)) & mask, offset 0 for the primary lookup,
// port = the client's source port with sh-port (SCHED2) for TCP/UDP/SCTP, else 0. A bucket whose
// destination has weight <= 0 or is overloaded yields "no destination" unless sh-fallback (SCHED1),
// which probes (roffset + hash) & mask for roffset = (i + bucket) % size, i = 0..size-1.
// Option `hash: 'old'` models kernels before the hash_32 change ((key * 2654435761) & mask).

import { hash32, oldMultiplicativeBucket } from '../hash';
import type { Dest } from '../dest';
import { SVC_F_SCHED1, SVC_F_SCHED2, type SchedPacket, type Scheduler, type SchedulerHost } from '../scheduler';

export interface SourceHashOptions {
  tableBits?: number;
  hash?: 'hash_32' | 'old';
}

export class SourceHashScheduler implements Scheduler {
  readonly name = 'sh';
  readonly deterministic = true;
  readonly bits: number;
  readonly size: number;
  readonly buckets: (Dest | null)[];
  private readonly hashKind: 'hash_32' | 'old';

  constructor(protected readonly host: SchedulerHost, opts: SourceHashOptions = {}) {
    this.bits = opts.tableBits ?? 8;
    if (!Number.isInteger(this.bits) || this.bits < 4 || this.bits > 20) throw new Error(`sh table bits must be 4..20, got ${this.bits}`);
    this.size = 1 << this.bits;
    this.hashKind = opts.hash ?? 'hash_32';
    this.buckets = new Array(this.size).fill(null);
    this.reassign();
  }

  /** ip_vs_sh_reassign(). */
  reassign(): void {
    const list = this.host.list;
    if (list.length === 0) {
      this.buckets.fill(null);
      return;
    }
    let p = 0;
    let count = 0;
    for (let b = 0; b < this.size; b++) {
      const d = list[p];
      this.buckets[b] = d;
      if (++count >= d.weight) {
        p = (p + 1) % list.length;
        count = 0;
      }
    }
  }

  addDest(_d: Dest): void { this.reassign(); }
  delDest(_d: Dest): void { this.reassign(); }
  updDest(_d: Dest): void { this.reassign(); }

  /** The hashed key: fold(addr) + port as u32. */
  key(pkt: SchedPacket): number {
    const port = this.host.flags & SVC_F_SCHED2 ? pkt.sport : 0;
    return (pkt.saddr.fold + port) >>> 0;
  }

  bucketOf(key: number, offset: number): number {
    const h = this.hashKind === 'old' ? oldMultiplicativeBucket(key, this.bits) : hash32(key, this.bits);
    return (offset + h) & (this.size - 1);
  }

  private unavailable(d: Dest): boolean {
    return d.weight <= 0 || d.overload;
  }

  schedule(pkt: SchedPacket): Dest | null {
    const key = this.key(pkt);
    const ihash = this.bucketOf(key, 0);
    let d = this.buckets[ihash];
    if (d === null) return null;
    if (!this.unavailable(d)) return d;
    if (!(this.host.flags & SVC_F_SCHED1)) return null;
    for (let i = 0; i < this.size; i++) {
      const roffset = (i + ihash) % this.size;
      d = this.buckets[this.bucketOf(key, roffset)];
      if (d === null) return null;
      if (!this.unavailable(d)) return d;
    }
    return null;
  }

  describeState(): Record<string, unknown> {
    const counts: Record<string, number> = {};
    for (const d of this.buckets) if (d) counts[d.name] = (counts[d.name] ?? 0) + 1;
    return { tableSize: this.size, bucketsPerDest: counts };
  }
}

export const createSh = (host: SchedulerHost): Scheduler => new SourceHashScheduler(host);
