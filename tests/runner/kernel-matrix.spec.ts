// The kernel matrix of `vslab test --kernel a,b[,PATH]`, without a VM: the option's list, the verdict
// comparison (differing tests first, a test missing from one kernel's run counted as differing), the
// text report, and the command line's refusals (exit 2, before anything boots).
import { expect, test } from '@playwright/test';
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { compareKernelRuns, parseKernelList, renderKernelMatrix, type KernelMatrix } from '../../src/runner/kernel-matrix';
import type { RunResults, TestResult, TestStatus } from '../../src/runner/results';

const VSLAB = path.join(__dirname, '..', '..', 'bin', 'vslab.js');

function run(statuses: Record<string, TestStatus>): RunResults {
  const tests: TestResult[] = Object.entries(statuses).map(([title, status]) => ({
    id: `schedulers/x.spec.ts::${title}`, title, file: 'schedulers/x.spec.ts', status, statements: [], checks: 0, failedChecks: 0, durationMs: 10,
  }));
  const count = (s: TestStatus) => tests.filter((t) => t.status === s).length;
  return {
    version: 1, paths: [], director: 'ipvs', backend: 'vm', implementations: [], labs: [], startedAt: '', durationMs: 61_000, tests, statements: [], errors: [],
    summary: { tests: tests.length, passed: count('passed'), failed: count('failed'), skipped: count('skipped'), notApplicable: count('not-applicable'), knownFailures: count('known-failure'), checks: 0, failedChecks: 0, statements: 0, statementsFailed: 0, statementsKnownFailures: 0, statementsNotChecked: 0 },
  };
}

test('the kernel list: Debian suites, a vmlinuz path with its --modules, and what is refused', () => {
  expect(parseKernelList('bookworm,backports')).toEqual([
    { kernel: 'bookworm', label: 'bookworm', modules: undefined },
    { kernel: 'backports', label: 'backports', modules: undefined },
  ]);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'h17-kmatrix-'));
  try {
    const vmlinuz = path.join(dir, 'vmlinuz-6.13 custom');
    fs.writeFileSync(vmlinuz, '');
    expect(parseKernelList(`bookworm,${vmlinuz}`, '/mods')).toEqual([
      { kernel: 'bookworm', label: 'bookworm', modules: undefined },
      { kernel: vmlinuz, label: 'vmlinuz-6.13_custom', modules: '/mods' },
    ]);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  expect(() => parseKernelList('bookworm,,backports')).toThrow(/an empty entry/);
  expect(() => parseKernelList('bookworm,bookworm')).toThrow(/bookworm is listed twice/);
  expect(() => parseKernelList('bookworm,bullseye')).toThrow(/bullseye is neither bookworm, backports nor an existing vmlinuz file/);
  expect(() => parseKernelList('bookworm,backports', '/mods')).toThrow(/--modules goes with exactly one vmlinuz path/);
});

test('verdicts compared test by test: the differing ones first, a missing test differs', () => {
  const rows = compareKernelRuns([
    { label: 'bookworm', results: run({ a: 'passed', b: 'skipped', c: 'passed', d: 'passed' }) },
    { label: 'backports', results: run({ a: 'passed', b: 'passed', c: 'failed' }) },
  ]);
  expect(rows.map((r) => [r.title, r.differs])).toEqual([['b', true], ['c', true], ['d', true], ['a', false]]);
  expect(rows.find((r) => r.title === 'd')!.status).toEqual({ bookworm: 'passed', backports: 'absent' });
  const m: KernelMatrix = {
    version: 1, rows, differing: 3,
    kernels: [
      { kernel: 'bookworm', label: 'bookworm', out: '/o/bookworm', results: run({ a: 'passed' }) },
      { kernel: 'backports', label: 'backports', out: '/o/backports', error: 'the VM did not boot' },
    ],
  };
  const text = renderKernelMatrix(m).split('\n');
  expect(text[0]).toBe('3 test(s) with a different verdict between kernels:');
  expect(text[1]).toMatch(/^bookworm\s+backports\s+test$/);
  expect(text[2]).toMatch(/^skip\s+pass\s+schedulers\/x\.spec\.ts › b$/);
  expect(text[3]).toMatch(/^pass\s+FAIL\s+schedulers\/x\.spec\.ts › c$/);
  expect(text).toContain('backports: did not run: the VM did not boot');
  expect(text.some((l) => l.startsWith('bookworm (bookworm): 1 passed, 0 failed'))).toBe(true);
  expect(renderKernelMatrix({ ...m, rows: [], differing: 0 }).split('\n')[0]).toBe('every test has the same verdict on every kernel');
});

test('vslab test refuses a bad kernel list with exit 2 before booting anything', () => {
  const cases: Array<[string[], RegExp]> = [
    [['--kernel', 'bookworm,,backports'], /an empty entry/],
    [['--kernel', 'bookworm,nosuch'], /nosuch is neither bookworm, backports nor an existing vmlinuz file/],
    [['--kernel', 'bookworm,backports', '--mutation'], /--mutation runs on one kernel/],
  ];
  for (const [args, msg] of cases) {
    const r = spawnSync(process.execPath, [VSLAB, 'test', 'suites/forwarding', ...args, '--out', '/nonexistent/h17'], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(2);
    expect(r.stderr).toMatch(msg);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  }
});
