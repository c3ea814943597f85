// The suite's mutation score: run it against the reference director (which must pass), then against each
// faulty director (src/director/faults.ts), and tabulate which statements each fault breaks. A fault is
// caught when a test that passed on the reference fails; a statement is killed when some fault makes a
// check of it fail. Each fault runs only the suite files of the methods it sabotages.
import * as fs from 'fs';
import * as path from 'path';
import { FAULTS, faultByName, type FaultDefinition } from '../director/faults';
import type { RunResults } from './results';
import { RESULTS_FILE, resolveSuitePaths, runPassed, runSuite, statementsFor, type RunOptions } from './run';

export interface MutationOptions extends Omit<RunOptions, 'fault'> {
  /** Faults to run (default: all). */
  faults?: string[];
  /** A finished reference run (its results.json) to use instead of running one. */
  baseline?: string;
  progress?: (msg: string) => void;
}

export interface FaultOutcome {
  fault: string;
  summary: string;
  targets: string[];
  files: string[];
  caught: boolean;
  /** Tests that passed on the reference and fail with the fault. */
  failedTests: string[];
  /** Statements the fault made fail in tests that passed on the reference. */
  broken: string[];
  durationMs: number;
  error?: string;
}

export interface MutationResults {
  version: 1;
  baseline: { out: string; passed: number; failed: number; notApplicable: number; knownFailures: number; durationMs: number };
  faults: FaultOutcome[];
  statements: Array<{ id: string; killedBy: string[] }>;
  score: { faults: number; caught: number; statements: number; killed: number };
}

export const MUTATION_FILE = 'mutation.json';

/** Spec files under the suite paths that exercise a fault's methods (files are named after methods). */
export function filesForFault(f: FaultDefinition, paths: string[]): string[] {
  const files: string[] = [];
  const visit = (p: string) => {
    if (fs.statSync(p).isDirectory()) for (const e of fs.readdirSync(p).sort()) visit(path.join(p, e));
    else if (p.endsWith('.spec.ts') && [...f.methods, ...(f.suiteFiles ?? [])].includes(path.basename(p, '.spec.ts') as never)) files.push(p);
  };
  for (const p of paths) visit(p);
  return files;
}

export async function runMutation(opts: MutationOptions): Promise<MutationResults> {
  const progress = opts.progress ?? (() => undefined);
  const paths = resolveSuitePaths(opts.paths);
  // Without a list: the faults that concern a file of these suites (the forwarding and ha suites have their own).
  const faults = (opts.faults?.length ? opts.faults.map(faultByName) : FAULTS.filter((f) => filesForFault(f, paths).length));
  const out = path.resolve(opts.out);
  fs.mkdirSync(out, { recursive: true });
  let baseline: RunResults;
  let baselineDir: string;
  if (opts.baseline) {
    baselineDir = path.resolve(opts.baseline);
    const f = path.join(baselineDir, RESULTS_FILE);
    if (!fs.existsSync(f)) throw new Error(`--baseline ${opts.baseline}: no ${RESULTS_FILE} there (give the run directory of a reference run)`);
    baseline = JSON.parse(fs.readFileSync(f, 'utf8')) as RunResults;
    if (baseline.fault) throw new Error(`--baseline ${opts.baseline} is a run against fault ${baseline.fault}, not the reference`);
  } else {
    progress('reference run (no fault)');
    baselineDir = path.join(out, 'baseline');
    baseline = await runSuite({ ...opts, paths, out: baselineDir });
  }
  if (!runPassed(baseline)) {
    throw new Error(`the reference run failed (${baseline.summary.failed} failed test(s), see ${baselineDir}): a mutation score needs a passing reference`);
  }
  const passedBefore = new Set(baseline.tests.filter((t) => t.status === 'passed').map((t) => t.id));
  const outcomes: FaultOutcome[] = [];
  for (const f of faults) {
    const files = filesForFault(f, paths);
    progress(`fault ${f.name} (${files.map((x) => path.basename(x)).join(', ') || 'no suite file'})`);
    const t0 = performance.now();
    const o: FaultOutcome = { fault: f.name, summary: f.summary, targets: f.targets, files: files.map((x) => path.relative(process.cwd(), x)), caught: false, failedTests: [], broken: [], durationMs: 0 };
    if (files.length) {
      try {
        const r: RunResults = await runSuite({ ...opts, paths: files, fault: f.name, out: path.join(out, 'faults', f.name) });
        o.failedTests = r.tests.filter((t) => t.status === 'failed' && passedBefore.has(t.id)).map((t) => t.id);
        o.caught = o.failedTests.length > 0;
        // A statement counts as broken by the fault when a test that passed on the reference failed it.
        o.broken = r.statements.filter((s) => s.status === 'failed' && s.failedIn.some((t) => passedBefore.has(t))).map((s) => s.id);
        if (r.errors.length) o.error = r.errors.join('; ');
      } catch (e) {
        o.error = (e as Error).message;
      }
    }
    o.durationMs = Math.round(performance.now() - t0);
    outcomes.push(o);
  }
  const statementIds = statementsFor(paths).map((s) => s.id);
  const statements = statementIds.map((id) => ({ id, killedBy: outcomes.filter((o) => o.broken.includes(id)).map((o) => o.fault) }));
  const results: MutationResults = {
    version: 1,
    baseline: { out: baselineDir, passed: baseline.summary.passed, failed: baseline.summary.failed, notApplicable: baseline.summary.notApplicable, knownFailures: baseline.summary.knownFailures, durationMs: baseline.durationMs },
    faults: outcomes,
    statements,
    score: { faults: outcomes.length, caught: outcomes.filter((o) => o.caught).length, statements: statements.length, killed: statements.filter((s) => s.killedBy.length).length },
  };
  fs.writeFileSync(path.join(out, MUTATION_FILE), JSON.stringify(results, null, 2) + '\n');
  return results;
}

/** The matrix: one row per statement, one column per fault (numbered; the legend follows). */
export function renderMutation(m: MutationResults): string {
  const cols = m.faults.map((f, i) => ({ f, key: String(i + 1).padStart(2) }));
  const lines: string[] = [];
  lines.push(`${'statement'.padEnd(14)} ${cols.map((c) => c.key).join(' ')}   killed by`);
  for (const s of m.statements) {
    const cells = cols.map((c) => (c.f.broken.includes(s.id) ? ' X' : ' .')).join(' ');
    lines.push(`${s.id.padEnd(14)} ${cells}   ${s.killedBy.length ? s.killedBy.length : 'NONE'}`);
  }
  lines.push(`${'caught'.padEnd(14)} ${cols.map((c) => (c.f.caught ? ' Y' : ' N')).join(' ')}`);
  lines.push('');
  for (const c of cols) lines.push(`${c.key}  ${c.f.fault.padEnd(28)} ${c.f.caught ? 'caught' : 'NOT CAUGHT'} by ${c.f.failedTests.length} test(s), breaks ${c.f.broken.join(' ') || 'nothing'} (${(c.f.durationMs / 1000).toFixed(0)} s)${c.f.error ? `; error: ${c.f.error}` : ''}`);
  lines.push('');
  lines.push(`mutation score: ${m.score.caught} of ${m.score.faults} faults caught; ${m.score.killed} of ${m.score.statements} statements failed by at least one fault`);
  return lines.join('\n');
}

export function mutationPassed(m: MutationResults): boolean {
  return m.score.caught === m.score.faults && m.score.killed === m.score.statements;
}
