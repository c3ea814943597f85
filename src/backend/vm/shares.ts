// What the guest sees of the host: the project directory (read-only, at the same path, so dist/ and
// node_modules resolve as on the host) and this process's node binary (read-only, through a
// directory of its own under the cache), so the lab's Node traffic tools run in the guest unchanged:
// the image has a link at node's host path to the shared binary and node's shared libraries.
//
// Measured (docs/vm.md): node in the initramfs costs ~1 s more boot and 4x the image; over 9p the
// first start takes ~1.2 s and later ones ~0.25 s (page cache), the same as from the image.
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { cacheDir } from './cache';
import type { VmShare } from './guest';

/** Where the guest mounts the directory holding the shared node binary. */
export const GUEST_NODE_DIR = '/opt/vslab/node';

/** The project root (the directory holding package.json, dist/ and guest/). */
export function projectRoot(): string {
  return path.resolve(__dirname, '..', '..', '..');
}

/** A cache directory holding only this node binary (a hard link, or a copy across filesystems). */
export function nodeShareDir(): string {
  const real = fs.realpathSync(process.execPath);
  const st = fs.statSync(real);
  const key = crypto.createHash('sha256').update(`${real}\0${st.size}\0${st.mtimeMs}`).digest('hex').slice(0, 16);
  const dir = path.join(cacheDir('node'), key);
  const target = path.join(dir, 'node');
  if (!fs.existsSync(target)) {
    fs.mkdirSync(dir, { recursive: true });
    const tmp = `${target}.tmp-${process.pid}`;
    try {
      fs.linkSync(real, tmp);
    } catch {
      fs.copyFileSync(real, tmp);
      fs.chmodSync(tmp, 0o755);
    }
    fs.renameSync(tmp, target);
  }
  return dir;
}

/** The shares a lab guest gets by default: the project and node, both read-only. */
export function defaultShares(): VmShare[] {
  return [
    { hostPath: projectRoot(), readOnly: true },
    { hostPath: nodeShareDir(), guestPath: GUEST_NODE_DIR, readOnly: true },
  ];
}
