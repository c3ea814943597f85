// The forwarding suite end to end on kernel IPVS in a VM, through the CLI as a user runs it:
//  1. `vslab test suites/forwarding --director ipvs --backend vm --out <dir>` passes (every test passed, not
//     applicable with a reason, or a documented known failure), with at least 40 passed tests, every
//     statement checked, and a run directory holding results.json, junit.xml, and per test the merged
//     capture and the expectations;
//  2. `vslab replay <dir>` (the packets layer's) re-decides every packet check from the captures alone, in
//     agreement;
//  3. a representative set of faults (one per method family, run against the same reference) is caught,
//     each breaking the statements it targets. The full matrix: bench/forwarding-mutation.js.
import { test, expect } from '@playwright/test';
import { spawn } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { Writable } from 'stream';
import { runReplay } from '../../src/cli/commands/replay';
import type { RunResults } from '../../src/runner/results';
import type { MutationResults } from '../../src/runner/mutation';

const REPO = path.join(__dirname, '..', '..');
const VSLAB = path.join(REPO, 'bin', 'vslab.js');
// Unique to this test process, so VMs of anything else running on the host (another run, a developer) are not counted as ours.
const PREFIX = `vslabfw${process.pid}-`;
const CI_FAULTS = ['fullnat-no-snat', 'dr-reply-via-director', 'tunnel-outer-ttl-reset', 'icmp-error-untranslated'];

test.describe.configure({ mode: 'serial' });
test.skip(process.env.VSLAB_SKIP_VM === '1', 'VSLAB_SKIP_VM=1: real-kernel IPVS tests skipped on request');

const base = fs.mkdtempSync(path.join(os.tmpdir(), 'vslabfw-suite-'));
const runDir = path.join(base, 'run');

function vslab(args: string[], timeoutMs: number): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [VSLAB, ...args], { cwd: REPO, env: { ...process.env, VSLAB_VM_NAME_PREFIX: PREFIX }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGTERM'), timeoutMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

function ourQemus(): string[] {
  const out: string[] = [];
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const argv = fs.readFileSync(`/proc/${d}/cmdline`, 'utf8').split('\0');
      const i = argv.indexOf('-name');
      if (i >= 0 && argv.some((a) => a.includes('qemu-system')) && argv[i + 1]?.startsWith(PREFIX)) out.push(argv[i + 1]);
    } catch {
      /* gone */
    }
  }
  return out;
}

test.afterAll(() => {
  fs.rmSync(base, { recursive: true, force: true });
});

test('vslab test suites/forwarding passes on kernel IPVS in a VM', async () => {
  test.setTimeout(900_000);
  const t0 = Date.now();
  const r = await vslab(['test', 'suites/forwarding', '--director', 'ipvs', '--backend', 'vm', '--out', runDir, '--json'], 880_000);
  const seconds = (Date.now() - t0) / 1000;
  if (r.code !== 0) {
    // Keep what explains the failure: the run directory goes with the test's temporary base.
    const keep = test.info().outputPath('run');
    fs.cpSync(runDir, keep, { recursive: true, filter: (src) => !src.endsWith('.pcapng') });
    let why = r.stderr.slice(-3000);
    try {
      const res = JSON.parse(r.stdout) as RunResults;
      why = [
        ...res.tests.filter((t) => t.status === 'failed').map((t) => `${t.id}: ${t.reason ?? ''}`),
        ...res.errors.map((e) => `run error: ${String(e).slice(0, 1500)}`),
        why,
      ].join('\n');
    } catch {
      why = `${why}\n(stdout: ${r.stdout.slice(0, 1500)})`;
    }
    expect(r.code, `vslab test exited ${r.code} (run directory kept in ${keep}):\n${why}`).toBe(0);
  }
  const results = JSON.parse(r.stdout) as RunResults;
  expect(results).toEqual(JSON.parse(fs.readFileSync(path.join(runDir, 'results.json'), 'utf8')));
  test.info().annotations.push({ type: 'runtime', description: `${seconds.toFixed(0)} s for ${results.summary.tests} tests (target 180 s)` });
  expect(results.summary.failed).toBe(0);
  expect(results.summary.passed).toBeGreaterThanOrEqual(40);
  expect(results.summary.statementsNotChecked).toBe(0);
  expect(results.summary.statementsFailed).toBe(0);
  expect(results.implementations.join(' ')).toMatch(/IPVS/);
  for (const t of results.tests) {
    if (t.status === 'not-applicable' || t.status === 'known-failure') expect(t.reason, t.id).toBeTruthy();
    if (t.status !== 'passed') continue;
    expect(t.checks, t.id).toBeGreaterThan(0);
    expect(fs.existsSync(path.join(runDir, t.capture!)), t.id).toBe(true);
    expect(fs.existsSync(path.join(runDir, t.expectations!)), t.id).toBe(true);
  }
  const junit = fs.readFileSync(path.join(runDir, 'junit.xml'), 'utf8');
  expect(junit).toMatch(new RegExp(`tests="${results.summary.tests}"`));
  expect(ourQemus()).toEqual([]);
});

test('vslab replay reproduces every verdict from the captures alone', async () => {
  test.setTimeout(300_000);
  test.skip(!fs.existsSync(path.join(runDir, 'results.json')), 'needs the run of the previous test');
  const results = JSON.parse(fs.readFileSync(path.join(runDir, 'results.json'), 'utf8')) as RunResults;
  // The packets layer's `vslab replay`, called in-process (its CLI registration comes with that layer).
  let stdout = '';
  const sink = new Writable({ write(chunk, _enc, cb) { stdout += chunk; cb(); } });
  const code = await runReplay([runDir, '--json'], { out: sink, err: sink });
  const replays = JSON.parse(stdout) as Array<{ testId: string; ok: boolean; disagreements: unknown[]; results: Array<{ ok: boolean }>; accounting: { disagrees?: boolean; absent?: string } }>;
  expect(replays.flatMap((x) => x.disagreements)).toEqual([]);
  // Packet accounting is re-decided too, and is one of each test's checks in the run's figures.
  expect(replays.filter((x) => x.accounting.absent !== undefined || x.accounting.disagrees).map((x) => x.testId)).toEqual([]);
  const total = replays.reduce((a, x) => a + x.results.length + 1, 0);
  expect(total).toBe(results.summary.checks);
  // Only the known failures' checks fail, offline as live.
  const failing = replays.filter((x) => !x.ok).map((x) => x.testId).sort();
  expect(failing).toEqual(results.tests.filter((t) => t.status === 'known-failure').map((t) => t.id).sort());
  // ... so the replay passes, as the run did.
  expect(code).toBe(0);
});

test('representative faults are caught, each breaking what it targets', async () => {
  test.setTimeout(900_000);
  test.skip(!fs.existsSync(path.join(runDir, 'results.json')), 'needs the reference run of the first test');
  const out = path.join(base, 'mutation');
  const r = await vslab(['test', 'suites/forwarding', '--mutation', '--faults', CI_FAULTS.join(','), '--baseline', runDir, '--out', out, '--json'], 880_000);
  expect(r.code, r.stderr.slice(-3000)).toBe(0);
  const m = JSON.parse(r.stdout) as MutationResults;
  expect(m.faults.map((f) => f.fault)).toEqual(CI_FAULTS);
  for (const f of m.faults) {
    expect(f.caught, `${f.fault}: ${f.error ?? ''}`).toBe(true);
    for (const t of f.targets) expect(f.broken, `${f.fault} must break ${t}`).toContain(t);
  }
  expect(ourQemus()).toEqual([]);
});
