import { expect, test } from '@playwright/test';
import { SeededRandom } from '../../src/models/prng';
import {
  ALPHA, chiSquareCdf, chiSquareQuantile, chiSquareSf, chiSquareTest, chiSquareUpperQuantile, gammaP, gammaQ, gTest, logGamma,
  nonCentralChiSquareSf, removalDisruption, requiredSampleSize, sampleMultinomial, seededFlows, testDistribution,
} from '../../src/models/stats';

test.describe('special functions', () => {
  test('chi-square quantiles agree with the printed tables', () => {
    // Standard upper-tail table values (e.g. NIST/SEMATECH e-Handbook, Table of the chi-square distribution).
    const table: [number, number, number][] = [
      [0.05, 1, 3.841], [0.05, 2, 5.991], [0.05, 5, 11.070], [0.05, 10, 18.307], [0.05, 30, 43.773], [0.05, 100, 124.342],
      [0.01, 1, 6.635], [0.01, 4, 13.277], [0.01, 10, 23.209], [0.01, 20, 37.566],
      [0.001, 1, 10.828], [0.001, 10, 29.588], [0.001, 50, 86.661],
    ];
    for (const [alpha, df, x] of table) expect(chiSquareUpperQuantile(alpha, df), `df ${df} alpha ${alpha}`).toBeCloseTo(x, 3);
    expect(chiSquareQuantile(0.95, 1)).toBeCloseTo(3.8414588, 6);
  });

  test('closed forms: df 2 has SF e^(-x/2); the 1e-4 critical values used by the suites', () => {
    for (const x of [0.1, 1, 5, 18.420680743952364, 40]) expect(chiSquareSf(x, 2)).toBeCloseTo(Math.exp(-x / 2), 14);
    expect(chiSquareUpperQuantile(1e-4, 2)).toBeCloseTo(-2 * Math.log(1e-4), 8); // 18.420681
    expect(chiSquareUpperQuantile(1e-4, 1)).toBeCloseTo(15.136705, 5); // = z(0.99995)^2 = 3.890592^2
  });

  test('incomplete gamma: integer a has a finite series; P + Q = 1; log-gamma of integers', () => {
    const pInt = (n: number, x: number) => {
      let s = 0, t = 1;
      for (let k = 0; k < n; k++) { s += t; t *= x / (k + 1); }
      return 1 - Math.exp(-x) * s;
    };
    for (const n of [1, 2, 3, 7, 20]) for (const x of [0.3, 2, 9, 25, 60]) {
      expect(gammaP(n, x), `P(${n}, ${x})`).toBeCloseTo(pInt(n, x), 12);
      expect(gammaP(n, x) + gammaQ(n, x)).toBeCloseTo(1, 14);
    }
    let f = 0;
    for (let n = 1; n < 30; n++) {
      expect(logGamma(n)).toBeCloseTo(f, 10);
      f += Math.log(n);
    }
    expect(logGamma(0.5)).toBeCloseTo(0.5 * Math.log(Math.PI), 13);
    // a far tail stays accurate (no 1 - P cancellation)
    expect(chiSquareSf(200, 10)).toBeGreaterThan(0);
    expect(chiSquareSf(200, 10)).toBeLessThan(1e-30);
    expect(chiSquareCdf(chiSquareQuantile(0.3, 7), 7)).toBeCloseTo(0.3, 10);
  });

  test('non-central chi-square: reduces to the central one, and matches a reference value and a simulation', () => {
    expect(nonCentralChiSquareSf(10, 3, 0)).toBeCloseTo(chiSquareSf(10, 3), 14);
    expect(nonCentralChiSquareSf(10, 3, 5)).toBeCloseTo(0.29335135222254816, 10); // scipy.stats.ncx2.sf(10, 3, 5)
    const rng = new SeededRandom(5);
    const gauss = () => {
      let u = 0;
      while (u === 0) u = rng.next();
      return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rng.next());
    };
    const N = 100000;
    let hits = 0;
    for (let i = 0; i < N; i++) {
      const a = gauss() + Math.sqrt(5), b = gauss(), c = gauss();
      if (a * a + b * b + c * c > 10) hits++;
    }
    // binomial sd at p = 0.293, N = 1e5 is 0.0014; allow 5 sd
    expect(Math.abs(hits / N - nonCentralChiSquareSf(10, 3, 5))).toBeLessThan(0.0075);
  });
});

test.describe('goodness-of-fit tests', () => {
  test('chi-square and G statistics by hand', () => {
    // observed 30/20/10 against weights 3:2:1 (expected 30/20/10): a perfect fit
    const perfect = chiSquareTest([30, 20, 10], [3, 2, 1]);
    expect(perfect.statistic).toBe(0);
    expect(perfect.pValue).toBe(1);
    // 60/40 against 1:1 (expected 50/50): X2 = (10^2 + 10^2)/50 = 4, df 1, p = 0.0455
    const x = chiSquareTest([60, 40], [1, 1], { alpha: 0.05 });
    expect(x.statistic).toBeCloseTo(4, 12);
    expect(x.pValue).toBeCloseTo(0.04550026, 7);
    expect(x.rejected).toBe(true);
    // G = 2 (60 ln 1.2 + 40 ln 0.8) = 4.02710; Williams q = 1 + 3/600 = 1.005
    const g = gTest([60, 40], [1, 1], { williams: false });
    expect(g.statistic).toBeCloseTo(2 * (60 * Math.log(1.2) + 40 * Math.log(0.8)), 12);
    expect(gTest([60, 40], [1, 1]).statistic).toBeCloseTo(g.statistic / 1.005, 12);
  });

  test('a flow on a weight-0 server is an immediate failure', () => {
    const r = chiSquareTest([50, 50, 1], [1, 1, 0], { labels: ['a', 'b', 'c'] });
    expect(r.rejected).toBe(true);
    expect(r.impossible).toMatch(/c has weight 0 but got 1/);
  });

  test('testDistribution: passes a fair sample, fails a skewed one, names the shares', () => {
    const servers = [{ name: 'a', weight: 1 }, { name: 'b', weight: 3 }];
    const fair = [...Array(2500).fill('a'), ...Array(7500).fill('b')];
    expect(testDistribution(fair, servers).ok).toBe(true);
    const skewed = [...Array(2800).fill('a'), ...Array(7200).fill('b')];
    const v = testDistribution(skewed, servers);
    expect(v.ok).toBe(false);
    expect(v.message).toMatch(/a 2800 \(28\.0%, expected 25\.0%\)/);
    expect(testDistribution([...fair.slice(1), null], servers).ok).toBe(false);
  });
});

test.describe('sample size from tolerance and power', () => {
  test('two servers: agrees with the normal-approximation formula n = (z(1-a/2) + z(power))^2 / (4 d^2)', () => {
    const plan = requiredSampleSize({ weights: [1, 1], tolerance: 0.05, power: 0.99 });
    const z = 3.890592 + 2.326348; // z(1 - 1e-4/2), z(0.99)
    expect(plan.n / ((z * z) / (4 * 0.05 * 0.05))).toBeGreaterThan(0.99);
    expect(plan.n / ((z * z) / (4 * 0.05 * 0.05))).toBeLessThan(1.01);
    expect(plan.power).toBeGreaterThanOrEqual(0.99);
    expect(plan.alpha).toBe(ALPHA);
  });

  test('smaller tolerance needs more flows; relative tolerance is driven by the smallest share', () => {
    const a = requiredSampleSize({ weights: [4, 3, 2], tolerance: 0.05 }).n;
    const b = requiredSampleSize({ weights: [4, 3, 2], tolerance: 0.02 }).n;
    expect(b).toBeGreaterThan(5 * a); // ~ (0.05/0.02)^2 = 6.25
    // effect w^2 = min over servers of delta^2 / (p (1 - p)), by hand for shares 0.1, 0.1, 0.8:
    // absolute 0.02: 0.0004 / (0.8 * 0.2) = 0.0025 (the 0.8 share is the hardest to see move)
    expect(requiredSampleSize({ weights: [1, 1, 8], tolerance: 0.02 }).effect).toBeCloseTo(0.0025, 12);
    // relative 20%: (0.2 p)^2 / (p (1 - p)) = 0.04 p / (1 - p), smallest at p = 0.1: 0.004444
    expect(requiredSampleSize({ weights: [1, 1, 8], tolerance: 0.2, kind: 'relative' }).effect).toBeCloseTo(0.04 * 0.1 / 0.9, 12);
  });

  test('power holds by simulation: a deviation of exactly the tolerance is detected >= 97.5% of the time', () => {
    const plan = requiredSampleSize({ weights: [1, 1], tolerance: 0.1, power: 0.99 });
    const rng = new SeededRandom(2024);
    let detected = 0;
    const trials = 2000;
    for (let t = 0; t < trials; t++) if (chiSquareTest(sampleMultinomial(rng, plan.n, [0.6, 0.4]), [1, 1]).rejected) detected++;
    expect(detected / trials).toBeGreaterThanOrEqual(0.975);
  });
});

test.describe('false-failure rate by simulation (seeded, so the same numbers every run)', () => {
  // Under the null hypothesis (a correct implementation) a test at level alpha must fail at most an
  // alpha fraction of the time. The chi-square reference distribution is an approximation; these
  // simulations check it where the suites use it.
  const simulate = (alpha: number, n: number, weights: number[], trials: number, seed: number) => {
    const rng = new SeededRandom(seed);
    const p = weights.map((w) => w / weights.reduce((a, b) => a + b, 0));
    let chi = 0, g = 0, both = 0;
    for (let t = 0; t < trials; t++) {
      const obs = sampleMultinomial(rng, n, p);
      const c = chiSquareTest(obs, weights, { alpha }).rejected;
      const gg = gTest(obs, weights, { alpha }).rejected;
      if (c) chi++;
      if (gg) g++;
      if (c || gg) both++;
    }
    return { chi, g, both };
  };

  test('at alpha = 0.01 the rejection rate is 1% within sampling error (calibration)', () => {
    const r = simulate(0.01, 400, [4, 3, 2], 20000, 7);
    // expected 200 rejections, binomial sd 14: allow 4 sd
    for (const k of [r.chi, r.g]) {
      expect(k).toBeGreaterThan(200 - 56);
      expect(k).toBeLessThan(200 + 56);
    }
  });

  test('at alpha = 1e-4 with the minimum expected counts the suites use, the rate stays at most 1e-4', () => {
    // n chosen as requiredSampleSize's floor would make it: smallest expected count 20 (n * 2/9 >= 20)
    const trials = 200000;
    const r = simulate(ALPHA, 90, [4, 3, 2], trials, 11);
    // 1e-4 * 2e5 = 20 expected; P(Poisson(20) > 35) < 1e-3: more than 35 would mean the approximation is off
    expect(r.chi).toBeLessThanOrEqual(35);
    expect(r.g).toBeLessThanOrEqual(35);
    // testDistribution runs both at alpha / 2 each: its union stays within the same bound
    const u = simulate(ALPHA / 2, 90, [4, 3, 2], trials, 13);
    expect(u.both).toBeLessThanOrEqual(35);
  });
});

test.describe('seeded flows and disruption', () => {
  test('seededFlows reproduces from its seed and stays in the prefix', () => {
    const a = seededFlows(42, 100, '198.18.64.0/18').map((f) => `${f.client.text}:${f.cport}`);
    expect(seededFlows(42, 100, '198.18.64.0/18').map((f) => `${f.client.text}:${f.cport}`)).toEqual(a);
    expect(seededFlows(43, 100, '198.18.64.0/18').map((f) => `${f.client.text}:${f.cport}`)).not.toEqual(a);
    expect(() => seededFlows(1, 10, '10.0.0.0/40')).toThrow(/prefix length 40/);
  });

  test('removalDisruption by hand', () => {
    const before = ['a', 'b', 'c', 'a', 'b', 'c'];
    const after = ['a', 'a', 'c', 'c', 'a', 'c'];
    const d = removalDisruption(before, after, 'b');
    expect(d).toMatchObject({ total: 6, moved: 3, forced: 2, collateral: 1, ratioToIdeal: 1.5 });
    expect(d.idealFraction).toBeCloseTo(1 / 3, 12);
  });
});
