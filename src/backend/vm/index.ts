// The VM backend: the whole lab lives inside one qemu guest (kernel IPVS, ipip, netem... which the
// host kernel lacks). Each lab node is a network namespace in the guest, built from the same plan as
// the netns backend (plan.ts -> plan-script.ts); programs run in them through the guest agent.
//
// Ownership: the VM is named vslab-<lab> (what `vslab gc` looks for), its run directory is
// /run/vslab/vm/vslab-<lab> and the lab state records it. Ephemeral labs (tests, `vslab run`) die
// with their process; persistent ones (`vslab up`) run detached until `vslab down`.
import type { LabModel } from '../../topology/model';
import { nsName, planLab } from '../plan';
import {
  labAlive, labNameTakenMessage, readLabState, readLabStates, removeLabState, uniqueLabName, withLock, writeLabState, type LabState,
} from '../registry';
import type { ExecOptions, ExecResult, LabNode, NodeProcess, RunningLab, SpawnOptions, UpOptions } from '../types';
import type { GuestProcess } from './agent-channel';
import { destroyVmByRunDir, VM_RUN_ROOT, VmGuest, type VmBootOptions } from './guest';
import { parseKernelOption } from './kernel';
import { renderPlanScript } from './plan-script';
import { defaultShares } from './shares';
import * as path from 'path';

export { VmGuest, VmGuestError, destroyVmByRunDir } from './guest';
export type { VmBootOptions, VmFailureKind, VmShare } from './guest';
export type { GuestProcess } from './agent-channel';
export { parseKernelOption, resolveKernel } from './kernel';
export type { KernelSpec, GuestKernel, DebianKernelSuite } from './kernel';
export { renderPlanScript } from './plan-script';
export { removeLabFromGuest, labNamespacesInGuest, renderLabTeardown } from './lab-teardown';
export { findVmLeftovers, removeVmLeftover } from './leftovers';
export type { VmLeftover } from './leftovers';

export interface VmLabUpOptions extends UpOptions {
  ephemeral?: boolean;
  /** "bookworm" (6.1, default), "backports" (6.12), or a kernel image path (then `modules` too). */
  kernel?: string;
  /** The /lib/modules/<release> directory of a kernel image given in `kernel`. */
  modules?: string;
  /** Guest memory in MiB (default 512: room for a few Node traffic tools). */
  memoryMiB?: number;
  /** More boot options (tests use namePrefix "vslabvm-" and their own run directory). */
  boot?: Partial<VmBootOptions>;
}

/** Guest directory where a node's files (captures, logs) go; fetchFile copies them out. */
export function guestWorkDir(node: string): string {
  return `/vslab/work/${node}`;
}

export class VmNode implements LabNode {
  readonly workDir: string;
  constructor(readonly name: string, /** The node's network namespace inside the guest. */ readonly ns: string, readonly guest: VmGuest) {
    this.workDir = guestWorkDir(name);
  }

  exec(argv: string[], opts?: ExecOptions): Promise<ExecResult> {
    return this.guest.exec(this.ns, argv, opts);
  }

  spawn(argv: string[], opts?: SpawnOptions): NodeProcess {
    return this.guest.spawn(this.ns, argv, opts);
  }

  /** Like spawn, typed as the guest process (adds waitStarted()). */
  spawnInGuest(argv: string[], opts?: SpawnOptions & { timeoutMs?: number }): GuestProcess {
    return this.guest.spawn(this.ns, argv, opts);
  }

  async fetchFile(nodePath: string, hostPath: string): Promise<void> {
    await this.guest.fetchFile(path.posix.isAbsolute(nodePath) ? nodePath : path.posix.join(this.workDir, nodePath), hostPath);
  }

  /** Netlink request(s) from a socket in this node's namespace (e.g. the IPVS generic-netlink family on the director). */
  netlinkTransact(protocol: number, request: Buffer, timeoutMs?: number): Promise<Buffer> {
    return this.guest.netlinkTransact(this.ns, protocol, request, timeoutMs);
  }

  /** The same, shaped as a netlink transport ({ transact }) for the netlink clients. */
  netlinkTransport(protocol = 16, timeoutMs = 20_000): { transact(request: Buffer): Promise<Buffer> } {
    return this.guest.netlinkTransport(this.ns, protocol, timeoutMs);
  }
}

export class VmLab implements RunningLab {
  readonly backend = 'vm' as const;
  private readonly nodes = new Map<string, VmNode>();

  constructor(readonly name: string, readonly model: LabModel, readonly readyMs: number, /** The guest the lab runs in. */ readonly guest: VmGuest) {
    for (const n of model.nodes) this.nodes.set(n.name, new VmNode(n.name, nsName(name, n.name), guest));
  }

  node(name: string): VmNode {
    const n = this.nodes.get(name);
    if (!n) throw new Error(`lab ${this.name} has no node "${name}" (nodes: ${[...this.nodes.keys()].join(', ')})`);
    return n;
  }

  /** Stop the VM and forget the lab. */
  async down(): Promise<void> {
    await this.guest.shutdown();
    await withLock(() => removeLabState(this.name));
  }

  /** Release this process's connection and leave the VM running (a persistent lab after `vslab up`, or one attached to). */
  detach(): void {
    this.guest.detach();
  }
}

/** Build every node of the plan in the guest; throws with the script's own message on failure. */
export async function realisePlanInGuest(guest: VmGuest, model: LabModel, labName: string): Promise<void> {
  const ops = planLab(model, labName);
  const script = renderPlanScript(ops);
  const r = await guest.exec(null, ['sh', '-s'], { input: script, timeoutMs: 120_000 });
  if (r.code !== 0) {
    throw new Error(`cannot build lab ${labName} in VM ${guest.name}: ${(r.stderr || r.stdout).trim() || `setup script exited ${r.code}`}`);
  }
  const dirs = model.nodes.map((n) => guestWorkDir(n.name));
  const mk = await guest.exec(null, ['mkdir', '-p', ...dirs]);
  if (mk.code !== 0) throw new Error(`cannot create work directories in VM ${guest.name}: ${mk.stderr.trim()}`);
}

function vmRunDir(labName: string): string {
  return path.join(VM_RUN_ROOT, `${process.env.VSLAB_VM_NAME_PREFIX || 'vslab-'}${labName}`);
}

/** Bring a lab up inside a new VM. On any failure the VM is stopped and the lab state removed. */
export async function upVmLab(model: LabModel, opts: VmLabUpOptions = {}): Promise<VmLab> {
  const t0 = performance.now();
  const progress = opts.progress ?? (() => undefined);
  const kernel = parseKernelOption(opts.kernel, opts.modules);
  const state = await withLock(() => {
    const taken = new Set(readLabStates().map((s) => s.name));
    if (opts.name && taken.has(opts.name)) throw new Error(labNameTakenMessage(opts.name));
    const name = uniqueLabName(opts.name ?? model.name, taken);
    const s: LabState = {
      name, backend: 'vm', topology: model.file, nodes: model.nodes.map((n) => n.name), namespaces: [],
      createdAt: new Date().toISOString(), ownerPid: process.pid, status: 'creating', ephemeral: !!opts.ephemeral, model,
      extra: { vmRunDir: vmRunDir(name) },
    };
    writeLabState(s);
    return s;
  });
  let guest: VmGuest | undefined;
  try {
    guest = await VmGuest.boot({
      // VSLAB_VM_NAME_PREFIX: tests keep their VMs apart from real labs (which gc recognises by "vslab-").
      namePrefix: process.env.VSLAB_VM_NAME_PREFIX || 'vslab-', name: state.name, persistent: !state.ephemeral, kernel, shares: defaultShares(),
      memoryMiB: opts.memoryMiB ?? 512, progress, ...opts.boot,
    });
    state.extra = { vmRunDir: guest.runDir, vmName: guest.name, qemuPid: guest.qemuPid, kernel: guest.kernel?.release, bootMs: guest.bootMs };
    writeLabState(state);
    progress(`building ${model.nodes.length} nodes in ${guest.name}`);
    await realisePlanInGuest(guest, model, state.name);
  } catch (e) {
    progress('failed; stopping the VM');
    await guest?.shutdown().catch(() => undefined);
    await withLock(() => removeLabState(state.name));
    throw e;
  }
  state.status = 'up';
  writeLabState(state);
  return new VmLab(state.name, model, performance.now() - t0, guest);
}

/** Re-attach to a lab that is up in a VM (e.g. `vslab exec` in another process). */
export async function attachVmLab(name: string, model: LabModel): Promise<VmLab> {
  const s = readLabState(name);
  if (!s || !labAlive(s)) throw new Error(`no lab named ${name} is up (see \`vslab ls\`)`);
  const runDir = String(s.extra?.vmRunDir ?? vmRunDir(name));
  const guest = await VmGuest.attach(runDir);
  return new VmLab(name, model, 0, guest);
}

/** Stop a lab's VM and remove its state (`vslab down`). */
export async function destroyVmLab(name: string): Promise<void> {
  const s = readLabState(name);
  await destroyVmByRunDir(String(s?.extra?.vmRunDir ?? vmRunDir(name)));
  await withLock(() => removeLabState(name));
}
