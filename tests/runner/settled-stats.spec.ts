// settledStats: after a run, the counters are read until they hold the whole run. IPVS folds its per-CPU
// counters into what it reports every 2 s; other directors count live. Fake directors with a known clock.
import { test, expect } from '@playwright/test';
import type { DirectorCounters, DirectorDriver, DirectorServiceStats } from '../../src/director/types';
import type { PreparedLab } from '../../src/runner/prepare';
import { settledStats, Traffic } from '../../src/runner/suite-api';

const zero: DirectorCounters = { conns: 0, inPkts: 0, outPkts: 0, inBytes: 0, outBytes: 0, cps: 0, inPps: 0, outPps: 0, inBps: 0, outBps: 0 };

/** A director whose reported packets are `reported(msSinceStart)` (1 connection once any packet is). */
function fakeDirector(reported: (ms: number) => number): DirectorDriver {
  const t0 = Date.now();
  const stats = async (): Promise<DirectorServiceStats[]> => {
    const pkts = reported(Date.now() - t0);
    return [{ service: 'svc', counters: { ...zero, conns: pkts ? 1 : 0, inPkts: pkts }, realServers: [] }];
  };
  return { stats } as unknown as DirectorDriver;
}

/** Folding counters: `packets` arrive at the given times (ms after the run); each fold reports all before it. */
function folding(packetsAt: number[], firstFold: number, period = 2000): (ms: number) => number {
  return (ms) => {
    if (ms < firstFold) return 0;
    const lastFold = firstFold + Math.floor((ms - firstFold) / period) * period;
    return packetsAt.filter((t) => t <= lastFold).length;
  };
}

async function timed(d: DirectorDriver, timeoutMs?: number): Promise<{ pkts: number; ms: number }> {
  const t = Date.now();
  const s = await settledStats(d, [], 'svc', [], 1, timeoutMs);
  return { pkts: s[0].counters.inPkts, ms: Date.now() - t };
}

test('a fold well after the run: read as soon as the fold is seen, with every packet', async () => {
  const r = await timed(fakeDirector(folding([0, 0, 0, 50], 700)));
  expect(r.pkts).toBe(4);
  expect(r.ms).toBeLessThan(1800);
});

test('a fold right after the run (it may have missed a straggler): the next fold decides', async () => {
  // The packet at 150 ms missed the fold at 100 ms; only the fold at 2100 ms holds it.
  const r = await timed(fakeDirector(folding([0, 0, 150], 100)));
  expect(r.pkts).toBe(3);
  expect(r.ms).toBeGreaterThan(2100);
});

test('live counters: a late packet is waited for, then one quiet fold period is enough', async () => {
  const r = await timed(fakeDirector((ms) => (ms < 1200 ? 3 : 4)));
  expect(r.pkts).toBe(4);
  expect(r.ms).toBeLessThan(3000);
  const quiet = await timed(fakeDirector(() => 3));
  expect(quiet.pkts).toBe(3);
  expect(quiet.ms).toBeGreaterThan(2000);
  expect(quiet.ms).toBeLessThan(3500);
});

test('a director that never counts: what it reports when the time is up', async () => {
  const r = await timed(fakeDirector(() => 0), 1500);
  expect(r.pkts).toBe(0);
  expect(r.ms).toBeGreaterThanOrEqual(1500);
  expect(r.ms).toBeLessThan(2500);
});

test('a director that declares live counters (countersFoldMs 0): two equal reads are enough', async () => {
  const t = Date.now();
  const s = await settledStats(fakeDirector(() => 3), [], 'svc', [], 1, 30_000, 0);
  expect(s[0].counters.inPkts).toBe(3);
  expect(Date.now() - t).toBeLessThan(1000);
});

test('a counters test reads its "before" only once a fold came after the lab\'s last traffic', async () => {
  // The previous test's connection ended at t0; the director folds it at 1500 ms (then every 2 s). A "before"
  // read right away misses it, and the fold during the next test would count it as that test's.
  const t0 = Date.now();
  const d = fakeDirector(folding([0], 1500));
  const traffic = new Traffic({ lastTrafficAt: t0 } as PreparedLab, {} as ConstructorParameters<typeof Traffic>[1]);
  expect((await d.stats([]))[0].counters.inPkts).toBe(0);
  await traffic.countersCaughtUp(2000);
  expect(Date.now() - t0).toBeGreaterThanOrEqual(2500);
  expect((await d.stats([]))[0].counters.inPkts).toBe(1);

  // Live counters, a lab without traffic yet, or traffic long ago: no wait.
  for (const [last, fold] of [[Date.now(), 0], [undefined, 2000], [Date.now() - 10_000, 2000]] as const) {
    const t = Date.now();
    await new Traffic({ lastTrafficAt: last } as PreparedLab, {} as ConstructorParameters<typeof Traffic>[1]).countersCaughtUp(fold);
    expect(Date.now() - t).toBeLessThan(100);
  }
});
