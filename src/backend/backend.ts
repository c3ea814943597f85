// The one interface every backend implements, and the lab lifecycle written once for all of them:
// lock, unique name, state file written before anything is built, rollback on failure, removal.
// A backend only says how to build, find, remove and recognise the leftovers of its own labs.
import * as fs from 'fs';
import * as path from 'path';
import type { LabModel } from '../topology/model';
import {
  installHostGuard, labNameTakenMessage, readLabState, readLabStates, removeHostGuard, removeLabState, uniqueLabName, withLock,
  WORK_ROOT, writeLabState, type LabState,
} from './registry';
import type { BackendKind, LabUpOptions, RunningLab } from './types';

/** Something vslab left behind that gc may remove. */
export interface GcItem {
  kind: 'namespace' | 'lab-state' | 'host-route' | 'qemu' | 'vm-rundir' | 'container' | 'workdir';
  id: string;
  lab?: string;
  reason: string;
}

export interface BuildContext {
  opts: LabUpOptions;
  progress: (msg: string) => void;
  /** Writes the lab state again (after the backend recorded what it made in state.extra). */
  save(): void;
}

export interface Backend {
  readonly kind: BackendKind;
  /** Its labs have network namespaces in this host's kernel: the host guard routes are held while one is up. */
  readonly onHostKernel: boolean;
  /** Checks that need no lab (a daemon to talk to, a tool): throws a clear error before any state is written. */
  preflight?(model: LabModel, opts: LabUpOptions): Promise<void>;
  /** Lab names still held by this backend's remnants, so a new lab does not take them. */
  namesInUse?(): string[] | Promise<string[]>;
  /** Builds the lab whose state was just written. On a throw the lifecycle calls destroy(). Returns how to make the RunningLab once ready. */
  build(model: LabModel, state: LabState, ctx: BuildContext): Promise<(readyMs: number) => RunningLab>;
  /** Finds a running lab again (another process, e.g. `vslab exec`). */
  attach(state: LabState, model: LabModel): Promise<RunningLab>;
  /** Removes everything the lab made; state may be missing (a crash before it was complete). */
  destroy(name: string, state: LabState | undefined): Promise<void>;
  /** What this backend left behind that belongs to no lab in `alive` (gc). */
  leftovers(alive: Set<string>): Promise<GcItem[]>;
  /** Removes one of the items leftovers() returned. */
  removeLeftover(item: GcItem): Promise<void>;
  /** How many of its objects exist now (gc's proof of a clean host), by label. */
  census?(): Promise<Partial<Record<'qemu' | 'containers', number>>>;
}

/** A lab's node by name; an unknown name is an error listing the lab's nodes. */
export function nodeByName<N>(nodes: Map<string, N>, lab: string, name: string): N {
  const n = nodes.get(name);
  if (n === undefined) throw new Error(`lab ${lab} has no node "${name}" (nodes: ${[...nodes.keys()].join(', ')})`);
  return n;
}

/** For backends that run no images: a node naming one is an error, not something silently ignored. */
export function refuseImages(model: LabModel, kind: BackendKind): void {
  const n = model.nodes.find((x) => x.image);
  if (n) throw new Error(`node ${n.name} names an image (${n.image!.ref}), which only --backend docker runs; --backend ${kind} cannot`);
}

/** Brings a lab up with the given backend; on any failure everything already built is removed. */
export async function bringUp(backend: Backend, model: LabModel, opts: LabUpOptions = {}): Promise<RunningLab> {
  const t0 = performance.now();
  const progress = opts.progress ?? (() => undefined);
  // Names a backend's remnants hold are asked for beside the preflight, outside the lock (a daemon round trip
  // the other vslab processes need not wait for): a lab being built is known by its state file, read under the lock.
  const [, held] = await Promise.all([backend.preflight?.(model, opts), backend.namesInUse?.()]);
  const state = await withLock(async () => {
    const taken = new Set([...readLabStates().map((s) => s.name), ...(held ?? [])]);
    if (opts.name && taken.has(opts.name)) throw new Error(labNameTakenMessage(opts.name));
    const name = uniqueLabName(opts.name ?? `${opts.namePrefix ?? ''}${model.name}`, taken);
    const s: LabState = {
      name, backend: backend.kind, topology: model.file, nodes: model.nodes.map((n) => n.name), namespaces: [],
      createdAt: new Date().toISOString(), ownerPid: process.pid, status: 'creating', ephemeral: !!opts.ephemeral, model,
    };
    writeLabState(s);
    if (backend.onHostKernel) installHostGuard();
    return s;
  });
  let make: (readyMs: number) => RunningLab;
  try {
    make = await backend.build(model, state, { opts, progress, save: () => writeLabState(state) });
    for (const n of model.nodes) fs.mkdirSync(path.join(WORK_ROOT, state.name, n.name), { recursive: true });
    // Test hook: hold a half-finished bring-up so tests can SIGKILL it and check that gc recovers.
    const pause = Number(process.env.VSLAB_TEST_PAUSE_BEFORE_READY_MS ?? 0);
    if (pause > 0) { progress('paused (VSLAB_TEST_PAUSE_BEFORE_READY_MS)'); process.stderr.write(`vslab: paused before ready\n`); await new Promise((r) => setTimeout(r, pause)); }
  } catch (e) {
    progress('failed; removing what was built');
    await tearDown(backend, state.name).catch(() => undefined);
    throw e;
  }
  state.status = 'up';
  writeLabState(state);
  return make(performance.now() - t0);
}

/** Removes a lab with its backend, then its state, work directory and (with the last lab) the host guard. */
export async function tearDown(backend: Backend, name: string): Promise<void> {
  const state = await withLock(() => {
    const st = readLabState(name);
    // Marked before anything is removed: a `down` killed half-way leaves a lab whose deleter is gone,
    // which gc recognises as dead and finishes (an 'up' persistent lab it would rightly leave alone).
    if (st) writeLabState({ ...st, status: 'deleting', ownerPid: process.pid });
    return st;
  });
  let error: Error | undefined;
  try { await backend.destroy(name, state); } catch (e) { error = e as Error; }
  await withLock(() => {
    removeLabState(name);
    fs.rmSync(path.join(WORK_ROOT, name), { recursive: true, force: true });
    if (!readLabStates().length) removeHostGuard();
  });
  if (error) throw error;
}
