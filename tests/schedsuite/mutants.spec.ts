// A deliberately wrong model is caught by the replayer against the kernel: the same mutants the model
// tests tell apart from the reference (tests/models/mutants.ts), now judged by kernel IPVS. For each,
// the smallest scenario file where the mutant and the reference differ is replayed with the mutant as
// the model: the replay must fail at the flow where they part, and the kernel must follow the reference.
import * as fs from 'fs';
import { compareAssignments, compareModels } from '../../src/models/compare';
import { runScenario, type Scenario } from '../../src/models/scenario';
import { formatReplay, replayScenario } from '../../src/suites/schedulers/replay';
import { MUTANTS } from '../models/mutants';
import { expect, SCENARIOS, test, useReplayLab, VM_TEST_TIMEOUT } from './fixture';

test.describe.configure({ timeout: VM_TEST_TIMEOUT });
const replayLab = useReplayLab();

function smallestSeparatingScenario(mutant: (typeof MUTANTS)[number]): { name: string; scenario: Scenario; firstDifference: number } {
  const found = fs
    .readdirSync(SCENARIOS)
    .filter((f) => f.endsWith('.json'))
    .map((f) => ({ name: f.replace(/\.json$/, ''), scenario: JSON.parse(fs.readFileSync(`${SCENARIOS}/${f}`, 'utf8')) as Scenario }))
    .filter((s) => s.scenario.scheduler === mutant.scheduler && !(s.scenario.events ?? []).some((e) => e.op === 'wait'))
    .map((s) => ({ ...s, cmp: compareModels(s.scenario, { name: mutant.name, factory: mutant.factory }) }))
    .filter((s) => !s.cmp.equal)
    .sort((a, b) => runScenario(a.scenario).assignments.length - runScenario(b.scenario).assignments.length)[0];
  if (!found) throw new Error(`no scenario separates mutant ${mutant.name}`);
  return { name: found.name, scenario: found.scenario, firstDifference: found.cmp.firstDifference!.index };
}

for (const mutantName of ['wrr-off-by-one', 'lc-last-wins-ties', 'mh-ignores-port']) {
  test(`the kernel exposes the mutant model ${mutantName}`, async ({}, testInfo) => {
    const mutant = MUTANTS.find((m) => m.name === mutantName)!;
    const pick = smallestSeparatingScenario(mutant);
    const r = await replayScenario(replayLab(), pick.scenario, { model: { name: mutant.name, factory: mutant.factory } });
    const text = formatReplay(r);
    await testInfo.attach(`${pick.name}.txt`, { body: text, contentType: 'text/plain' });
    expect(r.ok, `mutant ${mutant.name} (${mutant.what}) on ${pick.name} was not caught:\n${text}`).toBe(false);
    expect(r.comparison!.firstDifference!.index).toBe(pick.firstDifference);
    // the report shows the flow, the (mutant) model's reasoning and the kernel's choice
    expect(text).toContain(`flow ${pick.firstDifference}: `);
    expect(text).toMatch(/model: +\S+ \(via /);
    expect(text).toMatch(/kernel: +\S+ \(/);
    // and the kernel follows the reference model on the very same run
    const reference = runScenario(r.timedScenario).assignments;
    expect(compareAssignments(reference, r.observed).equal, text).toBe(true);
  });
}
