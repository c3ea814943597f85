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
  found: GcItem[];
  removed: GcItem[];
  errors: string[];
  /** After removal: what vslab objects remain on the host (those of labs that are up). */
  remaining: { labsUp: string[]; namespaces: number; hostRoutes: string[]; qemu: number; containers: number };
  clean: boolean;
}

interface Found { item: GcItem; backend?: Backend }

async function scan(backends: Backend[], errors: string[] = []): Promise<{ found: Found[]; alive: Set<string> }> {
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
  return { found, alive };
}

/** Finds (and unless dryRun removes) vslab's leftovers; with `only.lab`, just that lab's (a person's own crashed lab
 *  on a machine others share: their leftovers, and the host guard routes, are left alone). */
export async function gc(dryRun: boolean, only: { lab?: string } = {}): Promise<GcReport> {
  const backends = allBackends();
  const mine = (f: Found) => only.lab === undefined || f.item.lab === only.lab;
  return withLock(async () => {
    const errors: string[] = [];
    const found = (await scan(backends, errors)).found.filter(mine);
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
    const after = await scan(backends, errors);
    after.found = after.found.filter(mine);
    const census = { qemu: 0, containers: 0 };
    for (const b of backends) {
      try { for (const [k, v] of Object.entries((await b.census?.()) ?? {})) census[k as keyof typeof census] += v ?? 0; } catch (e) { errors.push(`${b.kind} census: ${(e as Error).message}`); }
    }
    const remaining = { labsUp: [...after.alive], namespaces: labNamespaces().length, hostRoutes: hostGuardRoutes(), ...census };
    return { dryRun, found: found.map((f) => f.item), removed, errors, remaining, clean: after.found.length === 0 && errors.length === 0 };
  });
}
