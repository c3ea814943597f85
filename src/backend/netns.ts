// The default backend: every node is a network namespace on this host, links are veth pairs,
// L2 segments are bridges in a per-lab switch namespace. Built in-process over rtnetlink (one
// batch per namespace per phase) through the native setns helper; no process per operation.
import { spawn, type ChildProcess } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { native } from '../native';
import type { LabModel } from '../topology/model';
import { nsName, planLab, SWITCH_NODE, type NetOp } from './plan';
import {
  labNameTakenMessage, installHostGuard, labAlive, readLabState, readLabStates, removeHostGuard, removeLabState, uniqueLabName, withLock,
  WORK_ROOT, writeLabState, type LabState,
} from './registry';
import { linkIndexes, newAddr, newBridge, newVeth, routeMsg, RtnlBatch, RTM, setUp } from './rtnl';
import type { ExecOptions, ExecResult, LabNode, NodeProcess, RunningLab, SpawnOptions, UpOptions } from './types';

export const NETNS_DIR = '/run/netns';
export const nsPath = (ns: string) => path.join(NETNS_DIR, ns);

/** Runs argv inside a namespace; used by nodes and by anything that needs a one-off command there. */
export function execIn(ns: string, argv: string[], opts: ExecOptions = {}): Promise<ExecResult> {
  return new Promise((resolve, reject) => {
    const child = spawn('nsenter', [`--net=${nsPath(ns)}`, '--', ...argv], { cwd: opts.cwd, env: { ...process.env, ...opts.env }, stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [], err: Buffer[] = [];
    let timedOut = false;
    const timer = setTimeout(() => { timedOut = true; child.kill('SIGKILL'); }, opts.timeoutMs ?? 60_000);
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => err.push(d));
    child.on('error', (e) => { clearTimeout(timer); reject(new Error(`cannot run ${argv[0]} in ${ns}: ${e.message}`)); });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code: code ?? -1, signal, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString(), timedOut });
    });
    child.stdin.on('error', () => { /* the program may exit without reading its input */ });
    child.stdin.end(opts.input ?? '');
  });
}

class ChildNodeProcess implements NodeProcess {
  private done: Promise<{ code: number | null; signal: string | null }>;
  constructor(private readonly child: ChildProcess) {
    this.done = new Promise((resolve) => {
      child.on('close', (code, signal) => resolve({ code, signal }));
      child.on('error', () => resolve({ code: -1, signal: null }));
    });
  }
  get pid() { return this.child.pid; }
  get stdout() { return this.child.stdout!; }
  get stderr() { return this.child.stderr!; }
  get stdin() { return this.child.stdin!; }
  wait() { return this.done; }
  kill(signal: NodeJS.Signals = 'SIGTERM') { if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill(signal); }
}

export class NetnsNode implements LabNode {
  readonly workDir: string;
  constructor(readonly name: string, readonly ns: string, labName: string) {
    this.workDir = path.join(WORK_ROOT, labName, name);
  }
  exec(argv: string[], opts?: ExecOptions): Promise<ExecResult> {
    return execIn(this.ns, argv, opts);
  }
  spawn(argv: string[], opts: SpawnOptions = {}): NodeProcess {
    const child = spawn('nsenter', [`--net=${nsPath(this.ns)}`, '--', ...argv], { cwd: opts.cwd, env: { ...process.env, ...opts.env }, stdio: ['pipe', 'pipe', 'pipe'] });
    child.stdin.on('error', () => { /* closed early */ });
    return new ChildNodeProcess(child);
  }
  async fetchFile(nodePath: string, hostPath: string): Promise<void> {
    const src = path.isAbsolute(nodePath) ? nodePath : path.join(this.workDir, nodePath);
    if (path.resolve(src) !== path.resolve(hostPath)) await fs.promises.copyFile(src, hostPath);
  }
}

export class NetnsLab implements RunningLab {
  readonly backend = 'netns' as const;
  private nodes = new Map<string, NetnsNode>();
  constructor(readonly name: string, readonly model: LabModel, readonly readyMs: number) {
    for (const n of model.nodes) this.nodes.set(n.name, new NetnsNode(n.name, nsName(name, n.name), name));
  }
  node(name: string): NetnsNode {
    const n = this.nodes.get(name);
    if (!n) throw new Error(`lab ${this.name} has no node "${name}" (nodes: ${[...this.nodes.keys()].join(', ')})`);
    return n;
  }
  async down(): Promise<void> {
    await destroyLab(this.name);
  }
}

/** Executes a plan's operations in this host's namespaces. Throws naming the failing operation. */
export async function executePlan(ops: NetOp[], onNs: (ns: string) => void = () => {}): Promise<void> {
  const fds = new Map<string, number>();
  const nsFds = new Map<string, number>();
  const fdOf = (ns: string) => { let fd = fds.get(ns); if (fd === undefined) { fd = native().netlinkOpen(nsPath(ns), 0); fds.set(ns, fd); } return fd; };
  const nsFdOf = (ns: string) => { let fd = nsFds.get(ns); if (fd === undefined) { fd = fs.openSync(nsPath(ns), 'r'); nsFds.set(ns, fd); } return fd; };
  const byNs = <T extends NetOp>(kind: T['op']) => {
    const m = new Map<string, T[]>();
    for (const o of ops) if (o.op === kind) { const l = m.get(o.ns) ?? []; l.push(o as T); m.set(o.ns, l); }
    return m;
  };
  try {
    // 1. namespaces
    for (const o of ops) if (o.op === 'netns') { native().netnsCreate(nsPath(o.ns)); onNs(o.ns); }
    // 2. namespace-wide sysctls (before devices); device sysctls come after their devices exist
    const sysctls = byNs<Extract<NetOp, { op: 'sysctl' }>>('sysctl');
    const early = (k: string) => !/\/conf\//.test(k) || /\/conf\/(all|default)\//.test(k);
    for (const [ns, l] of sysctls) native().sysctlWrite(nsPath(ns), l.filter((s) => early(s.key)).map((s) => [`/proc/sys/${s.key}`, s.value]));
    // 3. bridges, then veths (created in their node's namespace, the peer placed directly in its own)
    for (const [ns, l] of byNs<Extract<NetOp, { op: 'bridge' }>>('bridge')) { const b = new RtnlBatch(); for (const o of l) b.add(newBridge(o.name, o.mtu)); b.run(fdOf(ns), ns); }
    for (const [ns, l] of byNs<Extract<NetOp, { op: 'veth' }>>('veth')) {
      const b = new RtnlBatch();
      for (const o of l) b.add(newVeth(o.name, o.mac, o.mtu, o.peerName, nsFdOf(o.peerNs), o.peerMac));
      b.run(fdOf(ns), ns);
    }
    // 4. per namespace: up (+ bridge ports), addresses, routes
    const masters = new Map<string, string>(); // "ns dev" -> master
    for (const o of ops) if (o.op === 'veth' && o.peerMaster) masters.set(`${o.peerNs} ${o.peerName}`, o.peerMaster);
    const nsList = [...new Set(ops.filter((o) => o.op === 'netns').map((o) => o.ns))];
    const tunnels = byNs<Extract<NetOp, { op: 'tunnel' }>>('tunnel');
    for (const ns of nsList) {
      const nsOps = ops.filter((o) => o.ns === ns);
      if (!nsOps.some((o) => o.op === 'up' || o.op === 'addr' || o.op === 'route')) continue;
      const fd = fdOf(ns);
      const idx = linkIndexes(fd);
      const b = new RtnlBatch();
      for (const o of nsOps) if (o.op === 'up') b.add(setUp(o.dev, masters.has(`${ns} ${o.dev}`) ? idx.get(masters.get(`${ns} ${o.dev}`)!) : undefined));
      for (const o of nsOps) if (o.op === 'addr') {
        const i = idx.get(o.dev);
        if (i === undefined) throw new Error(`in ${ns}: no device ${o.dev} to put ${o.cidr} on`);
        b.add(newAddr(i, o.dev, o.cidr));
      }
      b.run(fd, ns);
      if (tunnels.has(ns)) await createTunnels(ns, tunnels.get(ns)!);
      const late = (sysctls.get(ns) ?? []).filter((s) => !early(s.key));
      if (late.length) native().sysctlWrite(nsPath(ns), late.map((s) => [`/proc/sys/${s.key}`, s.value]));
      const rb = new RtnlBatch();
      for (const o of nsOps) if (o.op === 'route') rb.add(routeMsg(RTM.NEWROUTE, o.to, { via: o.via }));
      rb.run(fd, ns);
    }
    // 5. nftables rulesets
    for (const o of ops) if (o.op === 'nft') {
      const r = await execIn(o.ns, ['nft', '-f', '-'], { input: o.ruleset, timeoutMs: 20_000 });
      if (r.code !== 0) throw new Error(`in ${o.ns}: nft refused the ruleset: ${r.stderr.trim()}`);
    }
  } finally {
    for (const fd of fds.values()) native().netlinkClose(fd);
    for (const fd of nsFds.values()) fs.closeSync(fd);
  }
}

/** Tunnel receivers need kernel modules (ipip, fou, ip_gre) that only some kernels have; iproute2 configures them. */
async function createTunnels(ns: string, ops: Array<Extract<NetOp, { op: 'tunnel' }>>): Promise<void> {
  const lines: string[] = [];
  for (const { dev } of ops) {
    if (dev.type === 'fou') lines.push(`fou add port ${dev.port} gue${dev.outerFamily === 6 ? ' -6' : ''}`);
    else lines.push(`link set ${dev.name} up`);
    for (const a of dev.addrs) lines.push(`addr add ${a} dev ${dev.name}`);
  }
  const r = await execIn(ns, ['ip', '-batch', '-'], { input: lines.join('\n') + '\n', timeoutMs: 20_000 });
  if (r.code !== 0) {
    const missing = /Cannot find device "(tunl0|gre0|ip6tnl0|ip6gre0|sit0)"|does not exist|not supported|Unknown device/.test(r.stderr);
    throw new Error(`in ${ns}: cannot set up tunnel receivers (${ops.map((o) => o.dev.name).join(', ')}): ${r.stderr.trim()}` +
      (missing ? '. This kernel lacks the tunnel modules (ipip/fou/ip_gre); use --backend vm to run tunnel labs in a VM kernel that has them.' : ''));
  }
}

/** Deletes every namespace of a lab and its state; removes the host guard when no lab is left. */
export async function destroyLab(name: string): Promise<void> {
  await withLock(() => {
    const s = readLabState(name);
    const namespaces = new Set(s?.namespaces ?? []);
    if (fs.existsSync(NETNS_DIR)) for (const f of fs.readdirSync(NETNS_DIR)) if (f.startsWith(nsName(name, ''))) namespaces.add(f);
    const errors: string[] = [];
    for (const ns of namespaces) {
      try { native().netnsDelete(nsPath(ns)); } catch (e) { errors.push((e as Error).message); }
    }
    removeLabState(name);
    fs.rmSync(path.join(WORK_ROOT, name), { recursive: true, force: true });
    if (!readLabStates().length) removeHostGuard();
    if (errors.length) throw new Error(`lab ${name} was not fully removed: ${errors.join('; ')}`);
  });
}

export interface NetnsUpOptions extends UpOptions {
  /** Ephemeral labs belong to the calling process: gc removes them once it is gone. */
  ephemeral?: boolean;
}

/** Brings a lab up in network namespaces. On any failure everything already built is removed. */
export async function upNetnsLab(model: LabModel, opts: NetnsUpOptions = {}): Promise<NetnsLab> {
  const t0 = performance.now();
  const progress = opts.progress ?? (() => {});
  const state = await withLock(() => {
    const taken = new Set(readLabStates().map((s) => s.name));
    if (fs.existsSync(NETNS_DIR)) for (const f of fs.readdirSync(NETNS_DIR)) { const m = /^vslab-(.+?)--/.exec(f); if (m) taken.add(m[1]); }
    let name = opts.name ?? model.name;
    if (opts.name && taken.has(opts.name)) throw new Error(labNameTakenMessage(opts.name));
    name = uniqueLabName(name, taken);
    const s: LabState = {
      name, backend: 'netns', topology: model.file, nodes: model.nodes.map((n) => n.name), namespaces: [],
      createdAt: new Date().toISOString(), ownerPid: process.pid, status: 'creating', ephemeral: !!opts.ephemeral, model,
    };
    s.namespaces = [...model.nodes.map((n) => nsName(name, n.name)), ...(model.segments.some((g) => g.kind === 'lan') ? [nsName(name, SWITCH_NODE)] : [])];
    writeLabState(s);
    installHostGuard();
    return s;
  });
  try {
    progress(`building ${model.nodes.length} nodes`);
    await executePlan(planLab(model, state.name));
    for (const n of model.nodes) fs.mkdirSync(path.join(WORK_ROOT, state.name, n.name), { recursive: true });
    // Test hook: hold a half-finished bring-up so tests can SIGKILL it and check that gc recovers.
    const pause = Number(process.env.VSLAB_TEST_PAUSE_BEFORE_READY_MS ?? 0);
    if (pause > 0) { progress('paused (VSLAB_TEST_PAUSE_BEFORE_READY_MS)'); process.stderr.write(`vslab: paused before ready\n`); await new Promise((r) => setTimeout(r, pause)); }
  } catch (e) {
    progress('failed; removing what was built');
    await destroyLab(state.name).catch(() => {});
    throw e;
  }
  state.status = 'up';
  writeLabState(state);
  const readyMs = performance.now() - t0;
  return new NetnsLab(state.name, model, readyMs);
}

/** Re-attaches to a lab that is up (e.g. `vslab exec` in another process). */
export function attachNetnsLab(name: string, model: LabModel): NetnsLab {
  const s = readLabState(name);
  if (!s || !labAlive(s)) throw new Error(`no lab named ${name} is up (see \`vslab ls\`)`);
  return new NetnsLab(name, model, 0);
}
