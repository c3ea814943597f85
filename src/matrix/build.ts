// The conformance matrix: statements × implementations, built only from the results.json of finished run
// directories (nothing is judged again here). A column is one implementation (director driver on a
// backend), joining its runs of several suites; a row is a conformance statement, or a test of a suite
// without statements (the scheduler suites compare scenario by scenario). A cell is the run's own verdict:
// passed / failed / known failure from the statement's status; not applicable with the tests' reasons when
// every test that checks the statement was not applicable; not checked (with why) otherwise.
import * as fs from 'fs';
import * as path from 'path';
import { RESULTS_FILE } from '../runner/run';
import type { RunResults, StatementResult, TestResult } from '../runner/results';
import { loadStatements, SPEC_DIR, type Statement } from '../runner/spec';

export const IMPLEMENTATION_MATRIX_FILE = 'matrix.json';
export const IMPLEMENTATION_MATRIX_MD = 'matrix.md';

export type CellStatus = 'passed' | 'failed' | 'known-failure' | 'not-applicable' | 'not-checked';

export interface MatrixCell {
  status: CellStatus;
  /** Why it failed / is not applicable / a known failure / was not checked (from the tests' own reasons). */
  reason?: string;
  /** The tests behind the verdict: those that failed it, or all that declare it. */
  tests: string[];
}

export interface MatrixColumn {
  /** Column key: the director name, "+fault" for a sabotaged one, "@backend" when the same director was run on two backends. */
  id: string;
  director: string;
  backend: string;
  fault?: string;
  /** What the runs name as the implementation under test, with versions (results.json implementations). */
  implementations: string[];
  runs: Array<{ dir: string; paths: string[]; summary: RunResults['summary']; durationMs: number; errors: string[] }>;
}

export interface MatrixRow {
  /** Statement id, or test id for a suite without statements. */
  id: string;
  kind: 'statement' | 'test';
  title: string;
  level?: string;
  /** Cell per column id; a column without the row (its runs did not include that suite) has none. */
  cells: Record<string, MatrixCell>;
  /** Not the same status in every column that has the row. */
  differs: boolean;
}

export interface MatrixDifference {
  row: string;
  column: string;
  status: CellStatus;
  reference: string;
  referenceStatus: CellStatus;
  reason?: string;
}

export interface ImplementationMatrix {
  version: 1;
  generatedAt: string;
  /** The column others are compared with (kernel IPVS when it is there, else the first). */
  reference?: string;
  columns: MatrixColumn[];
  /** Implementation × suite combinations that were not run, with the reason (unavailable on this host, the suite does not apply). */
  notRun: Array<{ director: string; suite: string; backend?: string; reason: string }>;
  rows: MatrixRow[];
  differences: MatrixDifference[];
}

export interface LoadedRun {
  dir: string;
  results: RunResults;
}

let specIndex: Map<string, Statement> | undefined;

/** A statement of this checkout's spec/*.yaml by id (titles for rows a run only knows from its tests' declarations). */
function specStatement(id: string): Statement | undefined {
  if (!specIndex) {
    specIndex = new Map();
    const files = fs.existsSync(SPEC_DIR) ? fs.readdirSync(SPEC_DIR).filter((f) => f.endsWith('.yaml')).sort() : [];
    for (const f of files) {
      try {
        for (const st of loadStatements(path.join(SPEC_DIR, f)).statements) specIndex.set(st.id, st);
      } catch {
        // A broken spec file names no titles; `vslab test` reports it where it matters.
      }
    }
  }
  return specIndex.get(id);
}

/** Reads a run directory's results.json, naming the directory when it is not one. */
export function loadRun(dir: string): LoadedRun {
  const f = path.join(dir, RESULTS_FILE);
  if (!fs.existsSync(f)) throw new Error(`${dir}: not a run directory (no ${RESULTS_FILE})`);
  let results: RunResults;
  try {
    results = JSON.parse(fs.readFileSync(f, 'utf8')) as RunResults;
  } catch (e) {
    throw new Error(`${f}: not JSON (${(e as Error).message})`);
  }
  if (results.version !== 1 || !Array.isArray(results.tests) || !Array.isArray(results.statements) || typeof results.director !== 'string') {
    throw new Error(`${f}: not a vslab results.json (version 1 with director, tests and statements)`);
  }
  return { dir, results };
}

const uniq = <T>(xs: T[]) => [...new Set(xs)];
const RANK: Record<CellStatus, number> = { 'not-applicable': 0, 'not-checked': 1, passed: 2, 'known-failure': 3, failed: 4 };

function reasonsOf(tests: TestResult[]): string {
  return uniq(tests.map((t) => t.reason ?? t.status)).join('; ');
}

/**
 * A statement of another suite's file that tests declare (the packet accounting's FWD-COM-001 and FWD-COM-009
 * in the proxy and distribution suites): the run lists only its own suite's statements, so its status comes
 * from the declaring tests' own verdicts, decided as for a listed statement (src/runner/results.ts).
 */
function fromDeclaringTests(id: string, declaring: TestResult[]): Pick<StatementResult, 'status' | 'tests' | 'failedIn'> | undefined {
  const ran = declaring.filter((t) => t.statementResults?.[id] !== undefined);
  if (!ran.length) return undefined;
  const failedIn = ran.filter((t) => t.statementResults![id] === 'failed' && t.status !== 'known-failure').map((t) => t.id);
  const knownIn = ran.filter((t) => t.statementResults![id] === 'failed' && t.status === 'known-failure').map((t) => t.id);
  return { status: failedIn.length ? 'failed' : knownIn.length ? 'known-failure' : 'passed', tests: declaring.map((t) => t.id), failedIn: [...failedIn, ...knownIn] };
}

/** The cell of statement `id` in one run, or undefined when the run has no test declaring it. */
function statementCell(r: RunResults, id: string): MatrixCell | undefined {
  const declaring = r.tests.filter((t) => t.statements.includes(id));
  const st = r.statements.find((s) => s.id === id) ?? fromDeclaringTests(id, declaring);
  if (!declaring.length && !st) return undefined;
  if (st?.status === 'failed') {
    const failing = r.tests.filter((t) => st.failedIn.includes(t.id));
    return { status: 'failed', reason: reasonsOf(failing), tests: st.failedIn };
  }
  if (st?.status === 'known-failure') {
    const known = declaring.filter((t) => t.statementResults?.[id] === 'failed' || t.status === 'known-failure');
    return { status: 'known-failure', reason: reasonsOf(known), tests: known.map((t) => t.id) };
  }
  if (st?.status === 'passed') return { status: 'passed', tests: st.tests };
  if (declaring.length && declaring.every((t) => t.status === 'not-applicable')) {
    return { status: 'not-applicable', reason: reasonsOf(declaring), tests: declaring.map((t) => t.id) };
  }
  const unchecked = declaring.filter((t) => t.status !== 'not-applicable');
  return {
    status: 'not-checked',
    reason: unchecked.length ? groupedReasons(unchecked) : 'no test of the run checks it',
    tests: declaring.map((t) => t.id),
  };
}

/** "3 test(s) skipped: <reason>; 1 failed: <reason>": the tests grouped by status and reason (one long reason repeated 26 times says nothing more). */
function groupedReasons(tests: TestResult[]): string {
  const groups = new Map<string, number>();
  for (const t of tests) {
    const k = `${t.status}: ${(t.reason ?? '').slice(0, 300)}`;
    groups.set(k, (groups.get(k) ?? 0) + 1);
  }
  return [...groups].map(([k, n]) => `${n} test(s) ${k}`).join('; ');
}

function testCell(t: TestResult): MatrixCell {
  const status: CellStatus = t.status === 'skipped' ? 'not-checked' : t.status;
  return { status, ...(t.reason ? { reason: t.reason } : {}), tests: [t.id] };
}

/** Builds the matrix from finished runs (several runs of one implementation join into its column). */
export function buildMatrix(runs: LoadedRun[], notRun: ImplementationMatrix['notRun'] = []): ImplementationMatrix {
  // Columns: a director seen on two backends gets one column per backend.
  // A run with --fault is another implementation (the sabotaged director).
  const impl = (r: RunResults) => `${r.director}${r.fault ? `+${r.fault}` : ''}`;
  const backendsOf = new Map<string, Set<string>>();
  for (const { results: r } of runs) (backendsOf.get(impl(r)) ?? backendsOf.set(impl(r), new Set()).get(impl(r))!).add(r.backend);
  const colId = (r: RunResults) => ((backendsOf.get(impl(r))?.size ?? 0) > 1 ? `${impl(r)}@${r.backend}` : impl(r));
  const columns = new Map<string, MatrixColumn>();
  for (const { dir, results: r } of runs) {
    const id = colId(r);
    const c = columns.get(id) ?? { id, director: r.director, backend: r.backend, ...(r.fault ? { fault: r.fault } : {}), implementations: [], runs: [] };
    c.implementations = uniq([...c.implementations, ...r.implementations]);
    c.runs.push({ dir, paths: r.paths, summary: r.summary, durationMs: r.durationMs, errors: r.errors });
    columns.set(id, c);
  }

  const rows = new Map<string, MatrixRow>();
  // Two runs of one implementation that both have a row (the same suite twice): the worse verdict stands.
  const join = (row: MatrixRow, col: string, cell: MatrixCell) => {
    const had = row.cells[col];
    if (!had) row.cells[col] = cell;
    else if (RANK[cell.status] > RANK[had.status]) row.cells[col] = { ...cell, tests: uniq([...cell.tests, ...had.tests]) };
    else row.cells[col] = { ...had, tests: uniq([...had.tests, ...cell.tests]) };
  };
  const rowOf = (id: string, kind: MatrixRow['kind'], title: string, level?: string) => {
    const row = rows.get(id) ?? rows.set(id, { id, kind, title, ...(level ? { level } : {}), cells: {}, differs: false }).get(id)!;
    // A run that lists the statement names it, where an earlier run only had tests declaring it.
    if (row.title === id && title !== id) Object.assign(row, { title, ...(level ? { level } : {}) });
    return row;
  };
  for (const { results: r } of runs) {
    const col = colId(r);
    const ids = uniq([...r.statements.map((s) => s.id), ...r.tests.flatMap((t) => t.statements)]);
    for (const id of ids) {
      const st = r.statements.find((s) => s.id === id) ?? specStatement(id);
      const cell = statementCell(r, id);
      if (cell) join(rowOf(id, 'statement', st?.title ?? id, st?.level), col, cell);
    }
    for (const t of r.tests.filter((x) => !x.statements.length)) join(rowOf(t.id, 'test', t.title), col, testCell(t));
  }

  const cols = [...columns.values()];
  const reference = cols.find((c) => c.director === 'ipvs' && !c.fault)?.id ?? cols[0]?.id;
  const differences: MatrixDifference[] = [];
  const sorted = [...rows.values()].sort((a, b) => (a.kind === b.kind ? a.id.localeCompare(b.id, 'en', { numeric: true }) : a.kind === 'statement' ? -1 : 1));
  for (const row of sorted) {
    const statuses = uniq(Object.values(row.cells).map((c) => c.status));
    row.differs = statuses.length > 1;
    const ref = reference ? row.cells[reference] : undefined;
    if (!row.differs || !ref) continue;
    for (const c of cols) {
      const cell = row.cells[c.id];
      if (!cell || c.id === reference || cell.status === ref.status) continue;
      differences.push({ row: row.id, column: c.id, status: cell.status, reference: reference!, referenceStatus: ref.status, ...(cell.reason ? { reason: cell.reason } : {}) });
    }
  }
  return { version: 1, generatedAt: new Date().toISOString(), ...(reference ? { reference } : {}), columns: cols, notRun, rows: sorted, differences };
}

const MARK: Record<CellStatus, string> = { passed: 'pass', failed: '**FAIL**', 'known-failure': 'known failure', 'not-applicable': 'n/a', 'not-checked': 'not checked' };
const cellText = (s: string) => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');

/** matrix.md: the implementations, the table, then every difference from the reference and the reasons of the n/a cells. */
export function renderMatrixMarkdown(m: ImplementationMatrix): string {
  const out: string[] = [];
  out.push('# Conformance matrix', '', `Generated ${m.generatedAt} by \`vslab matrix\` from the run directories below (each cell is that run's own verdict).`, '');
  out.push('## Implementations', '', '| column | backend | implementation | runs (passed / failed / n/a / known failures of tests) |', '|---|---|---|---|');
  for (const c of m.columns) {
    const runs = c.runs.map((r) => `${r.paths.join(' ')}: ${r.summary.passed} / ${r.summary.failed} / ${r.summary.notApplicable} / ${r.summary.knownFailures}${r.errors.length ? ` (${r.errors.length} run error(s))` : ''}`).join('; ');
    out.push(`| ${cellText(c.id)} | ${c.backend} | ${cellText(c.implementations.join('; ') || c.director)} | ${cellText(runs)} |`);
  }
  if (m.notRun.length) {
    out.push('', 'Not run:', '');
    for (const n of m.notRun) out.push(`- ${n.director} × suites/${n.suite}${n.backend ? ` (${n.backend})` : ''}: ${n.reason}`);
  }
  out.push('', '## Statements × implementations', '');
  out.push(`| statement | ${m.columns.map((c) => cellText(c.id)).join(' | ')} |`, `|---|${m.columns.map(() => '---').join('|')}|`);
  for (const r of m.rows) {
    const name = r.kind === 'statement' ? `${r.id}${r.level ? ` (${r.level})` : ''} ${r.title}` : `test ${r.title}`;
    out.push(`| ${r.differs ? '≠ ' : ''}${cellText(name)} | ${m.columns.map((c) => (r.cells[c.id] ? MARK[r.cells[c.id].status] : '—')).join(' | ')} |`);
  }
  out.push('', '≠: the implementations do not agree on this row. —: the implementation\'s runs did not include that suite.', '');
  out.push('## Differences', '');
  if (!m.differences.length) out.push(`None: every implementation has the same verdict as ${m.reference ?? 'the reference'} on every row they share.`);
  for (const d of m.differences) out.push(`- **${d.row}**, ${d.column}: ${d.status} where ${d.reference} is ${d.referenceStatus}${d.reason ? ` — ${cellText(d.reason)}` : ''}`);
  const na = m.columns.flatMap((c) => uniq(m.rows.filter((r) => r.cells[c.id]?.status === 'not-applicable').map((r) => r.cells[c.id].reason ?? '')).map((why) => ({ col: c.id, why })));
  if (na.length) {
    out.push('', '## Why not applicable', '');
    for (const { col, why } of na) {
      const ids = m.rows.filter((r) => r.cells[col]?.status === 'not-applicable' && (r.cells[col].reason ?? '') === why).map((r) => r.id);
      out.push(`- ${col}: ${ids.join(', ')} — ${cellText(why)}`);
    }
  }
  return out.join('\n') + '\n';
}

/** Writes matrix.json and matrix.md into `out`. */
export function writeMatrix(out: string, m: ImplementationMatrix): void {
  fs.mkdirSync(out, { recursive: true });
  fs.writeFileSync(path.join(out, IMPLEMENTATION_MATRIX_FILE), JSON.stringify(m, null, 2) + '\n');
  fs.writeFileSync(path.join(out, IMPLEMENTATION_MATRIX_MD), renderMatrixMarkdown(m));
}
