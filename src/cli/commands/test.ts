// `vslab test`: run conformance suites against a director, list the faulty directors, show which tests
// check which statements, or run every fault and print the mutation matrix.
import * as fs from 'fs';
import * as path from 'path';
import type { BackendKind } from '../../backend/types';
import { BACKEND_KINDS, isBackendKind } from '../../backend';
import { listFaults } from '../../director/faults';
import { EXTERNAL_PREFIX, resolveAdapter } from '../../director/external';
import { DIRECTOR_NAMES, directorDriver, isDirectorName, type DirectorKind } from '../../director/registry';
import { defaultBackend } from '../../runner/env';
import { MATRIX_FILE, matrixPassed, parseKernelList, renderKernelMatrix, runKernelMatrix, type MatrixKernel } from '../../runner/kernel-matrix';
import { mutationPassed, renderMutation, runMutation } from '../../runner/mutation';
import { renderKtap } from '../../runner/ktap';
import { ProgressLine } from '../../runner/progress';
import { renderResults } from '../../runner/results';
import type { Shard } from '../../runner/results';
import { checkSuiteOptions, listTests, parseShard, resolveSuitePaths, RunError, runPassed, runSuite, suitesOf } from '../../runner/run';
import { coverageOf, loadStatements, renderCoverage, specFileForSuite } from '../../runner/spec';
import { REPORT_FILE, reportIntoRun, writeReport } from '../../report';
import { parse, printJson } from '../args';
import { UsageError, type CliCommand } from '../command';

const usage = `vslab test [PATHS...] [--director NAME] [--backend vm|netns|docker] [--kernel K] [--modules DIR] [--fault NAME]
                 [--workers N] [--grep REGEX] [--shard I/N] [--out DIR] [--json | --reporter text|ktap]
       vslab test [PATHS...] --list [--grep REGEX] [--shard I/N] [--json]
       vslab test --list-faults [--json]
       vslab test [PATHS...] --coverage [--json]
       vslab test [PATHS...] --mutation [--faults A,B,...] [--baseline RUNDIR] [--out DIR] [--json]
  PATHS      suite directories or files under suites/ (default suites/forwarding)
  --director implementation under test (${DIRECTOR_NAMES.join(', ')}, or external:PATH for an
             adapter, docs/adapter-protocol.md; default ipvs)
  --backend  vm, netns or docker (default: vm when this host's kernel has no IPVS)
  --kernel   VM kernel: bookworm (6.1, default), backports (6.12) or a vmlinuz path (with --modules);
             a comma list (bookworm,backports[,PATH]) runs the suites on each and prints the tests
             whose verdict differs between kernels first (one run directory per kernel under --out)
  --fault    run against the director sabotaged by this fault (see --list-faults)
  --workers  parallel workers, one VM each on the vm backend (default 2)
  --grep     only tests whose title matches
  --shard    only shard I of N (Playwright's sharding); \`vslab merge RUN... --out DIR\` joins the shards
  --list     list the tests the run would execute (id, file, statements) without starting a lab
  --reporter text (default) or ktap: the results as KTAP on stdout (statements as subtests; known
             failures # XFAIL, not applicable # SKIP). On a terminal a progress line shows tests done /
             total, the suite file and lab, and the elapsed time.
  --out      run directory (default vslab-runs/<time>): results.json, junit.xml, report.html, and per test
             capture.pcapng + expectations.json, which \`vslab replay <dir>\` re-evaluates offline
  --coverage list, per conformance statement, the tests that check it (exit 1 if one is unchecked)
  --mutation run the suite on the reference director, then on each faulty director; print the matrix
             (--faults: only these; --baseline: reuse a finished reference run instead of running one)
Exit status: 0 every test passed (or is not applicable / a known failure), 1 a test failed, 2 usage, 3 environment.`;

function defaultOut(): string {
  const t = new Date().toISOString().replace(/[-:]/g, '').replace(/\..*$/, '').replace('T', '-');
  return path.resolve('vslab-runs', t);
}

export const command: CliCommand = {
  name: 'test',
  summary: 'run conformance suites (forwarding: NAT, DR, TUN, Full-NAT on every hop) against a director; faults, coverage, mutation score',
  usage,
  async run(args) {
    const { values, positionals } = parse(args, {
      director: { type: 'string' }, backend: { type: 'string' }, kernel: { type: 'string' }, modules: { type: 'string' },
      fault: { type: 'string' }, faults: { type: 'string' }, baseline: { type: 'string' }, 'list-faults': { type: 'boolean' }, coverage: { type: 'boolean' }, mutation: { type: 'boolean' },
      workers: { type: 'string' }, grep: { type: 'string' }, shard: { type: 'string' }, list: { type: 'boolean' }, reporter: { type: 'string' }, out: { type: 'string' }, json: { type: 'boolean' },
    }, usage);
    const json = !!values.json;

    if (values['list-faults']) {
      const faults = listFaults();
      if (json) printJson(faults);
      else for (const f of faults) console.log(`${f.name.padEnd(28)} ${f.summary}\n${''.padEnd(28)} how: ${f.how}\n${''.padEnd(28)} targets ${f.targets.join(', ')}; methods ${f.methods.join(', ')}`);
      return 0;
    }

    let paths: string[];
    try {
      paths = resolveSuitePaths(positionals);
    } catch (e) {
      throw new UsageError(`${(e as Error).message}\nusage: ${usage}`);
    }

    let shard: Shard | undefined;
    try {
      shard = values.shard === undefined ? undefined : parseShard(values.shard);
    } catch (e) {
      throw new UsageError((e as Error).message);
    }
    if (shard && (values.mutation || values.coverage)) throw new UsageError('--shard applies to a run or a --list, not to --mutation or --coverage');

    if (values.list) {
      const tests = await listTests(paths, { grep: values.grep, shard });
      if (json) printJson(tests);
      else {
        for (const t of tests) console.log(`${t.id}${t.statements.length ? `  [${t.statements.join(' ')}]` : ''}`);
        console.log(`${tests.length} test(s)${shard ? ` in shard ${shard.current}/${shard.total}` : ''}`);
      }
      return 0;
    }

    if (values.coverage) {
      const tests = await listTests(paths);
      const without = suitesOf(paths).filter((s) => !fs.existsSync(specFileForSuite(s)));
      if (without.length) {
        throw new UsageError(`--coverage: ${without.map((s) => `suites/${s}`).join(', ')} ha${without.length > 1 ? 've' : 's'} no conformance statements `
          + `(${without.map((s) => path.relative(process.cwd(), specFileForSuite(s))).join(', ')}); the scheduler suites compare the kernel with the reference models scenario by scenario`);
      }
      const reports = suitesOf(paths).map((s) => coverageOf(loadStatements(specFileForSuite(s)), tests));
      if (json) printJson(reports);
      else for (const r of reports) console.log(renderCoverage(r));
      return reports.every((r) => !r.unchecked.length && !r.unknown.length) ? 0 : 1;
    }

    const director = (values.director ?? 'ipvs') as DirectorKind;
    if (!isDirectorName(director)) throw new UsageError(`unknown director "${values.director}" (known: ${DIRECTOR_NAMES.join(', ')})\nusage: ${usage}`);
    const backend = (values.backend ?? defaultBackend(director)) as BackendKind;
    if (!isBackendKind(backend)) throw new UsageError(`--backend must be one of ${BACKEND_KINDS.join(', ')}, not ${values.backend}`);
    if (director.startsWith(EXTERNAL_PREFIX)) {
      try {
        resolveAdapter(director);
      } catch (e) {
        throw new UsageError((e as Error).message);
      }
    }
    const unavailable = directorDriver(director).unavailable(backend);
    if (unavailable) {
      console.error(`vslab test: --director ${director}: ${unavailable}`);
      return 3;
    }
    // Two workers (two VMs) by default: measured ≈30 % faster than one on this 2-core host (docs/conformance.md).
    const workers = values.workers === undefined ? 2 : Number(values.workers);
    if (!(Number.isInteger(workers) && workers >= 1)) throw new UsageError('--workers takes a whole number >= 1');
    if (values.fault) {
      try {
        listFaults().find((f) => f.name === values.fault) ?? (() => { throw new Error(`no fault named "${values.fault}" (see vslab test --list-faults)`); })();
      } catch (e) {
        throw new UsageError((e as Error).message);
      }
    }
    try {
      checkSuiteOptions(paths, { director, backend, fault: values.fault });
    } catch (e) {
      if (e instanceof RunError) throw new UsageError(e.message);
      throw e;
    }
    const reporter = values.reporter ?? 'text';
    if (reporter !== 'text' && reporter !== 'ktap') throw new UsageError(`--reporter must be text or ktap, not ${reporter}`);
    if (reporter === 'ktap' && (json || values.mutation)) throw new UsageError('--reporter ktap reports a run: not with --json or --mutation');
    let kernels: MatrixKernel[] | undefined;
    if (values.kernel?.includes(',')) {
      try {
        kernels = parseKernelList(values.kernel, values.modules);
      } catch (e) {
        if (e instanceof RunError) throw new UsageError(e.message);
        throw e;
      }
      if (backend !== 'vm') throw new UsageError('--kernel with several kernels needs --backend vm');
      if (values.mutation) throw new UsageError('--mutation runs on one kernel; give --kernel a single kernel');
    }
    if (reporter === 'ktap' && kernels) throw new UsageError('--reporter ktap reports one run: give --kernel a single kernel');
    const out = path.resolve(values.out ?? defaultOut());
    // On a terminal one progress line (failures stay above it); otherwise Playwright's own lines.
    const progress = !json && !values.mutation && process.stdout.isTTY && process.stderr.isTTY ? new ProgressLine(process.stderr, out) : undefined;
    const log = json ? undefined : progress ? (chunk: string) => progress.feed(chunk) : (chunk: string) => process.stderr.write(chunk);
    const common = { paths, director, backend, kernel: values.kernel, modules: values.modules, out, workers, grep: values.grep, log };

    try {
      if (values.mutation) {
        const faults = values.faults ? values.faults.split(',').map((s) => s.trim()).filter(Boolean) : undefined;
        const m = await runMutation({ ...common, faults, baseline: values.baseline, progress: json ? undefined : (msg) => process.stderr.write(`… ${msg}\n`) });
        const report = reportIntoRun(out);
        if (json) printJson(m);
        else console.log(`${renderMutation(m)}\n${report}`);
        return (faults ? m.score.caught === m.score.faults : mutationPassed(m)) ? 0 : 1;
      }
      if (kernels) {
        const m = await runKernelMatrix({ ...common, fault: values.fault, shard }, kernels);
        // One report per kernel's run, and one of all of them with a matrix column per kernel.
        const reports = m.kernels.filter((k) => k.results).map((k) => reportIntoRun(k.out));
        const both = m.kernels.filter((k) => k.results).map((k) => k.out);
        if (both.length > 1) {
          try {
            reports.push(`report of all kernels: ${writeReport(both, path.join(out, REPORT_FILE)).file}`);
          } catch (e) {
            reports.push(`report of all kernels: not written (${(e as Error).message.split('\n')[0]})`);
          }
        }
        if (json) printJson(m);
        else console.log(`${renderKernelMatrix(m)}\n${reports.join('\n')}\nrun directory: ${out} (one subdirectory per kernel, ${MATRIX_FILE})`);
        return matrixPassed(m) ? 0 : 1;
      }
      progress?.start();
      const r = await runSuite({ ...common, fault: values.fault, shard }).finally(() => progress?.stop());
      const report = reportIntoRun(out);
      if (json) printJson(r);
      else if (reporter === 'ktap') {
        process.stdout.write(renderKtap(r));
        console.error(`${report}\nrun directory: ${out}`);
      } else {
        console.log(renderResults(r));
        console.log(report);
        // Only runs that saved captures and expectations can be replayed offline.
        console.log(`run directory: ${out}${r.summary.checks ? ` (vslab replay ${path.relative(process.cwd(), out) || '.'})` : ''}`);
      }
      return runPassed(r) ? 0 : 1;
    } catch (e) {
      if (e instanceof RunError) {
        console.error(`vslab test: ${e.message}`);
        return 3;
      }
      throw e;
    }
  },
};
