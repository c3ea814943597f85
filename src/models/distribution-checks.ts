// Checks of the real servers a scheduler chose, made without a reference model of the implementation under
// test (haproxy, nginx, nftables...): what every correct implementation of a scheduling discipline must show,
// given only the server that answered each connection and, for the load-aware ones, the connections that
// were held open when it was scheduled (suites/distribution). Pure; tests/models/distribution-checks.spec.ts.
//
//  - cyclicWindowCheck (rr, wrr; exact): a per-new-connection counter over weighted slots (nftables
//    `numgen inc`, IPVS rr/wrr, haproxy static-rr, nginx's smooth weighted round-robin) repeats with period
//    W = sum of the weights: every W consecutive connections reach each server exactly weight times.
//  - leastConnectionCheck (lc/wlc; exact): each pick has the fewest active connections per unit of weight.
//  - overflowCheck (ovf, haproxy first; exact): each pick is the first server, in the service's order, that
//    is below its upper threshold.
//  - twoChoicesCheck (twos, haproxy random(2), nginx random two least_conn; statistical, false-failure
//    probability <= alpha): bounds that hold whether the two draws are independent (IPVS, haproxy) or
//    distinct (nginx), and whichever draw wins a tie; and picks that repeat with a short period (a
//    round-robin) are refused, at a probability bound computed for two random choices.
import { SeededRandom } from './prng';
import { ALPHA } from './stats';

export interface CheckedServer {
  name: string;
  weight: number;
  /** Upper connection threshold (ovf); 0 or absent: none. */
  upper?: number;
}

/** One scheduling decision: the server chosen (null: none answered) and the active connections per server just before it. */
export interface LoadPick {
  server: string | null;
  load: Readonly<Record<string, number>>;
}

export interface PickVerdict {
  ok: boolean;
  message: string;
  /** Index of the first pick (or window) that broke the rule. */
  at?: number;
}

function eligible(servers: readonly CheckedServer[]): CheckedServer[] {
  const el = servers.filter((s) => s.weight > 0);
  if (!el.length) throw new RangeError('at least one server needs a positive weight');
  return el;
}

function unknownPick(picks: readonly { server: string | null }[], servers: readonly CheckedServer[]): PickVerdict | undefined {
  const names = new Set(eligible(servers).map((s) => s.name));
  const k = picks.findIndex((p) => p.server === null || !names.has(p.server));
  if (k < 0) return undefined;
  return { ok: false, at: k, message: `connection ${k} ${picks[k].server === null ? 'was not answered' : `went to ${picks[k].server}, which is not a server of positive weight (${[...names].join(', ')})`}` };
}

/** Every window of W = sum(weights) consecutive picks has each server exactly `weight` times (needs at least 2W picks). */
export function cyclicWindowCheck(picks: readonly (string | null)[], servers: readonly CheckedServer[]): PickVerdict {
  const el = eligible(servers);
  const bad = unknownPick(picks.map((server) => ({ server })), servers);
  if (bad) return bad;
  const W = el.reduce((a, s) => a + s.weight, 0);
  if (picks.length < 2 * W) throw new RangeError(`a cyclic check over weights summing to ${W} needs at least ${2 * W} picks (got ${picks.length})`);
  const want = new Map(el.map((s) => [s.name, s.weight]));
  const count = new Map(el.map((s) => [s.name, 0]));
  for (let i = 0; i < picks.length; i++) {
    count.set(picks[i]!, count.get(picks[i]!)! + 1);
    if (i >= W) count.set(picks[i - W]!, count.get(picks[i - W]!)! - 1);
    if (i < W - 1) continue;
    const off = [...want].filter(([n, w]) => count.get(n) !== w);
    if (off.length) {
      const start = i - W + 1;
      return {
        ok: false, at: start,
        message: `connections ${start}..${i} (a window of ${W}) reached ${[...count].map(([n, c]) => `${n} ${c}×`).join(', ')}; weights ${el.map((s) => `${s.name} ${s.weight}`).join(', ')}: ${picks.slice(start, i + 1).join(' ')}`,
      };
    }
  }
  return { ok: true, message: `all ${picks.length - W + 1} windows of ${W} consecutive connections reach each server weight times; the cycle: ${picks.slice(0, W).join(' ')}` };
}

/** Each pick has the fewest active connections per unit of weight (a_s / w_s minimal; ties are free). */
export function leastConnectionCheck(picks: readonly LoadPick[], servers: readonly CheckedServer[]): PickVerdict {
  const el = eligible(servers);
  const bad = unknownPick(picks, servers);
  if (bad) return bad;
  const w = new Map(el.map((s) => [s.name, s.weight]));
  for (let k = 0; k < picks.length; k++) {
    const p = picks[k];
    const a = (n: string) => p.load[n] ?? 0;
    const chosen = p.server!;
    // a_c / w_c > a_s / w_s, in integers.
    const better = el.filter((s) => a(chosen) * s.weight > a(s.name) * w.get(chosen)!);
    if (better.length) {
      return {
        ok: false, at: k,
        message: `connection ${k} went to ${chosen} (${a(chosen)} active, weight ${w.get(chosen)}) while ${better.map((s) => `${s.name} had ${a(s.name)} (weight ${s.weight})`).join(', ')}; active then: ${el.map((s) => `${s.name} ${a(s.name)}`).join(', ')}`,
      };
    }
  }
  // Decisions with one least-loaded server: there, any other pick would have failed.
  const forced = picks.filter((p) => {
    const r = el.map((s) => (p.load[s.name] ?? 0) / s.weight);
    return r.filter((x) => x === Math.min(...r)).length === 1;
  }).length;
  return { ok: true, message: `all ${picks.length} connections went to a server with the fewest active connections per unit of weight (${forced} decisions had a single least-loaded server)` };
}

/** Each pick is the first server (service order) below its upper threshold; a pick when every server is full is an error. */
export function overflowCheck(picks: readonly LoadPick[], servers: readonly CheckedServer[]): PickVerdict {
  const el = eligible(servers);
  const bad = unknownPick(picks, servers);
  if (bad) return bad;
  for (let k = 0; k < picks.length; k++) {
    const p = picks[k];
    const a = (n: string) => p.load[n] ?? 0;
    const first = el.find((s) => !s.upper || a(s.name) < s.upper);
    if (p.server !== (first?.name ?? null)) {
      return {
        ok: false, at: k,
        message: `connection ${k} went to ${p.server}; the first server below its threshold was ${first?.name ?? 'none'} (active/upper then: ${el.map((s) => `${s.name} ${a(s.name)}/${s.upper || '∞'}`).join(', ')})`,
      };
    }
  }
  return { ok: true, message: `all ${picks.length} connections went to the first server below its upper threshold` };
}

// ---- two random choices ---------------------------------------------------------------------------

/** P(X >= x) and P(X <= x) for X a sum of independent Bernoulli(q_i) (exact, O(n^2)). */
export function poissonBinomialTails(q: readonly number[], x: number): { atLeast: number; atMost: number } {
  let dist = [1];
  for (const p of q) {
    if (!(p >= 0 && p <= 1)) throw new RangeError(`probability out of range: ${p}`);
    const next = new Array<number>(dist.length + 1).fill(0);
    for (let k = 0; k < dist.length; k++) {
      next[k] += dist[k] * (1 - p);
      next[k + 1] += dist[k] * p;
    }
    dist = next;
  }
  const sum = (from: number, to: number) => dist.slice(Math.max(0, from), Math.max(0, Math.min(dist.length, to + 1))).reduce((a, b) => a + b, 0);
  return { atLeast: Math.min(1, sum(Math.ceil(x), dist.length - 1)), atMost: Math.min(1, sum(0, Math.floor(x))) };
}

export interface TwoChoicesOptions {
  alpha?: number;
  /**
   * How far (relative) the implementation's draw probabilities may be from the weight shares: haproxy
   * draws through its consistent-hash ring (16 points per unit of weight), so a server's share of the ring
   * is its weight share only approximately. 0 for an exact weighted draw.
   */
  drawSlack?: number;
}

export interface TwoChoicesVerdict extends PickVerdict {
  /** Decisions with a most-loaded class below the top / a least-loaded class not everyone is in. */
  maxSteps: number;
  minSteps: number;
  /** Picks of a most-loaded server, and the most a two-choices scheduler allows (expected, upper bound). */
  mostLoadedPicks: number;
  mostLoadedBound: number;
  /** Picks outside the least loaded, and the fewest a two-choices scheduler produces (expected, lower bound). */
  notLeastPicks: number;
  notLeastBound: number;
  pMostLoaded: number;
  pNotLeast: number;
}

/**
 * "Power of two choices": two servers drawn at random by weight, the one with fewer active connections per
 * unit of weight wins. Given the loads at each decision (r = a/w per server, p = weight shares):
 *  - the pick is one of the most loaded servers (class M, when not all are equal) only if both draws fell
 *    in M: P <= p_M^2 (independent draws; distinct draws make it smaller);
 *  - the pick is outside the least loaded (class L) exactly when neither draw fell in L: P >= the
 *    distinct-draw value sum_{i not in L} p_i (p_out - p_i) / (1 - p_i), which is below (1 - p_L)^2.
 * Counts of both events are compared with the Poisson-binomial laws of those per-decision bounds, each at
 * 0.45 alpha; picks that repeat with a period up to a quarter of their number fail when two random choices
 * would do so with probability below 0.1 alpha (so a correct implementation fails with probability <= alpha,
 * given the sequence of loads; like testRandomPicks, the per-decision probabilities are conditional on the
 * history). Picking the most loaded too often means load is ignored (random); too rarely leaving the least
 * loaded means it is least-connection; a short period means round-robin, which keeps held loads as even
 * as two choices do. A pick of a server of weight 0 or none fails at once.
 */
export function twoChoicesCheck(picks: readonly LoadPick[], servers: readonly CheckedServer[], opts: TwoChoicesOptions = {}): TwoChoicesVerdict {
  const alpha = opts.alpha ?? ALPHA;
  const slack = opts.drawSlack ?? 0;
  const el = eligible(servers);
  const W = el.reduce((a, s) => a + s.weight, 0);
  const share = new Map(el.map((s) => [s.name, s.weight / W]));
  const empty = { maxSteps: 0, minSteps: 0, mostLoadedPicks: 0, mostLoadedBound: 0, notLeastPicks: 0, notLeastBound: 0, pMostLoaded: 1, pNotLeast: 1 };
  const bad = unknownPick(picks, servers);
  if (bad) return { ...bad, ...empty };
  const qMax: number[] = [];
  const qMin: number[] = [];
  let mostLoadedPicks = 0;
  let notLeastPicks = 0;
  for (const p of picks) {
    const r = new Map(el.map((s) => [s.name, (p.load[s.name] ?? 0) / s.weight]));
    const hi = Math.max(...r.values());
    const lo = Math.min(...r.values());
    if (hi === lo) continue; // every server equally loaded: any pick is right
    const M = el.filter((s) => r.get(s.name) === hi);
    const pM = Math.min(1, M.reduce((a, s) => a + share.get(s.name)!, 0) * (1 + slack));
    qMax.push(pM * pM);
    if (r.get(p.server!) === hi) mostLoadedPicks++;
    const out = el.filter((s) => r.get(s.name) !== lo);
    const pOut = out.reduce((a, s) => a + share.get(s.name)!, 0);
    const distinct = out.reduce((a, s) => a + share.get(s.name)! * (pOut - share.get(s.name)!) / (1 - share.get(s.name)!), 0);
    qMin.push(Math.max(0, Math.min(1, distinct * (1 - slack) ** 2)));
    if (r.get(p.server!) !== lo) notLeastPicks++;
  }
  const mostLoadedBound = qMax.reduce((a, b) => a + b, 0);
  const notLeastBound = qMin.reduce((a, b) => a + b, 0);
  const pMostLoaded = poissonBinomialTails(qMax, mostLoadedPicks).atLeast;
  const pNotLeast = poissonBinomialTails(qMin, notLeastPicks).atMost;
  const side = alpha * SIDE_SHARE;
  const tooLoaded = pMostLoaded < side;
  const tooLeast = pNotLeast < side;
  const cycle = shortestPeriod(picks.map((p) => p.server!), Math.floor(picks.length / 4));
  // P(a two-choices scheduler repeats with period k) <= (the largest chance any one server has of being
  // picked)^(decisions after the first k), summed over the periods looked at. A server is picked only if
  // drawn: 1 - (1 - p_s)^2 for independent draws, p_s + p_s * sum_{j != s} p_j / (1 - p_j) for distinct ones.
  const p1 = new Map(el.map((s) => [s.name, Math.min(1, share.get(s.name)! * (1 + slack))]));
  const drawn = el.map((s) => {
    const ps = p1.get(s.name)!;
    const distinct = ps + ps * el.filter((j) => j !== s).reduce((a, j) => a + p1.get(j.name)! / Math.max(1e-12, 1 - p1.get(j.name)!), 0);
    return Math.min(1, Math.max(1 - (1 - ps) ** 2, distinct));
  });
  const pickMax = Math.max(...drawn);
  let pPeriodic = 0;
  for (let k = 1; k <= Math.floor(picks.length / 4); k++) pPeriodic += pickMax ** (picks.length - k);
  const periodic = cycle !== undefined && pPeriodic < alpha * (1 - 2 * SIDE_SHARE);
  const figures = `${mostLoadedPicks} of ${qMax.length} unequal decisions went to a most-loaded server (two choices: at most ${mostLoadedBound.toFixed(1)} expected, P(>= ${mostLoadedPicks}) = ${pMostLoaded.toExponential(2)}); `
    + `${notLeastPicks} went to a server that was not least loaded (at least ${notLeastBound.toFixed(1)} expected, P(<= ${notLeastPicks}) = ${pNotLeast.toExponential(2)})`;
  const why = tooLoaded ? 'the most loaded server is picked more often than two random choices allow (load ignored?)'
    : tooLeast ? 'the least loaded server is picked more often than two random choices allow (least-connection?)'
      : periodic ? `the picks repeat with period ${cycle} (${picks.slice(0, cycle).map((p) => p.server).join(' ')}): a round-robin, not random draws (P <= ${pPeriodic.toExponential(1)} for two choices)` : '';
  return {
    ok: !tooLoaded && !tooLeast && !periodic,
    message: `${why ? `${why}: ` : ''}${figures}; alpha ${alpha} (${side.toExponential(1)} per side, the rest for periodicity)${slack ? `, draw shares within ±${(100 * slack).toFixed(0)}% of the weights` : ''}`,
    maxSteps: qMax.length, minSteps: qMin.length, mostLoadedPicks, mostLoadedBound, notLeastPicks, notLeastBound, pMostLoaded, pNotLeast,
  };
}

/** Share of alpha each Poisson-binomial side of twoChoicesCheck uses; the rest is the periodicity check's. */
const SIDE_SHARE = 0.45;

/** The shortest period k <= maxPeriod with picks[i] === picks[i - k] for every i >= k, if any. */
export function shortestPeriod(picks: readonly string[], maxPeriod: number): number | undefined {
  for (let k = 1; k <= maxPeriod; k++) if (picks.every((p, i) => i < k || p === picks[i - k])) return k;
  return undefined;
}

// ---- loads from held connections ------------------------------------------------------------------

/**
 * Book-keeping of held connections for the load-aware checks: batches opened one after another (each
 * connection of a batch scheduled while the earlier ones of the batch were open), released whole.
 */
export class HeldLoad {
  private readonly live = new Map<number, Array<string | null>>();
  private nextId = 0;
  readonly picks: LoadPick[] = [];

  /** Active connections per server now. */
  load(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const b of this.live.values()) for (const s of b) if (s !== null) out[s] = (out[s] ?? 0) + 1;
    return out;
  }

  get active(): number {
    return [...this.live.values()].reduce((a, b) => a + b.filter((s) => s !== null).length, 0);
  }

  /** A batch of picks (in order) was made and is held now; returns its id for release(). */
  opened(servers: ReadonlyArray<string | null>): number {
    const now = this.load();
    for (const s of servers) {
      this.picks.push({ server: s, load: { ...now } });
      if (s !== null) now[s] = (now[s] ?? 0) + 1;
    }
    const id = this.nextId++;
    this.live.set(id, [...servers]);
    return id;
  }

  released(id: number): void {
    if (!this.live.delete(id)) throw new Error(`batch ${id} is not held`);
  }

  liveBatches(): number[] {
    return [...this.live.keys()];
  }
}

/** One step of a held-connection schedule: open a batch of connections (held), or release a batch by its number. */
export type HeldOp = { op: 'open'; count: number } | { op: 'release'; batch: number };

export interface HeldScheduleOptions {
  /** Connections to open in all (decisions to check). */
  picks: number;
  /** Most connections held at once (keep it at or below the servers' capacity for ovf). */
  maxHeld: number;
  /** Largest batch. */
  maxBatch: number;
}

/**
 * A reproducible schedule of opening and releasing held connections (batches numbered in opening order):
 * releases of batches that landed unevenly leave the loads unequal, which is what makes the load-aware
 * checks able to tell a scheduler that looks at load from one that does not. Ends with every batch released.
 */
export function heldSchedule(seed: number, o: HeldScheduleOptions): HeldOp[] {
  if (!(o.picks >= 1 && o.maxHeld >= 1 && o.maxBatch >= 1)) throw new RangeError('picks, maxHeld and maxBatch must be >= 1');
  const rng = new SeededRandom(seed);
  const ops: HeldOp[] = [];
  const live = new Map<number, number>();
  let batches = 0;
  let opened = 0;
  const held = () => [...live.values()].reduce((a, b) => a + b, 0);
  while (opened < o.picks) {
    const room = Math.min(o.maxHeld - held(), o.picks - opened);
    if (room > 0 && (live.size === 0 || rng.next() < 0.55)) {
      const count = Math.min(room, 1 + rng.below(o.maxBatch));
      ops.push({ op: 'open', count });
      live.set(batches++, count);
      opened += count;
    } else {
      const ids = [...live.keys()];
      const id = ids[rng.below(ids.length)];
      ops.push({ op: 'release', batch: id });
      live.delete(id);
    }
  }
  for (const id of live.keys()) ops.push({ op: 'release', batch: id });
  return ops;
}
