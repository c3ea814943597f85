import { listLabs } from '../../backend';
import { parse, printJson } from '../args';
import type { CliCommand } from '../command';

const usage = 'vslab ls [--json]';

export const command: CliCommand = {
  name: 'ls',
  summary: 'list labs',
  usage,
  async run(args) {
    const { values } = parse(args, { json: { type: 'boolean' } }, usage, 0);
    const labs = listLabs();
    if (values.json) { printJson(labs); return 0; }
    if (!labs.length) { console.log('no labs'); return 0; }
    console.log(`${'NAME'.padEnd(20)} ${'BACKEND'.padEnd(8)} ${'NODES'.padEnd(6)} ${'STATE'.padEnd(9)} TOPOLOGY`);
    for (const l of labs) console.log(`${l.name.padEnd(20)} ${l.backend.padEnd(8)} ${String(l.nodes.length).padEnd(6)} ${(l.alive ? 'up' : 'orphaned').padEnd(9)} ${l.topology}`);
    return 0;
  },
};
