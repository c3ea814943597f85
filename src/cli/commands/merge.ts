// `vslab merge RUN... --out DIR`: join the run directories of a sharded run (vslab test --shard i/n).
import * as path from 'path';
import { mergeRunsWithReport } from '../../runner/merge';
import { renderResults } from '../../runner/results';
import { RunError, runPassed } from '../../runner/run';
import { parse, printJson } from '../args';
import { UsageError, type CliCommand } from '../command';

const usage = `vslab merge RUN... --out DIR [--json]
  RUN   run directories of \`vslab test --shard i/n\` (all n shards of one run), or whole runs against the
        same director, backend, kernel and fault (e.g. two suites)
  --out the merged run directory: results.json (statements and summary recomputed), junit.xml, every
        test's capture.pcapng / expectations.json / checks.json, lab records, report.html
Exit status: 0 every merged test passed (or is not applicable / a known failure), 1 a test failed, 2 usage.`;

export const command: CliCommand = {
  name: 'merge',
  summary: 'join the run directories of a sharded run (vslab test --shard i/n) into one',
  usage,
  async run(args) {
    const { values, positionals } = parse(args, { out: { type: 'string' }, json: { type: 'boolean' } }, usage);
    if (!positionals.length) throw new UsageError(`give the run directories to merge\nusage: ${usage}`);
    if (!values.out) throw new UsageError(`--out DIR is required (where the merged run goes)\nusage: ${usage}`);
    let r;
    let report: string;
    try {
      ({ results: r, report } = mergeRunsWithReport(positionals, values.out));
    } catch (e) {
      if (e instanceof RunError) throw new UsageError(e.message);
      throw e;
    }
    if (values.json) printJson(r);
    else {
      console.log(renderResults(r));
      console.log(report);
      console.log(`merged run directory: ${path.resolve(values.out)}`);
    }
    return runPassed(r) ? 0 : 1;
  },
};
