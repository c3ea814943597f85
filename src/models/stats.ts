// Statistics for schedulers whose individual choices cannot be predicted (random ones such as
// twos, or implementations other than the kernel's): goodness-of-fit tests of observed per-server
// counts against the weights, the sample size a test needs to detect a given deviation with a given
// power, seeded flow sets so a failure reproduces from its seed, and the disruption a hash scheduler
// causes when a server is removed.
//
// Error budget. Every test rejects at level ALPHA = 1e-4: with the sample sizes below the chance
// that a correct implementation fails one test is at most 1e-4 (up to the accuracy of the
// chi-square approximation, which tests/models/stats.spec.ts checks by simulation). A suite running
// m such tests has a false-failure probability of at most m * 1e-4 (union bound).

import type { Address } from './address';
import { chiSquareSf, chiSquareUpperQuantile, nonCentralChiSquareSf } from './special-functions';
import { expandGenerated, ScenarioErrors, type ScenarioError } from './scenario';
import type { SeededRandom } from './prng';

export * from './special-functions';

/** Level of every statistical test: the per-test false-failure probability. */
export const ALPHA = 1e-4;

export interface GoodnessOfFit {
  test: 'chi-square' | 'G';
  statistic: number;
  df: number;
  pValue: number;
  /** pValue < alpha */
  rejected: boolean;
  alpha: number;
  /** Expected counts used (after dropping zero-probability categories). */
  expected: number[];
  /** Set when a category with probability 0 was observed (an impossible outcome). */
  impossible?: string;
}

function normalise(weights: readonly number[]): number[] {
  if (weights.some((w) => !(w >= 0) || !Number.isFinite(w))) throw new RangeError(`weights must be finite and >= 0: ${weights.join(', ')}`);
  const total = weights.reduce((a, b) => a + b, 0);
  if (!(total > 0)) throw new RangeError('at least one weight must be positive');
  return weights.map((w) => w / total);
}

function prepare(observed: readonly number[], weights: readonly number[], labels?: readonly string[]) {
  if (observed.length !== weights.length) throw new RangeError(`observed has ${observed.length} categories, weights ${weights.length}`);
  if (observed.some((o) => !Number.isInteger(o) || o < 0)) throw new RangeError('observed counts must be non-negative integers');
  const p = normalise(weights);
  const n = observed.reduce((a, b) => a + b, 0);
  let impossible: string | undefined;
  const obs: number[] = [];
  const exp: number[] = [];
  for (let i = 0; i < p.length; i++) {
    if (p[i] === 0) {
      if (observed[i] > 0 && impossible === undefined) impossible = `${labels?.[i] ?? `category ${i}`} has weight 0 but got ${observed[i]}`;
      continue;
    }
    obs.push(observed[i]);
    exp.push(n * p[i]);
  }
  return { n, obs, exp, impossible };
}

/** Pearson's chi-square goodness-of-fit test of counts against weights (proportions). */
export function chiSquareTest(observed: readonly number[], weights: readonly number[], opts: { alpha?: number; labels?: readonly string[] } = {}): GoodnessOfFit {
  const alpha = opts.alpha ?? ALPHA;
  const { obs, exp, impossible } = prepare(observed, weights, opts.labels);
  const df = exp.length - 1;
  if (impossible) return { test: 'chi-square', statistic: Infinity, df, pValue: 0, rejected: true, alpha, expected: exp, impossible };
  let x2 = 0;
  for (let i = 0; i < obs.length; i++) x2 += (obs[i] - exp[i]) ** 2 / exp[i];
  const pValue = df > 0 ? chiSquareSf(x2, df) : 1;
  return { test: 'chi-square', statistic: x2, df, pValue, rejected: pValue < alpha, alpha, expected: exp };
}

/**
 * G-test (log-likelihood ratio) G = 2 sum O ln(O/E), with Williams' correction
 * q = 1 + (k + 1) / (6 n) (k categories) unless williams = false.
 */
export function gTest(observed: readonly number[], weights: readonly number[], opts: { alpha?: number; labels?: readonly string[]; williams?: boolean } = {}): GoodnessOfFit {
  const alpha = opts.alpha ?? ALPHA;
  const { n, obs, exp, impossible } = prepare(observed, weights, opts.labels);
  const df = exp.length - 1;
  if (impossible) return { test: 'G', statistic: Infinity, df, pValue: 0, rejected: true, alpha, expected: exp, impossible };
  let g = 0;
  for (let i = 0; i < obs.length; i++) if (obs[i] > 0) g += obs[i] * Math.log(obs[i] / exp[i]);
  g *= 2;
  if (opts.williams !== false && n > 0) g /= 1 + (exp.length + 1) / (6 * n);
  const pValue = df > 0 ? chiSquareSf(g, df) : 1;
  return { test: 'G', statistic: g, df, pValue, rejected: pValue < alpha, alpha, expected: exp };
}

export interface SampleSizeRequest {
  /** Server weights (the null hypothesis: shares proportional to them). */
  weights: readonly number[];
  /**
   * Smallest deviation to detect. 'absolute': some server's share differs from its expected share
   * by at least `tolerance` (e.g. 0.02 = two percentage points); 'relative': by at least
   * tolerance * its expected share.
   */
  tolerance: number;
  kind?: 'absolute' | 'relative';
  /** Probability of detecting such a deviation (default 0.99). */
  power?: number;
  alpha?: number;
  /** Smallest expected count per category, for the chi-square approximation (default 20). */
  minExpected?: number;
}

export interface SampleSizePlan {
  n: number;
  /** Critical value of the statistic at alpha. */
  critical: number;
  df: number;
  /** Effect size w^2 = min over alternatives of sum (p1 - p0)^2 / p0. */
  effect: number;
  power: number;
  alpha: number;
}

/**
 * The least favourable alternative with one share off by delta (others absorbing it in proportion)
 * has sum (p1 - p0)^2 / p0 = delta^2 / (p0 (1 - p0)); the test must detect the smallest such value
 * over the servers. Power at n is P(noncentral chi2(df, n w^2) > critical).
 */
export function requiredSampleSize(req: SampleSizeRequest): SampleSizePlan {
  const alpha = req.alpha ?? ALPHA;
  const power = req.power ?? 0.99;
  const kind = req.kind ?? 'absolute';
  const p = normalise(req.weights).filter((x) => x > 0);
  if (p.length < 2) throw new RangeError('a distribution test needs at least two servers with weight > 0');
  if (!(req.tolerance > 0)) throw new RangeError(`tolerance must be > 0, got ${req.tolerance}`);
  if (!(power > alpha && power < 1)) throw new RangeError(`power must be in (alpha, 1), got ${power}`);
  let effect = Infinity;
  for (const pi of p) {
    const delta = kind === 'absolute' ? req.tolerance : req.tolerance * pi;
    if (delta >= 1) continue;
    effect = Math.min(effect, (delta * delta) / (pi * (1 - pi)));
  }
  const df = p.length - 1;
  const critical = chiSquareUpperQuantile(alpha, df);
  const powerAt = (n: number) => nonCentralChiSquareSf(critical, df, n * effect);
  let hi = 16;
  while (powerAt(hi) < power) hi *= 2;
  let lo = hi / 2;
  while (hi - lo > 1) {
    const mid = Math.floor((lo + hi) / 2);
    if (powerAt(mid) >= power) hi = mid;
    else lo = mid;
  }
  const minExpected = req.minExpected ?? 20;
  const n = Math.max(hi, Math.ceil(minExpected / Math.min(...p)));
  return { n, critical, df, effect, power: powerAt(n), alpha };
}

/** Per-server counts in the order of `names` (null = no server). */
export function countAssignments(assignments: readonly (string | null)[], names: readonly string[]): { counts: number[]; unknown: number } {
  const idx = new Map(names.map((n, i) => [n, i]));
  const counts = names.map(() => 0);
  let unknown = 0;
  for (const a of assignments) {
    const i = a === null ? undefined : idx.get(a);
    if (i === undefined) unknown++;
    else counts[i]++;
  }
  return { counts, unknown };
}

export interface DistributionVerdict {
  ok: boolean;
  chiSquare: GoodnessOfFit;
  g: GoodnessOfFit;
  counts: Record<string, number>;
  /** Flows that went nowhere or to a server outside `servers`: any is a failure. */
  unexpected: number;
  message: string;
}

/**
 * Tests observed assignments against the servers' weights with both the chi-square and the G test
 * at `alpha` (each); fails when either rejects or any flow went to no/unknown server.
 * The false-failure probability is at most 2 * alpha for the pair (union bound).
 */
export function testDistribution(assignments: readonly (string | null)[], servers: readonly { name: string; weight: number }[], alpha = ALPHA / 2): DistributionVerdict {
  const names = servers.map((s) => s.name);
  const weights = servers.map((s) => s.weight);
  const { counts, unknown } = countAssignments(assignments, names);
  const chi = chiSquareTest(counts, weights, { alpha, labels: names });
  const g = gTest(counts, weights, { alpha, labels: names });
  const ok = !chi.rejected && !g.rejected && unknown === 0;
  const byName = Object.fromEntries(names.map((n, i) => [n, counts[i]]));
  const total = assignments.length;
  const share = names.map((n, i) => `${n} ${counts[i]} (${((100 * counts[i]) / Math.max(1, total)).toFixed(1)}%, expected ${((100 * weights[i]) / weights.reduce((a, b) => a + b, 0)).toFixed(1)}%)`).join(', ');
  const message = ok
    ? `distribution matches the weights: ${share}; chi2 p=${chi.pValue.toExponential(2)}, G p=${g.pValue.toExponential(2)}`
    : `distribution does not match the weights (alpha ${alpha} per test): ${share}${unknown ? `, ${unknown} flows to no or unknown server` : ''}; ` +
      `chi2=${chi.statistic.toFixed(2)} p=${chi.pValue.toExponential(2)}, G=${g.statistic.toFixed(2)} p=${g.pValue.toExponential(2)}${chi.impossible ? `; ${chi.impossible}` : ''}`;
  return { ok, chiSquare: chi, g, counts: byName, unexpected: unknown, message };
}

/**
 * Checks a run of a random scheduler pick by pick: `distributions[i]` is the exact distribution of
 * pick i given the history (from the model fed with the observed picks). Fails at once if a pick
 * had probability 0; otherwise compares the observed totals with the expected totals
 * (sum of the per-pick probabilities) by Pearson's statistic. For independent non-identical
 * categorical picks each count's variance is at most that of a multinomial with the same means, so
 * the chi-square reference distribution makes this test conservative.
 */
export function testRandomPicks(
  observed: readonly (string | null)[],
  distributions: readonly { server: string | null; probability: number }[][],
  alpha = ALPHA,
): { ok: boolean; message: string; impossibleAt?: number; pValue?: number } {
  if (observed.length !== distributions.length) throw new RangeError('one distribution per observed pick is needed');
  const expected = new Map<string, number>();
  const seen = new Map<string, number>();
  for (let i = 0; i < observed.length; i++) {
    const key = observed[i] ?? '(none)';
    const d = distributions[i];
    const p = d.find((c) => (c.server ?? '(none)') === key)?.probability ?? 0;
    if (p <= 0) return { ok: false, impossibleAt: i, message: `pick ${i} went to ${key}, which the model says is impossible there (possible: ${d.map((c) => `${c.server ?? 'none'} ${(100 * c.probability).toFixed(1)}%`).join(', ')})` };
    for (const c of d) expected.set(c.server ?? '(none)', (expected.get(c.server ?? '(none)') ?? 0) + c.probability);
    seen.set(key, (seen.get(key) ?? 0) + 1);
  }
  const keys = [...expected.keys()].filter((k) => (expected.get(k) ?? 0) > 0);
  let x2 = 0;
  for (const k of keys) x2 += ((seen.get(k) ?? 0) - expected.get(k)!) ** 2 / expected.get(k)!;
  const df = keys.length - 1;
  const pValue = df > 0 ? chiSquareSf(x2, df) : 1;
  return { ok: pValue >= alpha, pValue, message: `observed ${JSON.stringify(Object.fromEntries(seen))}, expected ${JSON.stringify(Object.fromEntries([...expected].map(([k, v]) => [k, Number(v.toFixed(1))])))}, chi2=${x2.toFixed(2)} p=${pValue.toExponential(2)}` };
}

/**
 * A reproducible set of distinct client (address, port) pairs: the same generator the scenario
 * format's {"generate": ...} flows use, so a statistical failure can be replayed from its seed.
 */
export function seededFlows(seed: number, count: number, clients: string, cports: [number, number] = [1024, 65535]): { client: Address; cport: number }[] {
  const errors: ScenarioError[] = [];
  const out = expandGenerated({ seed, count, clients, cports }, '$', errors);
  if (errors.length) throw new ScenarioErrors(errors);
  return out;
}

export interface Disruption {
  total: number;
  /** Flows whose server changed. */
  moved: number;
  movedFraction: number;
  /** Flows that were on the removed server (they must move): the ideal movedFraction, ~1/N. */
  forced: number;
  idealFraction: number;
  /** Flows moved although their server stayed. */
  collateral: number;
  collateralFraction: number;
  /** movedFraction / idealFraction: 1 is perfect consistent hashing. */
  ratioToIdeal: number;
}

/** Compares the assignments of the same flows before and after removing server `removed`. */
export function removalDisruption(before: readonly (string | null)[], after: readonly (string | null)[], removed: string): Disruption {
  if (before.length !== after.length) throw new RangeError('before and after must cover the same flows');
  let moved = 0, forced = 0, collateral = 0;
  for (let i = 0; i < before.length; i++) {
    if (before[i] === removed) forced++;
    if (before[i] !== after[i]) {
      moved++;
      if (before[i] !== removed) collateral++;
    }
  }
  const total = before.length;
  return {
    total,
    moved,
    movedFraction: moved / total,
    forced,
    idealFraction: forced / total,
    collateral,
    collateralFraction: collateral / total,
    ratioToIdeal: forced ? moved / forced : moved ? Infinity : 1,
  };
}

/** Multinomial sample of n draws over probabilities p (for simulations). */
export function sampleMultinomial(rng: SeededRandom, n: number, p: readonly number[]): number[] {
  const cum: number[] = [];
  let s = 0;
  for (const x of p) cum.push((s += x));
  const counts = p.map(() => 0);
  for (let i = 0; i < n; i++) {
    const u = rng.next() * s;
    let j = 0;
    while (j < cum.length - 1 && u >= cum[j]) j++;
    counts[j]++;
  }
  return counts;
}
