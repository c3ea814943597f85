// New connections per second scheduled through kernel IPVS in the VM (qemu TCG), every connection's
// real server accounted for exactly, beside today's path measured in the same run on the same lab.
//
//   node bench/kernel-throughput.js [connections=20000] [baseline connections=300] [bookworm|backports]
//
// 1. Boot a replay lab (client, director, 4 real servers).
// 2. Baseline (today's path, replay.ts): a wrr 4:3:2:1 scenario, each connection a full TCP
//    connection from the flow driver (Node) in the client node, closed before the next; both
//    observations (answering responder, connection table); rate over the flow phase.
// 3. First packets (burst.ts): the same kind of scenario with `connections` flows, each only its SYN,
//    sent by vslab-syngen in the client node; every flow looked up in the director's connection
//    table (/proc/net/ip_vs_conn) and compared with the model flow by flow; the server nodes drop the
//    packets on arrival (burst.ts). connectionsPerSecond = flows / host wall time of the sending
//    (guest exec included); accountedPerSecond also counts the table read.
// Last line: JSON {"connectionsPerSecond", "baselinePerSecond", "ratio", ...}. The machine's load
// average is printed before and after: absolute rates move with it, the ratio much less.
import * as os from 'os';
import { performance } from 'perf_hooks';
import { burstScenario, formatBurst } from '../src/suites/schedulers/burst';
import { ReplayLab } from '../src/suites/schedulers/lab';
import { formatReplay, replayScenario } from '../src/suites/schedulers/replay';
import { wrrScenario } from './wrr-scenario';

process.env.VSLAB_VM_NAME_PREFIX ||= 'vslabss-';

const COUNT = Number(process.argv[2] ?? 20_000);
const BASE = Number(process.argv[3] ?? 300);
const KERNEL = process.argv[4];
const TARGET = 2000;
const TARGET_RATIO = 20;

function usage(m: string): never {
  console.error(`kernel-throughput: ${m} (usage: node bench/kernel-throughput.js [connections=20000] [baseline=300] [bookworm|backports|<vmlinuz>])`);
  process.exit(2);
}
if (!Number.isInteger(COUNT) || COUNT < 100 || COUNT > 200_000) usage(`connections must be an integer 100..200000, got ${process.argv[2]}`);
if (!Number.isInteger(BASE) || BASE < 20 || BASE > 20_000) usage(`baseline connections must be an integer 20..20000, got ${process.argv[3]}`);


const load = (): string => os.loadavg().map((x) => x.toFixed(1)).join(' ');

async function main(): Promise<void> {
  const loadBefore = load();
  const t0 = performance.now();
  const lab = await ReplayLab.up({ servers: 4, kernel: KERNEL, name: `kt-bench-${process.pid}` });
  const bootMs = performance.now() - t0;
  try {
    console.log(`kernel-throughput: kernel ${lab.kernel} (qemu TCG, 1 vCPU), lab ready in ${(bootMs / 1000).toFixed(1)} s; host load average ${loadBefore} on ${os.cpus().length} cores`);

    // --- today's path: full connections from the flow driver, both observations
    const base = await replayScenario(lab, wrrScenario(`wrr-baseline-${BASE}`, BASE, 10_000, '198.18.64.0/18'), { flowTimeoutMs: 5000 });
    const first = Math.min(...base.flows.map((f) => f.t));
    const last = Math.max(...base.flows.map((f) => f.t));
    const basePerSecond = (BASE - 1) / ((last - first) / 1000);
    console.log(`baseline (replayer: TCP connection per flow from Node, responder + table): ${BASE} flows, ${basePerSecond.toFixed(0)}/s; kernel vs model ${base.ok ? 'agree' : 'DISAGREE'}`);
    if (!base.ok) console.log(formatReplay(base));

    // --- first packets from vslab-syngen, every flow accounted by the connection table
    const r = await burstScenario(lab, wrrScenario(`wrr-first-packets-${COUNT}`, COUNT, 20_000, '198.18.128.0/17'));
    console.log(formatBurst(r));
    console.log(`  generator clock ${(r.sendMs / 1000).toFixed(2)} s (${(COUNT / (r.sendMs / 1000)).toFixed(0)}/s), host wall ${(r.sendWallMs / 1000).toFixed(2)} s, table read ${(r.tableMs / 1000).toFixed(2)} s, whole run with setup/cleanup ${(r.durationMs / 1000).toFixed(1)} s`);
    const ratio = r.perSecond / basePerSecond;
    const loadAfter = load();
    console.log(`first packets ${r.perSecond.toFixed(0)}/s vs baseline ${basePerSecond.toFixed(0)}/s: ${ratio.toFixed(1)}x (target >= ${TARGET}/s and >= ${TARGET_RATIO}x); host load average ${loadAfter}`);
    console.log(JSON.stringify({
      connectionsPerSecond: Math.round(r.perSecond),
      baselinePerSecond: Math.round(basePerSecond),
      ratio: Math.round(ratio * 10) / 10,
      connections: COUNT,
      baselineConnections: BASE,
      allAccounted: r.missing.length === 0 && r.unknown.length === 0,
      kernelEqualsModel: r.ok,
      baselineKernelEqualsModel: base.ok,
      accountedPerSecond: Math.round(COUNT / ((r.sendWallMs + r.tableMs) / 1000)),
      generatorPerSecond: Math.round(COUNT / (r.sendMs / 1000)),
      tableReadSeconds: Math.round(r.tableMs) / 1000,
      kernel: lab.kernel,
      loadBefore,
      loadAfter,
      target: { connectionsPerSecond: TARGET, ratio: TARGET_RATIO },
    }));
    if (!r.ok || !base.ok) process.exitCode = 1;
  } finally {
    await lab.down();
  }
}

main().catch((e) => {
  console.error(e instanceof Error ? e.stack ?? e.message : e);
  process.exit(1);
});
