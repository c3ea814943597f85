// One interface for every IPVS scheduler reference model (net/netfilter/ipvs/ip_vs_<name>.c).
// A scheduler sees the service's destination list in kernel order (newest added first), its
// flags and clock, and gets the same callbacks as the kernel's struct ip_vs_scheduler:
// init_service (constructor), add_dest, del_dest, upd_dest, schedule.

import type { Address } from './address';
import type { Dest } from './dest';
import type { SeededRandom } from './prng';

export const SCHEDULER_NAMES = ['rr', 'wrr', 'lc', 'wlc', 'sed', 'nq', 'fo', 'ovf', 'twos', 'sh', 'dh', 'mh', 'lblc', 'lblcr'] as const;
export type SchedulerName = (typeof SCHEDULER_NAMES)[number];

/** IP_VS_SVC_F_SCHED1..3 (uapi ip_vs.h); sh/mh give SCHED1 = fallback, SCHED2 = port. */
export const SVC_F_SCHED1 = 0x08;
export const SVC_F_SCHED2 = 0x10;
export const SVC_F_SCHED3 = 0x20;

/** The packet fields schedulers read (after ip_vs_iph_inverse handling: saddr is the client). */
export interface SchedPacket {
  saddr: Address;
  sport: number;
  daddr: Address;
  dport: number;
  /** 'tcp' | 'udp' | 'sctp': sh-port/mh-port only read ports for these. */
  proto: 'tcp' | 'udp' | 'sctp';
}

/** What a scheduler may read of its service. */
export interface SchedulerHost {
  /** Destinations in kernel order; index 0 is the list head's successor (newest added). */
  readonly list: readonly Dest[];
  /** Service flags (SCHED1..3 bits among others). */
  readonly flags: number;
  /** Model clock in seconds. */
  now(): number;
  /** Source of randomness for random schedulers (twos). */
  readonly random: SeededRandom;
  /** lblc_expiration / lblcr_expiration sysctls in seconds. */
  readonly lblcExpiration: number;
  readonly lblcrExpiration: number;
  /** Report a prediction that depends on timing the model cannot know (e.g. GC timer phase).
   *  Warnings with the same `kind` are reported once, with how often they recurred. */
  warn(message: string, kind?: string): void;
}

/** One possible outcome of a random scheduler and its probability. */
export interface Choice {
  dest: Dest | null;
  probability: number;
}

export interface Scheduler {
  readonly name: string;
  /** False for twos: schedule() samples; choices() gives the exact distribution. */
  readonly deterministic: boolean;
  addDest?(d: Dest): void;
  delDest?(d: Dest): void;
  updDest?(d: Dest): void;
  schedule(pkt: SchedPacket): Dest | null;
  /** For non-deterministic schedulers: every possible pick with its probability, without side effects. */
  choices?(pkt: SchedPacket): Choice[];
  /** A compact dump of internal state for traces (cursor, cw, table summary...). */
  describeState?(): Record<string, unknown>;
}

export type SchedulerFactory = (host: SchedulerHost) => Scheduler;

/** Overload test shared by most schedulers: IP_VS_DEST_F_OVERLOAD. */
export function isOverloaded(d: Dest): boolean {
  return d.overload;
}
