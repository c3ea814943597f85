// Images for the docker backend, built here from Debian packages already on this host; nothing is
// ever pulled. vslab's base image is busybox-static's one binary (a shell and `sleep` to keep the
// container alive): lab tools (ip, tcpdump, nft, the traffic tools) run from the host inside the
// container's network namespace, so nodes need nothing else. Images are tagged by a hash of their
// inputs, so a changed input builds a new one, and labelled vslab.image for `vslab images` / gc.
import { spawn } from 'child_process';
import { createHash } from 'crypto';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import type Docker from 'dockerode';
import { docker, LABEL_IMAGE } from './engine';

const BUSYBOX = '/bin/busybox';
/** Applets linked into the base image (a user may `vslab exec` into it for these). */
const APPLETS = ['sh', 'sleep', 'cat', 'ls', 'echo', 'true', 'false', 'ip', 'ping', 'nc', 'httpd', 'wget', 'ps', 'kill', 'mkdir', 'rm', 'env', 'hostname'];
/** Bumped when the recipe below changes in a way the inputs do not show. */
const RECIPE = 'base-1';
export const BASE_REPO = 'vslab/base';
/** Keeps a container alive without doing anything (busybox sleep takes no "infinity"). */
export const IDLE_COMMAND = ['sleep', '2147483647'];

/** The base image's tag: a hash of the recipe and the busybox binary it packs. */
export function baseImageRef(): string {
  if (!fs.existsSync(BUSYBOX)) throw new Error(`the docker backend builds its base image from ${BUSYBOX} (Debian's busybox-static), which is missing: apt-get install busybox-static (scripts/setup.sh does)`);
  const h = createHash('sha256').update(RECIPE).update(JSON.stringify(APPLETS)).update(fs.readFileSync(BUSYBOX)).digest('hex').slice(0, 16);
  return `${BASE_REPO}:${h}`;
}

export async function imageExists(ref: string): Promise<boolean> {
  try { await docker().getImage(ref).inspect(); return true; } catch (e) {
    if ((e as { statusCode?: number }).statusCode === 404) return false;
    throw e;
  }
}

let building: Promise<string> | undefined;

/** The base image, built once per input hash (concurrent callers in this process share the build). */
export function ensureBaseImage(progress: (m: string) => void = () => undefined): Promise<string> {
  const ref = baseImageRef();
  building ??= (async () => {
    if (await imageExists(ref)) return ref;
    progress(`building image ${ref} from busybox-static`);
    await buildBaseImage(ref);
    return ref;
  })().finally(() => { building = undefined; });
  return building;
}

async function buildBaseImage(ref: string): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vslab-image-'));
  try {
    for (const d of ['bin', 'etc', 'tmp', 'proc', 'sys', 'dev', 'vslab/work']) fs.mkdirSync(path.join(dir, d), { recursive: true });
    fs.copyFileSync(BUSYBOX, path.join(dir, 'bin/busybox'));
    fs.chmodSync(path.join(dir, 'bin/busybox'), 0o755);
    for (const a of APPLETS) fs.symlinkSync('busybox', path.join(dir, 'bin', a));
    fs.writeFileSync(path.join(dir, 'etc/passwd'), 'root:x:0:0:root:/:/bin/sh\n');
    fs.writeFileSync(path.join(dir, 'etc/group'), 'root:x:0:\n');
    const tar = spawn('tar', ['-C', dir, '--numeric-owner', '--owner=0', '--group=0', '-cf', '-', '.'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let tarErr = '';
    tar.stderr.on('data', (d: Buffer) => { tarErr += d.toString(); });
    const [repo, tag] = ref.split(':');
    const out = await docker().importImage(tar.stdout, {
      repo, tag, changes: [`LABEL ${LABEL_IMAGE}=base`, `CMD ${JSON.stringify(IDLE_COMMAND)}`, 'ENV PATH=/bin'],
    });
    await new Promise<void>((resolve, reject) => docker().modem.followProgress(out, (err: Error | null, res: Array<{ error?: string }>) => {
      const failed = err?.message ?? res.find((r) => r.error)?.error;
      if (failed) reject(new Error(`docker could not import the base image ${ref}: ${failed}${tarErr ? ` (tar: ${tarErr.trim()})` : ''}`)); else resolve();
    }));
    if (!(await imageExists(ref))) throw new Error(`docker imported the base image but ${ref} is not there${tarErr ? ` (tar: ${tarErr.trim()})` : ''}`);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

export interface VslabImage { ref: string; id: string; kind: string; sizeBytes: number; createdAt: string; current: boolean }

/** vslab's images in the daemon (labelled vslab.image); `current` marks those the present inputs hash to. */
export async function listVslabImages(): Promise<VslabImage[]> {
  const cur = fs.existsSync(BUSYBOX) ? baseImageRef() : '';
  const imgs: Docker.ImageInfo[] = await docker().listImages({ filters: { label: [LABEL_IMAGE] } });
  return imgs.flatMap((i) => (i.RepoTags?.length ? i.RepoTags : [i.Id]).map((ref) => ({
    ref, id: i.Id, kind: i.Labels?.[LABEL_IMAGE] ?? '?', sizeBytes: i.Size, createdAt: new Date(i.Created * 1000).toISOString(), current: ref === cur,
  })));
}

/** Removes vslab's images (all, or only those no current input hashes to); images in use by a container stay, with the reason. */
export async function removeVslabImages(onlyStale: boolean): Promise<{ removed: string[]; kept: Array<{ ref: string; reason: string }> }> {
  const removed: string[] = [], kept: Array<{ ref: string; reason: string }> = [];
  for (const im of await listVslabImages()) {
    if (onlyStale && im.current) continue;
    try {
      await docker().getImage(im.ref).remove();
      removed.push(im.ref);
    } catch (e) {
      kept.push({ ref: im.ref, reason: (e as { statusCode?: number }).statusCode === 409 ? 'in use by a container' : (e as Error).message });
    }
  }
  return { removed, kept };
}
