// Runtime of the whole forwarding suite on kernel IPVS in a VM (`vslab test suites/forwarding`), printed
// beside the target (≤ 60 s, issue 17), with the per-lab bring-up, where the tests' time went (the phases
// each test records in checks.json) and the slowest tests. Not a test.
// Usage: node bench/forwarding-suite.js [runs] [--workers N]
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { runPassed, runSuite } from '../src/runner/run';

async function main(): Promise<void> {
  process.env.VSLAB_VM_NAME_PREFIX ||= 'vslabfw-bench-';
  const runs = Number(process.argv[2]) || 1;
  const wi = process.argv.indexOf('--workers');
  const workers = wi >= 0 ? Number(process.argv[wi + 1]) : 2;
  const times: number[] = [];
  for (let k = 0; k < runs; k++) {
    const out = fs.mkdtempSync(path.join(os.tmpdir(), 'vslab-forwarding-suite-'));
    const load0 = os.loadavg()[0];
    const t0 = Date.now();
    const r = await runSuite({ paths: ['suites/forwarding'], director: 'ipvs', backend: 'vm', out, workers });
    const s = (Date.now() - t0) / 1000;
    times.push(s);
    const slow = [...r.tests].sort((a, b) => b.durationMs - a.durationMs).slice(0, 3).map((t) => `${t.id} ${(t.durationMs / 1000).toFixed(1)} s`);
    console.log(`run ${k + 1}: ${s.toFixed(0)} s wall for ${r.summary.tests} tests (${r.summary.passed} passed, ${r.summary.failed} failed, ${r.summary.notApplicable} n/a, ${r.summary.knownFailures} known), ${r.summary.checks} packet checks, ${workers} worker(s), load ${load0.toFixed(1)} -> ${os.loadavg()[0].toFixed(1)}; ${runPassed(r) ? 'passed' : 'FAILED'}`);
    console.log(`  labs ready (boot excluded): ${r.labs.map((l) => `${l.lab} ${(l.readyMs / 1000).toFixed(1)} s`).join(', ')}`);
    console.log(`  slowest: ${slow.join('; ')}`);
    const phases: Record<string, number> = {};
    let testMs = 0;
    for (const t of r.tests) {
      testMs += t.durationMs;
      try {
        const c = JSON.parse(fs.readFileSync(path.join(out, t.id, 'checks.json'), 'utf8')) as { phases?: Record<string, number> };
        for (const [k, v] of Object.entries(c.phases ?? {})) phases[k] = (phases[k] ?? 0) + v;
      } catch {
        // a not-applicable test has no checks.json
      }
    }
    const accounted = Object.values(phases).reduce((a, b) => a + b, 0);
    console.log(`  test time ${(testMs / 1000).toFixed(1)} s: ${Object.entries(phases).sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k} ${(v / 1000).toFixed(1)} s`).join(', ')}, other (lab bring-up, director reads, waits) ${((testMs - accounted) / 1000).toFixed(1)} s`);
    fs.rmSync(out, { recursive: true, force: true });
  }
  const sorted = [...times].sort((a, b) => a - b);
  console.log(`${'forwarding suite, whole run'.padEnd(32)} best ${sorted[0].toFixed(0)} s, median ${sorted[Math.floor(sorted.length / 2)].toFixed(0)} s   target: <= 60 s (${sorted[Math.floor(sorted.length / 2)] <= 60 ? 'met' : 'NOT met'})`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
