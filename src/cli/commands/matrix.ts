// `vslab matrix`: the suites against every implementation available on this host (or those named), and
// the statements × implementations table built from the runs' results.json (src/matrix/).
import * as fs from 'fs';
import * as path from 'path';
import { buildMatrix, IMPLEMENTATION_MATRIX_FILE, IMPLEMENTATION_MATRIX_MD, loadRun, writeMatrix, type LoadedRun } from '../../matrix/build';
import { allImplementations, allSuites, planMatrix, runMatrix } from '../../matrix/run';
import { RunError } from '../../runner/run';
import { parse, printJson } from '../args';
import { UsageError, type CliCommand } from '../command';

const usage = `vslab matrix [--director A,B,...] [--suites S,T,...] [--workers N] [--kernel K] --out DIR [--json]
       vslab matrix --from RUN[,RUN...] --out DIR [--json]
       vslab matrix --plan [--director A,B,...] [--suites S,T,...] [--json]
  --director implementations (default: every registered driver and every adapter in adapters/:
             ${allImplementations().join(', ')}); NAME@vm or NAME@netns chooses the backend
  --suites   suites (default: ${allSuites().join(', ')}); each implementation runs those that apply to it:
             a driver on netns when it can run there, else on vm; an adapter on vm first (its kernel has what
             the host's may lack); the combinations that cannot run are listed with the reason
  --out      where the runs (DIR/runs/<implementation>.<suite>/), ${IMPLEMENTATION_MATRIX_FILE} and ${IMPLEMENTATION_MATRIX_MD} go
  --from     build the matrix from finished run directories instead of running (nothing is judged again)
  --plan     print which implementation would run which suite where (or why not), and run nothing
Exit status: 0 every run passed (tests passed, not applicable or known failures), 1 a run failed or did not finish, 2 usage.`;

const list = (s: string | undefined) => (s === undefined ? undefined : s.split(',').map((x) => x.trim()).filter(Boolean));

export const command: CliCommand = {
  name: 'matrix',
  summary: 'run the suites against every implementation on this host and write the statements × implementations matrix',
  usage,
  async run(args) {
    const { values } = parse(args, {
      director: { type: 'string' }, suites: { type: 'string' }, out: { type: 'string' }, from: { type: 'string' }, plan: { type: 'boolean' },
      workers: { type: 'string' }, kernel: { type: 'string' }, json: { type: 'boolean' },
    }, usage, 0);
    const directors = list(values.director) ?? allImplementations();
    const suites = list(values.suites) ?? allSuites();
    if (!directors.length) throw new UsageError(`--director: an empty list\nusage: ${usage}`);
    if (!suites.length) throw new UsageError(`--suites: an empty list\nusage: ${usage}`);
    const workers = values.workers === undefined ? undefined : Number(values.workers);
    if (workers !== undefined && !(Number.isInteger(workers) && workers >= 1)) throw new UsageError(`--workers ${values.workers}: a whole number >= 1`);

    if (values.plan) {
      let plan;
      try {
        plan = planMatrix(directors, suites);
      } catch (e) {
        if (e instanceof RunError) throw new UsageError(e.message);
        throw e;
      }
      if (values.json) printJson(plan);
      else for (const e of plan) console.log(`${e.director.padEnd(28)} suites/${e.suite.padEnd(12)} ${e.skip ? `not run: ${e.skip}` : `on ${e.backend}`}`);
      return 0;
    }
    if (!values.out) throw new UsageError(`--out DIR is required\nusage: ${usage}`);
    const out = path.resolve(values.out);
    if (fs.existsSync(out) && !fs.statSync(out).isDirectory()) throw new UsageError(`--out ${values.out} exists and is not a directory`);

    if (values.from !== undefined) {
      if (values.director !== undefined || values.suites !== undefined) throw new UsageError('--from builds from finished runs: --director and --suites do not apply');
      const dirs = list(values.from) ?? [];
      if (!dirs.length) throw new UsageError(`--from: an empty list\nusage: ${usage}`);
      let runs: LoadedRun[];
      try {
        runs = dirs.map((d) => loadRun(path.resolve(d)));
      } catch (e) {
        throw new UsageError(`--from: ${(e as Error).message}`);
      }
      const m = buildMatrix(runs);
      writeMatrix(out, m);
      if (values.json) printJson(m);
      else console.log(`${m.columns.length} implementation(s), ${m.rows.length} row(s), ${m.differences.length} difference(s): ${path.join(out, IMPLEMENTATION_MATRIX_MD)}`);
      return 0;
    }

    let r;
    try {
      r = await runMatrix({ directors, suites, out, workers, kernel: values.kernel, log: values.json ? undefined : (l) => console.error(l) });
    } catch (e) {
      if (e instanceof RunError) throw new UsageError(e.message);
      throw e;
    }
    if (values.json) printJson(r.matrix);
    else console.log(`${r.matrix.columns.length} implementation(s), ${r.matrix.rows.length} row(s), ${r.matrix.differences.length} difference(s): ${path.join(out, IMPLEMENTATION_MATRIX_MD)}`);
    return r.passed ? 0 : 1;
  },
};
