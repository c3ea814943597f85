import { expect, test } from '@playwright/test';
import { parseAddress } from '../../src/models/address';
import { SeededRandom } from '../../src/models/prng';
import { MaglevHashScheduler } from '../../src/models/schedulers/mh';
import { SourceHashScheduler } from '../../src/models/schedulers/sh';
import { WeightedRoundRobinScheduler } from '../../src/models/schedulers/wrr';
import { SVC_F_SCHED1, SVC_F_SCHED2 } from '../../src/models/scheduler';
import { removalDisruption } from '../../src/models/stats';
import { flow, pick, randomClients, service } from './helpers';

test.describe('kernel destination order', () => {
  test('new destinations go to the list head; an edit does not move them', () => {
    const svc = service('rr', [['a', 1], ['b', 1], ['c', 1]]);
    expect(svc.list.map((d) => d.name)).toEqual(['c', 'b', 'a']);
    svc.editDest('a', { weight: 5 });
    expect(svc.list.map((d) => d.name)).toEqual(['c', 'b', 'a']);
    svc.removeDest('b');
    svc.addDest({ name: 'b', addr: parseAddress('198.18.1.12'), port: 80, weight: 1 });
    expect(svc.list.map((d) => d.name)).toEqual(['b', 'c', 'a']);
  });
});

test.describe('rr', () => {
  test('all quiesced or overloaded: none, and the cursor does not move', () => {
    const svc = service('rr', [['a', 0], ['b', 0]]);
    expect(pick(svc, 2)).toEqual([null, null]);
    svc.editDest('a', { weight: 1 });
    expect(pick(svc, 2, {}, 41000)).toEqual(['a', 'a']);
  });

  test('over any window of N picks each of N eligible servers appears once', () => {
    const svc = service('rr', Array.from({ length: 7 }, (_, i) => [`s${i}`, 1 + (i % 3)] as [string, number]));
    const seq = pick(svc, 70, { hold: false });
    for (let i = 0; i + 7 <= seq.length; i++) expect(new Set(seq.slice(i, i + 7)).size).toBe(7);
  });
});

test.describe('wrr', () => {
  test('a full cycle from cw = mw at the head gives exactly weight/gcd picks per server', () => {
    const rng = new SeededRandom(17);
    for (let round = 0; round < 25; round++) {
      const n = 2 + rng.below(8);
      const factor = 1 + rng.below(3);
      const weights = Array.from({ length: n }, () => factor * rng.below(7)); // some zero
      if (!weights.some((w) => w > 0)) weights[0] = factor;
      const svc = service('wrr', weights.map((w, i) => [`s${i}`, w]));
      const wrr = svc.scheduler as WeightedRoundRobinScheduler;
      const g = weights.filter((w) => w > 0).reduce((a, b) => { while (b) [a, b] = [b, a % b]; return a; });
      const period = weights.reduce((a, b) => a + b, 0) / g;
      // Record the cw each pick was made at; a full cycle starts at the first pick of a pass at
      // cw = mw that follows a pass at a lower cw (or at the start when mw == 1: one pass only).
      const names: string[] = [];
      const cws: number[] = [];
      for (let i = 0; i < 4 * period + 10; i++) {
        names.push(svc.openFlow(flow('198.18.0.2', 1024 + i, { hold: false })).dest!.name);
        cws.push(wrr.describeState().cw as number);
      }
      const mw = wrr.describeState().mw as number;
      let started = mw === 1 ? 0 : -1;
      for (let i = 1; started < 0 && i < cws.length; i++) if (cws[i] === mw && cws[i - 1] !== mw) started = i;
      const counts = new Map<string, number>();
      for (const n of names.slice(started, started + period)) counts.set(n, (counts.get(n) ?? 0) + 1);
      expect(started, `weights ${weights}`).toBeGreaterThanOrEqual(0);
      weights.forEach((w, i) => expect(counts.get(`s${i}`) ?? 0, `weights ${weights}, server s${i}`).toBe(w / g));
    }
  });

  test('the dest-changed rule: adds in order 4, 3, 2 leave cw = 1 (first add: di = 4, mw = 1)', () => {
    const svc = service('wrr', [['a', 4]]);
    expect((svc.scheduler as WeightedRoundRobinScheduler).describeState()).toMatchObject({ cw: 1, mw: 1, di: 4 });
    svc.addDest({ name: 'b', addr: parseAddress('198.18.1.30'), port: 80, weight: 3 });
    svc.addDest({ name: 'c', addr: parseAddress('198.18.1.31'), port: 80, weight: 2 });
    expect((svc.scheduler as WeightedRoundRobinScheduler).describeState()).toMatchObject({ cw: 1, mw: 4, di: 1, cl: 'head' });
  });
});

test.describe('lc / wlc / sed / nq / fo / ovf', () => {
  test('weight 0 and OVERLOAD are never chosen while others are eligible', () => {
    for (const name of ['lc', 'wlc', 'sed', 'nq', 'fo', 'ovf'] as const) {
      const svc = service(name, [['a', 0], ['b', 3], ['c', 2]]);
      const c = svc.findDest('c')!;
      c.overload = true;
      for (const s of pick(svc, 3)) expect(s, name).toBe('b');
    }
  });

  test('wlc minimises overhead/weight: loads stay within one connection of proportional', () => {
    const svc = service('wlc', [['a', 1], ['b', 2], ['c', 5]]);
    pick(svc, 80);
    const a = svc.findDest('a')!, b = svc.findDest('b')!, c = svc.findDest('c')!;
    expect([a.activeConns, b.activeConns, c.activeConns]).toEqual([10, 20, 50]);
  });

  test('fo picks the first of equal highest weights in list order', () => {
    const svc = service('fo', [['a', 7], ['b', 7], ['c', 3]]);
    expect(pick(svc, 2)).toEqual(['b', 'b']);
  });
});

test.describe('twos', () => {
  test('choice distribution: idle servers, first eligible gets (W + 1)/(T + 1)', () => {
    const svc = service('twos', [['a', 1], ['b', 2], ['c', 3]]); // list c(3), b(2), a(1)
    const ch = svc.scheduler.choices!({ saddr: parseAddress('198.18.0.2'), sport: 1, daddr: parseAddress('198.19.0.100'), dport: 80, proto: 'tcp' });
    const p = Object.fromEntries(ch.map((c) => [c.dest!.name, c.probability]));
    // all idle: the second pick never wins (W2 * 0 > W1 * 0 is false), so P = P(first pick)
    expect(p.c).toBeCloseTo(4 / 7, 12);
    expect(p.b).toBeCloseTo(2 / 7, 12);
    expect(p.a).toBeCloseTo(1 / 7, 12);
  });

  test('never weight 0 or overloaded, a single eligible server always wins, probabilities sum to 1', () => {
    const svc = service('twos', [['a', 0], ['b', 2], ['c', 3], ['d', 1]]);
    svc.findDest('c')!.overload = true;
    const seq = pick(svc, 200, { hold: true });
    expect(seq.every((s) => s === 'b' || s === 'd')).toBe(true);
    svc.findDest('d')!.weight = 0;
    expect(pick(svc, 20, {}, 50000).every((s) => s === 'b')).toBe(true);
    const ch = svc.scheduler.choices!({ saddr: parseAddress('198.18.0.2'), sport: 1, daddr: parseAddress('198.19.0.100'), dport: 80, proto: 'tcp' });
    expect(ch.reduce((s, c) => s + c.probability, 0)).toBeCloseTo(1, 12);
  });
});

test.describe('sh', () => {
  test('the table gives each server max(weight, 1) consecutive buckets per cycle', () => {
    const svc = service('sh', [['a', 1], ['b', 2], ['c', 0]]); // list c(0), b(2), a(1): pattern c b b a
    const sh = svc.scheduler as SourceHashScheduler;
    expect(sh.buckets.slice(0, 8).map((d) => d!.name)).toEqual(['c', 'b', 'b', 'a', 'c', 'b', 'b', 'a']);
    expect(sh.describeState().bucketsPerDest).toEqual({ c: 64, b: 128, a: 64 });
  });

  test('vectors of ipvs-semantics.md §3.10 (list C, B, A) including the fallback probe', () => {
    const svc = service('sh', [['A', 1], ['B', 1], ['C', 1]], { schedFlags: SVC_F_SCHED1 });
    const at = (c: string) => svc.scheduler.schedule({ saddr: parseAddress(c), sport: 0, daddr: parseAddress('198.19.0.100'), dport: 80, proto: 'tcp' })?.name;
    expect(['10.0.0.1', '10.0.0.2', '10.0.0.3', '192.168.1.10'].map(at)).toEqual(['C', 'A', 'B', 'A']);
    svc.editDest('C', { weight: 0 });
    expect(at('10.0.0.1')).toBe('B'); // bucket 39 -> C down -> probes 78 (C), 79 (B)
    svc.editDest('C', { weight: 1 });
    svc.editDest('A', { weight: 0 });
    expect(at('10.0.0.2')).toBe('C');
  });

  test('the same client address always gets the same server, whatever its port or the load', () => {
    const svc = service('sh', [['a', 1], ['b', 3], ['c', 2]]);
    const first = new Map<string, string>();
    for (const f of randomClients(5, 3000)) {
      const c = `198.18.${64 + (f.cport % 8)}.${f.cport % 250}`; // few addresses, many ports
      const d = svc.openFlow({ ...f, client: parseAddress(c) }).dest!.name;
      if (!first.has(c)) first.set(c, d);
      expect(d).toBe(first.get(c));
    }
  });

  test('sh-port spreads one client address over servers', () => {
    const svc = service('sh', [['a', 1], ['b', 1], ['c', 1]], { schedFlags: SVC_F_SCHED2 });
    expect(new Set(pick(svc, 30, { hold: false })).size).toBe(3);
  });
});

test.describe('mh', () => {
  const mhOf = (weights: [string, number][], flags = 0) => {
    const svc = service('mh', weights, { schedFlags: flags });
    return { svc, mh: svc.scheduler as MaglevHashScheduler };
  };

  test('the table is filled completely; equal weights differ by at most one slot', () => {
    const { mh } = mhOf([['a', 1], ['b', 1], ['c', 1], ['d', 1], ['e', 1]]);
    expect(mh.table.every((d) => d !== null)).toBe(true);
    const counts = [...mh.slotCounts().values()];
    expect(counts.reduce((a, b) => a + b, 0)).toBe(4093);
    expect(Math.max(...counts) - Math.min(...counts)).toBeLessThanOrEqual(1);
  });

  test('every destination permutation visits all slots (M prime, 1 <= skip < M)', () => {
    const { mh } = mhOf([['a', 1], ['b', 2], ['c', 3]]);
    for (const s of mh.lastSetup) {
      expect(s.offset).toBeLessThan(4093);
      expect(s.skip).toBeGreaterThanOrEqual(1);
      expect(s.skip).toBeLessThan(4093);
      const seen = new Uint8Array(4093);
      let p = s.offset;
      for (let i = 0; i < 4093; i++) {
        seen[p] = 1;
        p = (p + s.skip) % 4093;
      }
      expect(seen.every((x) => x === 1)).toBe(true);
    }
  });

  test('vectors of ipvs-semantics.md §3.12: shares, client slots, removal', () => {
    const svc = service('mh', []);
    const mh = svc.scheduler as MaglevHashScheduler;
    // the document's list order R1, R2, R3: added R3 first
    for (const [n, a] of [['R3', '10.1.0.3'], ['R2', '10.1.0.2'], ['R1', '10.1.0.1']] as const) svc.addDest({ name: n, addr: parseAddress(a), port: 80, weight: 1 });
    expect(svc.list.map((d) => d.name)).toEqual(['R1', 'R2', 'R3']);
    // the first in the list gets 1365 slots, the others 1364
    expect(Object.fromEntries(mh.slotCounts())).toEqual({ R1: 1365, R2: 1364, R3: 1364 });
    const at = (c: string) => mh.slotOf(parseAddress(c), 0);
    expect(['10.0.0.1', '10.0.0.2', '10.0.0.3', '192.168.1.10', '10.0.1.1'].map(at)).toEqual([3711, 1884, 3741, 3323, 944]);
    const names = ['10.0.0.1', '10.0.0.2', '10.0.0.3', '192.168.1.10', '10.0.1.1'].map((c) => mh.table[at(c)]!.name);
    expect(names).toEqual(['R1', 'R2', 'R3', 'R2', 'R3']);
    const before = mh.table.slice();
    svc.removeDest('R3');
    let moved = 0, kept = 0;
    for (let i = 0; i < 4093; i++) if (before[i]!.name !== 'R3') (before[i] === mh.table[i] ? kept++ : moved++);
    expect({ moved, total: moved + kept }).toEqual({ moved: 6, total: 2729 });
  });

  test('weights 1, 1, 2 give 1024/1023/2046 slots (ipvs-semantics.md §3.12)', () => {
    const svc = service('mh', []);
    for (const [n, a, w] of [['R3', '10.1.0.3', 2], ['R2', '10.1.0.2', 1], ['R1', '10.1.0.1', 1]] as const) svc.addDest({ name: n, addr: parseAddress(a), port: 80, weight: w });
    expect(Object.fromEntries((svc.scheduler as MaglevHashScheduler).slotCounts())).toEqual({ R1: 1024, R2: 1023, R3: 2046 });
  });

  test('weight 0 keeps the slots (last_weight): other clients do not move, its clients get none', () => {
    const { svc, mh } = mhOf([['a', 1], ['b', 1], ['c', 1], ['d', 1]]);
    const before = mh.table.slice();
    svc.editDest('b', { weight: 0 });
    expect(mh.table).toEqual(before);
    const clients = randomClients(9, 500);
    for (const f of clients) {
      const d = svc.scheduler.schedule({ saddr: f.client, sport: f.cport, daddr: f.dst, dport: 80, proto: 'tcp' });
      const slot = before[mh.slotOf(f.client, 0)]!.name;
      expect(d?.name ?? null).toBe(slot === 'b' ? null : slot);
    }
  });

  test('removing one of N servers remaps close to 1/N of the clients; sh remaps far more', () => {
    const clients = randomClients(13, 4000);
    const measure = (name: 'mh' | 'sh') => {
      const svc = service(name, [['a', 1], ['b', 1], ['c', 1], ['d', 1], ['e', 1]]);
      const map = () => clients.map((f) => svc.scheduler.schedule({ saddr: f.client, sport: f.cport, daddr: f.dst, dport: 80, proto: 'tcp' })?.name ?? null);
      const before = map();
      svc.removeDest('c');
      return removalDisruption(before, map(), 'c');
    };
    const mh = measure('mh');
    expect(mh.idealFraction).toBeGreaterThan(0.17);
    expect(mh.idealFraction).toBeLessThan(0.23);
    expect(mh.ratioToIdeal).toBeLessThan(1.05); // Maglev: almost only the removed server's clients move
    const sh = measure('sh');
    expect(sh.ratioToIdeal).toBeGreaterThan(2); // sh rebuilds its table: most clients move
  });

  test('mh-fallback finds another server for a weight-0 slot; mh-port uses the source port', () => {
    const { svc } = mhOf([['a', 1], ['b', 1], ['c', 1]], SVC_F_SCHED1);
    svc.editDest('b', { weight: 0 });
    for (const f of randomClients(21, 300)) expect(svc.openFlow(f).dest?.name).toMatch(/^[ac]$/);
    const p = mhOf([['a', 1], ['b', 1], ['c', 1]], SVC_F_SCHED2);
    expect(new Set(pick(p.svc, 40, { hold: false })).size).toBe(3);
  });
});

test.describe('dh / lblc / lblcr', () => {
  test('dh hashes the destination address: one VIP means one server', () => {
    const svc = service('dh', [['a', 1], ['b', 1], ['c', 1]]);
    expect(new Set(pick(svc, 20, { hold: false })).size).toBe(1);
  });

  test('lblc sticks to the cached server even when it carries the OVERLOAD flag', () => {
    const fw = { fwmark: 1, vip: undefined };
    const svc = service('lblc', [['a', 1], ['b', 1]], fw);
    const x = parseAddress('198.19.5.1');
    expect(svc.openFlow(flow('198.18.0.2', 1000, { dst: x })).dest!.name).toBe('b');
    svc.findDest('b')!.overload = true; // the flag is ignored for a cached entry
    expect(svc.openFlow(flow('198.18.0.2', 1001, { dst: x })).dest!.name).toBe('b');
    // a new destination address goes through wlc, which does skip OVERLOAD
    expect(svc.openFlow(flow('198.18.0.2', 1002, { dst: parseAddress('198.19.5.2') })).dest!.name).toBe('a');
  });
});
