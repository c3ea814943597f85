// The exact scheduler suite: every scenario file replayed on kernel IPVS, the kernel's choice compared
// with the reference model connection by connection (and pick by pick for the random scheduler twos).
// A failure prints each differing flow with the model's reasoning and what the kernel did; the full
// replay (model, kernel, connection table per flow) is attached as JSON.
//
// One lane per worker (a describe group Playwright keeps in one worker, in order): the busy scenarios
// first, the scenarios that wait last. When a lane's test runs, the pool (fixtures.ts, pool.ts) starts
// the lane's waiting scenarios on sibling labs in the same VM, so their sleeps overlap the busy ones;
// their tests then take the finished replay. Each scenario is replayed and checked as if alone.
import { formatReplay, KernelLacksScheduler } from '../../src/suites/schedulers/replay';
import { expect, flowCount, loadScenarios, planLanes, replayClock, replaySlots, scenarioTimeoutMs, test, waitSeconds } from './fixtures';

const LANES = Math.max(1, Number(process.env.VSLAB_TEST_WORKERS || process.env.VSLAB_SUITE_WORKERS || 1) || 1);
// With one slot (the warp clock's default, or VSLAB_REPLAY_SLOTS=1) every test is its own group, longest first,
// taken by whichever worker is free. On a warp clock a wait costs little and the flows are the work; on a
// real clock the waits dominate (the suite as it ran before the pool; bench/scheduler-suite.js compares).
const warp = replayClock() === 'warp';
const longestFirst = (a: { scenario: Parameters<typeof waitSeconds>[0] }) => (warp ? 0 : waitSeconds(a.scenario) * 10) + flowCount(a.scenario) / 10;
const lanes = replaySlots() > 1 ? planLanes(loadScenarios(), LANES) : loadScenarios().sort((a, b) => longestFirst(b) - longestFirst(a)).map((s) => [s]);
const titleOf = (s: { name: string; scenario: { description?: string } }) => `${s.name}: ${s.scenario.description ?? ''}`.slice(0, 200);

test.describe('scheduler scenarios replayed on kernel IPVS', () => {
  // Lanes are independent (each scenario flushes IPVS after itself): spread over the workers, one VM each.
  test.describe.configure({ mode: 'parallel' });
  lanes.forEach((lane, li) => {
    const laneTitle = `lane ${li + 1} of ${lanes.length}`;
    test.describe(laneTitle, () => {
      // One worker runs the lane in order (its tests' scenarios were started ahead by that worker's pool).
      test.describe.configure({ mode: 'default' });
      lane.forEach((s, i) => {
        test(titleOf(s), async ({ replayPool }, testInfo) => {
          test.setTimeout(scenarioTimeoutMs(s.scenario));
          // Only scenarios whose tests this run selects (--grep / --grep-invert) are started ahead.
          const grep = [testInfo.project.grep].flat();
          const invert = testInfo.project.grepInvert ? [testInfo.project.grepInvert].flat() : [];
          const selected = (x: typeof s) => {
            const t = ['', testInfo.project.name, ...testInfo.titlePath.slice(0, -1), titleOf(x)].join(' ');
            return grep.some((g) => new RegExp(g.source, g.flags.replace('g', '')).test(t)) && !invert.some((g) => new RegExp(g.source, g.flags.replace('g', '')).test(t));
          };
          const out = await replayPool.run(s, lane.slice(i + 1).filter(selected));
          for (const l of out.log) testInfo.annotations.push({ type: 'step', description: l });
          testInfo.annotations.push({ type: 'replay lab', description: `${out.lab}${out.background ? `, started ahead of this test (waited ${(out.waitedMs / 1000).toFixed(1)} s for it)` : ''}` });
          if (out.error instanceof KernelLacksScheduler) test.skip(true, out.error.message);
          if (out.error) throw out.error;
          const result = out.result!;
          const text = formatReplay(result);
          await testInfo.attach('replay.txt', { body: text, contentType: 'text/plain' });
          await testInfo.attach('replay.json', {
            body: JSON.stringify({ ...result, trace: result.ok ? undefined : result.trace }, null, 1),
            contentType: 'application/json',
          });
          testInfo.annotations.push({ type: 'kernel', description: result.kernel }, { type: 'duration', description: `${(result.durationMs / 1000).toFixed(1)} s` });
          expect(result.ok, text).toBe(true);
          // Hand-checked expectations hold on the kernel too (unless the replay's own timing moved the prediction).
          if (result.expectComparison && result.timingChanged.length === 0) expect(result.expectComparison.equal, text).toBe(true);
        });
      });
    });
  });
});
