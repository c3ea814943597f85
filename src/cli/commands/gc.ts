import { gc } from '../../backend/gc';
import { parse, printJson } from '../args';
import type { CliCommand } from '../command';

const usage = 'vslab gc [--dry-run] [--json]';

export const command: CliCommand = {
  name: 'gc',
  summary: 'find and remove what crashed or killed labs left behind (only vslab\'s), and prove the host is clean',
  usage,
  async run(args) {
    const { values } = parse(args, { 'dry-run': { type: 'boolean' }, json: { type: 'boolean' } }, usage, 0);
    const r = await gc(!!values['dry-run']);
    if (values.json) { printJson(r); return r.errors.length ? 1 : 0; }
    if (!r.found.length) console.log('nothing left behind');
    for (const it of r.found) console.log(`${r.dryRun ? 'would remove' : r.removed.includes(it) ? 'removed' : 'FAILED to remove'} ${it.kind} ${it.id}${it.lab ? ` (lab ${it.lab})` : ''}: ${it.reason}`);
    for (const e of r.errors) console.log(`error: ${e}`);
    const rem = r.remaining;
    console.log(`host: ${rem.labsUp.length} lab(s) up${rem.labsUp.length ? ` (${rem.labsUp.join(', ')})` : ''}; vslab namespaces ${rem.namespaces}, guard routes ${rem.hostRoutes.length}, VMs ${rem.qemu}, containers ${rem.containers}`);
    console.log(r.clean ? 'clean: nothing of vslab\'s is left but labs that are up' : r.dryRun ? 'not clean: run `vslab gc` to remove the above' : 'not clean: see the errors above');
    return r.errors.length ? 1 : 0;
  },
};
