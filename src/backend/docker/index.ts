// The docker backend: every node is a container (NetworkMode none, NET_ADMIN/NET_RAW only, an init
// as PID 1, labels naming the lab, node and registry), wired by the same NetOp plan as the netns
// backend, executed from the host into each container's namespace (/proc/PID/ns/net); L2 segments
// are bridges in a vslab-owned switch namespace, never the host's and never a Docker network.
// Capture and traffic tools reach a container's namespace from the host as they do for netns, so
// an image needs nothing but to keep running; `execInImage` runs the image's own programs.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { spawn } from 'child_process';
import type Docker from 'dockerode';
import { bringUp, nodeByName, tearDown, type Backend, type GcItem } from '../backend';
import { executePlan, NETNS_DIR, type NamespaceResolver } from '../execute';
import { deleteLabNamespaces, labNamespaces } from '../netns';
import { HostNamespaceNode } from '../nsnode';
import { nsName, parseNsName, planLab } from '../plan';
import { labAlive, readLabState, RUN_DIR, WORK_ROOT, type LabState } from '../registry';
import type { ExecOptions, ExecResult, RunningLab, SpawnOptions, UpOptions } from '../types';
import type { LabModel, NodeModel } from '../../topology/model';
import { pidAlive } from '../../util/process';
import { containersLabelled, ContainerProcess, docker, DOCKER_SOCKET, execInContainer, notInImageMessage, LABEL_LAB, LABEL_NODE, LABEL_RUN_DIR, removeContainer, requireDaemon } from './engine';
import { ensureBaseImage, ensureImage, IDLE_COMMAND, imageExists, vslabImageKind } from './images';

export { daemonInfo } from './engine';
export { listVslabImages, removeVslabImages, ensureBaseImage, ensureImage } from './images';

/** Where a node's work directory appears inside its container. */
export const CONTAINER_WORK_DIR = '/vslab/work';

interface ContainerRecord { id: string; pid: number; image: string }

export class DockerNode extends HostNamespaceNode {
  constructor(name: string, labName: string, readonly container: ContainerRecord) {
    super(name, `/proc/${container.pid}/ns/net`, path.join(WORK_ROOT, labName, name));
  }
  get image(): string { return this.container.image; }
  /** Runs a program of the node's image inside its container (exit code and demultiplexed output). A program the
   *  image does not have exits 127 with a message naming the image and the program on stderr. */
  async execInImage(argv: string[], opts?: ExecOptions): Promise<ExecResult> {
    const { missing, ...r } = await execInContainer(this.container.id, argv, opts);
    return missing ? { ...r, code: 127, stderr: `${notInImageMessage(this.container.image, this.name, missing)}\n${r.stderr}` } : r;
  }
  /** Starts a program of the node's image inside its container (`vslab exec` on a docker node). */
  spawnInImage(argv: string[], opts?: SpawnOptions): ContainerProcess {
    return new ContainerProcess(this.container.id, argv, opts);
  }
}

export class DockerLab implements RunningLab {
  readonly backend = 'docker' as const;
  private readonly nodes = new Map<string, DockerNode>();
  /** When each phase of the build ended (ms from its start, for the last node): images, create, start, inspect, wiring, check. */
  readonly phases: Readonly<Record<string, number>>;
  constructor(readonly name: string, readonly model: LabModel, readonly readyMs: number, containers: Record<string, ContainerRecord>, phases: Record<string, number> = {}) {
    this.phases = phases;
    for (const n of model.nodes) this.nodes.set(n.name, new DockerNode(n.name, name, containers[n.name]));
  }
  node(name: string): DockerNode {
    return nodeByName(this.nodes, this.name, name);
  }
  async down(): Promise<void> {
    await tearDown(dockerBackend, this.name);
  }
}

const containersOf = (state: LabState): Record<string, ContainerRecord> => (state.extra?.containers ?? {}) as Record<string, ContainerRecord>;

/** Copies a node's files (from the topology's folder) into its created container, as one tar at /. */
async function copyFilesIn(c: Docker.Container, node: NodeModel, topologyFile: string): Promise<void> {
  const files = node.image?.files ?? [];
  if (!files.length) return;
  const base = path.dirname(path.resolve(topologyFile));
  const stage = fs.mkdtempSync(path.join(os.tmpdir(), 'vslab-files-'));
  try {
    for (const f of files) {
      const src = path.resolve(base, f.from);
      if (src !== base && !src.startsWith(base + path.sep)) throw new Error(`node ${node.name}: file ${f.from} is outside the topology's folder ${base}`);
      if (!fs.existsSync(src) || !fs.statSync(src).isFile()) throw new Error(`node ${node.name}: file ${f.from} (${src}) does not exist or is not a file`);
      const dst = path.join(stage, path.posix.normalize(f.to).replace(/^\/+/, ''));
      if (!dst.startsWith(stage + path.sep)) throw new Error(`node ${node.name}: destination ${f.to} is not a path inside the container`);
      fs.mkdirSync(path.dirname(dst), { recursive: true });
      fs.copyFileSync(src, dst);
    }
    const tar = spawn('tar', ['-C', stage, '--numeric-owner', '--owner=0', '--group=0', '-cf', '-', '.'], { stdio: ['ignore', 'pipe', 'ignore'] });
    await c.putArchive(tar.stdout, { path: '/' });
  } finally {
    fs.rmSync(stage, { recursive: true, force: true });
  }
}

/** Creates and starts one node's container; returns its record once its init runs. */
async function startNode(labName: string, node: NodeModel, image: string, topologyFile: string, mark: (phase: string) => void = () => undefined): Promise<ContainerRecord> {
  const workDir = path.join(WORK_ROOT, labName, node.name);
  fs.mkdirSync(workDir, { recursive: true });
  const hostsFile = path.join(workDir, '.hosts');
  fs.writeFileSync(hostsFile, LOCAL_HOSTS);
  const c = await docker().createContainer({
    name: nsName(labName, node.name),
    Image: image,
    Cmd: node.image ? node.image.command : IDLE_COMMAND,
    Env: Object.entries(node.image?.env ?? {}).map(([k, v]) => `${k}=${v}`),
    Labels: { [LABEL_LAB]: labName, [LABEL_NODE]: node.name, [LABEL_RUN_DIR]: RUN_DIR },
    Hostname: node.name,
    // No libnetwork for these containers: with networking enabled (even NetworkMode none) the daemon adds an OCI
    // prestart hook that re-executes its own binary once per container (libnetwork-setkey); that hook was most of a
    // start here (5 concurrent starts: 1.5 s with it, 0.65 s without, 2026-12-03). The container still gets its own
    // network namespace (runc makes one), which the plan wires; the daemon then mounts no /etc/hosts, so the node's work
    // directory holds the one it would have mounted (images that name `localhost` in their configuration need it).
    NetworkDisabled: true,
    HostConfig: {
      NetworkMode: 'none',
      Init: true,
      CapDrop: ['ALL'],
      // What lab nodes do: configure their links and filters, raw sockets for ping/capture; services bind low ports.
      CapAdd: ['NET_ADMIN', 'NET_RAW', 'NET_BIND_SERVICE', 'CHOWN', 'SETUID', 'SETGID', 'DAC_OVERRIDE', 'KILL'],
      // Docker disables IPv6 in new containers; labs are dual-stack. Set before any link is moved in.
      Sysctls: { 'net.ipv6.conf.all.disable_ipv6': '0', 'net.ipv6.conf.default.disable_ipv6': '0' },
      Binds: [`${workDir}:${CONTAINER_WORK_DIR}`, `${hostsFile}:/etc/hosts`],
    },
  });
  mark('create');
  await copyFilesIn(c, node, topologyFile);
  try {
    await c.start();
    mark('start');
  } catch (e) {
    const missing = /exec: "([^"]+)": (executable file not found[^:]*|stat [^:]*: no such file or directory)/.exec((e as Error).message);
    if (missing) throw new Error(`node ${node.name}: ${notInImageMessage(image, node.name, { program: missing[1], detail: `${missing[2]}; the node's command is ${JSON.stringify(node.image?.command ?? IDLE_COMMAND)}` })}`);
    throw e;
  }
  const info = await c.inspect();
  mark('inspect');
  if (!info.State.Running || !info.State.Pid) throw await exitedError(c, node, image, info.State.ExitCode);
  return { id: info.Id, pid: info.State.Pid, image };
}

/** What the daemon writes into a NetworkMode none container's /etc/hosts when it manages its network. */
const LOCAL_HOSTS = '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n';

/** A node's container that has stopped: an error naming the node, its image and why (a program the image lacks, or its last log lines). */
async function exitedError(c: Docker.Container, node: NodeModel, image: string, code: number): Promise<Error> {
  const logs = (await c.logs({ stdout: true, stderr: true, tail: 20 }).catch(() => Buffer.from(''))).toString().trim();
  // The init (docker-init, tini) says so when the command's program is not in the image.
  const missing = /exec (\S+) failed: No such file or directory/.exec(logs);
  if (missing) {
    return new Error(`node ${node.name}: ${notInImageMessage(image, node.name, { program: missing[1], detail: `the node's command is ${JSON.stringify(node.image?.command ?? IDLE_COMMAND)}` })}`);
  }
  return new Error(`node ${node.name}: the container of image ${image} exited at once (code ${code})` +
    `${logs ? `: ${logs}` : ''}. A node's image must keep running (its own service, or a command such as \`sleep\`)`);
}

/** The first node of a user image whose container is no longer running, as an error (its own command may fail after start). */
async function stoppedUserNode(model: LabModel, containers: Record<string, ContainerRecord>): Promise<Error | undefined> {
  const users = model.nodes.filter((n) => n.image && containers[n.name]);
  const infos = await Promise.all(users.map(async (n) => ({ n, c: docker().getContainer(containers[n.name].id), info: await docker().getContainer(containers[n.name].id).inspect() })));
  const dead = infos.find((x) => !x.info.State.Running);
  return dead ? exitedError(dead.c, dead.n, containers[dead.n.name].image, dead.info.State.ExitCode) : undefined;
}

/** Checks every image a lab names is in the local daemon (nothing is pulled), and builds vslab's base when needed. */
async function resolveImages(model: LabModel, progress: (m: string) => void): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const needBase = model.nodes.some((n) => !n.image);
  const base = needBase ? await ensureBaseImage(progress) : '';
  for (const n of model.nodes) {
    if (!n.image) { out.set(n.name, base); continue; }
    // vslab's own images by name without their hash (`image: vslab/director`): built here when missing.
    const own = vslabImageKind(n.image.ref);
    if (own) { out.set(n.name, await ensureImage(own, progress)); continue; }
    if (!(await imageExists(n.image.ref))) {
      throw new Error(`node ${n.name}: image ${n.image.ref} is not in the local Docker daemon, and vslab never pulls; build or load it first (e.g. \`docker build -t ${n.image.ref} .\` with a local FROM)`);
    }
    out.set(n.name, n.image.ref);
  }
  return out;
}

/** The running container's init must still be there; otherwise a lab's node vanished under it. */
function checkRunning(state: LabState): void {
  for (const [node, c] of Object.entries(containersOf(state))) {
    if (!pidAlive(c.pid)) throw new Error(`lab ${state.name}: the container of node ${node} (${c.id.slice(0, 12)}) is no longer running`);
  }
}

/** The images a lab's preflight resolved, for its build. */
const resolvedImages = new WeakMap<LabModel, Map<string, string>>();

export const dockerBackend: Backend = {
  kind: 'docker',
  onHostKernel: true,
  async preflight(model, opts) {
    // The daemon check and the images the lab needs (built here when missing) at once, before any state is written;
    // no daemon is reported as that, not as the image lookup's connection error.
    const images = resolveImages(model, opts.progress ?? (() => undefined));
    images.catch(() => undefined);
    await requireDaemon();
    resolvedImages.set(model, await images);
  },
  async namesInUse() {
    // Container names are global in the daemon: a leftover container keeps its lab's name taken.
    const ns = labNamespaces().map((f) => parseNsName(f)!.lab);
    return [...ns, ...(await containersLabelled({ [LABEL_LAB]: undefined })).map((c) => c.Labels[LABEL_LAB])];
  },
  async build(model, state, ctx) {
    // When each phase ended for the last node, in ms from the start of the build (the bench prints them).
    const t0 = performance.now();
    const phases: Record<string, number> = {};
    const mark = (phase: string) => { phases[phase] = Math.max(phases[phase] ?? 0, performance.now() - t0); };
    const images = resolvedImages.get(model) ?? await resolveImages(model, ctx.progress);
    resolvedImages.delete(model);
    mark('images');
    ctx.progress(`starting ${model.nodes.length} containers`);
    const containers: Record<string, ContainerRecord> = {};
    const started = await Promise.allSettled(model.nodes.map(async (n) => { containers[n.name] = await startNode(state.name, n, images.get(n.name)!, model.file, mark); }));
    state.extra = { containers, holderPids: Object.values(containers).map((c) => c.pid) };
    ctx.save();
    const failed = started.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
    const labNs = new Map(model.nodes.map((n) => [nsName(state.name, n.name), containers[n.name]]));
    const where: NamespaceResolver = {
      path: (ns) => (labNs.has(ns) ? `/proc/${labNs.get(ns)!.pid}/ns/net` : path.join(NETNS_DIR, ns)),
      create: (ns) => !labNs.has(ns),
    };
    const plan = planLab(model, state.name);
    state.namespaces = plan.flatMap((o) => (o.op === 'netns' && where.create(o.ns) ? [o.ns] : []));
    ctx.save();
    ctx.progress(`wiring ${model.segments.length} segments`);
    try {
      await executePlan(plan, where);
    } catch (e) {
      // A namespace that vanished under the wiring is most often a user image's command that failed at once; the
      // daemon may not have seen its container stop yet (seen under load), so it is given a few seconds to.
      const vanished = /cannot enter network namespace \/proc\//.test((e as Error).message);
      for (let i = 0; ; i++) {
        const stopped = await stoppedUserNode(model, containers).catch(() => undefined);
        if (stopped) throw stopped;
        if (!vanished || i >= 30) throw e;
        await new Promise((r) => setTimeout(r, 200));
      }
    }
    mark('wiring');
    const stopped = await stoppedUserNode(model, containers);
    if (stopped) throw stopped;
    mark('check');
    return (readyMs) => new DockerLab(state.name, model, readyMs, containers, phases);
  },
  async attach(state, model) {
    checkRunning(state);
    return new DockerLab(state.name, model, 0, containersOf(state));
  },
  async destroy(name, state) {
    const found = await containersLabelled({ [LABEL_LAB]: name, [LABEL_RUN_DIR]: RUN_DIR });
    const ids = new Set([...found.map((c) => c.Id), ...Object.values(state ? containersOf(state) : {}).map((c) => c.id)]);
    const results = await Promise.allSettled([...ids].map((id) => removeContainer(id)));
    deleteLabNamespaces(name, state);
    const errors = results.flatMap((r) => (r.status === 'rejected' ? [(r.reason as Error).message] : []));
    if (errors.length) throw new Error(`lab ${name}: containers not removed: ${errors.join('; ')}`);
  },
  async leftovers(alive) {
    if (!daemonPresent()) return [];
    const items: GcItem[] = [];
    for (const c of await containersLabelled({ [LABEL_LAB]: undefined, [LABEL_RUN_DIR]: RUN_DIR })) {
      const lab = c.Labels[LABEL_LAB];
      if (!alive.has(lab)) items.push({ kind: 'container', id: c.Id, lab, reason: `container ${c.Names?.[0]?.replace(/^\//, '') ?? c.Id.slice(0, 12)} belongs to no lab that is up` });
    }
    return items;
  },
  async removeLeftover(item) {
    if (item.kind === 'container') await removeContainer(item.id);
  },
  async census() {
    if (!daemonPresent()) return { containers: 0 };
    return { containers: (await containersLabelled({ [LABEL_LAB]: undefined, [LABEL_RUN_DIR]: RUN_DIR })).length };
  },
};

/** gc and its census skip Docker when no daemon socket exists here (there can be no containers then).
 *  A daemon that is there but slow is waited for: a busy daemon must not pass for a clean one. */
function daemonPresent(): boolean {
  return fs.existsSync(DOCKER_SOCKET);
}

export const backend = dockerBackend;

/** Brings a lab up as containers. On any failure everything already made is removed. */
export async function upDockerLab(model: LabModel, opts: UpOptions = {}): Promise<DockerLab> {
  return (await bringUp(dockerBackend, model, opts)) as DockerLab;
}

/** Finds a docker lab that is up again. */
export async function attachDockerLab(name: string, model: LabModel): Promise<DockerLab> {
  const s = readLabState(name);
  if (!s || !labAlive(s) || s.backend !== 'docker') throw new Error(`no docker lab named ${name} is up (see \`vslab ls\`)`);
  return (await dockerBackend.attach(s, model)) as DockerLab;
}
