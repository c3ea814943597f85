// Benchmark of the traffic tools between two namespaces (client -> server over a veth pair):
// connections per second for TCP (sequential and concurrent) and UDP exchanges, plus the start-up
// cost of one client run. Prints each figure beside its target. Run: node bench/traffic-run.js
import { runClient, startResponder } from '../src/traffic/index';
import { ADDR, assertToolsBuilt, makePair } from '../tests/traffic/netns-node';

/** "thousands of connections per second": the floor every mode should clear. */
const TARGET_PER_SECOND = 1000;
const REPEATS = 3;

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function main(): Promise<void> {
  assertToolsBuilt();
  const pair = makePair('bench');
  const rs = startResponder(pair.server, { name: 'rs1', tcp: [8080], udp: [8080], log: false });
  // The same with a per-answer log line, as suites that count what each server served run it.
  const logged = startResponder(pair.server, { name: 'rs1-log', tcp: [8081], log: true });
  try {
    await rs.ready;
    await logged.ready;
    const cases: Array<{ label: string; proto: 'tcp' | 'udp'; count: number; concurrency: number; port?: number }> = [
      { label: 'TCP sequential', proto: 'tcp', count: 3000, concurrency: 1 },
      { label: 'TCP concurrent (100)', proto: 'tcp', count: 20000, concurrency: 100 },
      { label: 'TCP concurrent, --log', proto: 'tcp', count: 20000, concurrency: 100, port: 8081 },
      { label: 'UDP sequential', proto: 'udp', count: 5000, concurrency: 1 },
      { label: 'UDP concurrent (50)', proto: 'udp', count: 20000, concurrency: 50 },
    ];
    console.log(`traffic tools, client and responder in two namespaces over veth, ${REPEATS} runs each, median`);
    for (const c of cases) {
      const rates: number[] = [];
      for (let k = 0; k < REPEATS; k++) {
        const rep = await runClient(pair.client, {
          proto: c.proto, target: { address: ADDR.server4, port: c.port ?? 8080 }, count: c.count, concurrency: c.concurrency, timeoutMs: 10_000, quiet: true,
        });
        const o = rep.summary.outcomes;
        if (o.answered !== c.count) throw new Error(`${c.label}: only ${o.answered} of ${c.count} answered: ${JSON.stringify(o)}`);
        rates.push(rep.summary.perSecond);
      }
      const m = median(rates);
      console.log(`${c.label.padEnd(22)} ${String(Math.round(m)).padStart(6)} conn/s  (runs ${rates.map(Math.round).join(', ')}; count ${c.count})   target >= ${TARGET_PER_SECOND}/s  ${m >= TARGET_PER_SECOND ? 'ok' : 'BELOW TARGET'}`);
    }
    // What one short client run costs end to end (node start inside the namespace, 1 connection, parse).
    const walls: number[] = [];
    for (let k = 0; k < 5; k++) {
      const t0 = process.hrtime.bigint();
      await runClient(pair.client, { target: { address: ADDR.server4, port: 8080 } });
      walls.push(Number(process.hrtime.bigint() - t0) / 1e6);
    }
    console.log(`one-connection client run, wall (spawn in netns + node start + 1 conn): ${median(walls).toFixed(0)} ms median of 5   (no target; for suite planning)`);
  } finally {
    await rs.stop().catch(() => undefined);
    await logged.stop().catch(() => undefined);
    pair.down();
  }
}

main().catch((e) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});
