// `vslab test`: run conformance suites against a director, list the faulty directors, show which tests
// check which statements, or run every fault and print the mutation matrix.
import * as fs from 'fs';
import * as path from 'path';
import type { BackendKind } from '../../backend/types';
import { listFaults } from '../../director/faults';
import { EXTERNAL_PREFIX, resolveAdapter } from '../../director/external';
import { DIRECTOR_NAMES, directorDriver, isDirectorName, type DirectorKind } from '../../director/registry';
import { defaultBackend } from '../../runner/env';
import { mutationPassed, renderMutation, runMutation } from '../../runner/mutation';
import { renderResults } from '../../runner/results';
import { checkSuiteOptions, listTests, resolveSuitePaths, RunError, runPassed, runSuite, suitesOf } from '../../runner/run';
import { coverageOf, loadStatements, renderCoverage, specFileForSuite } from '../../runner/spec';
import { parse, printJson } from '../args';
import { UsageError, type CliCommand } from '../command';

const usage = `vslab test [PATHS...] [--director NAME] [--backend vm|netns] [--kernel K] [--modules DIR] [--fault NAME]
                 [--workers N] [--grep REGEX] [--out DIR] [--json]
       vslab test --list-faults [--json]
       vslab test [PATHS...] --coverage [--json]
       vslab test [PATHS...] --mutation [--faults A,B,...] [--baseline RUNDIR] [--out DIR] [--json]
  PATHS      suite directories or files under suites/ (default suites/forwarding)
  --director implementation under test (${DIRECTOR_NAMES.join(', ')}, or external:PATH for an
             adapter, docs/adapter-protocol.md; default ipvs)
  --backend  vm or netns (default: vm when this host's kernel has no IPVS)
  --kernel   VM kernel: bookworm (6.1, default), backports (6.12) or a vmlinuz path (with --modules)
  --fault    run against the director sabotaged by this fault (see --list-faults)
  --workers  parallel workers, one VM each on the vm backend (default 2)
  --out      run directory (default vslab-runs/<time>): results.json, junit.xml, and per test
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
      workers: { type: 'string' }, grep: { type: 'string' }, out: { type: 'string' }, json: { type: 'boolean' },
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
    if (backend !== 'vm' && backend !== 'netns') throw new UsageError(`--backend must be vm or netns, not ${values.backend}`);
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
    const out = path.resolve(values.out ?? defaultOut());
    const log = json ? undefined : (chunk: string) => process.stderr.write(chunk);
    const common = { paths, director, backend, kernel: values.kernel, modules: values.modules, out, workers, grep: values.grep, log };

    try {
      if (values.mutation) {
        const faults = values.faults ? values.faults.split(',').map((s) => s.trim()).filter(Boolean) : undefined;
        const m = await runMutation({ ...common, faults, baseline: values.baseline, progress: json ? undefined : (msg) => process.stderr.write(`… ${msg}\n`) });
        if (json) printJson(m);
        else console.log(renderMutation(m));
        return (faults ? m.score.caught === m.score.faults : mutationPassed(m)) ? 0 : 1;
      }
      const r = await runSuite({ ...common, fault: values.fault });
      if (json) printJson(r);
      else {
        console.log(renderResults(r));
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
