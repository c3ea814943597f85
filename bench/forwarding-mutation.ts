// The forwarding suite's mutation score: the suite on kernel IPVS in a VM (the reference, which must pass),
// then once per faulty director (src/director/faults.ts), each on the suite files of the methods it
// sabotages; prints the statement x fault matrix, the score beside its target (every fault caught, every
// statement failed by at least one fault) and the time each part took. Not a test (≈1 h here).
// Usage: node bench/forwarding-mutation.js [--faults a,b] [--baseline RUNDIR] [--out DIR]
import * as os from 'os';
import * as path from 'path';
import { renderMutation, runMutation } from '../src/runner/mutation';

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

async function main(): Promise<void> {
  process.env.VSLAB_VM_NAME_PREFIX ||= 'vslabfw-bench-';
  const out = path.resolve(arg('--out') ?? path.join(os.tmpdir(), `vslab-forwarding-mutation-${Date.now()}`));
  const t0 = Date.now();
  const load0 = os.loadavg()[0];
  const m = await runMutation({
    paths: ['suites/forwarding'], director: 'ipvs', backend: 'vm', out, workers: 2,
    faults: arg('--faults')?.split(','), baseline: arg('--baseline'),
    progress: (msg) => console.error(`… ${msg} (${((Date.now() - t0) / 1000).toFixed(0)} s)`),
  });
  console.log(renderMutation(m));
  const minutes = (Date.now() - t0) / 60000;
  console.log('');
  console.log(`${'faults caught'.padEnd(36)} ${`${m.score.caught} / ${m.score.faults}`.padEnd(14)} target: all`);
  console.log(`${'statements failed by some fault'.padEnd(36)} ${`${m.score.killed} / ${m.score.statements}`.padEnd(14)} target: all`);
  console.log(`${'reference run'.padEnd(36)} ${`${(m.baseline.durationMs / 1000).toFixed(0)} s`.padEnd(14)} target: <= 180 s`);
  console.log(`${'whole matrix'.padEnd(36)} ${`${minutes.toFixed(1)} min`.padEnd(14)} (load average ${load0.toFixed(1)} -> ${os.loadavg()[0].toFixed(1)}; results in ${out})`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
