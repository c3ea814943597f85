// Labs for a conformance run: one pool per test worker. On the VM backend the pool boots one guest and
// realises every lab the worker's tests ask for inside it (each lab is its own set of namespaces, so
// topologies with the same addresses coexist); on the netns backend each lab is brought up on the host.
// A lab is prepared once (offloads off, director programmed, the fault applied, responders started) and
// reused by every later test of the worker.
import * as path from 'path';
import { upLab } from '../backend';
import { hostRoutedPrefixes } from '../backend/registry';
import type { BackendKind, RunningLab } from '../backend/types';
import type { DirectorKind } from '../director/program';
import { loadTopologyFile } from '../topology/load';
import type { LabModel } from '../topology/model';
import { adoptPreparedLab, prepareLab, type PreparedLab } from './prepare';
import type { AppliedFault } from '../director/faults';
import type { RunVm } from './vms';
import * as fs from 'fs';

export interface LabRecord {
  lab: string;
  topology: string;
  backend: BackendKind;
  directors: Array<{ node: string; implementation: string }>;
  fault?: { name: string; actions: Array<{ node: string; what: string; command: string; input?: string }> };
  readyMs: number;
}

export const LAB_RECORD_DIR = 'labs';

function writeLabRecord(dir: string, spec: SuiteLabSpec, p: PreparedLab, opts: LabPoolOptions): void {
  const rec: LabRecord = {
    lab: p.model.name, topology: path.resolve(spec.topology), backend: opts.backend,
    directors: [...p.capabilities].map(([node, c]) => ({ node, implementation: c.implementation })),
    ...(p.fault ? { fault: { name: p.fault.name, actions: p.fault.actions.map((a) => ({ node: a.node, what: a.what, command: a.argv.join(' '), ...(a.input ? { input: a.input } : {}) })) } } : {}),
    readyMs: Math.round(p.readyMs),
  };
  fs.mkdirSync(path.join(dir, LAB_RECORD_DIR), { recursive: true });
  fs.writeFileSync(path.join(dir, LAB_RECORD_DIR, `${p.model.name}.json`), JSON.stringify(rec, null, 2) + '\n');
}

export interface LabPoolOptions {
  backend: BackendKind;
  director: DirectorKind;
  /** VM backend: kernel to boot. */
  kernel?: string;
  modules?: string;
  /** Name of a fault to apply to every lab (src/director/faults.ts). */
  fault?: string;
  /** VM backend: guest memory (MiB). Each lab runs a Node responder per real server. */
  memoryMiB?: number;
  progress?: (msg: string) => void;
  /** Where to note each prepared lab (labs/<name>.json: director implementation, fault actions, timings). */
  recordDir?: string;
  /** VM backend: a guest the runner booted for this worker slot, to attach to instead of booting one. */
  sharedVm?: RunVm;
}

/** What a suite says about one of its labs. */
export interface SuiteLabSpec {
  /** Topology file. */
  topology: string;
  /** Services whose real servers get no responder (to provoke ICMP errors, refusals...). */
  unserved?: string[];
}

interface VmGuestLike {
  detach(): void;
}

interface VmModule {
  upVmLab(model: LabModel, opts: Record<string, unknown>): Promise<RunningLab & { guest: unknown }>;
  realisePlanInGuest(guest: unknown, model: LabModel, name: string): Promise<void>;
  VmLab: new (name: string, model: LabModel, readyMs: number, guest: unknown) => RunningLab;
  VmGuest: { attach(runDir: string): Promise<VmGuestLike> };
}

export class LabPool {
  private readonly labs = new Map<string, Promise<PreparedLab>>();
  private first?: RunningLab;
  private readonly others: RunningLab[] = [];
  private shared?: Promise<VmGuestLike>;
  private closed = false;

  constructor(readonly opts: LabPoolOptions) {}

  /** The prepared lab for a topology file, brought up on first use. */
  get(spec: SuiteLabSpec): Promise<PreparedLab> {
    if (this.closed) throw new Error('the lab pool is closed');
    const key = path.resolve(spec.topology);
    let p = this.labs.get(key);
    if (!p) {
      p = this.bringUp(spec);
      this.labs.set(key, p);
      // A failed bring-up is not cached: the next test tries again (and reports its own error).
      p.catch(() => this.labs.delete(key));
    }
    return p;
  }

  private async bringUp(spec: SuiteLabSpec): Promise<PreparedLab> {
    const model = loadTopologyFile(spec.topology, { hostPrefixes: this.opts.backend === 'netns' ? hostRoutedPrefixes() : [] });
    const progress = this.opts.progress ?? (() => undefined);
    const t0 = performance.now();
    let lab: RunningLab;
    if (this.opts.backend === 'vm' && this.opts.sharedVm) {
      // eslint-disable-next-line @typescript-eslint/no-var-requires
      const vm = require('../backend/vm') as VmModule;
      const shared = this.opts.sharedVm;
      this.shared ??= vm.VmGuest.attach(shared.runDir);
      const guest = await this.shared;
      lab = new vm.VmLab(model.name, model, 0, guest);
      const marker = path.join(shared.stateDir, `${model.name}.json`);
      if (fs.existsSync(marker)) {
        // Prepared by an earlier worker of this slot (Playwright replaced it after a failure): take it up again.
        progress(`${model.name}: taking up the lab prepared earlier in this VM`);
        const noted = JSON.parse(fs.readFileSync(marker, 'utf8')) as { fault?: AppliedFault };
        return adoptPreparedLab(lab, { director: this.opts.director, fault: noted.fault, startedAt: t0 });
      }
      progress(`building ${model.name} in the run's VM`);
      await vm.realisePlanInGuest(guest, model, model.name);
      const prepared = await prepareLab(lab, { director: this.opts.director, fault: this.opts.fault, unserved: spec.unserved ?? [], progress, startedAt: t0 });
      fs.writeFileSync(marker, JSON.stringify({ lab: model.name, fault: prepared.fault }, null, 2) + '\n');
      if (this.opts.recordDir) writeLabRecord(this.opts.recordDir, spec, prepared, this.opts);
      return prepared;
    }
    if (this.opts.backend === 'vm') {
      // eslint-disable-next-line @typescript-eslint/no-var-requires
      const vm = require('../backend/vm') as VmModule;
      if (!this.first) {
        progress(`booting a VM for ${model.name}`);
        lab = await vm.upVmLab(model, { ephemeral: true, kernel: this.opts.kernel, modules: this.opts.modules, memoryMiB: this.opts.memoryMiB ?? 1536, progress });
        this.first = lab;
      } else {
        progress(`building ${model.name} in ${this.first.name}'s VM`);
        const guest = (this.first as unknown as { guest: unknown }).guest;
        await vm.realisePlanInGuest(guest, model, model.name);
        lab = new vm.VmLab(model.name, model, performance.now() - t0, guest);
        this.others.push(lab);
      }
    } else {
      progress(`bringing up ${model.name}`);
      lab = await upLab(model, { backend: this.opts.backend, ephemeral: true, progress });
      if (!this.first) this.first = lab;
      else this.others.push(lab);
    }
    const prepared = await prepareLab(lab, { director: this.opts.director, fault: this.opts.fault, unserved: spec.unserved ?? [], progress, startedAt: t0 });
    if (this.opts.recordDir) writeLabRecord(this.opts.recordDir, spec, prepared, this.opts);
    return prepared;
  }

  /** Stops responders and takes every lab down (the VM with them). */
  async close(): Promise<void> {
    this.closed = true;
    const prepared = await Promise.allSettled([...this.labs.values()]);
    for (const p of prepared) {
      if (p.status !== 'fulfilled') continue;
      // In the run's shared VM the responders stay for the worker that takes the lab up next.
      if (this.shared) for (const d of p.value.directors.values()) await d.close().catch(() => undefined);
      else await p.value.release().catch(() => undefined);
    }
    if (this.shared) {
      // The runner's VM outlives this worker (a replacement worker takes its labs up again).
      (await this.shared.catch(() => undefined))?.detach();
      return;
    }
    if (this.opts.backend !== 'vm') for (const l of this.others) await l.down().catch(() => undefined);
    // On the VM backend the other labs live in the first lab's guest: shutting it down ends them all.
    await this.first?.down();
  }
}
