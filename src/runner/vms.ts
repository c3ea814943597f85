// VMs a run keeps for its workers. Playwright discards a worker after any failed test; a worker-owned VM
// would be booted and every lab rebuilt again after each failure (≈10 s each, which makes a run against a
// faulty director crawl). So `vslab test` boots one guest per worker slot itself (ephemeral: it dies with
// the runner), detaches, and each worker attaches to the guest of its slot; labs prepared in it are noted
// in a state directory and simply taken up again by a restarted worker.
import * as fs from 'fs';
import * as path from 'path';

export interface RunVm {
  /** The guest's run directory (VmGuest.attach). */
  runDir: string;
  /** Where workers note the labs prepared in this guest. */
  stateDir: string;
}

export const RUN_VMS_FILE = '.vms.json';

export interface BootRunVmsOptions {
  count: number;
  kernel?: string;
  modules?: string;
  memoryMiB?: number;
  /** Directory for the state dirs (inside the run directory). */
  dir: string;
  /** Host programs to copy into the guests beyond the default image (e.g. keepalived for the ha suite). */
  guestTools?: string[];
  progress?: (msg: string) => void;
}

export async function bootRunVms(opts: BootRunVmsOptions): Promise<RunVm[]> {
  const { VmGuest } = await import('../backend/vm/guest');
  const { parseKernelOption } = await import('../backend/vm/kernel');
  const { defaultShares } = await import('../backend/vm/shares');
  const kernel = parseKernelOption(opts.kernel, opts.modules);
  const prefix = process.env.VSLAB_VM_NAME_PREFIX || 'vslab-';
  const booted = await Promise.allSettled(Array.from({ length: opts.count }, async (_, k) => {
    opts.progress?.(`booting VM ${k + 1} of ${opts.count}`);
    const g = await VmGuest.boot({ namePrefix: prefix, name: `test${process.pid}-${k}`, persistent: false, kernel, shares: defaultShares(), memoryMiB: opts.memoryMiB ?? 1536, ...(opts.guestTools?.length ? { initramfs: { extraTools: opts.guestTools } } : {}) });
    g.detach();
    const stateDir = path.join(opts.dir, `vm${k}`);
    fs.mkdirSync(stateDir, { recursive: true });
    return { runDir: g.runDir, stateDir };
  }));
  const ok = booted.filter((b): b is PromiseFulfilledResult<RunVm> => b.status === 'fulfilled').map((b) => b.value);
  const bad = booted.find((b): b is PromiseRejectedResult => b.status === 'rejected');
  if (bad) {
    await destroyRunVms(ok);
    throw bad.reason;
  }
  return ok;
}

export async function destroyRunVms(vms: RunVm[]): Promise<void> {
  const { destroyVmByRunDir } = await import('../backend/vm/guest');
  for (const v of vms) await destroyVmByRunDir(v.runDir).catch(() => undefined);
}

export function readRunVms(file: string): RunVm[] {
  return JSON.parse(fs.readFileSync(file, 'utf8')) as RunVm[];
}
