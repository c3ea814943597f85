// Prediction speed of the scheduler reference models: flows per second for every scheduler over
// 100 servers and 100k distinct client flows, measured two ways:
//   schedule  - the scheduler's decision alone (state as left by the previous picks)
//   predict   - ServiceModel.openFlow: decision + connection entry + counters + OVERLOAD checks,
//               which is what `vslab predict` does per flow
// Printed beside the target it is compared with. Run: node bench/predict-run.js [flows] [servers]

import { addressFromV4Number, parseAddress } from '../src/models/address';
import { SeededRandom } from '../src/models/prng';
import { SCHEDULER_NAMES, type SchedulerName, type SchedPacket } from '../src/models/scheduler';
import { type FlowSpec, ServiceModel } from '../src/models/service';

const FLOWS = Number(process.argv[2] ?? 100_000);
const SERVERS = Number(process.argv[3] ?? 100);

/** Targets (flows/s) for the predict path; see docs/schedulers.md "Performance". */
const TARGET: Record<SchedulerName, number> = {
  rr: 1_000_000, wrr: 1_000_000, sh: 1_000_000,
  lc: 300_000, wlc: 300_000, sed: 300_000, nq: 300_000, fo: 300_000, ovf: 300_000, twos: 200_000,
  // fwmark services (dh, lblc, lblcr) key connections by a short string instead of a number
  dh: 500_000, mh: 300_000, lblc: 300_000, lblcr: 200_000,
};

const VIP = parseAddress('198.19.0.100');
const byDestination = new Set<SchedulerName>(['dh', 'lblc', 'lblcr']);

function makeFlows(seed: number): FlowSpec[] {
  const rng = new SeededRandom(seed);
  const out: FlowSpec[] = [];
  const seen = new Set<number>();
  while (out.length < FLOWS) {
    const a = (0xc6124000 | rng.below(1 << 14)) >>> 0; // 198.18.64.0/18
    const p = 1024 + rng.below(64512);
    const k = a * 65536 + p;
    if (seen.has(k)) continue;
    seen.add(k);
    const dst = addressFromV4Number((0xc6138000 | rng.below(4096)) >>> 0); // 198.19.128.0/20
    out.push({ client: addressFromV4Number(a), cport: p, dst, dport: 80, proto: 'tcp', hold: false });
  }
  return out;
}

function makeService(name: SchedulerName): ServiceModel {
  const fw = byDestination.has(name);
  const svc = new ServiceModel({ scheduler: name, family: 4, proto: 'tcp', vip: fw ? undefined : VIP, fwmark: fw ? 1 : undefined, port: 80, seed: 1 });
  const rng = new SeededRandom(99);
  for (let i = 0; i < SERVERS; i++) {
    svc.addDest({ name: `rs${i}`, addr: addressFromV4Number((0xc6120100 + i) >>> 0), port: 80, weight: 1 + rng.below(10) });
  }
  return svc;
}

const REPS = 5;

/**
 * Rates over REPS runs, each on a fresh setup: the median, and the best, which is what the code does
 * when the (shared) machine leaves it alone -- other processes only ever slow a run down.
 */
function rates(setup: () => () => void, n: number): { median: number; best: number } {
  const rs: number[] = [];
  for (let r = 0; r < REPS; r++) {
    const fn = setup();
    const t0 = process.hrtime.bigint();
    fn();
    rs.push(n / (Number(process.hrtime.bigint() - t0) / 1e9));
  }
  rs.sort((a, b) => a - b);
  return { median: rs[Math.floor(REPS / 2)], best: rs[REPS - 1] };
}

function fmt(x: number): string {
  return x >= 1e6 ? `${(x / 1e6).toFixed(2)}M` : `${(x / 1e3).toFixed(0)}k`;
}

const flows = makeFlows(7);
const vipFlows = flows.map((f) => ({ ...f, dst: VIP }));
console.log(`scheduler prediction speed: ${FLOWS} flows, ${SERVERS} servers (node ${process.version})`);
console.log(`${REPS} runs each: median (best); verdict on the best predict/s`);
console.log('scheduler  schedule/s           predict/s            target(predict)  verdict');
let failures = 0;
for (const name of SCHEDULER_NAMES) {
  const fl = byDestination.has(name) ? flows : vipFlows;
  // warm-up on a throwaway service so the JIT has seen the code
  { const w = makeService(name); for (let i = 0; i < Math.min(20000, fl.length); i++) w.openFlow(fl[i]); }
  const pkts: SchedPacket[] = fl.map((f) => ({ saddr: f.client, sport: f.cport, daddr: f.dst, dport: f.dport, proto: 'tcp' }));
  const sched = rates(() => { const s = makeService(name); return () => { for (const p of pkts) s.scheduler.schedule(p); }; }, pkts.length);
  const pred = rates(() => { const s = makeService(name); return () => { for (const f of fl) s.openFlow(f); }; }, fl.length);
  const ok = pred.best >= TARGET[name];
  if (!ok) failures++;
  const both = (r: { median: number; best: number }) => `${fmt(r.median)} (${fmt(r.best)})`.padStart(18);
  console.log(`${name.padEnd(9)}  ${both(sched)}  ${both(pred)}  ${('>= ' + fmt(TARGET[name])).padStart(15)}  ${ok ? 'meets' : 'BELOW'}`);
}
console.log(failures ? `${failures} scheduler(s) below target` : 'all schedulers meet their targets');
