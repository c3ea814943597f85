// `vslab merge`: join the run directories of the shards of one run (vslab test --shard i/n) — or of runs of
// different suites against the same director — into one run directory: results.json recomputed from the
// union of the tests (statement verdicts, summary), junit.xml, every test's files and lab records copied.
// Shards are joined in shard order, which is the order an unsharded run lists its tests in.
import * as fs from 'fs';
import * as path from 'path';
import { reportIntoRun } from '../report';
import { renderJunit } from './junit';
import { LAB_RECORD_DIR, type LabRecord } from './labs';
import { assembleResults, type RunResults, type StatementResult, type TestResult } from './results';
import { prepareOutDir, RESULTS_FILE, RunError } from './run';

export const JUNIT_FILE = 'junit.xml';

export function readRun(dir: string): RunResults {
  const f = path.join(dir, RESULTS_FILE);
  if (!fs.existsSync(f)) throw new RunError(`${dir}: no ${RESULTS_FILE} (not a vslab test run directory)`);
  let r: RunResults;
  try {
    r = JSON.parse(fs.readFileSync(f, 'utf8')) as RunResults;
  } catch (e) {
    throw new RunError(`${f}: ${(e as Error).message}`);
  }
  if (r?.version !== 1 || !Array.isArray(r.tests) || !Array.isArray(r.statements)) throw new RunError(`${f}: not a version 1 results file (needs version, tests, statements)`);
  return r;
}

export function mergeRuns(dirsIn: string[], outIn: string): RunResults {
  if (!dirsIn.length) throw new RunError('give at least one run directory to merge');
  const out = path.resolve(outIn);
  const runs = dirsIn.map((d) => ({ dir: path.resolve(d), r: readRun(d) }));
  for (const { dir } of runs) if (dir === out) throw new RunError(`--out ${outIn} is one of the runs being merged; choose another directory`);
  const first = runs[0].r;
  for (const { dir, r } of runs.slice(1)) {
    for (const k of ['director', 'backend', 'kernel', 'fault'] as const) {
      if ((r[k] ?? '') !== (first[k] ?? '')) throw new RunError(`${dir}: ${k} is ${r[k] ?? '(none)'} but ${runs[0].dir} has ${first[k] ?? '(none)'}; only runs against the same director, backend, kernel and fault merge`);
    }
  }
  const sharded = runs.filter((x) => x.r.shard);
  if (sharded.length) {
    if (sharded.length !== runs.length) throw new RunError(`${runs.find((x) => !x.r.shard)!.dir} is not a shard, ${sharded[0].dir} is: merge the shards of one run, or whole runs`);
    const total = sharded[0].r.shard!.total;
    const bad = sharded.find((x) => x.r.shard!.total !== total);
    if (bad) throw new RunError(`${bad.dir} is shard ${bad.r.shard!.current}/${bad.r.shard!.total}, ${sharded[0].dir} is of ${total}`);
    if (JSON.stringify(sharded.map((x) => [...x.r.paths].sort())) !== JSON.stringify(sharded.map(() => [...first.paths].sort()))) {
      throw new RunError('the shards ran different suite paths; shards of one run share them');
    }
    const seen = new Map<number, string>();
    for (const x of sharded) {
      const other = seen.get(x.r.shard!.current);
      if (other) throw new RunError(`${x.dir} and ${other} are both shard ${x.r.shard!.current}/${total}`);
      seen.set(x.r.shard!.current, x.dir);
    }
    const missing = Array.from({ length: total }, (_, i) => i + 1).filter((i) => !seen.has(i));
    if (missing.length) throw new RunError(`shard(s) ${missing.map((i) => `${i}/${total}`).join(', ')} missing: merge all ${total} shards`);
    runs.sort((a, b) => a.r.shard!.current - b.r.shard!.current);
  }
  const owner = new Map<string, string>();
  for (const { dir, r } of runs) {
    for (const t of r.tests) {
      const o = owner.get(t.id);
      if (o) throw new RunError(`test ${t.id} is in both ${o} and ${dir}`);
      owner.set(t.id, dir);
    }
  }

  prepareOutDir(out);
  const tests: TestResult[] = [];
  for (const { dir, r } of runs) {
    for (const t of r.tests) {
      // A test's files live in <run>/<test id>/ (capture, expectations, checks, replay).
      if (fs.existsSync(path.join(dir, t.id))) fs.cpSync(path.join(dir, t.id), path.join(out, t.id), { recursive: true });
      tests.push(t);
    }
  }
  const labs = new Map<string, LabRecord>();
  for (const { r } of runs) for (const l of r.labs) if (!labs.has(l.lab)) labs.set(l.lab, l);
  if (labs.size) {
    fs.mkdirSync(path.join(out, LAB_RECORD_DIR), { recursive: true });
    for (const l of labs.values()) fs.writeFileSync(path.join(out, LAB_RECORD_DIR, `${l.lab}.json`), JSON.stringify(l, null, 2) + '\n');
  }
  const statements = new Map<string, Pick<StatementResult, 'id' | 'level' | 'title'>>();
  for (const { r } of runs) for (const s of r.statements) if (!statements.has(s.id)) statements.set(s.id, { id: s.id, level: s.level, title: s.title });
  const start = Math.min(...runs.map((x) => Date.parse(x.r.startedAt)));
  const end = Math.max(...runs.map((x) => Date.parse(x.r.startedAt) + x.r.durationMs));
  const merged = assembleResults({
    paths: [...new Set(runs.flatMap((x) => x.r.paths))], director: first.director, backend: first.backend, kernel: first.kernel, fault: first.fault,
    labs: [...labs.values()], startedAt: new Date(start).toISOString(), durationMs: end - start,
    errors: runs.flatMap((x) => x.r.errors.map((e) => (runs.length > 1 ? `${path.basename(x.dir)}: ${e}` : e))),
  }, tests, [...statements.values()]);
  fs.writeFileSync(path.join(out, RESULTS_FILE), JSON.stringify(merged, null, 2) + '\n');
  fs.writeFileSync(path.join(out, JUNIT_FILE), renderJunit(merged));
  return merged;
}

/** Merges, then draws the merged run's report.html. */
export function mergeRunsWithReport(dirs: string[], out: string): { results: RunResults; report: string } {
  const results = mergeRuns(dirs, out);
  return { results, report: reportIntoRun(out) };
}
