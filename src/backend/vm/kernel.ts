// The guest kernel: a Debian kernel fetched with a private apt state, or one the user gives.
//
// Debian kernels are downloaded with `apt-get download` using a sources list, package lists, cache
// and dpkg status of our own under <cache>/apt (passed with -c/-o options), so the system's apt
// configuration, its package lists and /boot are never touched. The package is unpacked with
// `dpkg-deb -x` into <cache>/kernels/<release>/, the ELF vmlinux is extracted once next to it and
// `depmod -b` writes the modules.dep the package does not ship. Everything is reused on later runs
// without network; `refresh: true` asks Debian for a newer kernel.
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { cacheDir, withCacheLock, writeFileAtomic } from './cache';
import { runTool, runToolOk } from './proc';
import { extractVmlinux, isElf } from './vmlinux';

/** Debian kernels we know how to fetch: bookworm's 6.1 (default) and bookworm-backports' 6.12 (generic flavour, has 9p). */
export type DebianKernelSuite = 'bookworm' | 'bookworm-backports';

export type KernelSpec =
  | { kind: 'debian'; suite: DebianKernelSuite; /** Ask Debian for the newest version even if one is cached. */ refresh?: boolean }
  | { kind: 'local'; /** bzImage/vmlinuz or an ELF vmlinux. */ image: string; /** /lib/modules/<release> directory of that kernel. */ modules: string };

export interface GuestKernel {
  /** Kernel release as `uname -r` prints it, e.g. "6.1.0-50-amd64". */
  release: string;
  /** The uncompressed ELF kernel qemu boots (PVH entry). */
  vmlinux: string;
  /** Root directory such that <modulesRoot>/lib/modules/<release>/modules.dep exists (for `modprobe -d`). */
  modulesRoot: string;
  /** Human-readable origin, e.g. "Debian bookworm linux-image-6.1.0-50-amd64 6.1.176-1". */
  origin: string;
}

export const DEFAULT_KERNEL: KernelSpec = { kind: 'debian', suite: 'bookworm' };

/** Parse a --kernel option value: "bookworm" (6.1), "backports"/"bookworm-backports" (6.12), or a kernel image path (needs modules). */
export function parseKernelOption(kernel: string | undefined, modules?: string): KernelSpec {
  if (!kernel || kernel === 'bookworm' || kernel === 'default') {
    if (modules) throw new Error('--modules only goes with --kernel <vmlinuz>');
    return DEFAULT_KERNEL;
  }
  if (kernel === 'backports' || kernel === 'bookworm-backports') {
    if (modules) throw new Error('--modules only goes with --kernel <vmlinuz>');
    return { kind: 'debian', suite: 'bookworm-backports' };
  }
  if (!modules) {
    throw new Error(`--kernel ${kernel}: a kernel image also needs --modules <dir> (its /lib/modules/<release> directory); ` +
      'or use --kernel bookworm (6.1) or --kernel backports (6.12)');
  }
  return { kind: 'local', image: path.resolve(kernel), modules: path.resolve(modules) };
}

export async function resolveKernel(spec: KernelSpec = DEFAULT_KERNEL, progress?: (m: string) => void): Promise<GuestKernel> {
  return spec.kind === 'debian' ? debianKernel(spec.suite, !!spec.refresh, progress) : localKernel(spec.image, spec.modules, progress);
}

// ---------------------------------------------------------------------------------------------
// Debian kernels through a private apt state

const MIRROR = () => process.env.VSLAB_DEBIAN_MIRROR || 'http://deb.debian.org/debian';
const KEYRING = '/usr/share/keyrings/debian-archive-keyring.gpg';

interface SuiteRecord {
  suite: DebianKernelSuite;
  package: string;
  version: string;
  release: string;
  fetchedAt: string;
}

function aptState(): { dir: string; args: string[] } {
  const dir = cacheDir('apt');
  for (const d of ['lists/partial', 'cache/archives/partial', 'sources.list.d', 'preferences.d', 'state']) fs.mkdirSync(path.join(dir, d), { recursive: true });
  if (!fs.existsSync(KEYRING)) throw new Error(`${KEYRING} is missing: install the debian-archive-keyring package`);
  const sources = ['bookworm', 'bookworm-backports'].map((s) => `deb [signed-by=${KEYRING}] ${MIRROR()} ${s} main\n`).join('');
  const conf = [
    `Dir::Etc::SourceList "${dir}/sources.list";`,
    `Dir::Etc::SourceParts "${dir}/sources.list.d";`,
    `Dir::Etc::Preferences "${dir}/preferences";`,
    `Dir::Etc::PreferencesParts "${dir}/preferences.d";`,
    `Dir::State "${dir}/state";`,
    `Dir::State::Lists "${dir}/lists";`,
    `Dir::State::status "${dir}/status";`,
    `Dir::Cache "${dir}/cache";`,
    'Debug::NoLocking "true";',
    'APT::Sandbox::User "root";',
    'Acquire::Languages "none";',
    'Acquire::Retries "1";',
    'Acquire::http::Timeout "30";',
    // The system's hooks (packagekit, appstream) are about the system's lists, not ours.
    '#clear APT::Update::Post-Invoke-Success;',
    '#clear APT::Update::Post-Invoke;',
    '#clear Acquire::IndexTargets::deb::DEP-11;',
    '#clear Acquire::IndexTargets::deb::DEP-11-icons;',
    '#clear Acquire::IndexTargets::deb::DEP-11-icons-small;',
    '',
  ].join('\n');
  if (!fs.existsSync(path.join(dir, 'sources.list')) || fs.readFileSync(path.join(dir, 'sources.list'), 'utf8') !== sources) {
    writeFileAtomic(path.join(dir, 'sources.list'), sources);
  }
  writeFileAtomic(path.join(dir, 'apt.conf'), conf);
  for (const f of ['status', 'preferences']) if (!fs.existsSync(path.join(dir, f))) fs.writeFileSync(path.join(dir, f), '');
  return { dir, args: ['-c', path.join(dir, 'apt.conf')] };
}

function networkHint(stderr: string): string {
  return `${stderr.trim().split('\n').filter((l) => /^(E|W|Err):/.test(l)).slice(-4).join('\n') || stderr.trim().split('\n').slice(-4).join('\n')}\n` +
    `Cannot reach ${MIRROR()} (no network or proxy?). Fix the network, set VSLAB_DEBIAN_MIRROR, ` +
    'or boot a local kernel with --kernel <vmlinuz> --modules <dir>.';
}

async function debianKernel(suite: DebianKernelSuite, refresh: boolean, progress?: (m: string) => void): Promise<GuestKernel> {
  const kernelsDir = cacheDir('kernels');
  const recordFile = path.join(kernelsDir, `${suite}.json`);
  const cached = (): GuestKernel | undefined => {
    if (!fs.existsSync(recordFile)) return undefined;
    const rec = JSON.parse(fs.readFileSync(recordFile, 'utf8')) as SuiteRecord;
    const root = path.join(kernelsDir, rec.release);
    if (!fs.existsSync(path.join(root, '.complete'))) return undefined;
    return { release: rec.release, vmlinux: path.join(root, 'vmlinux'), modulesRoot: root, origin: `Debian ${suite} ${rec.package} ${rec.version}` };
  };
  if (!refresh) {
    const k = cached();
    if (k) return k;
  }
  return withCacheLock('kernel-fetch', async () => {
    if (!refresh) {
      const k = cached();
      if (k) return k;
    }
    const apt = aptState();
    progress?.(`fetching the Debian ${suite} kernel package list`);
    const upd = await runTool('apt-get', [...apt.args, '-q', '--error-on=any', 'update'], { timeoutMs: 10 * 60_000 });
    if (upd.code !== 0) throw new Error(`cannot fetch the Debian package lists for the ${suite} kernel:\n${networkHint(upd.stderr)}`);
    const show = await runToolOk('apt-cache', [...apt.args, 'show', `linux-image-amd64/${suite}`], `looking up linux-image-amd64 in ${suite}`);
    const stanza = show.stdout.toString().split('\n\n')[0];
    const depends = /^Depends: (linux-image-[^\s,(]+)/m.exec(stanza)?.[1];
    if (!depends) throw new Error(`linux-image-amd64 in ${suite} does not depend on a linux-image-<release> package:\n${stanza}`);
    const release = depends.replace(/^linux-image-/, '');
    const pkgShow = await runToolOk('apt-cache', [...apt.args, 'show', depends], `looking up ${depends}`);
    const version = /^Version: (\S+)/m.exec(pkgShow.stdout.toString())?.[1] ?? '?';
    const rec: SuiteRecord = { suite, package: depends, version, release, fetchedAt: new Date().toISOString() };
    const root = path.join(kernelsDir, release);
    if (!fs.existsSync(path.join(root, '.complete'))) {
      const dl = fs.mkdtempSync(path.join(apt.dir, 'download-'));
      try {
        progress?.(`downloading ${depends} ${version}`);
        const get = await runTool('apt-get', [...apt.args, '-q', 'download', depends], { cwd: dl, timeoutMs: 20 * 60_000 });
        if (get.code !== 0) throw new Error(`cannot download ${depends}:\n${networkHint(get.stderr)}`);
        const deb = fs.readdirSync(dl).find((f) => f.endsWith('.deb'));
        if (!deb) throw new Error(`apt-get download ${depends} left no .deb in ${dl}`);
        await unpackKernel(path.join(dl, deb), root, release, progress);
      } finally {
        fs.rmSync(dl, { recursive: true, force: true });
      }
    }
    writeFileAtomic(recordFile, JSON.stringify(rec, null, 2) + '\n');
    return cached()!;
  });
}

/** Unpack a linux-image .deb into root (atomically: a temp dir renamed into place). */
async function unpackKernel(deb: string, root: string, release: string, progress?: (m: string) => void): Promise<void> {
  const tmp = `${root}.tmp-${process.pid}`;
  fs.rmSync(tmp, { recursive: true, force: true });
  try {
    progress?.(`unpacking ${path.basename(deb)}`);
    await runToolOk('dpkg-deb', ['-x', deb, tmp], `unpacking ${deb}`);
    const image = path.join(tmp, 'boot', `vmlinuz-${release}`);
    if (!fs.existsSync(image)) throw new Error(`${deb} has no boot/vmlinuz-${release}`);
    progress?.('extracting the uncompressed vmlinux (PVH boot)');
    await extractVmlinux(image, path.join(tmp, 'vmlinux'));
    await runToolOk('depmod', ['-b', tmp, release], `depmod for ${release}`);
    fs.writeFileSync(path.join(tmp, '.complete'), `${path.basename(deb)}\n`);
    fs.rmSync(root, { recursive: true, force: true });
    fs.renameSync(tmp, root);
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------------
// A kernel the user gives

async function localKernel(image: string, modules: string, progress?: (m: string) => void): Promise<GuestKernel> {
  if (!fs.existsSync(image)) throw new Error(`--kernel ${image}: no such file`);
  if (!fs.existsSync(modules) || !fs.statSync(modules).isDirectory()) throw new Error(`--modules ${modules}: no such directory`);
  if (!fs.existsSync(path.join(modules, 'kernel')) && !fs.existsSync(path.join(modules, 'modules.order'))) {
    throw new Error(`--modules ${modules} does not look like a /lib/modules/<release> directory (no kernel/ or modules.order)`);
  }
  const release = path.basename(modules);
  const st = fs.statSync(image);
  const key = crypto.createHash('sha256').update(`${image}\0${st.size}\0${st.mtimeMs}\0${modules}`).digest('hex').slice(0, 16);
  const root = path.join(cacheDir('kernels'), `local-${key}`);
  const done = (): GuestKernel => ({
    release,
    vmlinux: isElf(image) ? image : path.join(root, 'vmlinux'),
    modulesRoot: root,
    origin: `${image} with modules ${modules}`,
  });
  if (fs.existsSync(path.join(root, '.complete'))) return done();
  return withCacheLock(`kernel-local-${key}`, async () => {
    if (fs.existsSync(path.join(root, '.complete'))) return done();
    const tmp = `${root}.tmp-${process.pid}`;
    fs.rmSync(tmp, { recursive: true, force: true });
    try {
      // A tree of our own whose lib/modules/<release> links to the user's modules, so depmod writes
      // modules.dep here and never into the user's directory.
      const mdir = path.join(tmp, 'lib', 'modules', release);
      fs.mkdirSync(mdir, { recursive: true });
      for (const e of fs.readdirSync(modules)) {
        if (/^modules\.(dep|alias|symbols|devname|softdep)(\.bin)?$/.test(e) || e === 'modules.builtin.bin' || e === 'modules.builtin.alias.bin') continue;
        fs.symlinkSync(path.join(modules, e), path.join(mdir, e));
      }
      if (!isElf(image)) {
        progress?.('extracting the uncompressed vmlinux (PVH boot)');
        await extractVmlinux(image, path.join(tmp, 'vmlinux'));
      }
      await runToolOk('depmod', ['-b', tmp, release], `depmod for ${modules}`);
      fs.writeFileSync(path.join(tmp, '.complete'), `${image}\n`);
      fs.rmSync(root, { recursive: true, force: true });
      fs.renameSync(tmp, root);
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
    return done();
  });
}
