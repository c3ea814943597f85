// mh — Maglev hashing (net/netfilter/ipvs/ip_vs_mh.c, v4.18+).
// Table size M = primes[CONFIG_IP_VS_MH_TAB_INDEX - 8] (default index 12 -> 4093), rebuilt on every
// add/del/upd from the destinations' *last_weight* (the last non-zero weight), so setting weight 0
// keeps a destination's slots. Hashes are hsiphash (SipHash-1-3 on 64-bit kernels) of the u32
//   v = offset + port + fold(addr)
// with fixed keys hash1 = {2654435761, 2654435761}, hash2 = {2654446892, 2654446892}.
// Per destination (in list order): offset = H1(dest addr, dest port) % M,
// skip = H2(dest addr, dest port) % (M - 1) + 1, turns = (last_weight / gcd) >> shift, or 1 if that
// is 0 while last_weight != 0, where shift = max(fls(max_last_weight / gcd) - TAB_BITS, 0) and
// TAB_BITS = index / 2. Population walks the list, each destination claiming `turns` slots per
// round at its next free preferred position. Lookup: slot = H1(client fold + port) % M with
// port = the client source port under mh-port (SCHED2); the slot's destination is refused when its
// weight <= 0 or it is overloaded, unless mh-fallback (SCHED1) probes H1(v with offset roffset)
// for roffset = (i + slot) % M.

import { fls, gcd } from '../hash';
import type { Address } from '../address';
import type { Dest } from '../dest';
import { hsiphashU32, sipKeyFromWords, type SipKey } from '../siphash';
import { SVC_F_SCHED1, SVC_F_SCHED2, type SchedPacket, type Scheduler, type SchedulerHost } from '../scheduler';

export const MH_PRIMES = [251, 509, 1021, 2039, 4093, 8191, 16381, 32749, 65521, 131071] as const;
export const MH_HASH1: SipKey = sipKeyFromWords(2654435761n, 2654435761n);
export const MH_HASH2: SipKey = sipKeyFromWords(2654446892n, 2654446892n);

export interface MaglevOptions {
  /** CONFIG_IP_VS_MH_TAB_INDEX, 8..17 (default 12). */
  tableIndex?: number;
  /** Model a big-endian host (hsiphash reads the native u32's bytes). */
  bigEndianHost?: boolean;
}

export function mhHashKey(addr: Address, port: number, key: SipKey, offset: number, bigEndianHost = false): number {
  const v = (offset + port + addr.fold) >>> 0;
  return hsiphashU32(v, key, bigEndianHost);
}

export interface MaglevDestSetup {
  dest: Dest;
  offset: number;
  skip: number;
  turns: number;
}

export class MaglevHashScheduler implements Scheduler {
  readonly name = 'mh';
  readonly deterministic = true;
  readonly size: number;
  readonly tabBits: number;
  readonly table: (Dest | null)[];
  readonly bigEndianHost: boolean;
  gcd = 0;
  rshift = 0;
  lastSetup: MaglevDestSetup[] = [];

  constructor(protected readonly host: SchedulerHost, opts: MaglevOptions = {}) {
    const index = opts.tableIndex ?? 12;
    if (!Number.isInteger(index) || index < 8 || index > 17) throw new Error(`mh table index must be 8..17, got ${index}`);
    this.size = MH_PRIMES[index - 8];
    this.tabBits = Math.trunc(index / 2);
    this.bigEndianHost = opts.bigEndianHost ?? false;
    this.table = new Array(this.size).fill(null);
    this.reassign();
  }

  private computeGcd(): number {
    let g = 0;
    for (const d of this.host.list) {
      const w = d.lastWeight;
      if (w > 0) g = g > 0 ? gcd(w, g) : w;
    }
    return g;
  }

  private computeShift(g: number): number {
    if (g < 1) return 0;
    let mw = 0;
    for (const d of this.host.list) if (d.lastWeight > mw) mw = d.lastWeight;
    const shift = fls(Math.trunc(mw / g)) - this.tabBits;
    return shift >= 0 ? shift : 0;
  }

  /** ip_vs_mh_dest_changed() / init: gcd, shift, permutation, population. */
  reassign(): void {
    const list = this.host.list;
    if (list.length > this.size) throw new Error(`mh: ${list.length} destinations exceed the table size ${this.size} (the kernel refuses with EINVAL)`);
    this.gcd = this.computeGcd();
    this.rshift = this.computeShift(this.gcd);
    if (this.gcd < 1) {
      this.table.fill(null);
      this.lastSetup = [];
      return;
    }
    const setup: MaglevDestSetup[] = list.map((d) => {
      const lw = d.lastWeight;
      const t = Math.trunc(lw / this.gcd) >> this.rshift;
      return {
        dest: d,
        offset: mhHashKey(d.addr, d.port, MH_HASH1, 0, this.bigEndianHost) % this.size,
        skip: (mhHashKey(d.addr, d.port, MH_HASH2, 0, this.bigEndianHost) % (this.size - 1)) + 1,
        turns: t || (lw !== 0 ? 1 : 0),
      };
    });
    this.lastSetup = setup;
    this.populate(setup);
  }

  private populate(setup: MaglevDestSetup[]): void {
    const M = this.size;
    const taken = new Uint8Array(M);
    const perm = setup.map((s) => s.offset);
    // Slots not claimed in this build keep their previous destination in the kernel (the table is
    // only overwritten where claimed); a full build claims all M slots, so every slot is rewritten.
    let n = 0;
    let dtCount = 0;
    while (n < M) {
      for (let i = 0; i < setup.length; ) {
        const s = setup[i];
        if (s.turns < 1) {
          i++;
          continue;
        }
        let c = perm[i];
        while (taken[c]) {
          perm[i] += s.skip;
          if (perm[i] >= M) perm[i] -= M;
          c = perm[i];
        }
        taken[c] = 1;
        this.table[c] = s.dest;
        if (++n === M) return;
        if (++dtCount >= s.turns) {
          dtCount = 0;
          i++;
        }
      }
    }
  }

  addDest(_d: Dest): void { this.reassign(); }
  delDest(_d: Dest): void { this.reassign(); }
  updDest(_d: Dest): void { this.reassign(); }

  private unavailable(d: Dest): boolean {
    return d.weight <= 0 || d.overload;
  }

  portOf(pkt: SchedPacket): number {
    return this.host.flags & SVC_F_SCHED2 ? pkt.sport : 0;
  }

  slotOf(addr: Address, port: number, offset = 0): number {
    return mhHashKey(addr, port, MH_HASH1, offset, this.bigEndianHost) % this.size;
  }

  schedule(pkt: SchedPacket): Dest | null {
    const port = this.portOf(pkt);
    const ihash = this.slotOf(pkt.saddr, port, 0);
    let d = this.table[ihash];
    if (!(this.host.flags & SVC_F_SCHED1)) return d === null || this.unavailable(d) ? null : d;
    if (d === null) return null;
    if (!this.unavailable(d)) return d;
    for (let off = 0; off < this.size; off++) {
      const roffset = (off + ihash) % this.size;
      d = this.table[this.slotOf(pkt.saddr, port, roffset)];
      if (d === null) return null;
      if (!this.unavailable(d)) return d;
    }
    return null;
  }

  /** Slots per destination name (for tests and traces). */
  slotCounts(): Map<string, number> {
    const m = new Map<string, number>();
    for (const d of this.table) if (d) m.set(d.name, (m.get(d.name) ?? 0) + 1);
    return m;
  }

  describeState(): Record<string, unknown> {
    return { tableSize: this.size, gcd: this.gcd, rshift: this.rshift, slotsPerDest: Object.fromEntries(this.slotCounts()) };
  }
}

export const createMh = (host: SchedulerHost): Scheduler => new MaglevHashScheduler(host);
