// VM backend figures, each printed beside its target / the anchor measured on this machine earlier
// (docs/vm.md, vm-notes): boot to a ready agent, command round trip, file transfer, node start in
// the guest, a NAT lab inside the guest, shutdown. Not a test.
// Usage: node bench/vm-boot.js [boots] [bookworm|backports]
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { VmGuest } from '../src/backend/vm/guest';
import { upVmLab } from '../src/backend/vm';
import { parseKernelOption } from '../src/backend/vm/kernel';
import { defaultShares } from '../src/backend/vm/shares';
import { loadTopologyFile } from '../src/topology/load';

const PREFIX = 'vslabvm-bench-';
const boots = Number(process.argv[2] || 5);
const kernel = parseKernelOption(process.argv[3]);

const sorted = (a: number[]) => [...a].sort((x, y) => x - y);
const median = (a: number[]) => sorted(a)[Math.floor(a.length / 2)];
const min = (a: number[]) => sorted(a)[0];
const fmtS = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
const fmtMs = (ms: number) => `${ms.toFixed(1)} ms`;
const load = () => os.loadavg().map((l) => l.toFixed(2)).join(' ');

function line(what: string, value: string, compare: string): void {
  console.log(`${what.padEnd(44)} ${value.padEnd(30)} ${compare}`);
}

async function timeBoots(n: number, label: string, opts: Parameters<typeof VmGuest.boot>[0]): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const g = await VmGuest.boot({ namePrefix: PREFIX, kernel, ...opts });
    out.push(g.bootMs);
    await g.shutdown();
  }
  line(`boot to ready agent, ${label} (${n}x)`, `min ${fmtS(min(out))}, median ${fmtS(median(out))}`, `target <= 2 s (${median(out) <= 2000 ? 'met' : 'NOT met'})`);
  return out;
}

async function main(): Promise<void> {
  console.log(`VM backend bench: qemu TCG, -smp 1, ${os.cpus().length} host cores, load average at start ${load()}`);
  // Warm the caches (kernel, initramfs, agent) so boots measure booting only.
  const warm = await VmGuest.boot({ namePrefix: PREFIX, kernel });
  console.log(`kernel ${warm.kernel?.origin}; initramfs ${((warm.image?.sizeBytes ?? 0) / 1e6).toFixed(1)} MB`);
  await warm.shutdown();

  // qboot (opt-in), SeaBIOS (the default) and the anchor, boots interleaved so load drifts hit all alike.
  // The anchor is the floor under vslab's part of a boot: the same qemu, firmware, kernel and image, but the
  // kernel is told to run an /init that is not there, so it panics where /init would start and qemu exits
  // (-no-reboot): qemu's start, the firmware, the kernel's own boot and the initramfs unpack, nothing of ours.
  const q: number[] = [];
  const sea: number[] = [];
  const floor: number[] = [];
  for (let i = 0; i < boots; i++) {
    for (const [fw, into] of [['qboot', q], ['seabios', sea]] as const) {
      const g = await VmGuest.boot({ namePrefix: PREFIX, kernel, firmware: fw });
      into.push(g.bootMs);
      await g.shutdown();
    }
    const t = Date.now();
    const died = await VmGuest.boot({ namePrefix: PREFIX, kernel, bootAttempts: 1, kernelArgs: ['rdinit=/vslab-bench-no-init'] }).then(
      async (g) => {
        await g.shutdown();
        throw new Error('the anchor guest booted although its /init does not exist');
      },
      (e: Error) => e,
    );
    if (!/No working init found|Kernel panic|qemu exited/.test(died.message)) throw died;
    floor.push(Date.now() - t);
  }
  line(`boot to ready agent, bare guest, qboot (${boots}x)`, `min ${fmtS(min(q))}, median ${fmtS(median(q))}`, `target <= 2 s (${median(q) <= 2000 ? 'met' : 'NOT met'})`);
  line(`the same with SeaBIOS (the default), interleaved (${boots}x)`, `min ${fmtS(min(sea))}, median ${fmtS(median(sea))}`, `target <= 2 s (${median(sea) <= 2000 ? 'met' : 'NOT met'}); qboot/SeaBIOS ${(median(q) / median(sea)).toFixed(2)}`);
  line(`anchor: qemu + kernel to where /init starts (${boots}x)`, `min ${fmtS(min(floor))}, median ${fmtS(median(floor))}`, `SeaBIOS boot/anchor ${(median(sea) / median(floor)).toFixed(2)}; vslab's /init + agent ≈ ${fmtS(median(sea) - median(floor))}`);
  await timeBoots(Math.max(1, Math.ceil(boots / 2)), 'lab guest (9p project+node)', { shares: defaultShares(), memoryMiB: 512 });

  const g = await VmGuest.boot({ namePrefix: PREFIX, kernel, shares: defaultShares(), memoryMiB: 512 });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vslabvm-bench-'));
  try {
    const pings: number[] = [];
    for (let i = 0; i < 20; i++) pings.push(await g.ping());
    line('agent ping round trip (20x)', `min ${fmtMs(min(pings))}, median ${fmtMs(median(pings))}`, '(protocol only)');
    const execs: number[] = [];
    for (let i = 0; i < 20; i++) {
      const t = performance.now();
      await g.exec(null, ['true']);
      execs.push(performance.now() - t);
    }
    line('exec `true` round trip (20x)', `min ${fmtMs(min(execs))}, median ${fmtMs(median(execs))}`, 'anchor 11-15 ms');
    const nsExecs: number[] = [];
    await g.exec(null, ['ip', 'netns', 'add', 'vslabvm-bench']);
    for (let i = 0; i < 10; i++) {
      const t = performance.now();
      await g.exec('vslabvm-bench', ['ip', 'link']);
      nsExecs.push(performance.now() - t);
    }
    line('exec `ip link` in a guest namespace (10x)', `min ${fmtMs(min(nsExecs))}, median ${fmtMs(median(nsExecs))}`, '(dynamic binary + setns)');

    await g.exec(null, ['dd', 'if=/dev/urandom', 'of=/tmp/1m', 'bs=1024', 'count=1024']);
    const fetches: number[] = [];
    for (let i = 0; i < 5; i++) {
      const t = performance.now();
      await g.fetchFile('/tmp/1m', path.join(dir, '1m'));
      fetches.push(performance.now() - t);
    }
    line('fetch 1 MiB guest -> host (5x)', `min ${fmtMs(min(fetches))}, median ${fmtMs(median(fetches))}`, 'anchor 0.1-0.3 s');

    const nodeStarts: number[] = [];
    for (let i = 0; i < 3; i++) {
      const t = performance.now();
      const r = await g.exec(null, [process.execPath, '-e', '0']);
      if (r.code !== 0) throw new Error(`node in the guest failed: ${r.stderr}`);
      nodeStarts.push(performance.now() - t);
    }
    line('node -e 0 in the guest (9p): first, then warm', `${fmtS(nodeStarts[0])}, ${fmtS(median(nodeStarts.slice(1)))}`, 'anchor ~1.3 s (whole root over 9p)');

    const t = performance.now();
    await g.shutdown();
    line('shutdown (kill qemu, clean run dir)', fmtMs(performance.now() - t), 'anchor ~35 ms');
  } finally {
    await g.shutdown();
    fs.rmSync(dir, { recursive: true, force: true });
  }

  const model = loadTopologyFile(path.join(__dirname, '..', 'topologies', 'nat.yaml'));
  const ready: number[] = [];
  const build: number[] = [];
  for (let i = 0; i < 2; i++) {
    const lab = await upVmLab(model, { name: `vslabvm-bench-nat-${process.pid}-${i}`, ephemeral: true, kernel: process.argv[3], boot: { namePrefix: PREFIX } });
    ready.push(lab.readyMs);
    build.push(lab.readyMs - lab.guest.bootMs);
    await lab.down();
  }
  line(`NAT lab (${model.nodes.length} nodes) ready in a VM (2x)`, `min ${fmtS(min(ready))}, median ${fmtS(median(ready))}`, 'no anchor (the notes\' 2.0-2.5 s is a NAT scenario run in a booted VM)');
  line('  of which not booting (cache checks, plan script)', `min ${fmtS(min(build))}`, '');
  console.log(`load average at end ${load()} (2 cores shared with other work: figures vary with load)`);
}

main().catch((e) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});
