// Finds what vslab left behind (after a crash or SIGKILL) and removes it — and only vslab's:
// namespaces named vslab-<lab>--<node>, guard routes with protocol 245, qemu processes named
// vslab-*, Docker containers labelled vslab.lab. Labs that are up and owned stay untouched.
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { native } from '../native';
import { parseNsName } from './plan';
import { NETNS_DIR } from './netns';
import { findOrphanLabVms, findVmLeftovers, removeVmLeftover, type VmLeftover } from './vm/leftovers';
import { hostGuardRoutes, labAlive, pidAlive, readLabStates, removeHostGuard, removeLabState, withLock, WORK_ROOT } from './registry';

export interface GcItem {
  kind: 'namespace' | 'lab-state' | 'host-route' | 'qemu' | 'vm-rundir' | 'container' | 'workdir';
  id: string;
  lab?: string;
  reason: string;
}

export interface GcReport {
  dryRun: boolean;
  found: GcItem[];
  removed: GcItem[];
  errors: string[];
  /** After removal: what vslab objects remain on the host (those of labs that are up). */
  remaining: { labsUp: string[]; namespaces: number; hostRoutes: string[]; qemu: number; containers: number };
  clean: boolean;
}

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

function vslabContainers(): Array<{ id: string; lab: string }> {
  if (!fs.existsSync('/var/run/docker.sock')) return [];
  try {
    const out = execFileSync('docker', ['ps', '-a', '--filter', 'label=vslab.lab', '--format', '{{.ID}} {{.Label "vslab.lab"}}'], { timeout: 10_000, stdio: ['ignore', 'pipe', 'ignore'] }).toString();
    return out.split('\n').filter(Boolean).map((l) => { const [id, lab] = l.split(' '); return { id, lab }; });
  } catch {
    return [];
  }
}

function scan(): { items: GcItem[]; alive: Set<string> } {
  const states = readLabStates();
  const alive = new Set(states.filter(labAlive).map((s) => s.name));
  const items: GcItem[] = [];
  for (const s of states) if (!alive.has(s.name)) items.push({ kind: 'lab-state', id: s.name, lab: s.name, reason: s.status === 'creating' ? `bring-up by pid ${s.ownerPid} died` : `owner pid ${s.ownerPid} is gone` });
  if (fs.existsSync(NETNS_DIR)) for (const f of fs.readdirSync(NETNS_DIR)) {
    const p = parseNsName(f);
    if (p && !alive.has(p.lab)) items.push({ kind: 'namespace', id: f, lab: p.lab, reason: 'belongs to no lab that is up' });
  }
  for (const q of vslabQemuProcesses()) {
    const lab = q.name.replace(/^vslab-/, '');
    if (!alive.has(lab)) items.push({ kind: 'qemu', id: String(q.pid), lab, reason: `VM ${q.name} belongs to no lab that is up` });
  }
  for (const v of findVmLeftovers()) {
    const lab = v.name.replace(/^vslab-/, '');
    if (!alive.has(lab)) items.push({ kind: 'vm-rundir', id: v.runDir, lab, reason: v.reason });
  }
  const prefix = process.env.VSLAB_VM_NAME_PREFIX;
  if (prefix && prefix !== 'vslab-') {
    for (const v of findOrphanLabVms(prefix, (lab) => alive.has(lab))) items.push({ kind: 'vm-rundir', id: v.runDir, lab: v.name.slice(prefix.length), reason: v.reason });
  }
  for (const c of vslabContainers()) if (!alive.has(c.lab)) items.push({ kind: 'container', id: c.id, lab: c.lab, reason: 'belongs to no lab that is up' });
  if (!alive.size) for (const r of hostGuardRoutes()) items.push({ kind: 'host-route', id: r, reason: 'guard route with no lab up' });
  if (fs.existsSync(WORK_ROOT)) for (const d of fs.readdirSync(WORK_ROOT)) if (!alive.has(d)) items.push({ kind: 'workdir', id: path.join(WORK_ROOT, d), lab: d, reason: 'work directory of no lab that is up' });
  return { items, alive };
}

export async function gc(dryRun: boolean): Promise<GcReport> {
  return withLock(() => {
    const { items } = scan();
    const removed: GcItem[] = [];
    const errors: string[] = [];
    if (!dryRun) {
      for (const it of items) {
        try {
          switch (it.kind) {
            case 'namespace': native().netnsDelete(path.join(NETNS_DIR, it.id)); break;
            case 'lab-state': removeLabState(it.id); break;
            case 'qemu': {
              try { process.kill(Number(it.id), 'SIGKILL'); } catch (e) { if ((e as NodeJS.ErrnoException).code !== 'ESRCH') throw e; }
              break;
            }
            case 'vm-rundir': {
              const prefix = process.env.VSLAB_VM_NAME_PREFIX;
              const v = [...findVmLeftovers(), ...(prefix && prefix !== 'vslab-' ? findOrphanLabVms(prefix, () => false) : [])].find((x: VmLeftover) => x.runDir === it.id);
              if (v) removeVmLeftover(v);
              break;
            }
            case 'container': execFileSync('docker', ['rm', '-f', '-v', it.id], { timeout: 30_000, stdio: 'ignore' }); break;
            case 'host-route': break; // handled below, once
            case 'workdir': fs.rmSync(it.id, { recursive: true, force: true }); break;
          }
          removed.push(it);
        } catch (e) {
          errors.push(`${it.kind} ${it.id}: ${(e as Error).message}`);
        }
      }
      if (items.some((i) => i.kind === 'host-route')) { try { removeHostGuard(); } catch (e) { errors.push(`host routes: ${(e as Error).message}`); } }
    }
    const after = scan();
    const nsLeft = fs.existsSync(NETNS_DIR) ? fs.readdirSync(NETNS_DIR).filter((f) => parseNsName(f)).length : 0;
    const remaining = {
      labsUp: [...after.alive],
      namespaces: nsLeft,
      hostRoutes: hostGuardRoutes(),
      qemu: vslabQemuProcesses().filter((q) => pidAlive(q.pid)).length,
      containers: vslabContainers().length,
    };
    return { dryRun, found: items, removed, errors, remaining, clean: after.items.length === 0 && errors.length === 0 };
  });
}
