import { parse, printJson } from '../args';
import type { CliCommand } from '../command';
import { ensureBaseImage, listVslabImages } from '../../backend/docker/images';
import { requireDaemon } from '../../backend/docker/engine';

const usage = 'vslab images [--build] [--json]';

export const command: CliCommand = {
  name: 'images',
  summary: "list the docker backend's images (built here from Debian packages, tagged by a hash of their inputs); --build builds the current ones",
  usage,
  async run(args) {
    const { values } = parse(args, { build: { type: 'boolean' }, json: { type: 'boolean' } }, usage);
    await requireDaemon();
    if (values.build) await ensureBaseImage((m) => { if (!values.json) console.error(`vslab: ${m}`); });
    const images = await listVslabImages();
    if (values.json) { printJson(images); return 0; }
    if (!images.length) { console.log('no vslab images (they are built on the first `vslab up --backend docker`, or with --build)'); return 0; }
    console.log(`${'IMAGE'.padEnd(34)} ${'KIND'.padEnd(6)} ${'SIZE'.padEnd(8)} ${'CREATED'.padEnd(24)} CURRENT`);
    for (const i of images) console.log(`${i.ref.padEnd(34)} ${i.kind.padEnd(6)} ${`${(i.sizeBytes / 1e6).toFixed(1)}MB`.padEnd(8)} ${i.createdAt.padEnd(24)} ${i.current ? 'yes' : 'no (stale: `vslab gc --images` removes it)'}`);
    return 0;
  },
};
