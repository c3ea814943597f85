// The held-connection schedules of the distribution suite (src/models/distribution-checks.ts heldSchedule):
// plain data, shared by the suite and by tests/models/distribution-checks.spec.ts, which measures on these
// very schedules that correct schedulers pass and wrong ones fail.
import type { HeldScheduleOptions } from '../../src/models/distribution-checks';

export const DIST_SCHEDULES = {
  /** lc3: three servers of weight 1. */
  lc: { seed: 14_004, picks: 40, maxHeld: 7, maxBatch: 3 },
  /** ovf3: upper thresholds 3, 2, 2 (7 slots): never more held than that (haproxy would queue the next). */
  ovf: { seed: 14_005, picks: 30, maxHeld: 7, maxBatch: 3 },
  /**
   * twos3: three servers of weight 256. haproxy draws through its consistent-hash ring, 16 points per unit of
   * weight (4096 per server): a server's share of the ring is its weight share within ≈ 1.3 % (one standard
   * deviation); the checker allows ±10 % (drawSlack). nginx draws by weight ranges (exact). 200 decisions:
   * simulated power 0.94 against a weighted random pick (500 seeds), 1.0 against least connection and round-robin.
   */
  twos: { seed: 14_006, picks: 200, maxHeld: 8, maxBatch: 2, drawSlack: 0.1 },
} satisfies Record<string, HeldScheduleOptions & { seed: number; drawSlack?: number }>;
