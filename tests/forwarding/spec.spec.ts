// The written spec and its tracing: spec/forwarding.yaml loads, every statement is checked by at least one
// test of suites/forwarding (read from Playwright's --list of the suite: no lab is started), and no test
// declares an id the spec does not have.
import { test, expect } from '@playwright/test';
import * as path from 'path';
import { listTests } from '../../src/runner/run';
import { coverageOf, loadStatements } from '../../src/runner/spec';

test('every statement of spec/forwarding.yaml is checked by a test of suites/forwarding', async () => {
  test.setTimeout(120_000);
  const spec = loadStatements(path.join(__dirname, '..', '..', 'spec', 'forwarding.yaml'));
  expect(spec.statements.length).toBeGreaterThanOrEqual(20);
  const tests = await listTests(['suites/forwarding']);
  expect(tests.length).toBeGreaterThanOrEqual(40);
  const c = coverageOf(spec, tests);
  expect(c.unchecked, 'statements no test checks').toEqual([]);
  expect(c.unknown, 'ids tests declare that the spec lacks').toEqual([]);
  // Every test of the suite declares what it checks.
  expect(tests.filter((t) => !t.statements.length).map((t) => t.id)).toEqual([]);
  // Test ids are unique (they name the run directory's folders).
  expect(new Set(tests.map((t) => t.id)).size).toBe(tests.length);
});
