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
import { closeLabCaptures } from './suite-api';
import { stopClientSessions } from './client-sessions';
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

/** Put before the names of the labs a run brings up on the host (netns, docker), so that people sharing a
 *  machine tell their labs and containers apart (e.g. VSLAB_LAB_NAME_PREFIX=ci7-: lab ci7-fwnat). */
export const LAB_PREFIX_ENV = 'VSLAB_LAB_NAME_PREFIX';

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

/**
 * A lab that could not be prepared. The first test that needed it failed with the cause; the later ones
 * are not run and say so (pointing at that failure), instead of each failing again with a consequence of
 * it. Recorded in the run directory so the other workers and a replacement worker know it too.
 */
export class LabUnavailableError extends Error {
  override name = 'LabUnavailableError';
}

interface LabFailure { lab: string; topology: string; cause: string }

/** Labs that could not be prepared, one file each (kept apart from the records of prepared labs). */
export const LAB_FAILURE_DIR = path.join(LAB_RECORD_DIR, 'failed');

function failureFile(dir: string, lab: string): string {
  return path.join(dir, LAB_FAILURE_DIR, `${lab}.json`);
}

function unavailable(f: LabFailure): LabUnavailableError {
  return new LabUnavailableError(`lab ${f.lab} could not be prepared, so this test did not run; the first test that needed it failed with the cause: ${f.cause.split('\n')[0]}`);
}

interface VmModule {
  upVmLab(model: LabModel, opts: Record<string, unknown>): Promise<RunningLab & { guest: unknown }>;
  realisePlanInGuest(guest: unknown, model: LabModel, name: string): Promise<void>;
  removeLabFromGuest(guest: unknown, name: string): Promise<void>;
  labNamespacesInGuest(guest: unknown, name: string): Promise<string[]>;
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
      // A failed bring-up was rolled back and its cause goes to the test that asked first; later tests of
      // this worker get the short "not run" error instead of trying (and failing) again.
      p.catch((e: unknown) => {
        if (e instanceof LabUnavailableError) return;
        const later = Promise.reject(unavailable({ lab: path.basename(key), topology: key, cause: (e as Error).message, ...this.failures.get(key) }));
        later.catch(() => undefined);
        this.labs.set(key, later);
      });
    }
    return p;
  }

  private readonly failures = new Map<string, LabFailure>();

  private async bringUp(spec: SuiteLabSpec): Promise<PreparedLab> {
    const model = loadTopologyFile(spec.topology, { hostPrefixes: this.opts.backend !== 'vm' ? hostRoutedPrefixes() : [] });
    const recorded = this.opts.recordDir ? failureFile(this.opts.recordDir, model.name) : undefined;
    if (recorded && fs.existsSync(recorded)) throw unavailable(JSON.parse(fs.readFileSync(recorded, 'utf8')) as LabFailure);
    try {
      return await this.bringUpOnce(spec, model);
    } catch (e) {
      const f: LabFailure = { lab: model.name, topology: path.resolve(spec.topology), cause: (e as Error).message };
      this.failures.set(path.resolve(spec.topology), f);
      if (recorded) {
        fs.mkdirSync(path.dirname(recorded), { recursive: true });
        fs.writeFileSync(recorded, JSON.stringify(f, null, 2) + '\n');
      }
      throw e;
    }
  }

  /**
   * Builds and prepares one lab. A failure anywhere rolls the lab back completely before it is reported:
   * in a VM that holds other labs only this lab's namespaces and processes go; on the host the lab is
   * taken down.
   */
  private async bringUpOnce(spec: SuiteLabSpec, model: LabModel): Promise<PreparedLab> {
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
      // No marker but the lab's namespaces are there: a worker was stopped while building it (a test's
      // timeout ends the worker, and no rollback runs in a killed process). Start from a clean guest.
      if ((await vm.labNamespacesInGuest(guest, model.name)).length) {
        progress(`${model.name}: removing a half-built copy a stopped worker left in the VM`);
        await vm.removeLabFromGuest(guest, model.name);
      }
      progress(`building ${model.name} in the run's VM`);
      const prepared = await this.orRemoveFromGuest(vm, guest, model.name, async () => {
        await vm.realisePlanInGuest(guest, model, model.name);
        return prepareLab(lab, { director: this.opts.director, fault: this.opts.fault, unserved: spec.unserved ?? [], progress, startedAt: t0 });
      });
      fs.writeFileSync(marker, JSON.stringify({ lab: model.name, fault: prepared.fault }, null, 2) + '\n');
      if (this.opts.recordDir) writeLabRecord(this.opts.recordDir, spec, prepared, this.opts);
      return prepared;
    }
    const prepare = (l: RunningLab) => prepareLab(l, { director: this.opts.director, fault: this.opts.fault, unserved: spec.unserved ?? [], progress, startedAt: t0 });
    let prepared: PreparedLab;
    if (this.opts.backend === 'vm') {
      // eslint-disable-next-line @typescript-eslint/no-var-requires
      const vm = require('../backend/vm') as VmModule;
      if (!this.first) {
        progress(`booting a VM for ${model.name}`);
        lab = await vm.upVmLab(model, { ephemeral: true, kernel: this.opts.kernel, modules: this.opts.modules, memoryMiB: this.opts.memoryMiB ?? 1536, progress });
        // The VM stays for this worker's other labs even when this one fails.
        this.first = lab;
      } else {
        progress(`building ${model.name} in ${this.first.name}'s VM`);
        const guest = (this.first as unknown as { guest: unknown }).guest;
        await this.orRemoveFromGuest(vm, guest, model.name, () => vm.realisePlanInGuest(guest, model, model.name));
        lab = new vm.VmLab(model.name, model, performance.now() - t0, guest);
      }
      const built = lab;
      prepared = await this.orRemoveFromGuest(vm, (built as unknown as { guest: unknown }).guest, model.name, () => prepare(built));
      if (built !== this.first) this.others.push(built);
    } else {
      progress(`bringing up ${model.name}`);
      lab = await upLab(model, { backend: this.opts.backend, ephemeral: true, progress, namePrefix: process.env[LAB_PREFIX_ENV] || undefined });
      try {
        prepared = await prepare(lab);
      } catch (e) {
        progress(`${model.name}: preparation failed; taking the lab down`);
        await lab.down().catch((d: Error) => { throw new Error(`${(e as Error).message}\n(and the lab could not be taken down: ${d.message})`); });
        throw e;
      }
      if (!this.first) this.first = lab;
      else this.others.push(lab);
    }
    if (this.opts.recordDir) writeLabRecord(this.opts.recordDir, spec, prepared, this.opts);
    return prepared;
  }

  /** Runs `step`; when it fails, removes lab `name` from the guest before the failure is passed on. */
  private async orRemoveFromGuest<T>(vm: VmModule, guest: unknown, name: string, step: () => Promise<T>): Promise<T> {
    try {
      return await step();
    } catch (e) {
      this.opts.progress?.(`${name}: failed; removing the lab from the VM`);
      try {
        await vm.removeLabFromGuest(guest, name);
      } catch (d) {
        throw new Error(`${(e as Error).message}\n(and the lab could not be removed from the VM: ${(d as Error).message})`);
      }
      throw e;
    }
  }

  /** Stops responders and takes every lab down (the VM with them). */
  async close(): Promise<void> {
    this.closed = true;
    const prepared = await Promise.allSettled([...this.labs.values()]);
    for (const p of prepared) {
      if (p.status !== 'fulfilled') continue;
      await stopClientSessions(p.value);
      await closeLabCaptures(p.value.lab).catch(() => undefined);
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
