import { parse, printJson } from '../args';
import { UsageError, type CliCommand } from '../command';
import { ensureImage, listVslabImages, type ImageKind } from '../../backend/docker/images';
import { requireDaemon } from '../../backend/docker/engine';

const usage = 'vslab images [--build base|director] [--json]';

export const command: CliCommand = {
  name: 'images',
  summary: "list the docker backend's images (built here from Debian packages, tagged by a hash of their inputs); --build builds one",
  usage,
  async run(args) {
    const { values } = parse(args, { build: { type: 'string' }, json: { type: 'boolean' } }, usage);
    if (values.build !== undefined && values.build !== 'base' && values.build !== 'director') throw new UsageError(`--build takes base or director, not "${values.build}"\nusage: ${usage}`);
    await requireDaemon();
    if (values.build) await ensureImage(values.build as ImageKind, (m) => { if (!values.json) console.error(`vslab: ${m}`); });
    const images = await listVslabImages();
    if (values.json) { printJson(images); return 0; }
    if (!images.length) { console.log('no vslab images (they are built on the first `vslab up --backend docker`, or with --build)'); return 0; }
    console.log(`${'IMAGE'.padEnd(34)} ${'KIND'.padEnd(9)} ${'SIZE'.padEnd(8)} ${'CREATED'.padEnd(24)} CURRENT`);
    for (const i of images) console.log(`${i.ref.padEnd(34)} ${i.kind.padEnd(9)} ${`${(i.sizeBytes / 1e6).toFixed(1)}MB`.padEnd(8)} ${i.createdAt.padEnd(24)} ${i.current ? 'yes' : 'no (stale: `vslab gc --images` removes it)'}`);
    return 0;
  },
};
