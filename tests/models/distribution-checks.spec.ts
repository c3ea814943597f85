// The distribution suite's checkers (src/models/distribution-checks.ts) against simulated schedulers run
// over the suite's own held-connection schedules: every correct discipline passes, each wrong one fails
// (the cases a wrong mapping in a driver would produce), and the two-choices test's false-failure rate and
// power are measured by simulation. No lab.
import { expect, test } from '@playwright/test';
import {
  cyclicWindowCheck, heldSchedule, HeldLoad, leastConnectionCheck, overflowCheck, poissonBinomialTails, shortestPeriod, twoChoicesCheck,
  type CheckedServer, type HeldOp,
} from '../../src/models/distribution-checks';
import { SeededRandom } from '../../src/models/prng';
import { DIST_SCHEDULES } from '../../suites/distribution/plan';

type Picker = (load: Record<string, number>) => string;

/** Runs a schedule with a scheduler that sees the current active counts; returns the recorded picks. */
function simulate(ops: HeldOp[], pick: Picker): HeldLoad {
  const h = new HeldLoad();
  const ids: number[] = [];
  for (const op of ops) {
    if (op.op === 'open') {
      const batch: string[] = [];
      for (let k = 0; k < op.count; k++) {
        const load = h.load();
        for (const s of batch) load[s] = (load[s] ?? 0) + 1;
        batch.push(pick(load));
      }
      ids.push(h.opened(batch));
    } else h.released(ids[op.batch]);
  }
  return h;
}

const EQUAL3: CheckedServer[] = [{ name: 'rs1', weight: 1 }, { name: 'rs2', weight: 1 }, { name: 'rs3', weight: 1 }];
const TWOS3: CheckedServer[] = EQUAL3.map((s) => ({ ...s, weight: 256 }));
const r = (load: Record<string, number>, s: CheckedServer) => (load[s.name] ?? 0) / s.weight;

function roundRobin(servers: CheckedServer[]): Picker {
  let i = 0;
  return () => servers[i++ % servers.length].name;
}
function leastConn(servers: CheckedServer[], rng: SeededRandom): Picker {
  return (load) => {
    const lo = Math.min(...servers.map((s) => r(load, s)));
    const c = servers.filter((s) => r(load, s) === lo);
    return c[rng.below(c.length)].name;
  };
}
function weightedDraw(servers: CheckedServer[], rng: SeededRandom, shares?: number[]): () => CheckedServer {
  const p = shares ?? servers.map((s) => s.weight);
  const total = p.reduce((a, b) => a + b, 0);
  return () => {
    let x = rng.next() * total;
    for (let i = 0; i < servers.length; i++) if ((x -= p[i]) < 0) return servers[i];
    return servers[servers.length - 1];
  };
}
/** Two draws, independent (IPVS, haproxy) or distinct (nginx); the strictly less loaded wins, else the second. */
function twoChoices(servers: CheckedServer[], rng: SeededRandom, distinct: boolean, shares?: number[]): Picker {
  const draw = weightedDraw(servers, rng, shares);
  return (load) => {
    const a = draw();
    let b = draw();
    while (distinct && b === a) b = draw();
    return r(load, a) < r(load, b) ? a.name : b.name;
  };
}
function randomOne(servers: CheckedServer[], rng: SeededRandom): Picker {
  const draw = weightedDraw(servers, rng);
  return () => draw().name;
}

test.describe('cyclic windows (rr, wrr)', () => {
  const W421: CheckedServer[] = [{ name: 'a', weight: 4 }, { name: 'b', weight: 2 }, { name: 'c', weight: 1 }];
  test('nftables slots (a a a a b b c), IPVS interleaving and nginx smooth wrr all pass; the cycle may start anywhere', () => {
    const slots = 'a a a a b b c'.split(' ');
    const ipvs = 'a a b a a b c'.split(' ');
    const smooth = 'a b a c a b a'.split(' ');
    for (const cycle of [slots, ipvs, smooth]) {
      const seq = Array.from({ length: 50 }, (_, i) => cycle[(i + 3) % 7]);
      expect(cyclicWindowCheck(seq, W421).ok).toBe(true);
    }
  });
  test('a skipped slot, a repeated server, an unanswered connection and a weighted random order fail at the window that shows it', () => {
    const seq = Array.from({ length: 30 }, (_, i) => 'aaaabbc'[i % 7]);
    const skipped = [...seq.slice(0, 10), ...seq.slice(11)];
    expect(cyclicWindowCheck(skipped, W421)).toMatchObject({ ok: false, at: 4 });
    const extra = [...seq.slice(0, 9), 'a', ...seq.slice(9)];
    expect(cyclicWindowCheck(extra, W421).ok).toBe(false);
    expect(cyclicWindowCheck([...seq.slice(0, 20), null, ...seq.slice(21)], W421)).toMatchObject({ ok: false, at: 20 });
    const rng = new SeededRandom(7);
    const draw = weightedDraw(W421, rng);
    expect(cyclicWindowCheck(Array.from({ length: 70 }, () => draw().name), W421).ok).toBe(false);
    expect(() => cyclicWindowCheck(seq.slice(0, 13), W421)).toThrow(/at least 14 picks/);
  });
  test('rr: a per-connection counter over equal weights passes, one that counts every other packet does not', () => {
    const rr = Array.from({ length: 30 }, (_, i) => `rs${(i % 3) + 1}`);
    expect(cyclicWindowCheck(rr, EQUAL3).ok).toBe(true);
    const twice = Array.from({ length: 30 }, (_, i) => `rs${(Math.floor(i / 2) % 3) + 1}`);
    expect(cyclicWindowCheck(twice, EQUAL3).ok).toBe(false);
  });
});

test.describe('least connection with held connections', () => {
  const ops = heldSchedule(DIST_SCHEDULES.lc.seed, DIST_SCHEDULES.lc);
  test('the suite\'s schedule: least connection passes, round-robin and random fail', () => {
    expect(ops.filter((o) => o.op === 'open').reduce((a, o) => a + (o as { count: number }).count, 0)).toBe(DIST_SCHEDULES.lc.picks);
    expect(leastConnectionCheck(simulate(ops, leastConn(EQUAL3, new SeededRandom(1))).picks, EQUAL3).ok).toBe(true);
    const rr = leastConnectionCheck(simulate(ops, roundRobin(EQUAL3)).picks, EQUAL3);
    expect(rr.ok).toBe(false);
    expect(rr.message).toMatch(/went to rs\d \(\d+ active, weight 1\) while rs\d had \d+/);
    for (let seed = 1; seed <= 20; seed++) expect(leastConnectionCheck(simulate(ops, randomOne(EQUAL3, new SeededRandom(seed))).picks, EQUAL3).ok).toBe(false);
  });
  test('weights count: a/w is compared, ties are free, weight 0 is never right', () => {
    const W: CheckedServer[] = [{ name: 'a', weight: 2 }, { name: 'b', weight: 1 }, { name: 'z', weight: 0 }];
    expect(leastConnectionCheck([{ server: 'a', load: { a: 2, b: 1 } }], W).ok).toBe(true); // 1 = 1: a tie
    expect(leastConnectionCheck([{ server: 'a', load: { a: 3, b: 1 } }], W)).toMatchObject({ ok: false, at: 0 });
    expect(leastConnectionCheck([{ server: 'z', load: {} }], W)).toMatchObject({ ok: false, at: 0 });
  });
});

test.describe('overflow (ovf, haproxy first)', () => {
  const OVF: CheckedServer[] = [{ name: 'rs1', weight: 3, upper: 3 }, { name: 'rs2', weight: 2, upper: 2 }, { name: 'rs3', weight: 2, upper: 2 }];
  const ops = heldSchedule(DIST_SCHEDULES.ovf.seed, DIST_SCHEDULES.ovf);
  const first: Picker = (load) => OVF.find((s) => (load[s.name] ?? 0) < s.upper!)!.name;
  test('filling in order passes; least connection, round-robin and the reverse order fail', () => {
    expect(overflowCheck(simulate(ops, first).picks, OVF).ok).toBe(true);
    expect(overflowCheck(simulate(ops, leastConn(OVF, new SeededRandom(2))).picks, OVF).ok).toBe(false);
    expect(overflowCheck(simulate(ops, roundRobin(OVF)).picks, OVF).ok).toBe(false);
    const reversed: Picker = (load) => [...OVF].reverse().find((s) => (load[s.name] ?? 0) < s.upper!)!.name;
    const v = overflowCheck(simulate(ops, reversed).picks, OVF);
    expect(v).toMatchObject({ ok: false, at: 0 });
    expect(v.message).toMatch(/went to rs3; the first server below its threshold was rs1/);
  });
  test('the schedule never holds more than the servers take', () => {
    let held = 0;
    const live = new Map<number, number>();
    let n = 0;
    for (const o of ops) {
      if (o.op === 'open') { live.set(n++, o.count); held += o.count; } else { held -= live.get(o.batch)!; live.delete(o.batch); }
      expect(held).toBeLessThanOrEqual(7);
    }
    expect(held).toBe(0);
  });
});

test.describe('two random choices', () => {
  const plan = DIST_SCHEDULES.twos;
  const ops = heldSchedule(plan.seed, plan);
  test('Poisson-binomial tails are exact on small cases', () => {
    expect(poissonBinomialTails([0.5, 0.5], 1).atLeast).toBeCloseTo(0.75, 12);
    expect(poissonBinomialTails([0.5, 0.5], 1).atMost).toBeCloseTo(0.75, 12);
    expect(poissonBinomialTails([0.1, 0.2, 0.3], 3).atLeast).toBeCloseTo(0.006, 12);
    expect(poissonBinomialTails([0.1, 0.2, 0.3], 0).atMost).toBeCloseTo(0.9 * 0.8 * 0.7, 12);
    expect(poissonBinomialTails([], 0)).toEqual({ atLeast: 1, atMost: 1 });
  });
  test('correct implementations pass: independent draws, distinct draws, and draw shares 8% off the weights with the slack the suite allows (200 runs each)', () => {
    const skewed = [256 * 1.08, 256, 256 * 0.92];
    const impls: Array<[string, (rng: SeededRandom) => Picker, number]> = [
      ['independent', (rng) => twoChoices(TWOS3, rng, false), 0],
      ['distinct', (rng) => twoChoices(TWOS3, rng, true), 0],
      ['independent, skewed ring', (rng) => twoChoices(TWOS3, rng, false, skewed), plan.drawSlack],
      ['distinct, skewed ring', (rng) => twoChoices(TWOS3, rng, true, skewed), plan.drawSlack],
    ];
    for (const [name, make, slack] of impls) {
      let failed = 0;
      for (let seed = 1; seed <= 200; seed++) if (!twoChoicesCheck(simulate(ops, make(new SeededRandom(seed))).picks, TWOS3, { drawSlack: slack }).ok) failed++;
      expect(failed, name).toBe(0);
    }
  });
  test('wrong implementations fail: weighted random and least connection (power over 100 runs each); round-robin below', () => {
    const fails = (make: (rng: SeededRandom) => Picker) => {
      let n = 0;
      for (let seed = 1; seed <= 100; seed++) if (!twoChoicesCheck(simulate(ops, make(new SeededRandom(seed))).picks, TWOS3, { drawSlack: plan.drawSlack }).ok) n++;
      return n;
    };
    // Measured: 469 of 500 seeds for a weighted random pick, 100 of 100 for least connection.
    expect(fails((rng) => randomOne(TWOS3, rng))).toBeGreaterThanOrEqual(85);
    expect(fails((rng) => leastConn(TWOS3, rng))).toBeGreaterThanOrEqual(95);
    const v = twoChoicesCheck(simulate(ops, leastConn(TWOS3, new SeededRandom(3))).picks, TWOS3, { drawSlack: plan.drawSlack });
    expect(v.message).toMatch(/least-connection\?/);
  });
  test('round-robin keeps held loads as even as two choices do, so the load bounds pass it: its period gives it away', () => {
    const picks = simulate(ops, roundRobin(TWOS3)).picks;
    const v = twoChoicesCheck(picks, TWOS3, { drawSlack: plan.drawSlack });
    expect(v.ok).toBe(false);
    expect(v.message).toMatch(/^the picks repeat with period 3 \(rs1 rs2 rs3\): a round-robin/);
    expect(v.pMostLoaded).toBeGreaterThan(1e-4); // the load bounds alone would have passed it
    expect(shortestPeriod(['a', 'b', 'a', 'b', 'a'], 2)).toBe(2);
    expect(shortestPeriod(['a', 'b', 'b', 'a'], 2)).toBeUndefined();
    // Two random choices are never periodic on these schedules (the 800 correct runs above include the check).
    expect(shortestPeriod(simulate(ops, twoChoices(TWOS3, new SeededRandom(5), false)).picks.map((p) => p.server!), 50)).toBeUndefined();
  });
});
