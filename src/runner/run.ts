// Running a conformance suite: Playwright Test through its CLI with suites/playwright.config.ts, the run's
// options passed to the workers in VSLAB_TEST_* variables; afterwards results.json from Playwright's JSON
// report and each test's checks.json. The run directory then holds, per test, capture.pcapng (every link,
// merged) and expectations.json (what `vslab replay <dir>` re-evaluates), plus junit.xml and results.json.
import { spawn } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import type { BackendKind } from '../backend/types';
import { isDirectorName, type DirectorKind } from '../director/program';
import { directorDriver } from '../director/registry';
import { runEnvToProcessEnv } from './env';
import { buildResults, type PwReport, type RunResults, type Shard } from './results';
import { loadStatements, specFileForSuite, type Statement } from './spec';
import { bootRunVms, destroyRunVms, RUN_VMS_FILE, type RunVm } from './vms';

export const REPO_ROOT = path.resolve(__dirname, '..', '..');
export const SUITES_ROOT = path.join(REPO_ROOT, 'suites');
export const SUITE_CONFIG = path.join(SUITES_ROOT, 'playwright.config.ts');
const PLAYWRIGHT_CLI = path.join(REPO_ROOT, 'node_modules', '@playwright', 'test', 'cli.js');
export const RESULTS_FILE = 'results.json';
export const PW_REPORT_FILE = 'playwright-report.json';

export interface RunOptions {
  /** Suite directories or files (default: suites/forwarding). */
  paths: string[];
  director: DirectorKind;
  backend: BackendKind;
  kernel?: string;
  modules?: string;
  fault?: string;
  out: string;
  workers?: number;
  /** Only tests whose title matches (Playwright --grep). */
  grep?: string;
  /** Only this shard of the tests (Playwright --shard i/n); \`vslab merge\` joins the shards' run directories. */
  shard?: Shard;
  /** Where Playwright's own progress lines go (default: nowhere). */
  log?: (chunk: string) => void;
  /** Extra environment for the workers (tests set VSLAB_VM_NAME_PREFIX). */
  env?: Record<string, string>;
}

export class RunError extends Error {
  override name = 'RunError';
}

/** Resolves suite paths against the repository (or the current directory) and checks they exist. */
export function resolveSuitePaths(paths: string[]): string[] {
  const given = paths.length ? paths : [path.join(SUITES_ROOT, 'forwarding')];
  return given.map((p) => {
    const candidates = [path.resolve(p), path.resolve(REPO_ROOT, p)];
    const found = candidates.find((c) => fs.existsSync(c));
    if (!found) throw new RunError(`${p}: no such suite directory or file (suites live under ${path.relative(process.cwd(), SUITES_ROOT) || SUITES_ROOT})`);
    if (!found.startsWith(SUITES_ROOT + path.sep)) throw new RunError(`${p}: conformance suites live under ${SUITES_ROOT}`);
    return found;
  });
}

/** What a suite needs from the runner, and what it can be run against. */
interface SuiteTraits {
  /** Its tests build their labs in the VMs the runner boots (one per worker); otherwise they boot their own. */
  runVms: boolean;
  /** It applies `--fault` (the faulty directors sabotage forwarding). */
  faults: boolean;
  /** Directors it runs against ("any": every registered driver and external adapter; tests it cannot run are not applicable). */
  directors: DirectorKind[] | 'any';
  backends: BackendKind[];
  /** Why a director or backend outside the lists cannot run it. */
  limits: string;
  /**
   * Host programs its labs run in the VM beyond the default guest image (they are copied into the run's
   * VMs); "director": those the director driver under test declares (keepalived for --director keepalived).
   */
  guestTools?: string[] | 'director';
}

export const SUITE_TRAITS: Record<string, SuiteTraits> = {
  forwarding: { runVms: true, faults: true, directors: 'any', backends: ['vm', 'netns', 'docker'], guestTools: 'director', limits: 'the forwarding labs run on namespaces, in containers or in a VM' },
  ha: {
    runVms: true, faults: true, directors: ['ipvs'], backends: ['vm'], guestTools: ['keepalived'],
    limits: 'kernel IPVS and its sync daemon per namespace, and keepalived, run in the VM (the host kernel has no IPVS)',
  },
  proxy: {
    runVms: false, faults: true, directors: ['haproxy', 'nginx'], backends: ['netns', 'docker'],
    limits: 'the proxies (haproxy, nginx) run on this host\'s kernel: in network namespaces or in containers, not in the VM guest (docs/proxy.md)',
  },
  distribution: {
    runVms: true, faults: true, directors: 'any', backends: ['netns', 'vm', 'docker'], guestTools: 'director',
    limits: 'the distribution labs (NAT, proxy) run on namespaces, in containers or in a VM; each implementation runs the lab of its forwarding',
  },
  schedulers: {
    runVms: false, faults: false, directors: ['ipvs'], backends: ['vm'],
    limits: 'the scenario replayer drives kernel IPVS in a VM of its own (src/suites/schedulers/lab.ts); other directors are checked by suites/distribution (docs/distribution.md)',
  },
};

/** Refuses option combinations a selected suite cannot honour, before anything is booted. */
export function checkSuiteOptions(paths: string[], opts: Pick<RunOptions, 'director' | 'backend' | 'fault'>): void {
  for (const suite of suitesOf(paths)) {
    const t = SUITE_TRAITS[suite];
    if (!t) throw new RunError(`suites/${suite}: not a known suite (known: ${Object.keys(SUITE_TRAITS).join(', ')})`);
    if (t.directors === 'any' ? !isDirectorName(opts.director) : !t.directors.includes(opts.director)) throw new RunError(`suites/${suite} cannot run against --director ${opts.director}: ${t.limits}`);
    if (!t.backends.includes(opts.backend)) throw new RunError(`suites/${suite} cannot run on --backend ${opts.backend}: ${t.limits}`);
    if (opts.fault && !t.faults) {
      throw new RunError(`suites/${suite} takes no --fault: the faulty directors sabotage forwarding; the scheduler suites are checked against wrong models instead (tests/schedsuite/mutants.spec.ts)`);
    }
  }
}

/** The host programs to copy into the run's guests: what the suites ask for, and the director driver's own where a suite says "director". */
export function suiteGuestTools(paths: string[], director: DirectorKind): string[] {
  return [...new Set(suitesOf(paths).flatMap((sx) => {
    const g = SUITE_TRAITS[sx].guestTools ?? [];
    return g === 'director' ? (director === 'none' ? [] : directorDriver(director).guestTools ?? []) : g;
  }))];
}

/** The suite names of the paths (suites/<name>/...). */
export function suitesOf(paths: string[]): string[] {
  return [...new Set(paths.map((p) => path.relative(SUITES_ROOT, p).split(path.sep)[0]))];
}

export function statementsFor(paths: string[]): Statement[] {
  return suitesOf(paths).flatMap((s) => {
    const f = specFileForSuite(s);
    return fs.existsSync(f) ? loadStatements(f).statements : [];
  });
}

/** Prepares the run directory: a fresh one, or one a previous run made (emptied). Refuses anything else. */
export function prepareOutDir(out: string): void {
  if (fs.existsSync(out)) {
    if (!fs.statSync(out).isDirectory()) throw new RunError(`--out ${out} exists and is not a directory`);
    const entries = fs.readdirSync(out);
    if (entries.length && !entries.includes(RESULTS_FILE) && !entries.includes(PW_REPORT_FILE)) {
      throw new RunError(`--out ${out} is not empty and is not a previous run directory (no ${RESULTS_FILE}); choose another directory`);
    }
    for (const e of entries) fs.rmSync(path.join(out, e), { recursive: true, force: true });
  }
  fs.mkdirSync(out, { recursive: true });
}

function runPlaywright(args: string[], env: Record<string, string>, log?: (chunk: string) => void): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [PLAYWRIGHT_CLI, ...args], { cwd: REPO_ROOT, env: { ...process.env, ...env, FORCE_COLOR: '0' }, stdio: ['ignore', 'pipe', 'pipe'] });
    const forward = (d: Buffer) => log?.(d.toString());
    child.stdout.on('data', forward);
    child.stderr.on('data', forward);
    child.on('error', reject);
    child.on('close', (code) => resolve(code ?? 1));
  });
}

export async function runSuite(opts: RunOptions): Promise<RunResults> {
  const paths = resolveSuitePaths(opts.paths);
  checkSuiteOptions(paths, opts);
  const statements = statementsFor(paths);
  const out = path.resolve(opts.out);
  prepareOutDir(out);
  const started = new Date();
  const t0 = performance.now();
  const resultsOf = (report: PwReport) => buildResults(report, {
    out, suitesRoot: SUITES_ROOT, paths: paths.map((p) => path.relative(REPO_ROOT, p)), director: opts.director, backend: opts.backend,
    kernel: opts.kernel, fault: opts.fault, shard: opts.shard, statements, startedAt: started, durationMs: performance.now() - t0,
  });
  if (opts.shard && !(await listTests(paths, { grep: opts.grep, shard: opts.shard })).length) {
    // Playwright shards these suites by file (a file's tests share its lab): a shard can be left empty.
    // It is an empty part of the run, not a failed one; nothing is booted for it.
    opts.log?.(`shard ${opts.shard.current}/${opts.shard.total} has no tests (the suites are sharded by file)\n`);
    const results = resultsOf({ suites: [] });
    fs.writeFileSync(path.join(out, RESULTS_FILE), JSON.stringify(results, null, 2) + '\n');
    return results;
  }
  // One VM per worker slot, owned by this process: a worker Playwright replaces after a failed test
  // attaches to the same guest and takes its labs up again instead of booting and building anew.
  let vms: RunVm[] = [];
  let vmsFile: string | undefined;
  if (opts.backend === 'vm' && suitesOf(paths).some((sx) => SUITE_TRAITS[sx].runVms)) {
    opts.log?.(`booting ${opts.workers ?? 1} VM(s) for the run\n`);
    const guestTools = suiteGuestTools(paths, opts.director);
    vms = await bootRunVms({ count: opts.workers ?? 1, kernel: opts.kernel, modules: opts.modules, dir: path.join(out, '.vms'), guestTools });
    vmsFile = path.join(out, '.vms', RUN_VMS_FILE);
    fs.writeFileSync(vmsFile, JSON.stringify(vms, null, 2));
  }
  try {
    const env = { ...runEnvToProcessEnv({ backend: opts.backend, director: opts.director, kernel: opts.kernel, modules: opts.modules, fault: opts.fault, out, workers: opts.workers, vmsFile }), ...opts.env };
    const args = ['test', '-c', SUITE_CONFIG, ...selectionArgs(opts), ...paths];
    await runPlaywright(args, env, opts.log);
  } finally {
    await destroyRunVms(vms);
    fs.rmSync(path.join(out, '.vms'), { recursive: true, force: true });
  }
  const reportFile = path.join(out, PW_REPORT_FILE);
  if (!fs.existsSync(reportFile)) throw new RunError(`Playwright wrote no report (${reportFile}); its output above says why`);
  const results = resultsOf(JSON.parse(fs.readFileSync(reportFile, 'utf8')) as PwReport);
  fs.writeFileSync(path.join(out, RESULTS_FILE), JSON.stringify(results, null, 2) + '\n');
  return results;
}

/** Exit status of a run: every test passed, not applicable or a known failure, and something passed (or it is an empty shard). */
export function runPassed(r: RunResults): boolean {
  return r.summary.failed === 0 && r.errors.length === 0 && (r.summary.passed > 0 || (!!r.shard && r.summary.tests === 0));
}

/** Playwright arguments that choose the tests: --grep and --shard. */
function selectionArgs(sel: { grep?: string; shard?: Shard }): string[] {
  return [...(sel.grep ? ['-g', sel.grep] : []), ...(sel.shard ? ['--shard', `${sel.shard.current}/${sel.shard.total}`] : [])];
}

/** Parses "i/n" (1 <= i <= n), naming what is wrong. */
export function parseShard(text: string): Shard {
  const m = /^(\d+)\/(\d+)$/.exec(text.trim());
  if (!m) throw new RunError(`--shard ${text}: expected i/n, e.g. 1/2`);
  const shard = { current: Number(m[1]), total: Number(m[2]) };
  if (shard.total < 1 || shard.current < 1 || shard.current > shard.total) throw new RunError(`--shard ${text}: needs 1 <= i <= n`);
  return shard;
}

export interface ListedTest { id: string; title: string; file: string; statements: string[] }

/** The tests Playwright would run (with --grep / --shard, as a run would), with their declared statements; no lab is brought up. */
export async function listTests(pathsIn: string[], sel: { grep?: string; shard?: Shard } = {}): Promise<ListedTest[]> {
  const paths = resolveSuitePaths(pathsIn);
  const tmp = fs.mkdtempSync(path.join(require('os').tmpdir(), 'vslab-list-'));
  try {
    let stdout = '';
    await new Promise<void>((resolve, reject) => {
      const child = spawn(process.execPath, [PLAYWRIGHT_CLI, 'test', '-c', SUITE_CONFIG, '--list', '--reporter=json', ...selectionArgs(sel), ...paths], { cwd: REPO_ROOT, env: { ...process.env, VSLAB_TEST_OUT: tmp }, stdio: ['ignore', 'pipe', 'pipe'] });
      let stderr = '';
      child.stdout.on('data', (d) => (stdout += d));
      child.stderr.on('data', (d) => (stderr += d));
      child.on('error', reject);
      child.on('close', (code) => (code === 0 ? resolve() : reject(new RunError(`playwright --list failed (${code}): ${stderr.trim() || stdout.slice(0, 500)}`))));
    });
    const report = JSON.parse(stdout.slice(stdout.indexOf('{'))) as PwReport;
    const { testIdOf } = await import('./suite-api');
    const out: ListedTest[] = [];
    const walk = (s: NonNullable<PwReport['suites']>[number]): void => {
      for (const spec of s.specs ?? []) {
        for (const t of spec.tests) {
          const statements = [...new Set((t.annotations ?? []).filter((a) => a.type === 'statement' && a.description).map((a) => a.description!))];
          out.push({ id: testIdOf(path.join(SUITES_ROOT, spec.file), spec.title, SUITES_ROOT), title: spec.title, file: spec.file, statements });
        }
      }
      for (const c of s.suites ?? []) walk(c);
    };
    for (const s of report.suites ?? []) walk(s);
    return out;
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}
