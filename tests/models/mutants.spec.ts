import { expect, test } from '@playwright/test';
import * as fs from 'fs';
import * as path from 'path';
import { compareAssignments, compareModels, formatComparison } from '../../src/models/compare';
import { runScenario, type Scenario } from '../../src/models/scenario';
import type { Dest } from '../../src/models/dest';
import type { SchedPacket, Scheduler, SchedulerHost } from '../../src/models/scheduler';
import { testRandomPicks } from '../../src/models/stats';
import { MUTANTS } from './mutants';

const DIR = path.join(__dirname, '../../suites/schedulers/scenarios');
const scenarios = fs.readdirSync(DIR).filter((f) => f.endsWith('.json')).map((f) => JSON.parse(fs.readFileSync(path.join(DIR, f), 'utf8')) as Scenario);

test.describe('a wrong model is caught by the scenario files', () => {
  for (const m of MUTANTS) {
    test(`${m.name} (${m.what}) differs from the reference on at least one ${m.scheduler} scenario`, () => {
      const mine = scenarios.filter((s) => s.scheduler === m.scheduler);
      expect(mine.length).toBeGreaterThan(0);
      const caught = mine
        .map((s) => ({ name: s.name, cmp: compareModels(s, { name: m.name, factory: m.factory }) }))
        .filter((x) => !x.cmp.equal);
      expect(caught.map((c) => c.name), `${m.name} was not told apart by any of ${mine.map((s) => s.name).join(', ')}`).not.toEqual([]);
      // the report names the flow where they part
      expect(formatComparison(caught[0].cmp)).toMatch(/flow \d+: expected \S+, got \S+/);
    });
  }

  test('the reference model compared with itself agrees everywhere (the comparison is not trivially "different")', () => {
    for (const s of scenarios) {
      const a = runScenario(s).assignments;
      const b = runScenario(s).assignments;
      expect(compareAssignments(a, b).equal, s.name).toBe(true);
    }
  });
});

test.describe('random schedulers are checked pick by pick against their distributions', () => {
  const twos = scenarios.find((s) => s.name === 'twos-basic')!;

  /** twos that ignores weights: picks two servers uniformly. */
  const uniformTwos = (host: SchedulerHost): Scheduler => ({
    name: 'twos',
    deterministic: true,
    schedule(_p: SchedPacket): Dest | null {
      const el = host.list.filter((d) => !d.overload && d.weight > 0);
      if (!el.length) return null;
      const a = el[host.random.below(el.length)], b = el[host.random.below(el.length)];
      return b.weight * a.overhead > a.weight * b.overhead ? b : a;
    },
  });

  const check = (observed: (string | null)[]) => {
    const replay = runScenario(twos, { observed });
    return testRandomPicks(observed, replay.flows.map((f) => f.choices!));
  };

  test('samples of the reference model pass (several seeds)', () => {
    for (const seed of [1, 2, 3, 4, 5]) {
      const r = check(runScenario(twos, { seed }).assignments);
      expect(r.ok, r.message).toBe(true);
    }
  });

  test('a twos that ignores the weights is rejected', () => {
    const observed = runScenario(twos, { scheduler: { name: 'uniform-twos', factory: uniformTwos } }).assignments;
    const r = check(observed);
    expect(r.ok, r.message).toBe(false);
  });

  test('a pick the model says is impossible fails at once', () => {
    const observed = runScenario(twos).assignments.slice();
    observed[10] = 'rs9';
    const r = check(observed);
    expect(r.impossibleAt).toBe(10);
  });
});
