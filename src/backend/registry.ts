// Which labs exist, who owns them, and the host-side guard that keeps the lab supernets
// unreachable from the host namespace while any lab is up. State lives in /run/vslab (tmpfs:
// gone after a reboot, as are the namespaces it describes).
import * as fs from 'fs';
import * as path from 'path';
import { native } from '../native';
import { dumpRoutes, routeMsg, RtnlBatch, RTM, RTN_UNREACHABLE, RTPROT_VSLAB } from './rtnl';
import type { BackendKind } from './types';
import type { LabModel } from '../topology/model';
import { pidAlive } from '../util/process';
export { pidAlive };

export const RUN_DIR = process.env.VSLAB_RUN_DIR ?? '/run/vslab';
const LABS_DIR = path.join(RUN_DIR, 'labs');
const LOCK_DIR = path.join(RUN_DIR, 'lock');
/** Where nodes leave files for the host (captures, logs). */
export const WORK_ROOT = process.env.VSLAB_WORK_DIR ?? '/tmp/vslab';
export const GUARD_PREFIXES = ['198.18.0.0/15', '2001:db8::/32'];

export interface LabState {
  name: string;
  backend: BackendKind;
  topology: string;
  nodes: string[];
  namespaces: string[];
  createdAt: string;
  /** The process that is building the lab, or that owns it for its lifetime (ephemeral labs). */
  ownerPid: number;
  status: 'creating' | 'up' | 'deleting';
  /** Ephemeral labs belong to their owner process (tests, `vslab run`); persistent ones (`vslab up`) to nobody. */
  ephemeral: boolean;
  /** The derived model the lab was built from (so `vslab exec` etc. need not re-read the file). */
  model?: LabModel;
  /** Backend-specific resources, e.g. a VM's qemu pid and files; `holderPids`: processes the lab dies with. */
  extra?: Record<string, unknown>;
}


function stateFile(name: string): string {
  return path.join(LABS_DIR, `${name}.json`);
}

export function readLabStates(): LabState[] {
  if (!fs.existsSync(LABS_DIR)) return [];
  const out: LabState[] = [];
  for (const f of fs.readdirSync(LABS_DIR)) {
    if (!f.endsWith('.json')) continue;
    try {
      out.push(JSON.parse(fs.readFileSync(path.join(LABS_DIR, f), 'utf8')) as LabState);
    } catch {
      // A state file cut short by a crash: gc treats its namespaces as orphans.
    }
  }
  return out;
}

export function readLabState(name: string): LabState | undefined {
  try {
    return JSON.parse(fs.readFileSync(stateFile(name), 'utf8')) as LabState;
  } catch {
    return undefined;
  }
}

export function writeLabState(s: LabState): void {
  fs.mkdirSync(LABS_DIR, { recursive: true });
  const tmp = stateFile(s.name) + `.${process.pid}.tmp`;
  fs.writeFileSync(tmp, JSON.stringify(s, null, 2));
  fs.renameSync(tmp, stateFile(s.name));
}

export function removeLabState(name: string): void {
  fs.rmSync(stateFile(name), { force: true });
}

/** Whether a lab counts as alive: persistent and up, or its owner still runs. */
export function labAlive(s: LabState): boolean {
  // A lab lives only as long as the processes holding it do (a VM's qemu, a container's init), whoever owns it.
  const holders = Array.isArray(s.extra?.holderPids) ? (s.extra.holderPids as unknown[]).map(Number) : s.extra?.qemuPid ? [Number(s.extra.qemuPid)] : [];
  if (s.status === 'up' && holders.some((p) => p > 0 && !pidAlive(p))) return false;
  if (s.status === 'up' && !s.ephemeral) return true;
  return pidAlive(s.ownerPid);
}

/** A simple cross-process lock (mkdir is atomic); a lock left by a dead process is taken over. */
export async function withLock<T>(fn: () => Promise<T> | T): Promise<T> {
  fs.mkdirSync(RUN_DIR, { recursive: true });
  const deadline = Date.now() + 30_000;
  for (;;) {
    try {
      fs.mkdirSync(LOCK_DIR);
      fs.writeFileSync(path.join(LOCK_DIR, 'pid'), String(process.pid));
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      let holder = 0;
      try { holder = Number(fs.readFileSync(path.join(LOCK_DIR, 'pid'), 'utf8')); } catch { /* being written */ }
      if (holder && !pidAlive(holder)) { fs.rmSync(LOCK_DIR, { recursive: true, force: true }); continue; }
      if (Date.now() > deadline) throw new Error(`timed out waiting for the vslab lock ${LOCK_DIR} (held by pid ${holder || '?'})`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }
  try {
    return await fn();
  } finally {
    fs.rmSync(LOCK_DIR, { recursive: true, force: true });
  }
}

/** Picks a lab name not in use: base, base-2, base-3... */
export function uniqueLabName(base: string, existing: Set<string>): string {
  if (!existing.has(base)) return base;
  for (let i = 2; ; i++) if (!existing.has(`${base}-${i}`)) return `${base}-${i}`;
}

// ---- host guard -------------------------------------------------------------------------------

/** The guard routes vslab holds in the host namespace now. */
export function hostGuardRoutes(): string[] {
  const fd = native().netlinkOpen(null, 0);
  try {
    return dumpRoutes(fd).filter((r) => r.protocol === RTPROT_VSLAB).map((r) => r.dst);
  } finally {
    native().netlinkClose(fd);
  }
}

/** Makes the lab supernets unreachable from the host namespace (idempotent). */
export function installHostGuard(): void {
  const fd = native().netlinkOpen(null, 0);
  try {
    const b = new RtnlBatch();
    for (const p of GUARD_PREFIXES) b.add(routeMsg(RTM.NEWROUTE, p, { routeType: RTN_UNREACHABLE, protocol: RTPROT_VSLAB }));
    b.run(fd, 'the host namespace', (errno) => errno === 17 /* EEXIST: another lab holds it */);
  } finally {
    native().netlinkClose(fd);
  }
}

/** Removes the guard routes (only vslab's: matched by protocol number). */
export function removeHostGuard(): void {
  const present = new Set(hostGuardRoutes());
  if (!present.size) return;
  const fd = native().netlinkOpen(null, 0);
  try {
    const b = new RtnlBatch();
    for (const p of present) b.add(routeMsg(RTM.DELROUTE, p, { routeType: RTN_UNREACHABLE, protocol: RTPROT_VSLAB }));
    b.run(fd, 'the host namespace', (errno) => errno === 3 || errno === 2);
  } finally {
    native().netlinkClose(fd);
  }
}

/** Prefixes the host itself routes (other than vslab's guard and the default route): lab subnets must not overlap them. */
export function hostRoutedPrefixes(): string[] {
  const fd = native().netlinkOpen(null, 0);
  try {
    return dumpRoutes(fd)
      .filter((r) => r.protocol !== RTPROT_VSLAB && !r.dst.endsWith('/0') && r.table === 254 && !r.dst.startsWith('fe80:'))
      .map((r) => r.dst);
  } finally {
    native().netlinkClose(fd);
  }
}

/** Why a lab name cannot be used: a lab that is up, or one left over from a crash. */
export function labNameTakenMessage(name: string): string {
  const s = readLabState(name);
  if (s && !labAlive(s)) return `a lab named ${name} was left behind by a crash or a killed VM; run \`vslab gc\` (or pick another --name)`;
  return `a lab named ${name} is already up (see \`vslab ls\`); pick another --name or \`vslab down ${name}\``;
}
