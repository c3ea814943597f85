// A 10,000-connection distribution test end to end through kernel IPVS in a VM (TCG), beside the
// reference model's prediction speed for the same scenario, in one run.
//
//   node bench/distribution-run.js [connections] [bookworm|backports]
//
// 1. Boot a replay lab (client, director, 4 real servers) and time it.
// 2. Replay a wrr scenario (weights 4, 3, 2, 1; distinct generated clients; each connection closed
//    before the next) with the scenario replayer: exact sequential flows, both observations (the
//    answering server and the director's connection table), the timed model comparison. Reports
//    connections/s of the flow phase and the total time, and checks the distribution with the
//    chi-square and G tests (wrr is deterministic, so this is a sanity check of the accounting).
// 3. The same 10,000 connections with the traffic client at concurrency 50 (raw throughput of the
//    path, no per-flow choice of source port).
// 4. The model on the same scenario: predictions per second (best and median of 5).
import { performance } from 'perf_hooks';
import { resolveScenario, runScenario, type Scenario } from '../src/models/scenario';
import { testDistribution } from '../src/models/stats';
import { ReplayLab } from '../src/suites/schedulers/lab';
import { formatReplay, replayScenario } from '../src/suites/schedulers/replay';
import { ScenarioSetup } from '../src/suites/schedulers/setup';
import { runClient } from '../src/traffic/index';
import { wrrScenario } from './wrr-scenario';

process.env.VSLAB_VM_NAME_PREFIX ||= 'vslabss-';

const COUNT = Number(process.argv[2] ?? 10_000);
const KERNEL = process.argv[3];
/** The traffic tools' anchor between two namespaces on this host (bench/traffic.ts): sequential TCP. */
const HOST_SEQUENTIAL_ANCHOR = 1000;

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

function scenario(count: number): Scenario {
  return wrrScenario(`wrr-distribution-${count}`, count, 10_000, '198.18.64.0/18');
}

async function main(): Promise<void> {
  const sc = scenario(COUNT);
  const t0 = performance.now();
  const lab = await ReplayLab.up({ servers: 4, kernel: KERNEL, name: `ss-bench-${process.pid}` });
  const bootMs = performance.now() - t0;
  try {
    console.log(`distribution bench: ${COUNT} connections, wrr 4:3:2:1, kernel ${lab.kernel} (qemu TCG), lab ready in ${(bootMs / 1000).toFixed(1)} s`);

    // --- the replayer: exact, sequential
    const r = await replayScenario(lab, sc, { flowTimeoutMs: 5000 });
    const first = Math.min(...r.flows.map((f) => f.t));
    const lastStart = Math.max(...r.flows.map((f) => f.t));
    const flowsSeconds = (lastStart - first) / 1000;
    const perSecond = (COUNT - 1) / flowsSeconds;
    const verdict = testDistribution(r.observed, sc.servers);
    console.log(`replayer (sequential, exact, both observations):`);
    console.log(`  flows           ${flowsSeconds.toFixed(1)} s  ${perSecond.toFixed(0)} conn/s   (anchor: traffic tools between two host namespaces >= ${HOST_SEQUENTIAL_ANCHOR}/s sequential; ratio ${(perSecond / HOST_SEQUENTIAL_ANCHOR).toFixed(2)})`);
    console.log(`  total           ${(r.durationMs / 1000).toFixed(1)} s  (setup, flows, connection table, timed model, cleanup)`);
    console.log(`  kernel vs model ${r.ok ? 'all flows agree' : 'DISAGREE'}; distribution: ${verdict.message}`);
    if (!r.ok) console.log(formatReplay(r));

    // --- raw throughput of the same path: traffic client, concurrency 50, ephemeral ports
    const setup = new ScenarioSetup(lab, resolveScenario({ ...sc, flows: [{ client: '198.18.0.2', cport: 1024 }] }));
    await setup.apply();
    try {
      await setup.programDirector();
      const tc = performance.now();
      const rep = await runClient(lab.node('client'), { target: { address: '198.19.0.100', port: 80 }, sources: ['198.18.0.2'], count: COUNT, concurrency: 50, timeoutMs: 10_000, quiet: true, processTimeoutMs: 1_800_000 });
      const wall = (performance.now() - tc) / 1000;
      console.log(`traffic client (concurrency 50, same VIP and servers):`);
      console.log(`  ${rep.summary.perSecond.toFixed(0)} conn/s (client's own clock), ${wall.toFixed(1)} s wall incl. node start; outcomes ${JSON.stringify(rep.summary.outcomes)}; servers (nodes s1..s4 = rs1..rs4) ${JSON.stringify(rep.summary.servers)}`);
      console.log('  (ephemeral ports come round again within the 30 s FIN_WAIT and follow their old entries, so this split is near, not exactly, 4:3:2:1)');
    } finally {
      await setup.remove();
    }

    // --- the model on the same scenario
    const rates: number[] = [];
    for (let k = 0; k < 5; k++) {
      const tm = performance.now();
      runScenario(sc);
      rates.push(COUNT / ((performance.now() - tm) / 1000));
    }
    console.log(`model (runScenario: validation, flow generation and prediction of the same ${COUNT} flows): best ${Math.max(...rates).toFixed(0)}/s, median ${median(rates).toFixed(0)}/s   (docs/schedulers.md target for wrr predict: >= 1M/s; ${(median(rates) / perSecond).toFixed(0)}x the kernel replay)`);
  } finally {
    await lab.down();
  }
}

main().catch((e) => {
  console.error(e instanceof Error ? e.stack ?? e.message : e);
  process.exit(1);
});
