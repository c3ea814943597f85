// Finds what vslab left behind (after a crash or SIGKILL) and removes it — and only vslab's. What is
// common to all labs (state files, work directories, guard routes) is handled here; each backend
// names its own leftovers (namespaces, qemu processes, labelled containers). Labs that are up stay.
import * as fs from 'fs';
import * as path from 'path';
import { allBackends } from './index';
import type { Backend, GcItem } from './backend';
import { labNamespaces } from './netns';
import { hostGuardRoutes, labAlive, readLabStates, removeHostGuard, removeLabState, withLock, WORK_ROOT } from './registry';

export type { GcItem } from './backend';

export interface GcReport {
  dryRun: boolean;
  /** Only labs whose name starts with this were looked at (`vslab gc --prefix`). */
  prefix?: string;
  found: GcItem[];
  removed: GcItem[];
  errors: string[];
  /** After removal: what vslab objects remain on the host (those of labs that are up). */
  remaining: { labsUp: string[]; namespaces: number; hostRoutes: string[]; qemu: number; containers: number };
  clean: boolean;
}

interface Found { item: GcItem; backend?: Backend }

/**
 * `prefix`: only labs whose name starts with it (a soak or a test cleaning up after itself on a machine
 * others share). Guard routes belong to no lab: they are taken only when no lab at all is up, as always.
 */
async function scan(backends: Backend[], errors: string[] = [], prefix?: string): Promise<{ found: Found[]; alive: Set<string> }> {
  const states = readLabStates();
  const alive = new Set(states.filter(labAlive).map((s) => s.name));
  const found: Found[] = [];
  for (const s of states) if (!alive.has(s.name)) found.push({ item: { kind: 'lab-state', id: s.name, lab: s.name, reason: s.status === 'creating' ? `bring-up by pid ${s.ownerPid} died` : `owner pid ${s.ownerPid} is gone` } });
  for (const b of backends) {
    // A backend that cannot be asked (a daemon that fails) is an error in the report, never "nothing left".
    try { for (const item of await b.leftovers(alive)) found.push({ item, backend: b }); } catch (e) { errors.push(`${b.kind} leftovers: ${(e as Error).message}`); }
  }
  if (!alive.size) for (const r of hostGuardRoutes()) found.push({ item: { kind: 'host-route', id: r, reason: 'guard route with no lab up' } });
  if (fs.existsSync(WORK_ROOT)) for (const d of fs.readdirSync(WORK_ROOT)) if (!alive.has(d)) found.push({ item: { kind: 'workdir', id: path.join(WORK_ROOT, d), lab: d, reason: 'work directory of no lab that is up' } });
  const mine = prefix === undefined ? found : found.filter((f) => (f.item.lab === undefined ? f.item.kind === 'host-route' : f.item.lab.startsWith(prefix)));
  return { found: mine, alive };
}

/** Finds (and unless dryRun removes) vslab's leftovers; with `only.lab`, just that lab's, with `only.prefix`, those
 *  of labs whose name starts with it (a person's own crashed lab, or a soak's, on a machine others share: their
 *  leftovers are left alone; --lab leaves the host guard routes too). */
export async function gc(dryRun: boolean, only: { lab?: string; prefix?: string } = {}): Promise<GcReport> {
  const backends = allBackends();
  const mine = (f: Found) => only.lab === undefined || f.item.lab === only.lab;
  return withLock(async () => {
    const errors: string[] = [];
    const found = (await scan(backends, errors, only.prefix)).found.filter(mine);
    const removed: GcItem[] = [];
    if (!dryRun) {
      for (const { item, backend } of found) {
        try {
          if (backend) await backend.removeLeftover(item);
          else if (item.kind === 'lab-state') removeLabState(item.id);
          else if (item.kind === 'workdir') fs.rmSync(item.id, { recursive: true, force: true });
          removed.push(item);
        } catch (e) {
          errors.push(`${item.kind} ${item.id}: ${(e as Error).message}`);
        }
      }
      if (found.some((f) => f.item.kind === 'host-route')) { try { removeHostGuard(); } catch (e) { errors.push(`host routes: ${(e as Error).message}`); } }
    }
    const after = await scan(backends, errors, only.prefix);
    after.found = after.found.filter(mine);
    const census = { qemu: 0, containers: 0 };
    for (const b of backends) {
      try { for (const [k, v] of Object.entries((await b.census?.()) ?? {})) census[k as keyof typeof census] += v ?? 0; } catch (e) { errors.push(`${b.kind} census: ${(e as Error).message}`); }
    }
    const remaining = { labsUp: [...after.alive], namespaces: labNamespaces().length, hostRoutes: hostGuardRoutes(), ...census };
    return { dryRun, prefix: only.prefix, found: found.map((f) => f.item), removed, errors, remaining, clean: after.found.length === 0 && errors.length === 0 };
  });
}
