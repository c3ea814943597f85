// Runtime of the whole forwarding suite on kernel IPVS in a VM (`vslab test suites/forwarding`), printed
// beside the target (≤ 60 s, issue 17), with the per-lab bring-up, where the tests' time went (the phases
// each test records in checks.json) and the slowest tests. The anchor, in the same run and in alternating
// order: the same suite with a tcpdump per link end started and stopped by every test
// (VSLAB_CAPTURE_WINDOWS=0, the path before the lab-long captures of src/capture/windows.ts). Not a test.
// Usage: node bench/forwarding-suite.js [runs] [--workers N] [--no-anchor]
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { runPassed, runSuite } from '../src/runner/run';

async function main(): Promise<void> {
  process.env.VSLAB_VM_NAME_PREFIX ||= 'vslabfw-bench-';
  const runs = Number(process.argv[2]) || 1;
  const wi = process.argv.indexOf('--workers');
  const workers = wi >= 0 ? Number(process.argv[wi + 1]) : 2;
  const anchor = !process.argv.includes('--no-anchor');
  const times: Record<'windows' | 'per-test', number[]> = { windows: [], 'per-test': [] };
  for (let k = 0; k < runs; k++) {
    const paths: ('windows' | 'per-test')[] = !anchor ? ['windows'] : k % 2 ? ['per-test', 'windows'] : ['windows', 'per-test'];
    for (const mode of paths) {
      const out = fs.mkdtempSync(path.join(os.tmpdir(), 'vslab-forwarding-suite-'));
      const load0 = os.loadavg()[0];
      const t0 = Date.now();
      const r = await runSuite({ paths: ['suites/forwarding'], director: 'ipvs', backend: 'vm', out, workers, env: mode === 'per-test' ? { VSLAB_CAPTURE_WINDOWS: '0' } : {} });
      const s = (Date.now() - t0) / 1000;
      times[mode].push(s);
      const slow = [...r.tests].sort((a, b) => b.durationMs - a.durationMs).slice(0, 3).map((t) => `${t.id} ${(t.durationMs / 1000).toFixed(1)} s`);
      console.log(`run ${k + 1}, ${mode === 'windows' ? 'lab-long captures' : 'per-test tcpdumps (anchor)'}: ${s.toFixed(0)} s wall for ${r.summary.tests} tests (${r.summary.passed} passed, ${r.summary.failed} failed, ${r.summary.notApplicable} n/a, ${r.summary.knownFailures} known), ${r.summary.checks} packet checks, ${workers} worker(s), load ${load0.toFixed(1)} -> ${os.loadavg()[0].toFixed(1)}; ${runPassed(r) ? 'passed' : 'FAILED'}`);
      console.log(`  labs ready (boot excluded): ${r.labs.map((l) => `${l.lab} ${(l.readyMs / 1000).toFixed(1)} s`).join(', ')}`);
      console.log(`  slowest: ${slow.join('; ')}`);
      const phases: Record<string, number> = {};
      let testMs = 0;
      for (const t of r.tests) {
        testMs += t.durationMs;
        try {
          const c = JSON.parse(fs.readFileSync(path.join(out, t.id, 'checks.json'), 'utf8')) as { phases?: Record<string, number> };
          for (const [ph, v] of Object.entries(c.phases ?? {})) phases[ph] = (phases[ph] ?? 0) + v;
        } catch {
          // a not-applicable test has no checks.json
        }
      }
      const accounted = Object.values(phases).reduce((a, b) => a + b, 0);
      console.log(`  test time ${(testMs / 1000).toFixed(1)} s: ${Object.entries(phases).sort((a, b) => b[1] - a[1]).map(([ph, v]) => `${ph} ${(v / 1000).toFixed(1)} s`).join(', ')}, other (lab bring-up, director reads, waits) ${((testMs - accounted) / 1000).toFixed(1)} s`);
      fs.rmSync(out, { recursive: true, force: true });
    }
  }
  const median = (a: number[]) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];
  const m = median(times.windows);
  console.log(`${'forwarding suite, whole run'.padEnd(32)} best ${Math.min(...times.windows).toFixed(0)} s, median ${m.toFixed(0)} s   target: <= 60 s (${m <= 60 ? 'met' : 'NOT met'})`);
  if (anchor) {
    const a = median(times['per-test']);
    console.log(`${'anchor: per-test tcpdumps'.padEnd(32)} best ${Math.min(...times['per-test']).toFixed(0)} s, median ${a.toFixed(0)} s   ratio ${(m / a).toFixed(2)}`);
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
