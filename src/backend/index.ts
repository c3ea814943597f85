// One entry point over the backends, and the one place they are registered. A backend is one file
// (or folder) exporting `backend: Backend` (backend.ts); add it to BACKENDS and to BackendKind.
import type { LabModel } from '../topology/model';
import { bringUp, tearDown, type Backend } from './backend';
import { readLabState, readLabStates, labAlive } from './registry';
import type { BackendKind, LabSummary, LabUpOptions, RunningLab } from './types';

export type { LabUpOptions } from './types';

/** Every backend, loaded on first use (the VM and docker backends pull in what nobody else needs). */
const BACKENDS: Record<BackendKind, () => Backend> = {
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  netns: () => (require('./netns') as { backend: Backend }).backend,
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  vm: () => (require('./vm') as { backend: Backend }).backend,
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  docker: () => (require('./docker') as { backend: Backend }).backend,
};

export const BACKEND_KINDS = Object.keys(BACKENDS) as BackendKind[];

export function isBackendKind(s: string): s is BackendKind {
  return Object.prototype.hasOwnProperty.call(BACKENDS, s);
}

/** The backend of that name; an unknown name is an error naming the known ones. */
export function backendOf(kind: string): Backend {
  if (!isBackendKind(kind)) throw new Error(`unknown backend "${kind}" (${BACKEND_KINDS.join(', ')})`);
  return BACKENDS[kind]();
}

/** Every backend, for gc and doctor. */
export function allBackends(): Backend[] {
  return BACKEND_KINDS.map((k) => BACKENDS[k]());
}

export async function upLab(model: LabModel, opts: LabUpOptions = {}): Promise<RunningLab> {
  return bringUp(backendOf(opts.backend ?? 'netns'), model, opts);
}

export async function attachLab(name: string, model: LabModel): Promise<RunningLab> {
  const s = readLabState(name);
  if (!s || !labAlive(s)) throw new Error(`no lab named ${name} is up (see \`vslab ls\`)`);
  return backendOf(s.backend).attach(s, model);
}

export async function downLab(name: string): Promise<void> {
  const s = readLabState(name);
  return tearDown(backendOf(s?.backend ?? 'netns'), name);
}

export function listLabs(): LabSummary[] {
  return readLabStates().map((s) => ({
    name: s.name, backend: s.backend, topology: s.topology, nodes: s.nodes, createdAt: s.createdAt, ownerPid: s.ownerPid, alive: labAlive(s),
  }));
}
