// How `vslab test` tells the suite workers (separate Playwright processes) what to run against: plain
// environment variables, so `npx playwright test -c suites/playwright.config.ts` works on its own too.
import * as path from 'path';
import type { BackendKind } from '../backend/types';
import { BACKEND_KINDS, isBackendKind } from '../backend';
import { directorDriver, isDirectorName, UnknownDirectorError, type DirectorKind } from '../director/registry';
import { hostHasIpvs } from '../director/ipvs';

export { hostHasIpvs };

export interface RunEnv {
  backend: BackendKind;
  director: DirectorKind;
  kernel?: string;
  modules?: string;
  fault?: string;
  /** Run directory: per-test folders with expectations.json, capture.pcapng and checks.json. */
  out: string;
  /** VMs booted by the runner, one per worker slot. */
  vmsFile?: string;
}

export const ENV = {
  backend: 'VSLAB_TEST_BACKEND',
  director: 'VSLAB_TEST_DIRECTOR',
  kernel: 'VSLAB_TEST_KERNEL',
  modules: 'VSLAB_TEST_MODULES',
  fault: 'VSLAB_TEST_FAULT',
  out: 'VSLAB_TEST_OUT',
  workers: 'VSLAB_TEST_WORKERS',
  /** JSON file listing the VMs the runner booted for the worker slots (src/runner/vms.ts). */
  vms: 'VSLAB_TEST_VMS',
} as const;

/** netns where the driver runs on this host's kernel, else the VM (kernel IPVS on a host without it). */
export function defaultBackend(director: string): BackendKind {
  return isDirectorName(director) && directorDriver(director).unavailable('netns') ? 'vm' : 'netns';
}

export const DEFAULT_OUT = path.resolve(__dirname, '..', '..', 'suites', 'test-results', 'run');

export function readRunEnv(env: NodeJS.ProcessEnv = process.env): RunEnv {
  const director = (env[ENV.director] || 'ipvs') as DirectorKind;
  if (!isDirectorName(director)) throw new Error(`${ENV.director}=${director}: ${new UnknownDirectorError(director).message}`);
  const backend = (env[ENV.backend] || defaultBackend(director)) as BackendKind;
  if (!isBackendKind(backend)) throw new Error(`${ENV.backend}=${backend}: not a backend (${BACKEND_KINDS.join(', ')})`);
  const why = directorDriver(director).unavailable(backend);
  if (why) throw new Error(`--director ${director}: ${why}`);
  return {
    backend, director,
    kernel: env[ENV.kernel] || undefined,
    modules: env[ENV.modules] || undefined,
    fault: env[ENV.fault] || undefined,
    out: path.resolve(env[ENV.out] || DEFAULT_OUT),
    vmsFile: env[ENV.vms] || undefined,
  };
}

export function runEnvToProcessEnv(r: Partial<RunEnv> & { workers?: number }): Record<string, string> {
  const out0: Record<string, string> = {};
  if (r.vmsFile) out0[ENV.vms] = r.vmsFile;
  const out: Record<string, string> = { ...out0 };
  if (r.backend) out[ENV.backend] = r.backend;
  if (r.director) out[ENV.director] = r.director;
  if (r.kernel) out[ENV.kernel] = r.kernel;
  if (r.modules) out[ENV.modules] = r.modules;
  if (r.fault) out[ENV.fault] = r.fault;
  if (r.out) out[ENV.out] = r.out;
  if (r.workers) out[ENV.workers] = String(r.workers);
  return out;
}
