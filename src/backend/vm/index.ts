// The VM backend: the whole lab lives inside one qemu guest (kernel IPVS, ipip, netem... which the
// host kernel lacks). Each lab node is a network namespace in the guest, built from the same plan as
// the netns backend (plan.ts -> plan-script.ts); programs run in them through the guest agent.
//
// Ownership: the VM is named vslab-<lab> (what `vslab gc` looks for), its run directory is
// /run/vslab/vm/vslab-<lab> and the lab state records it. Ephemeral labs (tests, `vslab run`) die
// with their process; persistent ones (`vslab up`) run detached until `vslab down`.
import type { LabModel } from '../../topology/model';
import { nsName, planLab } from '../plan';
import { bringUp, nodeByName, refuseImages, tearDown, type Backend, type GcItem } from '../backend';
import { labAlive, readLabState } from '../registry';
import { pidAlive } from '../../util/process';
import { findOrphanLabVms, findVmLeftovers, removeVmLeftover, type VmLeftover } from './leftovers';

/** VSLAB_VM_NAME_PREFIX when it differs from real labs' prefix. */
function otherVmPrefix(): string | undefined {
  const p = process.env.VSLAB_VM_NAME_PREFIX;
  return p && p !== 'vslab-' ? p : undefined;
}
import * as fs from 'fs';
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

  readFileFrom(nodePath: string, offset: number): Promise<Buffer> {
    return this.guest.readFile(path.posix.isAbsolute(nodePath) ? nodePath : path.posix.join(this.workDir, nodePath), offset);
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
    return nodeByName(this.nodes, this.name, name);
  }

  /** Stop the VM and forget the lab. */
  async down(): Promise<void> {
    await this.guest.shutdown();
    await tearDown(vmBackend, this.name);
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

/** The VM backend's half of the lab lifecycle (the other half, shared, is in backend.ts). */
export const vmBackend: Backend = {
  kind: 'vm',
  async preflight(model) {
    refuseImages(model, 'vm');
  },
  onHostKernel: false,
  async build(model, state, ctx) {
    const opts = ctx.opts as VmLabUpOptions;
    const kernel = parseKernelOption(opts.kernel, opts.modules);
    state.extra = { vmRunDir: vmRunDir(state.name) };
    ctx.save();
    let guest: VmGuest | undefined;
    try {
      guest = await VmGuest.boot({
        // VSLAB_VM_NAME_PREFIX: tests keep their VMs apart from real labs (which gc recognises by "vslab-").
        namePrefix: process.env.VSLAB_VM_NAME_PREFIX || 'vslab-', name: state.name, persistent: !state.ephemeral, kernel, shares: defaultShares(),
        memoryMiB: opts.memoryMiB ?? 512, progress: ctx.progress, ...opts.boot,
      });
      // The lab lives as long as its qemu does, whoever owns it (registry.labAlive reads holderPids).
      state.extra = { vmRunDir: guest.runDir, vmName: guest.name, qemuPid: guest.qemuPid, holderPids: [guest.qemuPid], kernel: guest.kernel?.release, bootMs: guest.bootMs };
      ctx.save();
      ctx.progress(`building ${model.nodes.length} nodes in ${guest.name}`);
      await realisePlanInGuest(guest, model, state.name);
    } catch (e) {
      await guest?.shutdown().catch(() => undefined);
      throw e;
    }
    const g = guest;
    return (readyMs) => new VmLab(state.name, model, readyMs, g);
  },
  async attach(state, model) {
    const guest = await VmGuest.attach(String(state.extra?.vmRunDir ?? vmRunDir(state.name)));
    return new VmLab(state.name, model, 0, guest);
  },
  async destroy(name, state) {
    await destroyVmByRunDir(String(state?.extra?.vmRunDir ?? vmRunDir(name)));
  },
  async leftovers(alive) {
    const items: GcItem[] = [];
    for (const q of vslabQemuProcesses()) {
      const lab = q.name.replace(/^vslab-/, '');
      if (!alive.has(lab)) items.push({ kind: 'qemu', id: String(q.pid), lab, reason: `VM ${q.name} belongs to no lab that is up` });
    }
    for (const v of findVmLeftovers()) {
      const lab = v.name.replace(/^vslab-/, '');
      if (!alive.has(lab)) items.push({ kind: 'vm-rundir', id: v.runDir, lab, reason: v.reason });
    }
    // Persistent lab VMs named with VSLAB_VM_NAME_PREFIX (tests, soaks) whose lab is not up.
    const prefix = otherVmPrefix();
    if (prefix) {
      for (const v of findOrphanLabVms(prefix, (lab) => alive.has(lab))) items.push({ kind: 'vm-rundir', id: v.runDir, lab: v.name.slice(prefix.length), reason: v.reason });
      // Ephemeral guests of that prefix whose qemu or owner is gone (a killed test or bench left the directory).
      for (const v of findVmLeftovers(prefix)) {
        if (!items.some((i) => i.id === v.runDir)) items.push({ kind: 'vm-rundir', id: v.runDir, lab: v.name.slice(prefix.length), reason: v.reason });
      }
    }
    return items;
  },
  async removeLeftover(item) {
    if (item.kind === 'qemu') {
      try { process.kill(Number(item.id), 'SIGKILL'); } catch (e) { if ((e as NodeJS.ErrnoException).code !== 'ESRCH') throw e; }
    } else if (item.kind === 'vm-rundir') {
      const prefix = otherVmPrefix();
      const v = [...findVmLeftovers(), ...(prefix ? [...findOrphanLabVms(prefix, () => false), ...findVmLeftovers(prefix)] : [])].find((x: VmLeftover) => x.runDir === item.id);
      if (v) removeVmLeftover(v);
    }
  },
  async census() {
    return { qemu: vslabQemuProcesses().filter((q) => pidAlive(q.pid)).length };
  },
};

export const backend = vmBackend;

/** qemu processes named vslab-* (real labs' VMs). */
function vslabQemuProcesses(): Array<{ pid: number; name: string }> {
  const out: Array<{ pid: number; name: string }> = [];
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    let cmd: string[];
    try { cmd = fs.readFileSync(`/proc/${d}/cmdline`, 'utf8').split('\0'); } catch { continue; }
    if (!cmd[0] || !/qemu-system/.test(path.basename(cmd[0]))) continue;
    const i = cmd.indexOf('-name');
    const name = i >= 0 ? (cmd[i + 1] ?? '').split(',')[0].replace(/^guest=/, '') : '';
    if (name.startsWith('vslab-')) out.push({ pid: Number(d), name });
  }
  return out;
}

/** Bring a lab up inside a new VM. On any failure the VM is stopped and the lab state removed. */
export async function upVmLab(model: LabModel, opts: VmLabUpOptions = {}): Promise<VmLab> {
  return (await bringUp(vmBackend, model, opts)) as VmLab;
}

/** Re-attach to a lab that is up in a VM (e.g. `vslab exec` in another process). */
export async function attachVmLab(name: string, model: LabModel): Promise<VmLab> {
  const s = readLabState(name);
  if (!s || !labAlive(s)) throw new Error(`no lab named ${name} is up (see \`vslab ls\`)`);
  return (await vmBackend.attach(s, model)) as VmLab;
}

/** Stop a lab's VM and remove its state (`vslab down`). */
export async function destroyVmLab(name: string): Promise<void> {
  await tearDown(vmBackend, name);
}
