// One entry point over the backends: bring a lab up, find it again, take it down.
import type { LabModel } from '../topology/model';
import { attachNetnsLab, destroyLab, upNetnsLab } from './netns';
import { readLabState, readLabStates, labAlive, withLock, writeLabState } from './registry';
import type { BackendKind, LabSummary, RunningLab, UpOptions } from './types';

export interface LabUpOptions extends UpOptions {
  backend?: BackendKind;
  ephemeral?: boolean;
  /** VM backend: kernel to boot ("bookworm", "backports" or a vmlinuz path). */
  kernel?: string;
  /** VM backend: modules directory for a kernel given by path. */
  modules?: string;
}

interface VmModule {
  upVmLab(model: LabModel, opts: LabUpOptions): Promise<RunningLab>;
  attachVmLab(name: string, model: LabModel): Promise<RunningLab>;
  destroyVmLab(name: string): Promise<void>;
}

function vmBackend(): VmModule {
  try {
    // Loaded lazily: the VM backend pulls in qemu handling nobody else needs.
    // eslint-disable-next-line @typescript-eslint/no-var-requires
    return require('./vm') as VmModule;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'MODULE_NOT_FOUND') throw new Error('the vm backend is not part of this build of vslab yet; use --backend netns');
    throw e;
  }
}

export async function upLab(model: LabModel, opts: LabUpOptions = {}): Promise<RunningLab> {
  const backend = opts.backend ?? 'netns';
  if (backend === 'netns') return upNetnsLab(model, opts);
  if (backend === 'vm') return vmBackend().upVmLab(model, opts);
  throw new Error(`backend ${backend} is not available yet (available: netns, vm)`);
}

export async function attachLab(name: string, model: LabModel): Promise<RunningLab> {
  const s = readLabState(name);
  if (!s) throw new Error(`no lab named ${name} is up (see \`vslab ls\`)`);
  if (s.backend === 'vm') return vmBackend().attachVmLab(name, model);
  return attachNetnsLab(name, model);
}

export async function downLab(name: string): Promise<void> {
  const s = await withLock(() => {
    const st = readLabState(name);
    // Marked before anything is removed: a `down` killed half-way leaves a lab whose deleter is gone,
    // which gc recognises as dead and finishes (an 'up' persistent lab it would rightly leave alone).
    if (st) writeLabState({ ...st, status: 'deleting', ownerPid: process.pid });
    return st;
  });
  if (s?.backend === 'vm') return vmBackend().destroyVmLab(name);
  return destroyLab(name);
}

export function listLabs(): LabSummary[] {
  return readLabStates().map((s) => ({
    name: s.name, backend: s.backend, topology: s.topology, nodes: s.nodes, createdAt: s.createdAt, ownerPid: s.ownerPid, alive: labAlive(s),
  }));
}
