// `vslab report <run-dir>... [--out FILE]`: one self-contained HTML report of finished runs.
import * as fs from 'fs';
import * as path from 'path';
import { REPORT_FILE, writeReport } from '../../report';
import { RunError } from '../../runner/run';
import { parse } from '../args';
import { UsageError, type CliCommand } from '../command';

const usage = `vslab report RUN-DIR... [--out FILE]
  RUN-DIR  run directories of \`vslab test\` (or \`vslab merge\`, or a --mutation run); several runs make
           one column each in the statement × implementation matrix
  --out    the HTML file (default RUN-DIR/${REPORT_FILE} for one run; required for several)
  One self-contained HTML file: summary, statement matrix filterable by status, every test with its failed
  checks' field diffs and its flows' packet journeys, topologies, scheduler distributions, mutation matrix.
  It loads nothing from the network; capture links point at the run directories next to it.`;

export const command: CliCommand = {
  name: 'report',
  summary: 'write one self-contained HTML report of finished runs (matrix, journeys, topologies, distributions)',
  usage,
  async run(args) {
    const { values, positionals } = parse(args, { out: { type: 'string' } }, usage);
    if (!positionals.length) throw new UsageError(`give at least one run directory\nusage: ${usage}`);
    for (const d of positionals) if (!fs.existsSync(d) || !fs.statSync(d).isDirectory()) throw new UsageError(`${d}: not a directory`);
    if (positionals.length > 1 && !values.out) throw new UsageError(`--out FILE is required when reporting several runs\nusage: ${usage}`);
    const out = values.out ?? path.join(positionals[0], REPORT_FILE);
    if (fs.existsSync(out) && fs.statSync(out).isDirectory()) throw new UsageError(`--out ${out} is a directory; give a file name`);
    if (!fs.existsSync(path.dirname(path.resolve(out)))) throw new UsageError(`--out ${out}: directory ${path.dirname(path.resolve(out))} does not exist`);
    try {
      const r = writeReport(positionals, out);
      console.log(`${r.file} (${(r.bytes / 1024).toFixed(0)} KiB)`);
      return 0;
    } catch (e) {
      if (e instanceof RunError) throw new UsageError(e.message);
      throw e;
    }
  },
};
