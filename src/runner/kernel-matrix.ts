// `vslab test … --kernel bookworm,backports[,PATH]`: the same suites on several guest kernels in one
// command, one run directory per kernel (<out>/<label>/), and a table of the tests whose verdict
// differs between kernels first -- the regression finder. Each kernel is an ordinary runSuite();
// this file only splits the option, runs them one after another and compares the verdicts.
import * as fs from 'fs';
import * as path from 'path';
import type { RunResults, TestStatus } from './results';
import { RunError, runPassed, runSuite, type RunOptions } from './run';

export interface MatrixKernel {
  /** What --kernel gets for this run: bookworm, backports or a vmlinuz path. */
  kernel: string;
  modules?: string;
  /** Column name and run subdirectory. */
  label: string;
}

export interface MatrixRow {
  id: string;
  title: string;
  file: string;
  /** Verdict per kernel label ('absent': the test did not appear in that kernel's run). */
  status: Record<string, TestStatus | 'absent'>;
  /** Not the same verdict on every kernel. */
  differs: boolean;
}

export interface KernelMatrix {
  version: 1;
  kernels: Array<MatrixKernel & { out: string; results?: RunResults; error?: string }>;
  rows: MatrixRow[];
  differing: number;
}

export const MATRIX_FILE = 'kernel-matrix.json';

/** Splits `--kernel a,b,PATH`; `--modules` belongs to the one path entry (Debian suites bring their own). */
export function parseKernelList(text: string, modules?: string): MatrixKernel[] {
  const names = text.split(',').map((s) => s.trim());
  if (names.some((n) => !n)) throw new RunError(`--kernel "${text}": an empty entry in the list`);
  const paths = names.filter((n) => n !== 'bookworm' && n !== 'backports');
  for (const p of paths) {
    if (!fs.existsSync(p)) throw new RunError(`--kernel "${text}": ${p} is neither bookworm, backports nor an existing vmlinuz file`);
  }
  if (modules && paths.length !== 1) throw new RunError(`--modules goes with exactly one vmlinuz path in --kernel "${text}" (found ${paths.length})`);
  const seen = new Set<string>();
  return names.map((kernel) => {
    let label = kernel === 'bookworm' || kernel === 'backports' ? kernel : path.basename(kernel).replace(/[^A-Za-z0-9._-]/g, '_');
    for (let k = 2; seen.has(label); k++) label = `${label}-${k}`;
    if (names.filter((n) => n === kernel).length > 1) throw new RunError(`--kernel "${text}": ${kernel} is listed twice`);
    seen.add(label);
    return { kernel, label, modules: paths.includes(kernel) ? modules : undefined };
  });
}

/** Compares the runs' verdicts test by test; rows that differ come first. */
export function compareKernelRuns(runs: Array<{ label: string; results?: RunResults }>): MatrixRow[] {
  const rows = new Map<string, MatrixRow>();
  for (const r of runs) {
    for (const t of r.results?.tests ?? []) {
      let row = rows.get(t.id);
      if (!row) rows.set(t.id, (row = { id: t.id, title: t.title, file: t.file, status: {}, differs: false }));
      row.status[r.label] = t.status;
    }
  }
  const out = [...rows.values()];
  for (const row of out) {
    for (const r of runs) row.status[r.label] ??= 'absent';
    row.differs = new Set(Object.values(row.status)).size > 1;
  }
  return out.sort((a, b) => Number(b.differs) - Number(a.differs) || a.file.localeCompare(b.file) || a.title.localeCompare(b.title));
}

/** Runs the suites once per kernel, one after another, each into <out>/<label>. */
export async function runKernelMatrix(opts: RunOptions, kernels: MatrixKernel[]): Promise<KernelMatrix> {
  const out = path.resolve(opts.out);
  fs.mkdirSync(out, { recursive: true });
  const done: KernelMatrix['kernels'] = [];
  for (const k of kernels) {
    const sub = path.join(out, k.label);
    opts.log?.(`=== kernel ${k.kernel} -> ${sub}\n`);
    try {
      const results = await runSuite({ ...opts, kernel: k.kernel, modules: k.modules, out: sub });
      done.push({ ...k, out: sub, results });
    } catch (e) {
      // A kernel that cannot boot or run is a result of the matrix, not the end of it.
      if (!(e instanceof RunError)) throw e;
      done.push({ ...k, out: sub, error: e.message });
    }
  }
  const rows = compareKernelRuns(done);
  const m: KernelMatrix = { version: 1, kernels: done, rows, differing: rows.filter((r) => r.differs).length };
  const tmp = path.join(out, `.${MATRIX_FILE}.tmp-${process.pid}`);
  fs.writeFileSync(tmp, JSON.stringify({ ...m, kernels: done.map(({ results, ...rest }) => ({ ...rest, summary: results?.summary })) }, null, 2) + '\n');
  fs.renameSync(tmp, path.join(out, MATRIX_FILE));
  return m;
}

/** Every kernel ran, and every run passed. */
export function matrixPassed(m: KernelMatrix): boolean {
  return m.kernels.every((k) => k.results !== undefined && runPassed(k.results));
}

const SHORT: Record<TestStatus | 'absent', string> = {
  passed: 'pass', failed: 'FAIL', skipped: 'skip', 'not-applicable': 'n/a', 'known-failure': 'known', absent: '-',
};

/** Text report: the differing tests first, then one summary line per kernel. */
export function renderKernelMatrix(m: KernelMatrix): string {
  const labels = m.kernels.map((k) => k.label);
  const width = labels.map((l) => Math.max(l.length, 5));
  const lines: string[] = [];
  const row = (cells: string[], name: string) => cells.map((c, i) => c.padEnd(width[i])).join('  ') + '  ' + name;
  lines.push(m.differing ? `${m.differing} test(s) with a different verdict between kernels:` : 'every test has the same verdict on every kernel');
  if (m.differing) {
    lines.push(row(labels, 'test'));
    for (const r of m.rows.filter((x) => x.differs)) lines.push(row(labels.map((l) => SHORT[r.status[l]]), `${r.file} › ${r.title}`));
  }
  lines.push('');
  for (const k of m.kernels) {
    if (k.error) {
      lines.push(`${k.label}: did not run: ${k.error}`);
      continue;
    }
    const s = k.results!.summary;
    lines.push(`${k.label} (${k.kernel}): ${s.passed} passed, ${s.failed} failed, ${s.skipped} skipped, ${s.notApplicable} not applicable, ${s.knownFailures} known failures; ${(k.results!.durationMs / 1000).toFixed(0)} s; ${k.out}`);
  }
  return lines.join('\n');
}
