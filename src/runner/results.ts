// results.json of a conformance run: every test with its id, status (passed / failed / skipped /
// not-applicable / known-failure, with the reason), the statements it checks and how each fared, its checks
// and duration, where its capture and expectations are; per statement the tests that checked it; a summary.
// Built from Playwright's JSON report and the checks.json each test wrote (src/runner/suite-api.ts).
import * as fs from 'fs';
import * as path from 'path';
import { CAPTURE_FILE, EXPECTATIONS_FILE } from '../packet/rundir';
import type { LabRecord } from './labs';
import { LAB_RECORD_DIR } from './labs';
import type { Statement } from './spec';
import { CHECKS_FILE, testIdOf, type ChecksFile } from './suite-api';

/** Shard i of n (1-based), as Playwright's --shard takes it. */
export interface Shard { current: number; total: number }

export type TestStatus = 'passed' | 'failed' | 'skipped' | 'not-applicable' | 'known-failure';

export interface TestResult {
  id: string;
  title: string;
  file: string;
  status: TestStatus;
  /** Why it is not applicable / skipped / a known failure, or the first error of a failure. */
  reason?: string;
  /** Statements the test declares. */
  statements: string[];
  /** Verdict per declared statement (from the test's checks; absent when it did not run). */
  statementResults?: Record<string, 'passed' | 'failed'>;
  checks: number;
  failedChecks: number;
  durationMs: number;
  /** Relative to the run directory, when the test produced them. */
  capture?: string;
  expectations?: string;
  /** Scheduler tests: the replay (model vs kernel per flow) the test attached, saved as <id>/replay.json. */
  replay?: string;
  notes?: string[];
  /** Measured figures the test recorded (HA suite: failoverMs, flowsKept, flowsTotal, maxGapMs, packetsLost). */
  figures?: Record<string, number | null>;
  /** Timestamped actions the test took on the lab. */
  events?: Array<{ at: number; what: string }>;
}

export interface StatementResult {
  id: string;
  level: string;
  title: string;
  /** failed: a test's check broke it; passed: checked and never broken; not-checked: no test ran a check of it. */
  status: 'passed' | 'failed' | 'not-checked' | 'known-failure';
  tests: string[];
  failedIn: string[];
}

export interface RunResults {
  version: 1;
  paths: string[];
  director: string;
  backend: string;
  kernel?: string;
  fault?: string;
  /** This run is one shard of a larger one (vslab test --shard i/n; vslab merge joins them). */
  shard?: Shard;
  implementations: string[];
  labs: LabRecord[];
  startedAt: string;
  durationMs: number;
  tests: TestResult[];
  statements: StatementResult[];
  summary: {
    tests: number;
    passed: number;
    failed: number;
    skipped: number;
    notApplicable: number;
    knownFailures: number;
    checks: number;
    failedChecks: number;
    statements: number;
    statementsFailed: number;
    statementsKnownFailures: number;
    statementsNotChecked: number;
  };
  /** Errors outside any test (a lab that would not come up, a syntax error in a suite file). */
  errors: string[];
}

interface PwAnnotation { type: string; description?: string }
interface PwAttachment { name: string; contentType?: string; path?: string; body?: string }
interface PwResult { status: string; duration: number; errors?: Array<{ message?: string }>; error?: { message?: string }; annotations?: PwAnnotation[]; attachments?: PwAttachment[] }
interface PwTest { annotations?: PwAnnotation[]; expectedStatus?: string; status?: string; results: PwResult[] }
interface PwSpec { title: string; file: string; tests: PwTest[] }
interface PwSuite { title: string; file?: string; specs?: PwSpec[]; suites?: PwSuite[] }
export interface PwReport { suites?: PwSuite[]; errors?: Array<{ message?: string }>; stats?: { startTime?: string; duration?: number } }

function specsOf(s: PwSuite): PwSpec[] {
  return [...(s.specs ?? []), ...(s.suites ?? []).flatMap(specsOf)];
}

function firstLine(msg: string | undefined): string | undefined {
  if (!msg) return undefined;
  // eslint-disable-next-line no-control-regex
  return msg.replace(/\x1b\[[0-9;]*m/g, '').split('\n').find((l) => l.trim())?.trim().slice(0, 400);
}

function annotationsOf(t: PwTest): PwAnnotation[] {
  const all = [...(t.annotations ?? []), ...t.results.flatMap((r) => r.annotations ?? [])];
  const seen = new Set<string>();
  return all.filter((a) => {
    const k = `${a.type}\u0000${a.description ?? ''}`;
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}

export interface BuildOptions {
  out: string;
  suitesRoot: string;
  paths: string[];
  director: string;
  backend: string;
  kernel?: string;
  fault?: string;
  shard?: Shard;
  statements: Statement[];
  startedAt: Date;
  durationMs: number;
}

/** The attachment the scheduler suites give each test: the replay of its scenario (src/suites/schedulers/replay.ts). */
export const REPLAY_ATTACHMENT = 'replay.json';

/** Writes a test's inline attachment into its directory of the run (so merged shards and reports need no Playwright report). */
function saveAttachment(r: PwResult | undefined, name: string, dir: string): boolean {
  const a = r?.attachments?.find((x) => x.name === name);
  if (!a) return false;
  let body: Buffer | undefined;
  if (a.body !== undefined) body = Buffer.from(a.body, 'base64');
  else if (a.path && fs.existsSync(a.path)) body = fs.readFileSync(a.path);
  if (!body) return false;
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, name), body);
  return true;
}

export function readChecks(out: string, id: string): ChecksFile | undefined {
  const f = path.join(out, id, CHECKS_FILE);
  if (!fs.existsSync(f)) return undefined;
  return JSON.parse(fs.readFileSync(f, 'utf8')) as ChecksFile;
}

export function buildResults(report: PwReport, opts: BuildOptions): RunResults {
  const tests: TestResult[] = [];
  for (const spec of (report.suites ?? []).flatMap(specsOf)) {
    for (const t of spec.tests) {
      const id = testIdOf(path.join(opts.suitesRoot, spec.file), spec.title, opts.suitesRoot);
      const ann = annotationsOf(t);
      const statements = [...new Set(ann.filter((a) => a.type === 'statement' && a.description).map((a) => a.description!))];
      const last = t.results[t.results.length - 1];
      const na = ann.find((a) => a.type === 'not-applicable');
      const known = ann.find((a) => a.type === 'known-failure');
      const skip = ann.find((a) => a.type === 'skip');
      const checks = readChecks(opts.out, id);
      let status: TestStatus;
      let reason: string | undefined;
      const notes: string[] = [...(checks?.notes ?? [])];
      const runStatus = last?.status ?? 'skipped';
      if (runStatus === 'skipped') {
        status = na ? 'not-applicable' : 'skipped';
        reason = na?.description ?? skip?.description;
      } else if (t.expectedStatus === 'failed') {
        if (runStatus === 'failed') {
          status = 'known-failure';
          reason = known?.description;
        } else if (runStatus === 'passed') {
          status = 'passed';
          notes.push(`marked as a known failure (${known?.description ?? 'no reason given'}) but it passed: the implementation may be fixed`);
        } else {
          status = 'failed';
          reason = firstLine(last?.error?.message ?? last?.errors?.[0]?.message) ?? runStatus;
        }
      } else if (runStatus === 'passed') status = 'passed';
      else {
        status = 'failed';
        reason = firstLine(last?.error?.message ?? last?.errors?.[0]?.message) ?? runStatus;
      }
      const dir = path.join(opts.out, id);
      const replay = saveAttachment(last, REPLAY_ATTACHMENT, dir);
      tests.push({
        id, title: spec.title, file: spec.file, status, ...(reason ? { reason } : {}), statements,
        ...(checks ? { statementResults: checks.statements } : {}),
        checks: checks?.checks.length ?? 0, failedChecks: checks?.checks.filter((c) => !c.ok).length ?? 0,
        durationMs: Math.round(t.results.reduce((a, r) => a + (r.duration ?? 0), 0)),
        ...(fs.existsSync(path.join(dir, CAPTURE_FILE)) ? { capture: path.join(id, CAPTURE_FILE) } : {}),
        ...(fs.existsSync(path.join(dir, EXPECTATIONS_FILE)) ? { expectations: path.join(id, EXPECTATIONS_FILE) } : {}),
        ...(replay ? { replay: path.join(id, REPLAY_ATTACHMENT) } : {}),
        ...(notes.length ? { notes } : {}),
        ...(checks?.figures ? { figures: checks.figures } : {}), ...(checks?.events ? { events: checks.events } : {}),
      });
    }
  }
  const labs: LabRecord[] = [];
  const labDir = path.join(opts.out, LAB_RECORD_DIR);
  if (fs.existsSync(labDir)) for (const f of fs.readdirSync(labDir).sort()) if (f.endsWith('.json')) labs.push(JSON.parse(fs.readFileSync(path.join(labDir, f), 'utf8')) as LabRecord);
  return assembleResults({
    paths: opts.paths, director: opts.director, backend: opts.backend, kernel: opts.kernel, fault: opts.fault, shard: opts.shard,
    labs, startedAt: opts.startedAt.toISOString(), durationMs: opts.durationMs, errors: (report.errors ?? []).map((e) => firstLine(e.message) ?? 'error'),
  }, tests, opts.statements);
}

/** What a run is about, besides its tests (what `vslab merge` checks the shards agree on, and unions). */
export type RunMeta = Pick<RunResults, 'paths' | 'director' | 'backend' | 'kernel' | 'fault' | 'shard' | 'labs' | 'startedAt' | 'durationMs' | 'errors'>;

/** Statement verdicts, implementations and the summary of a run's tests (one run, or merged shards). */
export function assembleResults(meta: RunMeta, tests: TestResult[], specStatements: Array<{ id: string; level: string; title: string }>): RunResults {
  const statements: StatementResult[] = specStatements.map((s) => {
    const declaring = tests.filter((t) => t.statements.includes(s.id));
    const ran = declaring.filter((t) => t.statementResults && t.statementResults[s.id] !== undefined);
    const failedIn = ran.filter((t) => t.statementResults![s.id] === 'failed' && t.status !== 'known-failure').map((t) => t.id);
    const knownIn = ran.filter((t) => t.statementResults![s.id] === 'failed' && t.status === 'known-failure').map((t) => t.id);
    const status: StatementResult['status'] = failedIn.length ? 'failed' : knownIn.length ? 'known-failure' : ran.length ? 'passed' : 'not-checked';
    return { id: s.id, level: s.level, title: s.title, status, tests: declaring.map((t) => t.id), failedIn: [...failedIn, ...knownIn] };
  });
  const count = (st: TestStatus) => tests.filter((t) => t.status === st).length;
  return {
    version: 1, paths: meta.paths, director: meta.director, backend: meta.backend,
    ...(meta.kernel ? { kernel: meta.kernel } : {}), ...(meta.fault ? { fault: meta.fault } : {}), ...(meta.shard ? { shard: meta.shard } : {}),
    implementations: [...new Set(meta.labs.flatMap((l) => l.directors.map((d) => d.implementation)))],
    labs: meta.labs, startedAt: meta.startedAt, durationMs: Math.round(meta.durationMs), tests, statements,
    summary: {
      tests: tests.length, passed: count('passed'), failed: count('failed'), skipped: count('skipped'), notApplicable: count('not-applicable'), knownFailures: count('known-failure'),
      checks: tests.reduce((a, t) => a + t.checks, 0), failedChecks: tests.reduce((a, t) => a + t.failedChecks, 0),
      statements: statements.length, statementsFailed: statements.filter((s) => s.status === 'failed').length,
      statementsKnownFailures: statements.filter((s) => s.status === 'known-failure').length, statementsNotChecked: statements.filter((s) => s.status === 'not-checked').length,
    },
    errors: meta.errors,
  };
}

export function renderResults(r: RunResults): string {
  const mark: Record<TestStatus, string> = { passed: 'PASS', failed: 'FAIL', skipped: 'SKIP', 'not-applicable': 'N/A ', 'known-failure': 'KNOWN' };
  const lines: string[] = [];
  lines.push(`director ${r.director} (${r.implementations.join('; ') || 'not reached'}) on ${r.backend}${r.fault ? `, fault ${r.fault}` : ''}`);
  // A reason is printed once (a lab that could not be prepared is the reason of every test that needed it).
  const firstWith = new Map<string, string>();
  for (const t of r.tests) {
    lines.push(`${mark[t.status].padEnd(5)} ${t.id}  (${(t.durationMs / 1000).toFixed(1)} s, ${t.checks} checks${t.failedChecks ? `, ${t.failedChecks} failed` : ''})`);
    if (t.reason && t.status !== 'passed') {
      const first = firstWith.get(t.reason);
      lines.push(first ? `      the same reason as ${first}` : `      ${t.reason}`);
      if (!first) firstWith.set(t.reason, t.id);
    }
    if (t.status === 'failed' && t.statementResults) {
      const broken = Object.entries(t.statementResults).filter(([, v]) => v === 'failed').map(([k]) => k);
      if (broken.length) lines.push(`      statements broken: ${broken.join(', ')}`);
    }
    for (const n of t.notes ?? []) lines.push(`      note: ${n}`);
    if (t.figures) lines.push(`      figures: ${Object.entries(t.figures).map(([k, v]) => `${k}=${v ?? 'n/a'}`).join(' ')}`);
  }
  for (const e of r.errors) lines.push(`ERROR ${e}`);
  const s = r.summary;
  const bad = r.statements.filter((x) => x.status !== 'passed');
  if (bad.length) {
    lines.push('statements not passed:');
    for (const x of bad) lines.push(`  ${x.id.padEnd(14)} ${x.status}${x.failedIn.length ? ` in ${x.failedIn.join(', ')}` : ''}`);
  }
  // Suites without packet checks or statements (the scheduler suites) do not print empty figures for them.
  const parts = [`${s.tests} tests: ${s.passed} passed, ${s.failed} failed, ${s.notApplicable} not applicable, ${s.knownFailures} known failures, ${s.skipped} skipped`];
  if (s.checks) parts.push(`${s.checks} packet checks (${s.failedChecks} failed)`);
  if (s.statements) parts.push(`statements: ${s.statements - s.statementsFailed - s.statementsKnownFailures - s.statementsNotChecked} of ${s.statements} passed, ${s.statementsFailed} failed, ${s.statementsKnownFailures} known failures, ${s.statementsNotChecked} not checked`);
  parts.push(`${(r.durationMs / 1000).toFixed(0)} s`);
  lines.push(parts.join('; '));
  return lines.join('\n');
}
