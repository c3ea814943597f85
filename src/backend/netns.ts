// The default backend: every node is a network namespace on this host, links are veth pairs,
// L2 segments are bridges in a per-lab switch namespace. Built in-process over rtnetlink
// (execute.ts); programs run in the nodes through nsenter with the host's tools.
import * as fs from 'fs';
import * as path from 'path';
import { native } from '../native';
import type { LabModel } from '../topology/model';
import { bringUp, nodeByName, refuseImages, tearDown, type Backend, type GcItem } from './backend';
import { executePlan, NETNS_DIR, RUN_NETNS } from './execute';
import { HostNamespaceNode } from './nsnode';
import { nsName, parseNsName, planLab, SWITCH_NODE } from './plan';
import { WORK_ROOT, type LabState } from './registry';
import type { RunningLab, UpOptions } from './types';

export { NETNS_DIR } from './execute';
export const nsPath = (ns: string) => path.join(NETNS_DIR, ns);

/** Runs argv inside a namespace of /run/netns; for one-off commands. */
export { execInNetns } from './nsnode';

export class NetnsNode extends HostNamespaceNode {
  constructor(name: string, readonly ns: string, labName: string) {
    super(name, nsPath(ns), path.join(WORK_ROOT, labName, name));
  }
}

export class NetnsLab implements RunningLab {
  readonly backend = 'netns' as const;
  private nodes = new Map<string, NetnsNode>();
  constructor(readonly name: string, readonly model: LabModel, readonly readyMs: number) {
    for (const n of model.nodes) this.nodes.set(n.name, new NetnsNode(n.name, nsName(name, n.name), name));
  }
  node(name: string): NetnsNode {
    return nodeByName(this.nodes, this.name, name);
  }
  async down(): Promise<void> {
    await tearDown(netnsBackend, this.name);
  }
}

/** The vslab namespaces in /run/netns whose name says they belong to `lab` (every lab if omitted). */
export function labNamespaces(lab?: string): string[] {
  if (!fs.existsSync(NETNS_DIR)) return [];
  return fs.readdirSync(NETNS_DIR).filter((f) => { const p = parseNsName(f); return p && (lab === undefined || p.lab === lab); });
}

/** Deletes a lab's namespaces in /run/netns (those its state lists and any other of its name). */
export function deleteLabNamespaces(name: string, state: LabState | undefined): void {
  const namespaces = new Set([...(state?.namespaces ?? []), ...labNamespaces(name)]);
  const errors: string[] = [];
  for (const ns of namespaces) {
    try { native().netnsDelete(nsPath(ns)); } catch (e) { errors.push((e as Error).message); }
  }
  if (errors.length) throw new Error(`lab ${name} was not fully removed: ${errors.join('; ')}`);
}

/** Namespaces of /run/netns that belong to no lab that is up; shared by every backend that makes them. */
export function namespaceLeftovers(alive: Set<string>): GcItem[] {
  return labNamespaces().flatMap((f) => {
    const lab = parseNsName(f)!.lab;
    return alive.has(lab) ? [] : [{ kind: 'namespace' as const, id: f, lab, reason: 'belongs to no lab that is up' }];
  });
}

export const netnsBackend: Backend = {
  kind: 'netns',
  async preflight(model) {
    refuseImages(model, 'netns');
  },
  onHostKernel: true,
  namesInUse: () => labNamespaces().map((f) => parseNsName(f)!.lab),
  async build(model, state, ctx) {
    state.namespaces = [...model.nodes.map((n) => nsName(state.name, n.name)), ...(model.segments.some((g) => g.kind === 'lan') ? [nsName(state.name, SWITCH_NODE)] : [])];
    ctx.save();
    await executePlan(planLab(model, state.name), RUN_NETNS);
    return (readyMs) => new NetnsLab(state.name, model, readyMs);
  },
  async attach(state, model) {
    return new NetnsLab(state.name, model, 0);
  },
  async destroy(name, state) {
    deleteLabNamespaces(name, state);
  },
  async leftovers(alive) {
    return namespaceLeftovers(alive);
  },
  async removeLeftover(item) {
    if (item.kind === 'namespace') native().netnsDelete(nsPath(item.id));
  },
};

export const backend = netnsBackend;

/** Brings a lab up in network namespaces. On any failure everything already built is removed. */
export async function upNetnsLab(model: LabModel, opts: UpOptions = {}): Promise<NetnsLab> {
  return (await bringUp(netnsBackend, model, opts)) as NetnsLab;
}

/** Deletes every namespace of a lab and its state; removes the host guard when no lab is left. */
export async function destroyLab(name: string): Promise<void> {
  await tearDown(netnsBackend, name);
}
