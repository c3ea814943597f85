// The exact scheduler suite: every scenario file replayed on kernel IPVS, the kernel's choice compared
// with the reference model connection by connection (and pick by pick for the random scheduler twos).
// A failure prints each differing flow with the model's reasoning and what the kernel did; the full
// replay (model, kernel, connection table per flow) is attached as JSON.
import { formatReplay, KernelLacksScheduler, replayScenario } from '../../src/suites/schedulers/replay';
import { expect, flowCount, loadScenarios, scenarioTimeoutMs, test, waitSeconds } from './fixtures';

// Longest first, so the workers finish together.
const scenarios = loadScenarios().sort((a, b) => waitSeconds(b.scenario) * 10 + flowCount(b.scenario) / 10 - (waitSeconds(a.scenario) * 10 + flowCount(a.scenario) / 10));

test.describe('scheduler scenarios replayed on kernel IPVS', () => {
  // Scenarios are independent (each flushes IPVS after itself): spread them over the workers, one lab each.
  test.describe.configure({ mode: 'parallel' });
  for (const s of scenarios) {
    test(`${s.name}: ${s.scenario.description ?? ''}`.slice(0, 200), async ({ replayLab }, testInfo) => {
      test.setTimeout(scenarioTimeoutMs(s.scenario));
      let result;
      try {
        result = await replayScenario(replayLab, s.scenario, { log: (l) => testInfo.annotations.push({ type: 'step', description: l }) });
      } catch (e) {
        if (e instanceof KernelLacksScheduler) test.skip(true, e.message);
        throw e;
      }
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
  }
});
