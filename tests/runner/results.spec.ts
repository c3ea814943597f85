// The runner's bookkeeping, without a lab: results.json from a Playwright report and the tests' checks.json
// (statuses including not-applicable and known failures, statement verdicts, the summary), the run
// directory rules, suite paths, and the `vslab test` command line.
import { test, expect } from '@playwright/test';
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { buildResults, renderResults, type PwReport } from '../../src/runner/results';
import { checkSuiteOptions, prepareOutDir, resolveSuitePaths, RunError, runPassed, statementsFor, SUITE_TRAITS, SUITES_ROOT, suitesOf } from '../../src/runner/run';
import { CHECKS_FILE, testIdOf, type ChecksFile } from '../../src/runner/suite-api';
import { coverageOf, loadStatements, SpecError } from '../../src/runner/spec';
import { filesForFault } from '../../src/runner/mutation';
import { faultByName } from '../../src/director/faults';

const REPO = path.join(__dirname, '..', '..');
const VSLAB = path.join(REPO, 'bin', 'vslab.js');

function tmpdir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'vslabfw-runner-'));
}

const stmt = (id: string) => ({ type: 'statement', description: id });

function report(): PwReport {
  const t = (title: string, status: string, annotations: Array<{ type: string; description?: string }>, expectedStatus = 'passed', error?: string) => ({
    title, file: 'forwarding/nat.spec.ts',
    tests: [{ annotations, expectedStatus, results: [{ status, duration: 1500, ...(error ? { error: { message: error } } : {}) }] }],
  });
  return {
    suites: [{
      title: 'forwarding/nat.spec.ts', file: 'forwarding/nat.spec.ts',
      specs: [
        t('tcp4: ok', 'passed', [stmt('FWD-NAT-001'), stmt('FWD-COM-002')]),
        t('udp4: broken', 'failed', [stmt('FWD-NAT-001'), stmt('FWD-COM-002')], 'passed', '\u001b[31mCheckFailure: 2 of 9 packet check(s) failed; statements broken: FWD-COM-002\u001b[0m\nmore'),
        t('port mapping', 'skipped', [stmt('FWD-NAT-002'), { type: 'not-applicable', description: 'cannot map ports' }, { type: 'skip', description: 'cannot map ports' }]),
        t('icmp6', 'failed', [stmt('FWD-NAT-005'), { type: 'known-failure', description: 'kernel bug X' }], 'failed'),
        t('icmp4', 'passed', [stmt('FWD-NAT-005'), { type: 'known-failure', description: 'kernel bug Y' }], 'failed'),
      ],
    }],
  };
}

function writeChecks(out: string, title: string, statements: Record<string, 'passed' | 'failed'>, failed = 0): void {
  const id = testIdOf(path.join(SUITES_ROOT, 'forwarding', 'nat.spec.ts'), title, SUITES_ROOT);
  const f: ChecksFile = {
    version: 1, testId: id, title, file: 'forwarding/nat.spec.ts', declared: Object.keys(statements), notes: [],
    checks: Array.from({ length: 5 }, (_, k) => ({ id: `c${k}`, ok: k >= failed, reason: 'r', covers: Object.keys(statements), broken: k < failed ? Object.keys(statements).filter((s) => statements[s] === 'failed') : [] })),
    statements,
  };
  fs.mkdirSync(path.join(out, id), { recursive: true });
  fs.writeFileSync(path.join(out, id, CHECKS_FILE), JSON.stringify(f));
}

test('results: statuses, reasons, statement verdicts and the summary', () => {
  const out = tmpdir();
  try {
    writeChecks(out, 'tcp4: ok', { 'FWD-NAT-001': 'passed', 'FWD-COM-002': 'passed' });
    writeChecks(out, 'udp4: broken', { 'FWD-NAT-001': 'passed', 'FWD-COM-002': 'failed' }, 2);
    writeChecks(out, 'icmp6', { 'FWD-NAT-005': 'failed' }, 1);
    writeChecks(out, 'icmp4', { 'FWD-NAT-005': 'passed' });
    const statements = ['FWD-NAT-001', 'FWD-NAT-002', 'FWD-NAT-005', 'FWD-COM-002', 'FWD-COM-008'].map((id) => ({ id, level: 'MUST' as const, title: id, methods: ['nat'], families: [4], protocols: ['tcp'], statement: 'MUST' }));
    const r = buildResults(report(), { out, suitesRoot: SUITES_ROOT, paths: ['suites/forwarding'], director: 'ipvs', backend: 'vm', statements, startedAt: new Date(0), durationMs: 1234 });
    const by = Object.fromEntries(r.tests.map((t) => [t.title, t]));
    expect(by['tcp4: ok'].status).toBe('passed');
    expect(by['udp4: broken']).toMatchObject({ status: 'failed', reason: 'CheckFailure: 2 of 9 packet check(s) failed; statements broken: FWD-COM-002', checks: 5, failedChecks: 2 });
    expect(by['port mapping']).toMatchObject({ status: 'not-applicable', reason: 'cannot map ports', checks: 0 });
    expect(by['icmp6']).toMatchObject({ status: 'known-failure', reason: 'kernel bug X' });
    expect(by['icmp4'].status).toBe('passed');
    expect(by['icmp4'].notes?.[0]).toMatch(/known failure \(kernel bug Y\) but it passed/);
    expect(by['tcp4: ok'].id).toBe('forwarding.nat.tcp4-ok');
    const st = Object.fromEntries(r.statements.map((s) => [s.id, s.status]));
    expect(st).toEqual({ 'FWD-NAT-001': 'passed', 'FWD-NAT-002': 'not-checked', 'FWD-NAT-005': 'known-failure', 'FWD-COM-002': 'failed', 'FWD-COM-008': 'not-checked' });
    expect(r.summary).toMatchObject({ tests: 5, passed: 2, failed: 1, notApplicable: 1, knownFailures: 1, skipped: 0, checks: 20, failedChecks: 3, statements: 5, statementsFailed: 1, statementsNotChecked: 2 });
    expect(runPassed(r)).toBe(false);
    expect(renderResults(r)).toMatch(/5 tests: 2 passed, 1 failed, 1 not applicable, 1 known failures/);
  } finally {
    fs.rmSync(out, { recursive: true, force: true });
  }
});

test('run directory: a new or previous run directory is emptied, anything else is refused', () => {
  const base = tmpdir();
  try {
    const fresh = path.join(base, 'new');
    prepareOutDir(fresh);
    expect(fs.readdirSync(fresh)).toEqual([]);
    fs.writeFileSync(path.join(fresh, 'results.json'), '{}');
    fs.mkdirSync(path.join(fresh, 'forwarding.nat.x'));
    prepareOutDir(fresh);
    expect(fs.readdirSync(fresh)).toEqual([]);
    const other = path.join(base, 'other');
    fs.mkdirSync(other);
    fs.writeFileSync(path.join(other, 'precious.txt'), 'keep');
    expect(() => prepareOutDir(other)).toThrow(RunError);
    expect(fs.readFileSync(path.join(other, 'precious.txt'), 'utf8')).toBe('keep');
  } finally {
    fs.rmSync(base, { recursive: true, force: true });
  }
});

test('suite paths resolve under suites/, statements come from spec/<suite>.yaml', () => {
  const [p] = resolveSuitePaths(['suites/forwarding']);
  expect(p).toBe(path.join(SUITES_ROOT, 'forwarding'));
  expect(() => resolveSuitePaths(['suites/nope'])).toThrow(/no such suite/);
  expect(() => resolveSuitePaths([REPO])).toThrow(/live under/);
  expect(statementsFor([p]).map((s) => s.id)).toContain('FWD-TUN-005');
  // A fault runs only the files of the methods it sabotages.
  expect(filesForFault(faultByName('fullnat-no-snat'), [p]).map((f) => path.basename(f))).toEqual(['fullnat.spec.ts']);
  expect(filesForFault(faultByName('ttl-not-decremented'), [p]).map((f) => path.basename(f)).sort()).toEqual(['dr.spec.ts', 'fullnat.spec.ts', 'nat.spec.ts', 'tun.spec.ts']);
});

test('each suite says what it can run against; the runner refuses the rest before booting anything', () => {
  const [fwd, sched] = resolveSuitePaths(['suites/forwarding', 'suites/schedulers/exact.spec.ts']);
  // every suite directory has its traits
  const dirs = fs.readdirSync(SUITES_ROOT, { withFileTypes: true }).filter((d) => d.isDirectory() && fs.readdirSync(path.join(SUITES_ROOT, d.name)).some((f) => f.endsWith('.spec.ts')));
  expect(dirs.map((d) => d.name).sort()).toEqual(Object.keys(SUITE_TRAITS).sort());
  expect(suitesOf([fwd, sched])).toEqual(['forwarding', 'schedulers']);
  expect(() => checkSuiteOptions([fwd, sched], { director: 'ipvs', backend: 'vm' })).not.toThrow();
  expect(() => checkSuiteOptions([fwd], { director: 'ipvs', backend: 'vm', fault: 'ttl-not-decremented' })).not.toThrow();
  expect(() => checkSuiteOptions([sched], { director: 'ipvs', backend: 'vm', fault: 'ttl-not-decremented' })).toThrow(/suites\/schedulers takes no --fault/);
  expect(() => checkSuiteOptions([sched], { director: 'ipvs', backend: 'netns' })).toThrow(/suites\/schedulers cannot run on --backend netns/);
  expect(() => checkSuiteOptions([fwd], { director: 'none', backend: 'vm' })).toThrow(RunError);
  // the scheduler suites boot their own labs: the runner boots no VMs for them
  expect(SUITE_TRAITS.schedulers.runVms).toBe(false);
  expect(SUITE_TRAITS.forwarding.runVms).toBe(true);
});

test('statement files: ids, levels and wording are checked; coverage flags unchecked and unknown ids', () => {
  const dir = tmpdir();
  try {
    const f = path.join(dir, 'x.yaml');
    fs.writeFileSync(f, 'version: 1\nsuite: x\nstatements:\n  - { id: FWD-X-001, level: MUST, title: t, methods: [nat], families: [4], protocols: [tcp], statement: "It SHOULD work" }\n');
    expect(() => loadStatements(f)).toThrow(SpecError);
    expect(() => loadStatements(f)).toThrow(/statements\[0\] \(FWD-X-001\): the statement text must use its level's word \(MUST\)/);
    fs.writeFileSync(f, 'version: 1\nsuite: x\nstatements:\n  - { id: FWD-X-001, level: MUST, title: t, methods: [nat], families: [4], protocols: [tcp], statement: "It MUST work" }\n  - { id: FWD-X-002, level: SHOULD, title: u, methods: [nat], families: [4], protocols: [tcp], statement: "It SHOULD work" }\n');
    const spec = loadStatements(f);
    const c = coverageOf(spec, [{ id: 't1', title: 't1', file: 'x', statements: ['FWD-X-001', 'FWD-X-009'] }]);
    expect(c.unchecked).toEqual(['FWD-X-002']);
    expect(c.unknown).toEqual([{ test: 't1', statement: 'FWD-X-009' }]);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('vslab test: usage errors exit 2 with the usage; --list-faults --json lists every fault', () => {
  const bad = spawnSync(process.execPath, [VSLAB, 'test', '--bogus'], { encoding: 'utf8' });
  expect(bad.status).toBe(2);
  expect(bad.stderr).toMatch(/usage: vslab test/);
  const dir = spawnSync(process.execPath, [VSLAB, 'test', 'suites/nothing-here'], { encoding: 'utf8' });
  expect(dir.status).toBe(2);
  expect(dir.stderr).toMatch(/no such suite directory or file/);
  const fault = spawnSync(process.execPath, [VSLAB, 'test', '--fault', 'no-such-fault', '--out', '/nonexistent/x'], { encoding: 'utf8' });
  expect(fault.status).toBe(2);
  expect(fault.stderr).toMatch(/no fault named "no-such-fault"/);
  const list = spawnSync(process.execPath, [VSLAB, 'test', '--list-faults', '--json'], { encoding: 'utf8' });
  expect(list.status).toBe(0);
  const faults = JSON.parse(list.stdout) as Array<{ name: string; targets: string[]; methods: string[] }>;
  expect(faults.length).toBeGreaterThanOrEqual(15);
  expect(new Set(faults.map((f) => f.name)).size).toBe(faults.length);
});
