// The 5-node NAT lab on the docker backend, to ready (every link up, addresses set, first ping
// answered), beside `docker run --rm --network none IMAGE true` of the same image measured in the
// same run (the anchor) and beside the netns backend. Target: lab ready ≤ 2× one `docker run`.
// Not a test: it prints figures. Usage: node bench/docker-ready.js [runs]
import { spawnSync } from 'child_process';
import * as os from 'os';
import * as path from 'path';
import { upLab } from '../src/backend';
import type { DockerLab } from '../src/backend/docker';
import { ensureBaseImage } from '../src/backend/docker/images';
import type { BackendKind } from '../src/backend/types';
import { loadTopologyFile } from '../src/topology/load';

const runs = Number(process.argv[2] || 5);
const TARGET_RATIO = 2;
const median = (a: number[]) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];
const range = (a: number[]) => `${median(a).toFixed(0)} ms (min ${Math.min(...a).toFixed(0)}, max ${Math.max(...a).toFixed(0)})`;

/** Lab up, then the client's first ping through to the director answered: the time a user waits. */
async function labReady(backend: BackendKind, i: number): Promise<{ readyMs: number; downMs: number; phases: Record<string, number> }> {
  const model = loadTopologyFile(path.join(__dirname, '..', 'topologies', 'nat.yaml'));
  const t0 = performance.now();
  // VSLAB_LAB_NAME_PREFIX: on a machine several people share, the bench's labs and containers carry their prefix.
  const lab = await upLab(model, { backend, ephemeral: true, name: `${process.env.VSLAB_LAB_NAME_PREFIX ?? ''}bench-${backend}-${process.pid}-${i}` });
  const upMs = performance.now() - t0;
  try {
    for (let k = 0; ; k++) {
      const r = await lab.node('client1').exec(['ping', '-c1', '-W1', '198.18.0.2']);
      if (r.code === 0) break;
      if (k > 20) throw new Error(`no ping answer in the ${backend} lab: ${r.stdout}${r.stderr}`);
    }
    const readyMs = performance.now() - t0;
    // Where the time went: the build's phases (when the last node finished each), what bringUp does around the
    // build (daemon check, names in use, lock, state), and the first ping.
    const built = (lab as Partial<DockerLab>).phases ?? {};
    const buildMs = built.check ?? built.wiring ?? upMs;
    const phases = { ...built, around: upMs - buildMs, ping: readyMs - upMs };
    const t1 = performance.now();
    await lab.down();
    return { readyMs, downMs: performance.now() - t1, phases };
  } catch (e) {
    await lab.down().catch(() => undefined);
    throw e;
  }
}

function dockerRun(image: string): number {
  const t0 = performance.now();
  const r = spawnSync('docker', ['run', '--rm', '--network', 'none', image, 'true'], { stdio: ['ignore', 'ignore', 'pipe'] });
  if (r.error || r.status !== 0) throw new Error(`docker run failed: ${r.error?.message ?? r.stderr.toString().trim()}`);
  return performance.now() - t0;
}

(async () => {
  const image = await ensureBaseImage();
  console.log(`docker backend, 5-node NAT lab to first ping; ${runs} runs each, interleaved; load ${os.loadavg().map((l) => l.toFixed(1)).join(' ')}`);
  const anchor: number[] = [], docker: number[] = [], netns: number[] = [], dockerDown: number[] = [];
  const phases: Record<string, number[]> = {};
  dockerRun(image); // warm the daemon's image cache, as a user's second run would find it
  for (let i = 0; i < runs; i++) {
    anchor.push(dockerRun(image));
    const d = await labReady('docker', i);
    docker.push(d.readyMs);
    dockerDown.push(d.downMs);
    for (const [k, v] of Object.entries(d.phases)) (phases[k] ??= []).push(v);
    netns.push((await labReady('netns', i)).readyMs);
  }
  const ratio = median(docker) / median(anchor);
  console.log(`anchor: docker run --rm --network none ${image} true   ${range(anchor)}`);
  console.log(`docker backend, nat.yaml ready (5 containers)        ${range(docker)}   down ${median(dockerDown).toFixed(0)} ms`);
  console.log(`netns backend, nat.yaml ready                         ${range(netns)}`);
  // Build phases are the moment the last node finished each (ms from the build's start), so they add up along the way.
  const order = ['images', 'create', 'start', 'inspect', 'wiring', 'check', 'around', 'ping'];
  console.log(`docker phases (median ms; images…check: end of phase from build start; around: bringUp outside build; ping: first answer): ${order.filter((k) => phases[k]).map((k) => `${k} ${median(phases[k]).toFixed(0)}`).join(', ')}`);
  console.log(`ratio lab ready / one docker run: ${ratio.toFixed(2)}×   target ≤ ${TARGET_RATIO}×: ${ratio <= TARGET_RATIO ? 'met' : 'MISSED'}; load at the end ${os.loadavg().map((l) => l.toFixed(1)).join(' ')}`);
})().catch((e) => { console.error(`bench: ${(e as Error).message}`); process.exit(1); });
