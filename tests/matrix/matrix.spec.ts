// The conformance matrix, without a lab: built from saved real runs (tests/fixtures/report-runs), every
// cell is that run's own verdict. A run with exactly one failing statement gives exactly that one failed
// cell; the sabotaged director's column differs from kernel IPVS's on exactly the statements its run broke;
// `vslab matrix --from` writes matrix.json / matrix.md, and bad input is a usage error (exit 2).
import { test, expect } from '@playwright/test';
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { buildMatrix, loadRun, renderMatrixMarkdown } from '../../src/matrix/build';
import { matrixRunOk, planMatrix, runDirName, shippedAdapters } from '../../src/matrix/run';
import { assembleResults, type RunResults } from '../../src/runner/results';
import { RESULTS_FILE } from '../../src/runner/run';

const REPO = path.join(__dirname, '..', '..');
const VSLAB = path.join(REPO, 'bin', 'vslab.js');
const RUNS = path.join(REPO, 'tests', 'fixtures', 'report-runs');

function vslab(args: string[]) {
  return spawnSync(process.execPath, [VSLAB, ...args], { cwd: REPO, encoding: 'utf8', timeout: 120_000 });
}
const made: string[] = [];
const tmp = () => {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'vslab-implmatrix-'));
  made.push(d);
  return d;
};
test.afterAll(() => {
  for (const d of made.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

/**
 * The pass run with one test's check of one statement failed, the statements recomputed by the results
 * builder (assembleResults, as a run does): a real run with exactly one broken statement.
 */
function oneFailure(statement: string, testId: string): { dir: string; results: RunResults } {
  const pass = loadRun(path.join(RUNS, 'pass')).results;
  const tests = pass.tests.map((t) => (t.id === testId
    ? { ...t, status: 'failed' as const, reason: `CheckFailure: 1 of ${t.checks} packet check(s) failed; statements broken: ${statement}`, failedChecks: 1, statementResults: { ...t.statementResults, [statement]: 'failed' as const } }
    : t));
  const results = assembleResults({ ...pass, labs: pass.labs, errors: pass.errors, startedAt: pass.startedAt, durationMs: pass.durationMs }, tests, pass.statements);
  results.director = 'external:adapters/liar';
  const dir = tmp();
  fs.writeFileSync(path.join(dir, RESULTS_FILE), JSON.stringify(results));
  return { dir, results };
}

test('a run with one failing statement: exactly that cell failed, every other cell as the run says', () => {
  const pass = loadRun(path.join(RUNS, 'pass'));
  const one = oneFailure('FWD-DR-002', 'forwarding.dr.tcp4-handshake-and-data-on-every-hop');
  expect(one.results.summary.statementsFailed).toBe(1);
  const m = buildMatrix([pass, loadRun(one.dir)]);
  expect(m.columns.map((c) => c.id)).toEqual(['ipvs', 'external:adapters/liar']);
  expect(m.reference).toBe('ipvs');
  const failed = m.rows.flatMap((r) => Object.entries(r.cells).filter(([, c]) => c.status === 'failed').map(([col]) => `${r.id}/${col}`));
  expect(failed).toEqual(['FWD-DR-002/external:adapters/liar']);
  const cell = m.rows.find((r) => r.id === 'FWD-DR-002')!.cells['external:adapters/liar'];
  expect(cell.tests).toEqual(['forwarding.dr.tcp4-handshake-and-data-on-every-hop']);
  expect(cell.reason).toContain('FWD-DR-002');
  expect(m.differences).toEqual([{ row: 'FWD-DR-002', column: 'external:adapters/liar', status: 'failed', reference: 'ipvs', referenceStatus: 'passed', reason: cell.reason }]);
  expect(m.rows.filter((r) => r.differs).map((r) => r.id)).toEqual(['FWD-DR-002']);
  // The reference column is the pass run's own statement verdicts, statement by statement.
  for (const s of pass.results.statements) {
    const c = m.rows.find((r) => r.id === s.id)!.cells.ipvs;
    expect(c.status, s.id).toBe(s.status);
  }
  const md = renderMatrixMarkdown(m);
  expect(md.split('\n').filter((l) => l.includes('**FAIL**'))).toHaveLength(1);
  expect(md).toMatch(/\| ≠ FWD-DR-002 .*\| pass \| \*\*FAIL\*\* \|/);
});

test('a statement of another suite\'s file that tests declare (the accounting\'s FWD-COM-001 in the proxy and distribution runs) takes its cell from their verdicts', () => {
  const pass = loadRun(path.join(RUNS, 'pass')).results;
  const id = 'FWD-COM-001';
  const declaring = pass.tests.filter((t) => t.statementResults?.[id] === 'passed');
  expect(declaring.length).toBeGreaterThan(1);
  // The same run as if its suite's file did not list FWD-COM-001 (as spec/distribution.yaml does not).
  const write = (tests: RunResults['tests']) => {
    const dir = tmp();
    fs.writeFileSync(path.join(dir, RESULTS_FILE), JSON.stringify({ ...pass, tests, statements: pass.statements.filter((s) => s.id !== id) }));
    return loadRun(dir);
  };
  const cellOf = (run: ReturnType<typeof loadRun>) => buildMatrix([run]).rows.find((r) => r.id === id)!.cells.ipvs;
  expect(cellOf(write(pass.tests))).toMatchObject({ status: 'passed' });
  // Its row is named from spec/forwarding.yaml, though the run does not list it.
  expect(buildMatrix([write(pass.tests)]).rows.find((r) => r.id === id)).toMatchObject({ title: 'Delivery on every hop', level: 'MUST' });
  const broken = pass.tests.map((t) => (t.id === declaring[0].id ? { ...t, status: 'failed' as const, reason: `statements broken: ${id}`, statementResults: { ...t.statementResults, [id]: 'failed' as const } } : t));
  expect(cellOf(write(broken))).toMatchObject({ status: 'failed', tests: [declaring[0].id] });
  // No declaring test judged it: not checked, as before.
  const unjudged = pass.tests.map((t) => ({ ...t, statementResults: Object.fromEntries(Object.entries(t.statementResults ?? {}).filter(([k]) => k !== id)) }));
  expect(cellOf(write(unjudged)).status).toBe('not-checked');
});

test('a sabotaged director is its own column and differs exactly where its run broke statements', () => {
  const pass = loadRun(path.join(RUNS, 'pass'));
  const fault = loadRun(path.join(RUNS, 'fault'));
  const m = buildMatrix([pass, fault]);
  const col = `ipvs+${fault.results.fault}`;
  expect(m.columns.map((c) => c.id)).toEqual(['ipvs', col]);
  const broken = fault.results.statements.filter((s) => s.status === 'failed').map((s) => s.id).sort();
  expect(broken.length).toBeGreaterThan(1);
  const failedCells = m.rows.filter((r) => r.cells[col]?.status === 'failed').map((r) => r.id).sort();
  expect(failedCells).toEqual(broken);
  // Differences: only rows both runs checked with different verdicts (the pass run checks fewer statements).
  for (const d of m.differences) {
    expect(d.column).toBe(col);
    expect(m.rows.find((r) => r.id === d.row)!.cells.ipvs.status).toBe(d.referenceStatus);
  }
});

test('a suite without statements is in the matrix test by test (the scheduler suite)', () => {
  const m = buildMatrix([loadRun(path.join(RUNS, 'sched'))]);
  expect(m.rows.every((r) => r.kind === 'test')).toBe(true);
  expect(m.rows).toHaveLength(3);
  expect(m.rows.every((r) => r.cells.ipvs.status === 'passed')).toBe(true);
});

test('not applicable cells carry the tests\' reasons', () => {
  const pass = loadRun(path.join(RUNS, 'pass')).results;
  const tests = pass.tests.map((t) => (t.file === 'forwarding/dr.spec.ts'
    ? { ...t, status: 'not-applicable' as const, reason: 'director X has no dr forwarding', statementResults: undefined, checks: 0 }
    : t));
  const r = assembleResults({ ...pass, labs: pass.labs, errors: [], startedAt: pass.startedAt, durationMs: 1 }, tests, pass.statements);
  const dir = tmp();
  fs.writeFileSync(path.join(dir, RESULTS_FILE), JSON.stringify(r));
  const m = buildMatrix([loadRun(dir)]);
  for (const id of ['FWD-DR-001', 'FWD-DR-002']) {
    expect(m.rows.find((x) => x.id === id)!.cells.ipvs).toMatchObject({ status: 'not-applicable', reason: 'director X has no dr forwarding' });
  }
  expect(renderMatrixMarkdown(m)).toContain('- ipvs: FWD-DR-001, FWD-DR-002 — director X has no dr forwarding');
});

test('vslab matrix --from writes matrix.json and matrix.md; bad input is exit 2 naming it', () => {
  const out = tmp();
  const r = vslab(['matrix', '--from', `${path.join(RUNS, 'pass')},${path.join(RUNS, 'fault')}`, '--out', out]);
  expect(r.status, r.stderr).toBe(0);
  const m = JSON.parse(fs.readFileSync(path.join(out, 'matrix.json'), 'utf8'));
  expect(m.columns).toHaveLength(2);
  expect(fs.readFileSync(path.join(out, 'matrix.md'), 'utf8')).toContain('## Differences');

  const missing = vslab(['matrix', '--from', path.join(out, 'nope'), '--out', out]);
  expect(missing.status).toBe(2);
  expect(missing.stderr).toContain('nope: not a run directory (no results.json)');
  expect(missing.stderr).not.toMatch(/\n\s+at /);
  const bad = vslab(['matrix', '--plan', '--director', 'ipvs,frobnicator']);
  expect(bad.status).toBe(2);
  expect(bad.stderr).toContain('unknown frobnicator');
  expect(vslab(['matrix', '--plan', '--suites', 'nosuch']).stderr).toContain('--suites: unknown nosuch');
});

test('the plan: each implementation on the backend its driver can use, suites that do not apply listed with the reason', () => {
  const plan = planMatrix(['ipvs', 'keepalived', ...shippedAdapters()], ['forwarding', 'schedulers']);
  expect(shippedAdapters()).toContain('external:adapters/ipvsadm');
  const at = (d: string, s: string) => plan.find((e) => e.director === d && e.suite === s)!;
  expect(at('ipvs', 'schedulers').skip).toBeUndefined();
  expect(at('keepalived', 'schedulers').skip).toContain('does not run against keepalived');
  expect(at('external:adapters/ipvsadm', 'schedulers').skip).toContain('does not run against');
  for (const d of ['ipvs', 'keepalived']) {
    const e = at(d, 'forwarding');
    if (!e.skip) expect(e.backend).toBe(fs.existsSync('/proc/net/ip_vs') ? 'netns' : 'vm');
  }
  // An adapter: the vm backend first (its kernel has what the host's may lack), NAME@netns when asked.
  expect(at('external:adapters/ipvsadm', 'forwarding')).toMatchObject({ backend: 'vm' });
  expect(planMatrix(['external:adapters/ipvsadm@netns'], ['forwarding'])[0]).toMatchObject({ director: 'external:adapters/ipvsadm', backend: 'netns' });
  expect(runDirName('external:adapters/ipvsadm', 'forwarding')).toBe('external-adapters-ipvsadm.forwarding');
});

test('a run whose every test is not applicable counts as passing for the matrix; an empty or failing run does not', () => {
  const run = (s: Partial<Record<'tests' | 'passed' | 'failed' | 'notApplicable' | 'knownFailures', number>>, errors: string[] = []) =>
    ({ summary: { tests: 0, passed: 0, failed: 0, notApplicable: 0, knownFailures: 0, ...s }, errors, tests: [] }) as unknown as Parameters<typeof matrixRunOk>[0];
  expect(matrixRunOk(run({ tests: 65, notApplicable: 65 }))).toBe(true);
  expect(matrixRunOk(run({ tests: 65, passed: 28, notApplicable: 37 }))).toBe(true);
  expect(matrixRunOk(run({ tests: 0 }))).toBe(false);
  expect(matrixRunOk(run({ tests: 65, notApplicable: 64, failed: 1 }))).toBe(false);
  expect(matrixRunOk(run({ tests: 65, notApplicable: 65 }, ['worker crashed']))).toBe(false);
});
