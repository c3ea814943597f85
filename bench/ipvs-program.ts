// Programming 1,000 virtual services x 10 real servers into kernel IPVS: vslab's TypeScript client
// (batched generic netlink, relayed into a qemu guest by the VM backend's agent) against the anchor,
// `ipvsadm -R` of the same rules run inside the guest (one netlink request and ACK per rule, plus a
// socket and a family lookup per rule in libipvs). Both end states are compared (ipvsadm -S -n).
// Not a test: it prints figures. Run: node bench/ipvs-program.js [services] [servers-per-service]
import * as crypto from 'crypto';
import { VmGuest } from '../src/backend/vm/guest';
import { parseKernelOption } from '../src/backend/vm/kernel';
import { IpvsClient, type IpvsChange } from '../src/netlink/ipvs';
import type { ServiceKey } from '../src/netlink/ipvs-types';

const services = Number(process.argv[2] ?? 1000);
const perService = Number(process.argv[3] ?? 10);

function ruleText(): string {
  const lines: string[] = [];
  for (let i = 0; i < services; i++) {
    const vip = `198.18.${i >> 8}.${i & 255}`;
    lines.push(`-A -t ${vip}:80 -s wrr`);
    for (let j = 0; j < perService; j++) lines.push(`-a -t ${vip}:80 -r 198.19.${j}.${(i % 250) + 1}:8080 -m -w ${1 + ((i + j) % 5)}`);
  }
  return lines.join('\n') + '\n';
}

function changes(): IpvsChange[] {
  const out: IpvsChange[] = [];
  for (let i = 0; i < services; i++) {
    const key: ServiceKey = { family: 4, protocol: 'tcp', address: `198.18.${i >> 8}.${i & 255}`, port: 80 };
    out.push({ op: 'addService', service: { ...key, scheduler: 'wrr' } });
    for (let j = 0; j < perService; j++) {
      out.push({ op: 'addDestination', service: key, destination: { address: `198.19.${j}.${(i % 250) + 1}`, port: 8080, forward: 'masq', weight: 1 + ((i + j) % 5) } });
    }
  }
  return out;
}

const ms = (t0: bigint) => Number(process.hrtime.bigint() - t0) / 1e6;
const med = (a: number[]) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)]!;

async function main() {
  const runs = Number(process.env.RUNS ?? 3);
  const guest = await VmGuest.boot({ namePrefix: 'vslabnl-', name: `bench-${process.pid}`, kernel: parseKernelOption(process.env.VSLAB_TEST_KERNEL), initramfs: { node: 'none' } });
  try {
    const uname = (await guest.exec(null, ['uname', '-r'])).stdout.trim();
    const rules = ruleText();
    await guest.writeFile('/tmp/vslabnl-rules', rules);
    const requests = services * (1 + perService);
    console.log(`programming ${services} services x ${perService} real servers (${requests} requests) into IPVS, kernel ${uname} under qemu TCG, ${runs} runs`);

    // anchor: ipvsadm -R inside the guest, timed inside the guest from /proc/uptime (10 ms resolution; no relay in the figure)
    const anchor: number[] = [];
    let anchorState = '';
    for (let r = 0; r < runs; r++) {
      const out = await guest.exec(null, ['sh', '-c', "ipvsadm -C; s=$(cut -d' ' -f1 /proc/uptime); ipvsadm -R < /tmp/vslabnl-rules || exit 1; e=$(cut -d' ' -f1 /proc/uptime); awk \"BEGIN { print ($e - $s) * 1000 }\""], { timeoutMs: 600_000 });
      if (out.code !== 0) throw new Error(`ipvsadm -R failed: ${out.stderr}`);
      anchor.push(Number(out.stdout.trim()));
      anchorState = crypto.createHash('sha256').update((await guest.exec(null, ['ipvsadm', '-Sn'], { timeoutMs: 120_000 })).stdout).digest('hex');
    }

    const c = await IpvsClient.open({ transact: (req) => guest.netlinkTransact(null, 16, req, 120_000) });
    const all = changes();
    const figures: Array<[string, number[]]> = [];
    for (const maxBatch of [100, 400]) {
      const client = await IpvsClient.open({ transact: (req) => guest.netlinkTransact(null, 16, req, 120_000) }, { maxBatch });
      const times: number[] = [];
      for (let r = 0; r < runs; r++) {
        await c.flush();
        const t0 = process.hrtime.bigint();
        const res = await client.batch(all);
        times.push(ms(t0));
        const failed = res.filter((x) => x !== null);
        if (failed.length) throw new Error(`${failed.length} requests failed, first: ${failed[0]!.message}`);
      }
      const state = crypto.createHash('sha256').update((await guest.exec(null, ['ipvsadm', '-Sn'], { timeoutMs: 120_000 })).stdout).digest('hex');
      if (state !== anchorState) throw new Error(`the client's table differs from ipvsadm -R's (ipvsadm -Sn digests ${state} vs ${anchorState})`);
      figures.push([`TS client, ${maxBatch} requests per round trip (host -> agent relay -> guest kernel)`, times]);
    }
    // one request per round trip, on a sample, to show what batching buys over the relay
    const sample = all.slice(0, 1 + perService);
    await c.flush();
    const one = await IpvsClient.open({ transact: (req) => guest.netlinkTransact(null, 16, req, 120_000) }, { maxBatch: 1 });
    const t0 = process.hrtime.bigint();
    await one.batch(sample);
    const perRequest = ms(t0) / sample.length;
    await c.flush();

    const fmt = (a: number[]) => `median ${med(a).toFixed(0)} ms (min ${Math.min(...a).toFixed(0)}, max ${Math.max(...a).toFixed(0)})  = ${((med(a) * 1000) / requests).toFixed(1)} µs/request`;
    console.log(`  anchor  ipvsadm -R in the guest:                          ${fmt(anchor)}`);
    for (const [label, t] of figures) console.log(`  vslab   ${label}: ${fmt(t)}  (${(med(anchor) / med(t)).toFixed(1)}x ipvsadm -R)`);
    console.log(`  vslab   TS client, 1 request per round trip (sample of ${sample.length}): ${perRequest.toFixed(1)} ms/request -> ${((perRequest * requests) / 1000).toFixed(1)} s for the whole table`);
    console.log(`  both end states identical (ipvsadm -S -n digest ${anchorState.slice(0, 12)})`);
  } finally {
    await guest.shutdown();
  }
}

main().catch((e) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});
