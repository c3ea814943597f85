// Sharding and merging, without a lab: Playwright's shard assignment (vslab test --list --shard) splits the
// suite into disjoint parts whose concatenation is the unsharded list, and `vslab merge` of a real saved run
// split the same way gives back that run test for test (results, statements, summary, per-test files).
import { test, expect } from '@playwright/test';
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { assembleResults, type RunResults } from '../../src/runner/results';
import { listTests, parseShard, RunError } from '../../src/runner/run';
import { mergeRuns, readRun } from '../../src/runner/merge';

const REPO = path.join(__dirname, '..', '..');
const VSLAB = path.join(REPO, 'bin', 'vslab.js');
const PASS_RUN = path.join(REPO, 'tests', 'fixtures', 'report-runs', 'pass');
// How tests/fixtures/report-runs/pass was made (tests/fixtures/report-runs/README.md).
const PASS_PATHS = ['suites/forwarding/nat.spec.ts', 'suites/forwarding/dr.spec.ts'];
const PASS_GREP = 'tcp4: handshake|icmp6: port|udp6: handshake';

function vslab(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [VSLAB, ...args], { cwd: REPO, encoding: 'utf8', timeout: 120_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

function tmpdir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'vslab-merge-'));
}

/** Writes shard i/n of a saved run: the tests Playwright puts in that shard, their files, statements recomputed. */
async function splitRun(run: RunResults, runDir: string, total: number, into: string): Promise<string[]> {
  const dirs: string[] = [];
  for (let i = 1; i <= total; i++) {
    const ids = new Set((await listTests(PASS_PATHS.map((p) => path.join(REPO, p)), { grep: PASS_GREP, shard: { current: i, total } })).map((t) => t.id));
    const dir = path.join(into, `shard${i}`);
    fs.mkdirSync(dir, { recursive: true });
    const tests = run.tests.filter((t) => ids.has(t.id));
    for (const t of tests) if (fs.existsSync(path.join(runDir, t.id))) fs.cpSync(path.join(runDir, t.id), path.join(dir, t.id), { recursive: true });
    const r = assembleResults({ ...run, shard: { current: i, total } }, tests, run.statements);
    fs.writeFileSync(path.join(dir, 'results.json'), JSON.stringify(r, null, 2));
    dirs.push(dir);
  }
  return dirs;
}

test('the shards of the forwarding suite are disjoint and together list the unsharded run in its order', async () => {
  const all = JSON.parse(vslab(['test', 'suites/forwarding', '--list', '--json']).stdout) as Array<{ id: string }>;
  expect(all.length).toBe(65);
  const parts = [1, 2, 3].map((i) => {
    const r = vslab(['test', 'suites/forwarding', '--list', '--json', '--shard', `${i}/3`]);
    expect(r.status, r.stderr).toBe(0);
    return (JSON.parse(r.stdout) as Array<{ id: string }>).map((t) => t.id);
  });
  // Playwright shards these suites by file (a file's tests share a lab): 4 files over 3 shards leave one
  // empty here; the union is still the whole run, in order, and no test is in two shards.
  expect(parts.filter((p) => p.length).length).toBeGreaterThanOrEqual(2);
  expect(parts.flat()).toEqual(all.map((t) => t.id));
  expect(new Set(parts.flat()).size).toBe(all.length);
});

test('--shard and --list refuse what they cannot do, with exit 2', () => {
  for (const bad of ['0/2', '3/2', '1', 'a/b', '1/0']) {
    const r = vslab(['test', 'suites/forwarding', '--list', '--shard', bad]);
    expect(r.status, bad).toBe(2);
    expect(r.stderr).toContain(`--shard ${bad}`);
  }
  expect(parseShard('2/5')).toEqual({ current: 2, total: 5 });
  const r = vslab(['test', 'suites/forwarding', '--mutation', '--shard', '1/2']);
  expect(r.status).toBe(2);
  expect(r.stderr).toContain('--shard applies to a run');
});

test('a saved run split into Playwright\'s shards merges back into the same run, test for test', async () => {
  const run = readRun(PASS_RUN);
  expect(run.tests.length).toBeGreaterThanOrEqual(4);
  const tmp = tmpdir();
  try {
    // Three shards of two files: dr.spec.ts, nat.spec.ts and an empty third (Playwright shards by file here).
    const shards = await splitRun(run, PASS_RUN, 3, tmp);
    expect(shards.map((d) => readRun(d).tests.length)).toEqual([2, 3, 0]);
    // Given in the wrong order on purpose: merge puts the shards in shard order.
    const r = vslab(['merge', shards[2], shards[1], shards[0], '--out', path.join(tmp, 'merged')]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain('report:');
    const merged = readRun(path.join(tmp, 'merged'));
    expect(merged.tests).toEqual(run.tests);
    expect(merged.statements).toEqual(run.statements);
    expect(merged.summary).toEqual(run.summary);
    expect(merged.implementations).toEqual(run.implementations);
    expect(merged.shard).toBeUndefined();
    for (const t of run.tests) {
      for (const f of [t.capture, t.expectations]) {
        if (f) expect(fs.readFileSync(path.join(tmp, 'merged', f)).equals(fs.readFileSync(path.join(PASS_RUN, f)))).toBe(true);
      }
    }
    const junit = fs.readFileSync(path.join(tmp, 'merged', 'junit.xml'), 'utf8');
    expect((junit.match(/<testcase /g) ?? []).length).toBe(run.tests.length);
    expect(fs.existsSync(path.join(tmp, 'merged', 'report.html'))).toBe(true);
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
});

test('merge refuses a missing shard, a shard twice, a test twice and runs against different directors', async () => {
  const run = readRun(PASS_RUN);
  const tmp = tmpdir();
  try {
    const shards = await splitRun(run, PASS_RUN, 2, tmp);
    const out = path.join(tmp, 'out');
    expect(() => mergeRuns([shards[0]], out)).toThrow(/shard\(s\) 2\/2 missing/);
    expect(() => mergeRuns([shards[0], shards[0]], out)).toThrow(/both shard 1\/2/);
    expect(() => mergeRuns([shards[0], shards[1]], out)).not.toThrow();
    expect(() => mergeRuns([PASS_RUN, PASS_RUN], out)).toThrow(/is in both/);
    const other = path.join(tmp, 'other');
    fs.mkdirSync(other);
    fs.writeFileSync(path.join(other, 'results.json'), JSON.stringify({ ...run, director: 'nftables', tests: [] }));
    expect(() => mergeRuns([PASS_RUN, other], out)).toThrow(/director is nftables/);
    expect(() => mergeRuns([shards[0], shards[1]], shards[0])).toThrow(RunError);
    const r = vslab(['merge', path.join(tmp, 'nowhere'), '--out', out]);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('no results.json');
    expect(vslab(['merge', shards[0]]).status).toBe(2);
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
});
