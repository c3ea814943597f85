// vslab's command line: dispatch to one subcommand and turn errors into exit codes.
// 0 ok; 1 a check or test failed; 2 bad arguments or input files; 3 the host lacks something.
import { TopologyError } from '../topology/load';
import { UsageError } from './command';
import { commands } from './registry';

function help(): string {
  const w = Math.max(...commands.map((c) => c.name.length));
  return ['vslab — lab harness and conformance suite for LVS-style load balancers', '', 'commands:',
    ...commands.map((c) => `  ${c.name.padEnd(w)}  ${c.summary}`), '', 'vslab help <command> shows its usage.'].join('\n');
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === 'help' || name === '--help' || name === '-h') {
    const c = rest[0] && commands.find((x) => x.name === rest[0]);
    console.log(c ? `${c.summary}\nusage: ${c.usage}` : help());
    return 0;
  }
  if (name === '--version') { console.log(require('../../package.json').version); return 0; }
  const cmd = commands.find((c) => c.name === name);
  if (!cmd) {
    process.stderr.write(`vslab: unknown command "${name}"\n\n${help()}\n`);
    return 2;
  }
  try {
    return await cmd.run(rest);
  } catch (e) {
    if (e instanceof TopologyError) { process.stderr.write(`${e.message}\n`); return 2; }
    if (e instanceof UsageError) { process.stderr.write(`vslab ${name}: ${e.message}\n`); return 2; }
    process.stderr.write(`vslab ${name}: ${(e as Error).message}\n`);
    if (process.env.VSLAB_DEBUG) process.stderr.write(`${(e as Error).stack}\n`);
    return 1;
  }
}
