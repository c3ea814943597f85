// The report file, KTAP and the progress line without a browser or a lab: on the saved real runs in
// tests/fixtures/report-runs.
import { test, expect } from '@playwright/test';
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { loadRunForReport } from '../../src/report/data';
import { distributionSvg } from '../../src/report/svg';
import { renderKtap } from '../../src/runner/ktap';
import { readRun } from '../../src/runner/merge';
import { ProgressLine } from '../../src/runner/progress';

const REPO = path.join(__dirname, '..', '..');
const RUNS = path.join(REPO, 'tests', 'fixtures', 'report-runs');

function vslab(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [path.join(REPO, 'bin', 'vslab.js'), ...args], { cwd: REPO, encoding: 'utf8', timeout: 120_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

test('the report is one self-contained file: nothing loaded from elsewhere, capture links relative, all three runs in one matrix', () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vslab-report-'));
  try {
    const file = path.join(tmp, 'all.html');
    const r = vslab(['report', path.join(RUNS, 'pass'), path.join(RUNS, 'fault'), path.join(RUNS, 'sched'), '--out', file]);
    expect(r.status, r.stderr).toBe(0);
    const html = fs.readFileSync(file, 'utf8');
    // (Matches are printed, not the whole file.) SVG's url(#marker) is a reference inside the page.
    expect(html.match(/\b(src|href)="(https?:)?\/\/[^"]*"/g)).toBeNull();
    expect(html.match(/<link\b[^>]*>|<script\b[^>]*\bsrc=[^>]*>|@import[^;]*|url\((?!#)[^)]*\)/g)).toBeNull();
    expect(html.includes("default-src 'none'")).toBe(true);
    const hrefs = [...html.matchAll(/href="([^"#][^"]*)"/g)].map((m) => m[1]);
    expect(hrefs.length).toBeGreaterThan(0);
    for (const h of hrefs) {
      expect(h).toMatch(/capture\.pcapng$/);
      expect(fs.existsSync(path.join(tmp, h)), h).toBe(true);
    }
    // One column per run in the statement matrix.
    const head = /<table data-testid="matrix"><tr>(.*?)<\/tr>/.exec(html)![1];
    expect((head.match(/<th>/g) ?? []).length).toBe(3 + 3);
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
});

test('journeys are cut to the limit and say how many hops are left to the capture', () => {
  const full = loadRunForReport(path.join(RUNS, 'pass'));
  const cut = loadRunForReport(path.join(RUNS, 'pass'), { flowsPerTest: 1, hopsPerFlow: 5, diffsPerTest: 1 });
  const id = 'forwarding.nat.tcp4-handshake-and-data-on-every-hop-port-mapped';
  const a = full.tests.find((t) => t.id === id)!.journeys[0];
  const b = cut.tests.find((t) => t.id === id)!.journeys[0];
  expect(a.omittedHops).toBe(0);
  expect(b.hops).toBe(a.hops);
  expect(b.transmissions.reduce((n, t) => n + t.hops.length, 0)).toBe(5);
  expect(b.omittedHops).toBe(a.hops - 5);
});

test('a distribution marks the first flow where the kernel and the model part, and bars outside the band', () => {
  const svg = distributionSvg({
    scheduler: 'rr', kernel: 'test', tolerance: 0, toleranceNote: '', flows: 6, ok: false, firstDivergence: 3, shownFrom: 0,
    servers: [{ name: 'rs1', expected: 2, observed: 3 }, { name: 'rs2', expected: 2, observed: 1 }, { name: 'rs3', expected: 2, observed: 2 }],
    predicted: ['rs1', 'rs2', 'rs3', 'rs1', 'rs2', 'rs3'], observed: ['rs1', 'rs2', 'rs3', 'rs1', 'rs1', 'rs3'],
  });
  expect(svg).toContain('first divergence: flow 3');
  expect((svg.match(/class="obs off"/g) ?? []).length).toBe(2);
  expect((svg.match(/class="diverge"/g) ?? []).length).toBe(1);
});

test('KTAP: one line per test, statements as subtests, known failures XFAIL, not applicable SKIP, failures not ok', () => {
  const pass = renderKtap(readRun(path.join(RUNS, 'pass')));
  const lines = pass.trimEnd().split('\n');
  expect(lines[0]).toBe('KTAP version 1');
  expect(lines).toContain('1..5');
  expect(pass).toMatch(/^ok \d+ forwarding\.nat\.icmp6-port-unreachable-from-a-real-server-reaches-the-client-translated # XFAIL /m);
  expect(pass).toMatch(/^ {4}ok \d+ FWD-COM-001$/m);
  expect(pass).toMatch(/^ {4}# Subtest: forwarding\.dr\.tcp4-handshake-and-data-on-every-hop$/m);
  expect(lines[lines.length - 1]).toBe('# totals: pass:4 fail:0 xfail:1 skip:0');
  const fault = renderKtap(readRun(path.join(RUNS, 'fault')));
  expect(fault).toMatch(/^not ok \d+ forwarding\.nat\.tcp4-handshake-and-data-on-every-hop-port-mapped$/m);
  expect(fault).toMatch(/^ {4}not ok \d+ FWD-NAT-003$/m);
  // Every top-level result line is numbered 1..N in order.
  const nums = fault.split('\n').filter((l) => /^(not )?ok /.test(l)).map((l) => Number(/ok (\d+)/.exec(l)![1]));
  expect(nums).toEqual(nums.map((_, i) => i + 1));
});

test('the progress line counts tests done of the total, keeps failures on screen, names the file and the elapsed time', () => {
  let out = '';
  let now = 1000;
  const p = new ProgressLine({ write: (s) => (out += s) }, undefined, () => now, 1000);
  p.feed('booting 2 VM(s) for the run\n\nRunning 65 tests using 2 workers, shard 1 of 2\n\n');
  expect(p.text()).toBe('[0/65] · 0:00 elapsed');
  now += 75_000;
  p.feed('  ✓   1 suites/forwarding/dr.spec.ts:18:3 › tcp4: handshake and data on every hop (67.4s)\n  ✘   2 suites/forwarding/nat.spec');
  expect(p.text()).toBe('[1/65] · suites/forwarding/dr.spec.ts · 1:15 elapsed');
  p.feed('.ts:37:1 › icmp6: port unreachable (10.6s)\n  -  3 suites/forwarding/dr.spec.ts:30:1 › port mapping\n');
  expect(p.text()).toBe('[3/65] 1 failed · suites/forwarding/dr.spec.ts · 1:15 elapsed');
  expect(out).toContain('✘   2 suites/forwarding/nat.spec.ts:37:1 › icmp6: port unreachable (10.6s)\n');
  p.stop();
  expect(out.endsWith('\r\x1b[K')).toBe(true);
});

test('vslab report and --reporter refuse bad input with exit 2', () => {
  expect(vslab(['report']).status).toBe(2);
  const r = vslab(['report', path.join(REPO, 'no-such-run')]);
  expect(r.status).toBe(2);
  expect(r.stderr).toContain('not a directory');
  const e = vslab(['report', path.join(RUNS, 'pass'), path.join(RUNS, 'fault')]);
  expect(e.status).toBe(2);
  expect(e.stderr).toContain('--out FILE is required');
  const noRun = vslab(['report', path.join(REPO, 'docs')]);
  expect(noRun.status).toBe(2);
  expect(noRun.stderr).toContain('no results.json');
  expect(vslab(['test', 'suites/forwarding', '--reporter', 'tap']).status).toBe(2);
  expect(vslab(['test', 'suites/forwarding', '--reporter', 'ktap', '--json']).status).toBe(2);
});
