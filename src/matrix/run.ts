// `vslab matrix`: which implementation runs which suite on which backend, running them one after another
// (one run directory each under <out>/runs/), then the matrix from their results.json (build.ts).
// Every registered driver and every adapter shipped in adapters/ is a candidate; the driver's
// unavailable(backend) decides where it can run (netns when it can, so nftables runs on the host
// kernel; the vm backend otherwise), and the suites' traits (src/runner/run.ts SUITE_TRAITS) which
// suites apply to it. A combination that cannot run is listed in the matrix with the reason.
import * as fs from 'fs';
import * as path from 'path';
import type { BackendKind } from '../backend/types';
import { EXTERNAL_PREFIX } from '../director/external';
import { DIRECTOR_NAMES, directorDriver, isDirectorName } from '../director/registry';
import { checkSuiteOptions, REPO_ROOT, RunError, runPassed, runSuite, SUITE_TRAITS, SUITES_ROOT, type RunOptions } from '../runner/run';
import { buildMatrix, loadRun, writeMatrix, type ImplementationMatrix, type LoadedRun } from './build';

export interface MatrixEntry {
  director: string;
  suite: string;
  backend?: BackendKind;
  /** Why this combination is not run (undefined: it runs). */
  skip?: string;
}

/** The adapters shipped with vslab (executables in adapters/), as external:adapters/NAME. */
export function shippedAdapters(): string[] {
  const dir = path.join(REPO_ROOT, 'adapters');
  if (!fs.existsSync(dir)) return [];
  return fs.readdirSync(dir).filter((f) => {
    const st = fs.statSync(path.join(dir, f));
    return st.isFile() && (st.mode & 0o111) !== 0;
  }).sort().map((f) => `${EXTERNAL_PREFIX}adapters/${f}`);
}

/**
 * A run the matrix counts as passing: runPassed, or a run whose every test is not applicable (a proxy has no
 * packet-rewriting forwarding: its forwarding cells are n/a with the reason, which is the answer, not a failure).
 */
export function matrixRunOk(r: import('../runner/results').RunResults): boolean {
  if (runPassed(r)) return true;
  const s = r.summary;
  return s.failed === 0 && r.errors.length === 0 && s.tests > 0 && s.notApplicable === s.tests;
}

/** Every implementation the matrix knows: registered drivers, then the shipped adapters. */
export function allImplementations(): string[] {
  return [...DIRECTOR_NAMES, ...shippedAdapters()];
}

/** The suites of the matrix: every known suite that has a directory under suites/. */
export function allSuites(): string[] {
  return Object.keys(SUITE_TRAITS).filter((s) => fs.existsSync(path.join(SUITES_ROOT, s)));
}

/**
 * The backend an implementation runs on: `forced` (NAME@BACKEND); a registered driver on netns when its
 * unavailable() allows (no VM needed), else on the vm backend; an external adapter on the vm backend
 * first: it is code vslab knows nothing of, and the guest's distribution kernel has what this host's may
 * lack (IPVS, ipip/gre, netem), so an adapter over any of them runs there. NAME@netns runs it on the host kernel.
 */
function backendFor(director: string, suite: string, forced?: BackendKind): { backend?: BackendKind; skip?: string } {
  const t = SUITE_TRAITS[suite];
  if (t.directors !== 'any' && !t.directors.includes(director)) return { skip: `suites/${suite} does not run against ${director}: ${t.limits}` };
  const def = directorDriver(director);
  const reasons: string[] = [];
  const order: BackendKind[] = forced ? [forced] : director.startsWith(EXTERNAL_PREFIX) ? ['vm', 'netns'] : ['netns', 'vm'];
  for (const b of order) {
    if (!t.backends.includes(b)) continue;
    const why = def.unavailable(b);
    if (!why) return { backend: b };
    reasons.push(`${b}: ${why}`);
  }
  return { skip: reasons.length ? `unavailable on this host (${reasons.join('; ')})` : `suites/${suite} runs on ${t.backends.join('/')}: ${t.limits}` };
}

/** "NAME" or "NAME@BACKEND" of --director. */
export function splitImplementation(text: string): { director: string; backend?: BackendKind } {
  const m = /^(.*)@(vm|netns)$/.exec(text);
  return m ? { director: m[1], backend: m[2] as BackendKind } : { director: text };
}

/** Which implementation runs which suite where (or why not). Unknown names are an error naming them. */
export function planMatrix(implementations: string[], suites: string[]): MatrixEntry[] {
  const parsed = implementations.map(splitImplementation);
  const directors = parsed.map((p) => p.director);
  const badD = directors.filter((d) => !isDirectorName(d));
  if (badD.length) throw new RunError(`--director: unknown ${badD.join(', ')} (known: ${allImplementations().join(', ')})`);
  const badS = suites.filter((s) => !SUITE_TRAITS[s] || !fs.existsSync(path.join(SUITES_ROOT, s)));
  if (badS.length) throw new RunError(`--suites: unknown ${badS.join(', ')} (known: ${allSuites().join(', ')})`);
  const out: MatrixEntry[] = [];
  for (const { director, backend: forced } of parsed) {
    for (const suite of suites) {
      const { backend, skip } = backendFor(director, suite, forced);
      if (skip) {
        out.push({ director, suite, skip });
        continue;
      }
      try {
        checkSuiteOptions([path.join(SUITES_ROOT, suite)], { director, backend: backend! });
        out.push({ director, suite, backend });
      } catch (e) {
        out.push({ director, suite, backend, skip: (e as Error).message });
      }
    }
  }
  return out;
}

/** A run directory name for an implementation and suite ("external:adapters/ipvsadm" -> "external-adapters-ipvsadm"). */
export function runDirName(director: string, suite: string): string {
  return `${director.replace(/[^A-Za-z0-9_.-]+/g, '-')}.${suite}`;
}

export interface MatrixRunOptions {
  directors: string[];
  suites: string[];
  out: string;
  workers?: number;
  kernel?: string;
  log?: (line: string) => void;
  env?: Record<string, string>;
}

/** Runs every runnable entry, then writes matrix.json / matrix.md; `passed` is false when a run failed or errored. */
export async function runMatrix(opts: MatrixRunOptions): Promise<{ matrix: ImplementationMatrix; passed: boolean; runs: LoadedRun[] }> {
  const plan = planMatrix(opts.directors, opts.suites);
  const out = path.resolve(opts.out);
  fs.mkdirSync(path.join(out, 'runs'), { recursive: true });
  const runs: LoadedRun[] = [];
  const notRun: ImplementationMatrix['notRun'] = plan.filter((e) => e.skip).map((e) => ({ director: e.director, suite: e.suite, ...(e.backend ? { backend: e.backend } : {}), reason: e.skip! }));
  let passed = true;
  for (const e of plan.filter((x) => !x.skip)) {
    const dir = path.join(out, 'runs', runDirName(e.director, e.suite));
    opts.log?.(`${e.director} × suites/${e.suite} on ${e.backend} -> ${path.relative(process.cwd(), dir) || dir}`);
    const t0 = performance.now();
    try {
      const ro: RunOptions = { paths: [path.join(SUITES_ROOT, e.suite)], director: e.director, backend: e.backend!, out: dir, workers: opts.workers, kernel: e.backend === 'vm' ? opts.kernel : undefined, env: opts.env };
      const r = await runSuite(ro);
      if (!matrixRunOk(r)) passed = false;
      opts.log?.(`  ${r.summary.passed} passed, ${r.summary.failed} failed, ${r.summary.notApplicable} not applicable, ${r.summary.knownFailures} known failures (${((performance.now() - t0) / 1000).toFixed(0)} s)`);
      runs.push(loadRun(dir));
    } catch (err) {
      passed = false;
      notRun.push({ director: e.director, suite: e.suite, backend: e.backend, reason: `the run did not finish: ${(err as Error).message.split('\n')[0]}` });
      opts.log?.(`  did not finish: ${(err as Error).message.split('\n')[0]}`);
    }
  }
  const matrix = buildMatrix(runs, notRun);
  writeMatrix(out, matrix);
  return { matrix, passed, runs };
}
