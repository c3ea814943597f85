// Images for the docker backend, built here from Debian packages; nothing is ever pulled from a
// registry. `vslab/base` (busybox-static) is every node's default; `vslab/director` (Debian with
// nftables, haproxy, nginx, keepalived, ipvsadm, conntrack) is built on demand with mmdebstrap.
// Images are tagged by a hash of their inputs, so a changed input builds a new one, and labelled
// vslab.image for `vslab images` / gc.
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
/** The director image's Debian packages: the directors the implementations issue adds, and their tools. */
const DIRECTOR_PACKAGES = ['iproute2', 'nftables', 'haproxy', 'nginx-light', 'libnginx-mod-stream', 'keepalived', 'ipvsadm', 'conntrack', 'procps', 'iputils-ping', 'netcat-openbsd'];
const DEBIAN_SUITE = 'bookworm';
/** Keeps a container alive without doing anything (busybox sleep takes no "infinity"). */
export const IDLE_COMMAND = ['sleep', '2147483647'];

export type ImageKind = 'base' | 'director';

interface Recipe {
  repo: string;
  /** What the tag hashes: a changed input makes a new image. Bump the leading version when the recipe changes. */
  inputs(): Array<string | Buffer>;
  /** Where the root filesystem tar comes from (a staged folder, or mmdebstrap). */
  rootfs(): { stream: NodeJS.ReadableStream; errors(): string; done(): Promise<void>; cleanup(): void };
  what: string;
}

function tarOf(dir: string) {
  const tar = spawn('tar', ['-C', dir, '--numeric-owner', '--owner=0', '--group=0', '-cf', '-', '.'], { stdio: ['ignore', 'pipe', 'pipe'] });
  return processOutput(tar, () => fs.rmSync(dir, { recursive: true, force: true }));
}

function processOutput(p: ReturnType<typeof spawn>, cleanup: () => void = () => undefined) {
  let err = '';
  p.stderr!.on('data', (d: Buffer) => { err = (err + d.toString()).slice(-4000); });
  const done = new Promise<void>((resolve, reject) => p.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`exited ${code}: ${err.trim().split('\n').slice(-5).join(' | ')}`)))));
  return { stream: p.stdout!, errors: () => err.trim(), done: () => done, cleanup };
}

const RECIPES: Record<ImageKind, Recipe> = {
  // busybox-static's one binary: a shell and `sleep` keep the container alive; lab tools (ip, tcpdump,
  // nft, the traffic tools) run from the host inside the container's namespace. 2 MB, about a second.
  base: {
    repo: 'vslab/base',
    what: 'busybox-static',
    inputs: () => {
      if (!fs.existsSync(BUSYBOX)) throw new Error(`the docker backend builds its base image from ${BUSYBOX} (Debian's busybox-static), which is missing: apt-get install busybox-static (scripts/setup.sh does)`);
      return ['base-1', JSON.stringify(APPLETS), fs.readFileSync(BUSYBOX)];
    },
    rootfs: () => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vslab-image-'));
      for (const d of ['bin', 'etc', 'tmp', 'proc', 'sys', 'dev', 'vslab/work']) fs.mkdirSync(path.join(dir, d), { recursive: true });
      fs.copyFileSync(BUSYBOX, path.join(dir, 'bin/busybox'));
      fs.chmodSync(path.join(dir, 'bin/busybox'), 0o755);
      for (const a of APPLETS) fs.symlinkSync('busybox', path.join(dir, 'bin', a));
      fs.writeFileSync(path.join(dir, 'etc/passwd'), 'root:x:0:0:root:/:/bin/sh\n');
      fs.writeFileSync(path.join(dir, 'etc/group'), 'root:x:0:\n');
      return tarOf(dir);
    },
  },
  // Debian with the director programs, bootstrapped by mmdebstrap from Debian's archive (through apt,
  // like any package install; no registry): 1.5–4 minutes the first time, then cached by hash.
  director: {
    repo: 'vslab/director',
    what: `Debian ${DEBIAN_SUITE} packages (mmdebstrap)`,
    inputs: () => ['director-1', DEBIAN_SUITE, JSON.stringify(DIRECTOR_PACKAGES)],
    rootfs: () => {
      const p = spawn('mmdebstrap', ['--variant=essential', '--mode=root', '--quiet', `--include=${DIRECTOR_PACKAGES.join(',')}`,
        ...['man', 'doc', 'locale', 'info'].map((d) => `--dpkgopt=path-exclude=/usr/share/${d}/*`), DEBIAN_SUITE, '-'], { stdio: ['ignore', 'pipe', 'pipe'] });
      p.on('error', () => undefined); // reported through done(): mmdebstrap missing
      return processOutput(p);
    },
  },
};

/** An image's tag: a hash of its recipe's inputs. */
export function imageRef(kind: ImageKind): string {
  const h = createHash('sha256');
  for (const i of RECIPES[kind].inputs()) h.update(i);
  return `${RECIPES[kind].repo}:${h.digest('hex').slice(0, 16)}`;
}

export const baseImageRef = () => imageRef('base');

/** A topology's name for one of vslab's own images, without its hash: `vslab/base`, `vslab/director`. */
export function vslabImageKind(ref: string): ImageKind | undefined {
  return (Object.keys(RECIPES) as ImageKind[]).find((k) => RECIPES[k].repo === ref);
}

export async function imageExists(ref: string): Promise<boolean> {
  try { await docker().getImage(ref).inspect(); return true; } catch (e) {
    if ((e as { statusCode?: number }).statusCode === 404) return false;
    throw e;
  }
}

const building = new Map<string, Promise<string>>();

/** One of vslab's images, built once per input hash (concurrent callers in this process share the build). */
export function ensureImage(kind: ImageKind, progress: (m: string) => void = () => undefined): Promise<string> {
  const ref = imageRef(kind);
  let b = building.get(ref);
  if (!b) {
    b = (async () => {
      if (await imageExists(ref)) return ref;
      progress(`building image ${ref} from ${RECIPES[kind].what}`);
      await buildImage(kind, ref);
      return ref;
    })().finally(() => building.delete(ref));
    building.set(ref, b);
  }
  return b;
}

export const ensureBaseImage = (progress?: (m: string) => void) => ensureImage('base', progress);

async function buildImage(kind: ImageKind, ref: string): Promise<void> {
  const src = RECIPES[kind].rootfs();
  try {
    const [repo, tag] = ref.split(':');
    const imported = docker().importImage(src.stream, {
      repo, tag, changes: [`LABEL ${LABEL_IMAGE}=${kind}`, `CMD ${JSON.stringify(IDLE_COMMAND)}`, `ENV PATH=${kind === 'base' ? '/bin' : '/usr/sbin:/usr/bin:/sbin:/bin'}`],
    });
    const [out] = await Promise.all([imported, src.done().catch((e: Error) => { throw new Error(`cannot build image ${ref} from ${RECIPES[kind].what}: ${e.message}`); })]);
    await new Promise<void>((resolve, reject) => docker().modem.followProgress(out, (err: Error | null, res: Array<{ error?: string }>) => {
      const failed = err?.message ?? res.find((r) => r.error)?.error;
      if (failed) reject(new Error(`docker could not import image ${ref}: ${failed}${src.errors() ? ` (${src.errors()})` : ''}`)); else resolve();
    }));
    if (!(await imageExists(ref))) throw new Error(`docker imported image ${ref} but it is not there${src.errors() ? ` (${src.errors()})` : ''}`);
  } catch (e) {
    // A root filesystem cut short may still have been imported: never leave it under the hash tag.
    await docker().getImage(ref).remove({ force: true }).catch(() => undefined);
    throw e;
  } finally {
    src.cleanup();
  }
}

export interface VslabImage { ref: string; id: string; kind: string; sizeBytes: number; createdAt: string; current: boolean }

/** vslab's images in the daemon (labelled vslab.image); `current` marks those the present inputs hash to. */
export async function listVslabImages(): Promise<VslabImage[]> {
  const cur = new Set((Object.keys(RECIPES) as ImageKind[]).flatMap((k) => { try { return [imageRef(k)]; } catch { return []; } }));
  const imgs: Docker.ImageInfo[] = await docker().listImages({ filters: { label: [LABEL_IMAGE] } });
  return imgs.flatMap((i) => (i.RepoTags?.length ? i.RepoTags : [i.Id]).map((ref) => ({
    ref, id: i.Id, kind: i.Labels?.[LABEL_IMAGE] ?? '?', sizeBytes: i.Size, createdAt: new Date(i.Created * 1000).toISOString(), current: cur.has(ref),
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
