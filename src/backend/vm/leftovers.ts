// What VMs left behind, for `vslab gc`: run directories under /run/vslab/vm whose qemu is gone, and
// qemu processes of ephemeral guests whose owner process is gone (the parent-death signal normally
// kills those; this catches anything it missed). Persistent guests are left to the lab registry:
// gc removes them when their lab is not up (by the qemu name vslab-<lab>).
import * as fs from 'fs';
import * as path from 'path';
import { isQemuNamed, VM_RUN_ROOT, type VmRecord } from './guest';
import { pidAlive } from '../../util/process';

export interface VmLeftover {
  runDir: string;
  name: string;
  /** A qemu still running for it (to be killed), if any. */
  qemuPid?: number;
  reason: string;
}


/** Leftovers among the run directories whose name starts with `prefix` (default "vslab-": real labs). */
export function findVmLeftovers(prefix = 'vslab-'): VmLeftover[] {
  if (!fs.existsSync(VM_RUN_ROOT)) return [];
  const out: VmLeftover[] = [];
  for (const name of fs.readdirSync(VM_RUN_ROOT)) {
    if (!name.startsWith(prefix)) continue;
    const runDir = path.join(VM_RUN_ROOT, name);
    let rec: VmRecord | undefined;
    try {
      rec = JSON.parse(fs.readFileSync(path.join(runDir, 'vm.json'), 'utf8')) as VmRecord;
    } catch {
      rec = undefined;
    }
    let qemuPid: number | undefined;
    if (!rec) {
      const pid = Number(fs.existsSync(path.join(runDir, 'qemu.pid')) ? fs.readFileSync(path.join(runDir, 'qemu.pid'), 'utf8').trim() : 0);
      if (pid && pidAlive(pid) && isQemuNamed(pid, name)) qemuPid = pid;
      // A boot in progress has no vm.json yet: its owner (owner.pid) is alive. One whose owner is gone was killed
      // while booting (seen: a `vslab test` killed during its VM's boot left the directory); without an owner file
      // (older vslab), leave directories younger than the longest boot alone.
      const owner = Number(fs.existsSync(path.join(runDir, 'owner.pid')) ? fs.readFileSync(path.join(runDir, 'owner.pid'), 'utf8').trim() : 0);
      const age = Date.now() - fs.statSync(runDir).mtimeMs;
      if (owner > 0 && !pidAlive(owner)) out.push({ runDir, name, qemuPid, reason: `its boot's owner process ${owner} is gone` });
      else if (owner === 0 && age > 15 * 60_000) out.push({ runDir, name, qemuPid, reason: 'a boot that never finished' });
      continue;
    }
    const running = pidAlive(rec.qemuPid) && isQemuNamed(rec.qemuPid, rec.name);
    if (!running) out.push({ runDir, name, reason: `qemu (pid ${rec.qemuPid}) is gone` });
    else if (!rec.persistent && !pidAlive(rec.ownerPid)) out.push({ runDir, name, qemuPid: rec.qemuPid, reason: `its owner process ${rec.ownerPid} is gone` });
  }
  return out;
}

/** Kill the leftover's qemu (if any) and remove its run directory. */
export function removeVmLeftover(l: VmLeftover): void {
  if (l.qemuPid && pidAlive(l.qemuPid) && isQemuNamed(l.qemuPid, l.name)) process.kill(l.qemuPid, 'SIGKILL');
  fs.rmSync(l.runDir, { recursive: true, force: true });
}

/**
 * Persistent lab guests named with another prefix ($VSLAB_VM_NAME_PREFIX, as test runs and soaks use)
 * whose lab is not up: a `vslab up` or `vslab down` killed half-way leaves them. Ephemeral guests
 * (test runs') are never taken here: their owner, or findVmLeftovers, decides.
 */
export function findOrphanLabVms(prefix: string, labUp: (lab: string) => boolean): VmLeftover[] {
  if (!fs.existsSync(VM_RUN_ROOT)) return [];
  const out: VmLeftover[] = [];
  for (const name of fs.readdirSync(VM_RUN_ROOT)) {
    if (!name.startsWith(prefix) || labUp(name.slice(prefix.length))) continue;
    const runDir = path.join(VM_RUN_ROOT, name);
    let rec: VmRecord;
    try {
      rec = JSON.parse(fs.readFileSync(path.join(runDir, 'vm.json'), 'utf8')) as VmRecord;
    } catch {
      // Killed while booting (no vm.json yet): only a qemu whose starter is gone (re-parented) is orphaned.
      const pid = Number(fs.existsSync(path.join(runDir, 'qemu.pid')) ? fs.readFileSync(path.join(runDir, 'qemu.pid'), 'utf8').trim() : 0);
      if (pid && pidAlive(pid) && isQemuNamed(pid, name) && !pidAlive(parentOf(pid))) out.push({ runDir, name, qemuPid: pid, reason: 'its boot was killed' });
      continue;
    }
    if (!rec.persistent) continue;
    const running = pidAlive(rec.qemuPid) && isQemuNamed(rec.qemuPid, rec.name);
    out.push({ runDir: path.join(VM_RUN_ROOT, name), name, qemuPid: running ? rec.qemuPid : undefined, reason: `lab ${name.slice(prefix.length)} of this VM is not up` });
  }
  return out;
}

/** The parent of a process, or 0 once it was re-parented to init (its starter is gone). */
function parentOf(pid: number): number {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    return ppid === 1 ? 0 : ppid;
  } catch {
    return 0;
  }
}
