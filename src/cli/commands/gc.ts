import { gc } from '../../backend/gc';
import { listVslabImages, removeVslabImages } from '../../backend/docker/images';
import { requireDaemon } from '../../backend/docker/engine';
import { parse, printJson } from '../args';
import { UsageError, type CliCommand } from '../command';

const usage = 'vslab gc [--dry-run] [--lab NAME | --prefix LAB-PREFIX] [--images] [--json]\n  --lab NAME     only what lab NAME left behind (others\' leftovers on a shared machine stay)\n  --prefix P     only labs whose name starts with P (a soak or a test on a shared machine)';

export const command: CliCommand = {
  name: 'gc',
  summary: 'find and remove what crashed or killed labs left behind (only vslab\'s), and prove the host is clean',
  usage,
  async run(args) {
    const { values } = parse(args, { 'dry-run': { type: 'boolean' }, lab: { type: 'string' }, prefix: { type: 'string' }, images: { type: 'boolean' }, json: { type: 'boolean' } }, usage, 0);
    if (values.lab !== undefined && !/^[a-z][a-z0-9]*(-[a-z0-9]+)*$/.test(values.lab)) throw new UsageError(`--lab "${values.lab}": not a lab name (lower-case letters, digits and single hyphens)`);
    // --prefix: only labs whose name starts with it (their namespaces, VMs, containers, state, work
    // directories), so a soak or a test on a shared machine removes what it made and nothing of others'.
    const prefix = values.prefix;
    if (prefix !== undefined && !/^[a-z][a-z0-9-]*$/.test(prefix)) throw new UsageError(`--prefix "${prefix}": a lab name prefix is lower-case letters, digits and hyphens, starting with a letter\nusage: ${usage}`);
    if (prefix !== undefined && values.lab !== undefined) throw new UsageError(`--lab and --prefix: use one or the other\nusage: ${usage}`);
    if ((prefix !== undefined || values.lab !== undefined) && values.images) throw new UsageError(`--images removes vslab's image cache, which belongs to no lab: not with --lab or --prefix\nusage: ${usage}`);
    const r = await gc(!!values['dry-run'], { lab: values.lab, prefix });
    // --images: the docker backend's images too (they are a cache: the next docker lab builds what it needs again).
    let images: { removed: string[]; kept: Array<{ ref: string; reason: string }> } | undefined;
    if (values.images) {
      await requireDaemon();
      images = values['dry-run'] ? { removed: [], kept: (await listVslabImages()).map((i) => ({ ref: i.ref, reason: 'dry run' })) } : await removeVslabImages(false);
    }
    if (values.json) { printJson(images ? { ...r, images } : r); return r.errors.length ? 1 : 0; }
    for (const ref of images?.removed ?? []) console.log(`removed image ${ref}`);
    for (const k of images?.kept ?? []) console.log(`${values['dry-run'] ? 'would remove' : 'kept'} image ${k.ref}${values['dry-run'] ? '' : `: ${k.reason}`}`);
    if (!r.found.length) console.log('nothing left behind');
    for (const it of r.found) console.log(`${r.dryRun ? 'would remove' : r.removed.includes(it) ? 'removed' : 'FAILED to remove'} ${it.kind} ${it.id}${it.lab ? ` (lab ${it.lab})` : ''}: ${it.reason}`);
    for (const e of r.errors) console.log(`error: ${e}`);
    const rem = r.remaining;
    console.log(`host: ${rem.labsUp.length} lab(s) up${rem.labsUp.length ? ` (${rem.labsUp.join(', ')})` : ''}; vslab namespaces ${rem.namespaces}, guard routes ${rem.hostRoutes.length}, VMs ${rem.qemu}, containers ${rem.containers}`);
    console.log(r.clean ? `clean: nothing of ${prefix === undefined ? 'vslab\'s' : `labs named ${prefix}*`} is left but labs that are up` : r.dryRun ? 'not clean: run `vslab gc` to remove the above' : 'not clean: see the errors above');
    return r.errors.length ? 1 : 0;
  },
};
