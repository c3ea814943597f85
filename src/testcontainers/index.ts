// vslab/testcontainers: start a vslab lab on the docker backend from inside a user's own test
// (Jest, Vitest, Playwright Test), with testcontainers doing what it is good at:
//  - building the user's images from their Dockerfiles (GenericContainer.fromDockerfile), FROM local
//    images only (vslab's base is passed as the build argument VSLAB_BASE); nothing is ever pulled;
//  - waiting until a node's container is ready (its load balancer or server listening) with
//    testcontainers' wait strategies, or vslab's own forListeningPort, which needs nothing in the image.
// testcontainers must not start Ryuk (a pulled image) and must talk to the local daemon: unless the
// user set them, TESTCONTAINERS_RYUK_DISABLED=true and TESTCONTAINERS_HOST_OVERRIDE=localhost are set.
import * as fs from 'fs';
import * as path from 'path';
import type Dockerode from 'dockerode';
import type { WaitStrategy } from 'testcontainers';
import { upDockerLab, type DockerLab, type DockerNode } from '../backend/docker';
import { docker } from '../backend/docker/engine';
import { ensureBaseImage, imageExists } from '../backend/docker/images';
import { hostRoutedPrefixes } from '../backend/registry';
import { loadTopologyFile } from '../topology/load';

process.env.TESTCONTAINERS_RYUK_DISABLED ??= 'true';
process.env.TESTCONTAINERS_HOST_OVERRIDE ??= 'localhost';
// Loaded after the environment above is set: testcontainers reads it on first use.
// eslint-disable-next-line @typescript-eslint/no-var-requires
const tc = require('testcontainers') as typeof import('testcontainers');

export const Wait = tc.Wait;
export type { WaitStrategy } from 'testcontainers';

/** A user's Dockerfile to build before the lab starts. */
export interface ImageBuild {
  /** Build context folder. */
  context: string;
  /** Dockerfile name inside the context (default "Dockerfile"). */
  dockerfile?: string;
  buildArgs?: Record<string, string>;
}

export interface StartLabOptions {
  /** Lab name (default: the topology's, made unique). */
  name?: string;
  /** Images to build first, by the tag the topology's `image:` names. */
  build?: Record<string, ImageBuild>;
  /** Per node, what must hold before startLab resolves (e.g. Wait.forLogMessage(...), VslabWait.forListeningPort(80)). */
  waitFor?: Record<string, WaitStrategy>;
  /** Time each wait strategy gets (default 60 s). */
  startupTimeoutMs?: number;
}

export interface StartedLab {
  readonly name: string;
  /** The running lab: nodes with exec/spawn (host tools in the node's namespace) and execInImage (the image's). */
  readonly lab: DockerLab;
  node(name: string): DockerNode;
  /** The node's container, for anything dockerode can do. */
  container(name: string): Dockerode.Container;
  /** Takes the lab down: containers, links, namespaces. */
  stop(): Promise<void>;
}

/** FROM lines of a Dockerfile with build arguments substituted; stage names are not images. */
export function dockerfileBaseImages(text: string, args: Record<string, string>): string[] {
  const defaults: Record<string, string> = {};
  const stages = new Set<string>();
  const out: string[] = [];
  const subst = (s: string) => s.replace(/\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?/g, (_, k: string) => args[k] ?? defaults[k] ?? '');
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    const arg = /^ARG\s+([A-Za-z_][A-Za-z0-9_]*)(?:=(\S*))?/i.exec(line);
    if (arg && out.length === 0 && arg[2] !== undefined) defaults[arg[1]] = arg[2];
    const from = /^FROM\s+(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?/i.exec(line);
    if (!from) continue;
    const image = subst(from[1]);
    if (image !== 'scratch' && !stages.has(image)) out.push(image);
    if (from[2]) stages.add(from[2]);
  }
  return out;
}

/** Builds a user's Dockerfile with testcontainers, after checking every FROM image is already here. */
export async function buildImage(tag: string, b: ImageBuild): Promise<void> {
  const base = await ensureBaseImage();
  const buildArgs = { VSLAB_BASE: base, ...b.buildArgs };
  const dockerfile = path.resolve(b.context, b.dockerfile ?? 'Dockerfile');
  if (!fs.existsSync(dockerfile)) throw new Error(`image ${tag}: no Dockerfile at ${dockerfile}`);
  for (const from of dockerfileBaseImages(fs.readFileSync(dockerfile, 'utf8'), buildArgs)) {
    if (!(await imageExists(from))) {
      throw new Error(`image ${tag}: ${dockerfile} builds FROM ${from}, which is not in the local Docker daemon; vslab never pulls (use FROM \${VSLAB_BASE} with ARG VSLAB_BASE, or an image you built or loaded here)`);
    }
  }
  await tc.GenericContainer.fromDockerfile(path.resolve(b.context), b.dockerfile ?? 'Dockerfile')
    .withBuildArgs(buildArgs)
    .withPullPolicy({ shouldPull: () => false })
    .build(tag, { deleteOnExit: false });
}

/** Starts a lab from a topology file on the docker backend; on any failure nothing is left running. */
export async function startLab(topologyFile: string, opts: StartLabOptions = {}): Promise<StartedLab> {
  for (const [tag, b] of Object.entries(opts.build ?? {})) await buildImage(tag, b);
  const model = loadTopologyFile(topologyFile, { hostPrefixes: hostRoutedPrefixes() });
  for (const n of Object.keys(opts.waitFor ?? {})) if (!model.nodes.some((x) => x.name === n)) throw new Error(`waitFor names node "${n}", which ${model.file} does not have`);
  // Ephemeral: the lab belongs to this test process, and `vslab gc` removes it if the process dies.
  const lab = await upDockerLab(model, { name: opts.name, ephemeral: true });
  try {
    const client = await tc.getContainerRuntimeClient();
    await Promise.all(Object.entries(opts.waitFor ?? {}).map(async ([node, strategy]) => {
      if (!strategy.isStartupTimeoutSet()) strategy.withStartupTimeout(opts.startupTimeoutMs ?? 60_000);
      const c = docker().getContainer(lab.node(node).container.id);
      try {
        await tc.waitForContainer(client, c as unknown as Parameters<typeof tc.waitForContainer>[1], strategy, new tc.BoundPorts());
      } catch (e) {
        throw new Error(`lab ${lab.name}: node ${node} did not become ready: ${(e as Error).message}`);
      }
    }));
  } catch (e) {
    await lab.down().catch(() => undefined);
    throw e;
  }
  return {
    name: lab.name,
    lab,
    node: (n) => lab.node(n),
    container: (n) => docker().getContainer(lab.node(n).container.id),
    stop: () => lab.down(),
  };
}

/** A wait strategy that needs nothing inside the image: a socket listening on `port`, read from the
 *  container's namespace through /proc/PID/net/{tcp,tcp6,udp,udp6} on the host, every 100 ms. */
class ListeningPortWait implements WaitStrategy {
  private timeoutMs = 60_000;
  private timeoutSet = false;
  constructor(private readonly port: number, private readonly proto: 'tcp' | 'udp') {}
  withStartupTimeout(ms: number): WaitStrategy { this.timeoutMs = ms; this.timeoutSet = true; return this; }
  isStartupTimeoutSet(): boolean { return this.timeoutSet; }
  getStartupTimeout(): number { return this.timeoutMs; }
  private listening(pid: number): boolean {
    const hex = this.port.toString(16).toUpperCase().padStart(4, '0');
    for (const f of this.proto === 'tcp' ? ['tcp', 'tcp6'] : ['udp', 'udp6']) {
      let text = '';
      try { text = fs.readFileSync(`/proc/${pid}/net/${f}`, 'utf8'); } catch { continue; }
      // local_address is field 1 (ADDR:PORT); a TCP listener has state 0A, a bound UDP socket 07.
      if (text.split('\n').slice(1).some((l) => { const c = l.trim().split(/\s+/); return c[1]?.endsWith(`:${hex}`) && c[3] === (this.proto === 'tcp' ? '0A' : '07'); })) return true;
    }
    return false;
  }
  async waitUntilReady(container: Dockerode.Container): Promise<void> {
    const deadline = Date.now() + this.timeoutMs;
    for (;;) {
      const st = (await container.inspect()).State;
      if (!st.Running) throw new Error(`the container stopped (exit code ${st.ExitCode}) before anything listened on ${this.proto} port ${this.port}`);
      if (this.listening(st.Pid)) return;
      if (Date.now() > deadline) throw new Error(`nothing listened on ${this.proto} port ${this.port} within ${this.timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

export const VslabWait = {
  /** Ready when something in the node listens on this port (TCP) or has it bound (UDP). */
  forListeningPort(port: number, proto: 'tcp' | 'udp' = 'tcp'): WaitStrategy {
    return new ListeningPortWait(port, proto);
  },
};
