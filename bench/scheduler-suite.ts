// Wall time of the exact scheduler suite (`vslab test suites/schedulers/exact.spec.ts`) the old way and the
// pooled way in the same run, both with real guest clocks: VSLAB_REPLAY_SLOTS=1 (no sibling labs: each test replays its scenario itself,
// longest first on whichever worker is free, as before the pool) against VSLAB_REPLAY_SLOTS=N (scenarios
// with waits started ahead on sibling labs in the same VM, src/suites/schedulers/pool.ts). With --warp, a third
// run: guests whose clocks jump through the waits (VSLAB_REPLAY_CLOCK=warp, one lab per VM: the default). Every run must
// pass with the same tests. The machine is shared: read the ratio and the load averages. Not a test.
// Usage: node bench/scheduler-suite.js [--grep REGEX] [--workers N] [--slots N] [--kernel K] [--order new-first] [--warp]
// The last line is JSON.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { runPassed, runSuite } from '../src/runner/run';

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

async function main(): Promise<void> {
  process.env.VSLAB_VM_NAME_PREFIX ||= 'vslabss-bench-';
  const grep = arg('grep');
  const workers = Number(arg('workers') ?? 2);
  const slots = Number(arg('slots') ?? 3);
  const kernel = arg('kernel');
  const variants: { key: 'old' | 'new' | 'warp'; label: string; slots: number; clock?: 'warp' }[] = [{ key: 'old', label: 'old (1 slot)', slots: 1 }, { key: 'new', label: `new (${slots} slots)`, slots }];
  if (arg('order') === 'new-first') variants.reverse();
  if (process.argv.includes('--warp')) variants.push({ key: 'warp', label: 'warp clock', slots: 1, clock: 'warp' });
  const figures: Record<string, { wallS: number; tests: number; passed: number; skipped: number; load: [number, number] }> = {};
  let ok = true;
  for (const v of variants) {
    const out = fs.mkdtempSync(path.join(os.tmpdir(), 'vslab-scheduler-suite-'));
    const load0 = os.loadavg()[0];
    const t0 = Date.now();
    const r = await runSuite({ paths: ['suites/schedulers/exact.spec.ts'], director: 'ipvs', backend: 'vm', out, workers, grep, kernel, env: { VSLAB_REPLAY_SLOTS: String(v.slots), VSLAB_REPLAY_CLOCK: v.clock ?? 'real' } });
    const wall = (Date.now() - t0) / 1000;
    const passed = runPassed(r);
    ok &&= passed;
    figures[v.key] = { wallS: Math.round(wall * 10) / 10, tests: r.summary.tests, passed: r.summary.passed, skipped: r.summary.notApplicable, load: [Math.round(load0 * 10) / 10, Math.round(os.loadavg()[0] * 10) / 10] };
    const failed = r.tests.filter((t) => t.status === 'failed').map((t) => t.id);
    console.log(`${v.label.padEnd(16)} ${wall.toFixed(1)} s wall, ${r.summary.tests} tests (${r.summary.passed} passed, ${r.summary.failed} failed, ${r.summary.notApplicable} n/a), ${workers} worker(s), load ${load0.toFixed(1)} -> ${os.loadavg()[0].toFixed(1)}; ${passed ? 'passed' : `FAILED ${failed.join(', ')}`}`);
    if (!passed) console.log(`  run directory kept: ${out}`);
    else fs.rmSync(out, { recursive: true, force: true });
  }
  const ratio = figures.old.wallS / figures.new.wallS;
  const warp = figures.warp ? { warpWallS: figures.warp.wallS, warpSpeedup: Math.round((figures.old.wallS / figures.warp.wallS) * 100) / 100, warp: figures.warp } : {};
  console.log(JSON.stringify({ oldWallS: figures.old.wallS, newWallS: figures.new.wallS, speedup: Math.round(ratio * 100) / 100, slots, workers, grep: grep ?? null, old: figures.old, new: figures.new, ...warp, passed: ok }));
  if (!ok) process.exitCode = 1;
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
