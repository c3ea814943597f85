// The forwarding suite on the nftables director in network namespaces (no VM), target <= 30 s for every
// test it can run, printed beside kernel IPVS in a VM running the same tests (same files, same titles),
// measured in the same bench run. Not a test.
// Usage: node bench/forwarding-nftables.js [--workers N]
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import type { RunResults } from '../src/runner/results';
import { runPassed, runSuite } from '../src/runner/run';

const TARGET_S = 30;

async function timed(label: string, opts: Parameters<typeof runSuite>[0]): Promise<{ s: number; r: RunResults }> {
  const load0 = os.loadavg()[0];
  const t0 = Date.now();
  const r = await runSuite(opts);
  const s = (Date.now() - t0) / 1000;
  const ran = r.tests.filter((t) => t.status === 'passed' || t.status === 'failed' || t.status === 'known-failure');
  console.log(`${label.padEnd(34)} ${s.toFixed(1).padStart(6)} s wall, ${ran.length} test(s) run (${r.summary.passed} passed, ${r.summary.failed} failed, ${r.summary.notApplicable} n/a), load ${load0.toFixed(1)} -> ${os.loadavg()[0].toFixed(1)}; ${runPassed(r) ? 'passed' : 'FAILED'}`);
  fs.rmSync(opts.out, { recursive: true, force: true });
  return { s, r };
}

const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

async function main(): Promise<void> {
  process.env.VSLAB_VM_NAME_PREFIX ||= 'vslabnft-bench-';
  const wi = process.argv.indexOf('--workers');
  const workers = wi >= 0 ? Number(process.argv[wi + 1]) : 1;
  const tmp = (p: string) => fs.mkdtempSync(path.join(os.tmpdir(), p));
  const nft = await timed('nftables, netns', { paths: ['suites/forwarding'], director: 'nftables', backend: 'netns', out: tmp('vslab-fwd-nft-'), workers });
  const ran = nft.r.tests.filter((t) => t.status !== 'not-applicable' && t.status !== 'skipped');
  const files = [...new Set(ran.map((t) => path.join('suites', t.file)))];
  const grep = [...new Set(ran.map((t) => escape(t.title)))].join('|');
  const ipvs = await timed('kernel IPVS, vm (same tests)', { paths: files, director: 'ipvs', backend: 'vm', out: tmp('vslab-fwd-ipvs-'), workers, grep: `^.*(${grep})$` });
  console.log(`nftables ${nft.s.toFixed(1)} s vs kernel IPVS in the VM ${ipvs.s.toFixed(1)} s: ratio ${(nft.s / ipvs.s).toFixed(2)}   target: nftables <= ${TARGET_S} s (${nft.s <= TARGET_S ? 'met' : 'NOT met'})`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
