// The guest userland: a self-contained initramfs built once per kernel release and content.
//
// Contents: busybox-static (small tools), dash as /bin/sh (busybox's own shell would run its `ip`
// applet, which has no netns), the host's real ip, tc, ss, bridge, ipvsadm, tcpdump, nft, socat and
// kmod (modprobe: the kernel loads ip_vs_rr, crypto-crc32c... through it) with their shared
// libraries, the kernel modules labs need with their dependencies and soft dependencies
// (modules.dep is rewritten for the subset by `depmod -b`), the static guest agent, the static guest
// programs of guest/syngen and guest/flows (agent-build.ts) in /usr/sbin, and the static /init (guest/init).
// The result is a plain newc cpio (compression does not help under TCG) cached as
// <cache>/initramfs/<release>-<hash>.cpio, the hash covering every input file's identity.
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import * as zlib from 'zlib';
import { buildAgent, buildGuestPrograms, buildInit } from './agent-build';
import { cacheDir, withCacheLock } from './cache';
import type { GuestKernel } from './kernel';
import { runTool, runToolOk } from './proc';
import { GUEST_NODE_DIR } from './shares';
import { TOOL_REQUIREMENTS, missingToolMessage, which as whichOnPath } from '../../host/requirements';

/** Bump when the layout changes in a way file identities do not capture. */
const BUILDER_VERSION = '3';

/** Host programs copied into the guest: the `guest` entries of the host requirements list (src/host). */
const GUEST_TOOLS = TOOL_REQUIREMENTS.filter((t) => t.guest);
/** kmod's names in /usr/sbin. `modprobe` is not in the image: /init links it (see BOOT_MODPROBE). */
const KMOD_LINKS = ['insmod', 'rmmod', 'lsmod', 'modinfo'];
/**
 * Where the image keeps kmod's modprobe until /init links it as /usr/sbin/modprobe. While the kernel runs its
 * initcalls, /sbin/modprobe (the kernel's compiled-in helper path) does not exist, so the modules the kernel
 * asks for then (the kdf108 self-test asks for `crypto-hmac(sha256)` and `…-all`, which no module provides)
 * fail at once instead of waiting for the initramfs and running kmod twice: ≈0.1 s of boot under TCG.
 */
const BOOT_MODPROBE = '/usr/lib/vslab/modprobe';
/**
 * The modules /init loads itself (guest/init), by name, each list written to the image in load order
 * (dependencies first) as paths of plain .ko files: the control channel's always, the 9p client's when the
 * kernel command line names shares. Loading them without kmod saves a dynamic program's start under TCG.
 */
const BOOT_MODULE_LISTS: Array<[string, string[]]> = [
  ['/etc/vslab/boot-modules', ['virtio_pci', 'virtio_console']],
  ['/etc/vslab/share-modules', ['9pnet_virtio', '9p']],
];

/** Modules the guest itself needs (control channel, shares) and that labs commonly use. */
const MODULES = [
  'virtio_pci', 'virtio_console', '9p', '9pnet_virtio', 'overlay',
  'veth', 'dummy', 'macvlan', 'ipvlan', 'vxlan', 'tun', 'ifb', 'vrf', 'geneve', 'nlmon',
  'crc32c_generic', 'crc32c_intel',
];
/** Module directories included whole: all of IPVS, netfilter/nftables, tunnels, qdiscs, bridging. */
const MODULE_DIRS = [
  'kernel/net/netfilter', 'kernel/net/ipv4', 'kernel/net/ipv6', 'kernel/net/sched', 'kernel/net/bridge',
  'kernel/net/8021q', 'kernel/net/sctp', 'kernel/net/packet', 'kernel/net/9p', 'kernel/net/802', 'kernel/net/llc',
];

/** iptables/ebtables/arptables matches and ipset: no userland for them in the guest (nft and ipvsadm use netlink). */
const SKIPPED_MODULES = /^(xt_|ipt_|ip6t_|ebt_|arpt_|ip_set|ebtable|arptable|iptable_|ip6table_)/;

export interface InitramfsOptions {
  /** More host programs (names on PATH or absolute paths), copied with their libraries. */
  extraTools?: string[];
  /** More kernel modules (by name), with their dependencies. */
  extraModules?: string[];
  /**
   * Node in the guest: 'libs' (default) puts only node's shared libraries in the image, for a node binary
   * shared over 9p (see guest.ts `shareNode`); 'binary' also puts the ~95 MB binary itself in the image
   * (+~1.5 s boot under TCG, measured in docs/vm.md); 'none' leaves node out.
   */
  node?: 'none' | 'libs' | 'binary';
}

export interface GuestImage {
  /** The initramfs (newc cpio) to pass to qemu -initrd. */
  path: string;
  release: string;
  sizeBytes: number;
}

/** Guest path of a host file in the image's merged-/usr layout. */
function guestPath(hostPath: string): string {
  return hostPath.replace(/^\/(bin|sbin|lib|lib64)\//, '/usr/$1/');
}

function which(name: string): string | undefined {
  if (name.includes('/')) return fs.existsSync(name) ? name : undefined;
  return whichOnPath(name);
}

/** Shared libraries (as the loader looks them up) of a host program, from ldd. */
async function sharedLibs(bin: string): Promise<string[]> {
  const r = await runTool('ldd', [bin]);
  const out = r.stdout.toString();
  if (/not a dynamic executable|statically linked/.test(out + r.stderr)) return [];
  if (r.code !== 0) throw new Error(`ldd ${bin} failed: ${r.stderr.trim()}`);
  const libs: string[] = [];
  for (const line of out.split('\n')) {
    const m = /=>\s+(\/\S+)/.exec(line) || /^\s*(\/\S+)\s+\(/.exec(line);
    if (m) libs.push(m[1]);
    else if (/=> not found/.test(line)) throw new Error(`${bin} needs ${line.trim()}`);
  }
  return libs;
}

interface ModuleIndex {
  dir: string;
  /** modules.dep: module file (relative) -> its dependencies (relative). */
  deps: Map<string, string[]>;
  /** module name (underscores) -> relative file. */
  byName: Map<string, string>;
  softdeps: Map<string, string[]>;
  aliases: Map<string, string[]>;
}

const modName = (rel: string) => path.basename(rel).replace(/\.ko(\.(xz|gz|zst))?$/, '').replace(/-/g, '_');

function readModuleIndex(kernel: GuestKernel): ModuleIndex {
  const dir = path.join(kernel.modulesRoot, 'lib', 'modules', kernel.release);
  const depFile = path.join(dir, 'modules.dep');
  if (!fs.existsSync(depFile)) throw new Error(`${depFile} is missing (the kernel cache is incomplete; remove ${kernel.modulesRoot} and retry)`);
  const deps = new Map<string, string[]>();
  const byName = new Map<string, string>();
  for (const line of fs.readFileSync(depFile, 'utf8').split('\n')) {
    const i = line.indexOf(':');
    if (i < 0) continue;
    const file = line.slice(0, i);
    deps.set(file, line.slice(i + 1).trim().split(/\s+/).filter(Boolean));
    byName.set(modName(file), file);
  }
  const softdeps = new Map<string, string[]>();
  const sd = path.join(dir, 'modules.softdep');
  if (fs.existsSync(sd)) {
    for (const line of fs.readFileSync(sd, 'utf8').split('\n')) {
      const m = /^softdep\s+(\S+)\s+(.*)$/.exec(line);
      if (!m) continue;
      const names = m[2].split(/\s+/).filter((w) => w && !w.endsWith(':'));
      softdeps.set(m[1].replace(/-/g, '_'), [...(softdeps.get(m[1]) ?? []), ...names]);
    }
  }
  const aliases = new Map<string, string[]>();
  const al = path.join(dir, 'modules.alias');
  if (fs.existsSync(al)) {
    for (const line of fs.readFileSync(al, 'utf8').split('\n')) {
      const m = /^alias\s+(\S+)\s+(\S+)$/.exec(line);
      if (m && !/[*?[]/.test(m[1])) aliases.set(m[1], [...(aliases.get(m[1]) ?? []), m[2]]);
    }
  }
  return { dir, deps, byName, softdeps, aliases };
}

/** Relative module files for the wanted names and directories, closed over dependencies and soft dependencies. */
function moduleClosure(ix: ModuleIndex, names: string[], dirs: string[]): string[] {
  const out = new Set<string>();
  const queue: string[] = [];
  const addName = (n: string) => {
    const norm = n.replace(/-/g, '_');
    const f = ix.byName.get(norm);
    if (f) queue.push(f);
    else for (const a of ix.aliases.get(n) ?? []) addName(a);
    // Names that are neither modules nor aliases are built in (or absent from this kernel): nothing to copy.
  };
  names.forEach(addName);
  for (const d of dirs) for (const f of ix.deps.keys()) if (f.startsWith(d + '/') && !SKIPPED_MODULES.test(path.basename(f))) queue.push(f);
  while (queue.length) {
    const f = queue.pop()!;
    if (out.has(f)) continue;
    out.add(f);
    queue.push(...(ix.deps.get(f) ?? []));
    for (const s of ix.softdeps.get(modName(f)) ?? []) addName(s);
  }
  return [...out].sort();
}

/** Module files for the names, each after its dependencies (modules.dep lists a module's dependencies last-loaded first). */
function bootModuleOrder(ix: ModuleIndex, names: string[]): string[] {
  const out: string[] = [];
  for (const n of names) {
    const f = ix.byName.get(n);
    if (!f) continue; // built in
    for (const d of [...(ix.deps.get(f) ?? []).slice().reverse(), f]) if (!out.includes(d)) out.push(d);
  }
  return out;
}

/** A compressed module file; its group is the compression. */
const COMPRESSED_MODULE = /\.ko\.(xz|gz|zst)$/;
/** Tools that write a compressed module's plain .ko beside it. */
const MODULE_DECOMPRESSORS: Record<'xz' | 'zst', [string, string[]]> = { xz: ['xz', ['-q', '-d', '-f']], zst: ['zstd', ['-q', '-d', '-f']] };
/** The plain .ko name of a possibly compressed module file. */
const plainModule = (rel: string) => rel.replace(COMPRESSED_MODULE, '.ko');

interface Plan {
  /** guest path -> host file to copy (contents, symlinks dereferenced) */
  files: Map<string, string>;
  /** guest path -> symlink target */
  links: Map<string, string>;
  modules: string[];
  /**
   * Each list of BOOT_MODULE_LISTS with dependencies, in load order (relative files as in modules.dep). They are
   * stored plain, for /init's finit_module (guest/init); every other module is stored zstd-compressed (kmod
   * decompresses on load), which halves the image and the time the kernel spends unpacking it.
   */
  bootModules: Array<[string, string[]]>;
  agent: string;
  /** the static /init (guest/init) */
  init: string;
  /** guest path -> static program built from guest/ (syngen, the flow driver, the responder) */
  programs: Array<[string, string]>;
  key: string;
}

async function plan(kernel: GuestKernel, opts: InitramfsOptions): Promise<Plan> {
  const files = new Map<string, string>();
  const links = new Map<string, string>();
  const tools: string[] = [];
  for (const t of GUEST_TOOLS) {
    const p = which(t.tool);
    if (p) tools.push(p);
    else if (t.need === 'required') throw new Error(`the guest image needs ${missingToolMessage(t.tool)}`);
  }
  for (const t of opts.extraTools ?? []) {
    const p = which(t);
    if (!p) throw new Error(`extra guest tool ${t} not found on the host`);
    tools.push(p);
  }
  const node = opts.node ?? 'libs';
  if (node === 'binary') tools.push(process.execPath);
  else if (node === 'libs') {
    const real = fs.realpathSync(process.execPath);
    for (const lib of await sharedLibs(real)) files.set(guestPath(lib), lib);
    // node's host path leads to the binary shared over 9p (shares.ts), so host paths work in the guest
    for (const p of new Set([guestPath(real), guestPath(process.execPath)])) links.set(p, `${GUEST_NODE_DIR}/node`);
  }
  for (const t of tools) {
    const real = fs.realpathSync(t);
    files.set(guestPath(real), real);
    if (guestPath(t) !== guestPath(real)) links.set(guestPath(t), guestPath(real));
    for (const lib of await sharedLibs(real)) files.set(guestPath(lib), lib);
  }
  const kmod = guestPath(fs.realpathSync(which('kmod')!));
  for (const l of KMOD_LINKS) links.set(`/usr/sbin/${l}`, kmod);
  links.set(BOOT_MODPROBE, kmod); // kmod acts on its name: this one is modprobe
  links.set('/usr/bin/sh', 'dash');
  links.set('/etc/mtab', '/proc/mounts');
  for (const [from, to] of [['/bin', 'usr/bin'], ['/sbin', 'usr/sbin'], ['/lib', 'usr/lib'], ['/lib64', 'usr/lib64']]) links.set(from, to);
  // busybox applets for every name nothing else provides
  const bb = guestPath(fs.realpathSync(which('busybox')!));
  const list = await runToolOk('busybox', ['--list-full'], 'listing busybox applets');
  for (const a of list.stdout.toString().split('\n').filter(Boolean)) {
    const g = guestPath('/' + a);
    const name = path.basename(g);
    if (name === 'sh' || name === 'busybox' || name === 'modprobe') continue; // modprobe: /init links kmod's
    const taken = [...files.keys(), ...links.keys()].some((k) => path.basename(k) === name && /\/usr\/s?bin\//.test(k));
    if (!taken) links.set(g, bb);
  }
  for (const f of ['/etc/protocols', '/etc/services', '/etc/ethertypes']) if (fs.existsSync(f)) files.set(f, f);
  if (fs.existsSync('/etc/iproute2')) {
    for (const f of fs.readdirSync('/etc/iproute2')) {
      const p = path.join('/etc/iproute2', f);
      if (fs.statSync(p).isFile()) files.set(p, p);
    }
  }
  const ix = readModuleIndex(kernel);
  const modules = moduleClosure(ix, [...MODULES, ...(opts.extraModules ?? [])], MODULE_DIRS);
  for (const m of opts.extraModules ?? []) {
    if (!ix.byName.has(m.replace(/-/g, '_')) && !ix.aliases.has(m)) {
      const builtin = path.join(ix.dir, 'modules.builtin');
      const isBuiltin = fs.existsSync(builtin) && fs.readFileSync(builtin, 'utf8').split('\n').some((l) => modName(l) === m.replace(/-/g, '_'));
      if (!isBuiltin) throw new Error(`kernel ${kernel.release} has no module ${m}`);
    }
  }
  const bootModules = BOOT_MODULE_LISTS.map(([list, names]): [string, string[]] => [list, bootModuleOrder(ix, names)]);
  const agent = await buildAgent();
  const init = await buildInit();
  const programs = await buildGuestPrograms();

  const h = crypto.createHash('sha256');
  h.update(`builder ${BUILDER_VERSION}\nkernel ${kernel.release} ${kernel.modulesRoot}\nagent ${agent}\ninit ${init}\n${programs.map(([g, hst]) => `program ${g} ${hst}\n`).join('')}`);
  for (const [g, hst] of [...files].sort()) {
    const st = fs.statSync(hst);
    h.update(`${g} ${hst} ${st.size} ${st.mtimeMs}\n`);
  }
  for (const [g, t] of [...links].sort()) h.update(`${g} -> ${t}\n`);
  for (const m of modules) h.update(`${m}\n`);
  for (const [list, mods] of bootModules) h.update(`${list}: ${mods.join(' ')}\n`);
  return { files, links, modules, bootModules, agent, init, programs, key: h.digest('hex').slice(0, 16) };
}

/** Images this process already built or found (planning costs ~0.3 s of ldd and hashing per boot). */
const known = new Map<string, string>();

/** Build (or find in the cache) the guest initramfs for this kernel. */
export async function buildInitramfs(kernel: GuestKernel, opts: InitramfsOptions = {}, progress?: (m: string) => void): Promise<GuestImage> {
  const memo = JSON.stringify([kernel.release, kernel.modulesRoot, opts.node ?? 'libs', opts.extraTools ?? [], opts.extraModules ?? []]);
  const seen = known.get(memo);
  if (seen && fs.existsSync(seen)) return { path: seen, release: kernel.release, sizeBytes: fs.statSync(seen).size };
  const img = await buildInitramfsUncached(kernel, opts, progress);
  known.set(memo, img.path);
  return img;
}

async function buildInitramfsUncached(kernel: GuestKernel, opts: InitramfsOptions, progress?: (m: string) => void): Promise<GuestImage> {
  const p = await plan(kernel, opts);
  const out = path.join(cacheDir('initramfs'), `${kernel.release}-${p.key}.cpio`);
  const done = (): GuestImage => {
    const now = new Date();
    fs.utimesSync(out, now, now); // last use, for pruneImages
    return { path: out, release: kernel.release, sizeBytes: fs.statSync(out).size };
  };
  if (fs.existsSync(out)) return done();
  return withCacheLock(`initramfs-${p.key}`, async () => {
    if (fs.existsSync(out)) return done();
    progress?.(`building the guest initramfs for ${kernel.release}`);
    const stage = fs.mkdtempSync(path.join(cacheDir('initramfs'), 'stage-'));
    try {
      await populate(stage, kernel, p);
      const list = await runToolOk('find', ['.', '-mindepth', '1'], 'listing the initramfs tree', { cwd: stage });
      const names = list.stdout.toString().split('\n').filter(Boolean).sort().join('\n') + '\n';
      const tmp = `${out}.tmp-${process.pid}`;
      const fd = fs.openSync(tmp, 'w');
      try {
        await runToolOk('cpio', ['--quiet', '-o', '-H', 'newc', '-R', '0:0', '--reproducible'], 'writing the initramfs', { cwd: stage, input: names, stdoutFd: fd });
      } finally {
        fs.closeSync(fd);
      }
      fs.renameSync(tmp, out);
    } finally {
      fs.rmSync(stage, { recursive: true, force: true });
    }
    pruneImages(path.dirname(out), kernel.release);
    return done();
  });
}

/** Images kept per kernel release: several worktrees/configurations (e.g. node 'none' vs 'libs') may share the cache. */
const KEEP_IMAGES = 6;

/** Remove the least recently used images of a release beyond KEEP_IMAGES (never one in use minutes ago). */
function pruneImages(dir: string, release: string): void {
  const imgs = fs.readdirSync(dir)
    .filter((f) => f.startsWith(`${release}-`) && f.endsWith('.cpio'))
    .map((f) => ({ f: path.join(dir, f), t: fs.statSync(path.join(dir, f)).mtimeMs }))
    .sort((a, b) => b.t - a.t);
  for (const { f, t } of imgs.slice(KEEP_IMAGES)) if (Date.now() - t > 10 * 60_000) fs.rmSync(f, { force: true });
}

async function populate(stage: string, kernel: GuestKernel, p: Plan): Promise<void> {
  const at = (g: string) => path.join(stage, g);
  for (const d of ['usr/bin', 'usr/sbin', 'usr/lib', 'usr/lib64', 'etc', 'proc', 'sys', 'dev', 'run', 'tmp', 'root', 'var', 'mnt']) {
    fs.mkdirSync(at(d), { recursive: true });
  }
  for (const [g, t] of [...p.links].filter(([g]) => ['/bin', '/sbin', '/lib', '/lib64'].includes(g))) fs.symlinkSync(t, at(g));
  for (const [g, h] of p.files) {
    fs.mkdirSync(path.dirname(at(g)), { recursive: true });
    fs.copyFileSync(h, at(g));
    fs.chmodSync(at(g), fs.statSync(h).mode & 0o7777);
  }
  for (const [g, t] of p.links) {
    if (['/bin', '/sbin', '/lib', '/lib64'].includes(g) || fs.existsSync(at(g))) continue;
    fs.mkdirSync(path.dirname(at(g)), { recursive: true });
    fs.symlinkSync(t, at(g));
  }
  fs.copyFileSync(p.agent, at('/usr/sbin/vslab-agent'));
  fs.chmodSync(at('/usr/sbin/vslab-agent'), 0o755);
  for (const [g, hst] of p.programs) {
    fs.copyFileSync(hst, at(g));
    fs.chmodSync(at(g), 0o755);
  }
  fs.copyFileSync(p.init, at('/init'));
  fs.chmodSync(at('/init'), 0o755);
  fs.writeFileSync(at('/etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n');
  fs.writeFileSync(at('/etc/group'), 'root:x:0:\nnogroup:x:65534:\n');
  fs.writeFileSync(at('/etc/hosts'), '127.0.0.1 localhost\n::1 localhost\n');
  fs.writeFileSync(at('/etc/nsswitch.conf'), 'passwd: files\ngroup: files\nhosts: files\nservices: files\nprotocols: files\n');
  fs.writeFileSync(at('/etc/hostname'), 'vslab-guest\n');
  // Loading these must not create devices of their own in every namespace (as on Debian hosts).
  fs.mkdirSync(at('/etc/modprobe.d'), { recursive: true });
  fs.writeFileSync(at('/etc/modprobe.d/vslab.conf'), 'options dummy numdummies=0\noptions bonding max_bonds=0\noptions ifb numifbs=0\n');
  // modules: the subset, then a modules.dep of our own for it
  const src = path.join(kernel.modulesRoot, 'lib', 'modules', kernel.release);
  const dst = at(`/usr/lib/modules/${kernel.release}`);
  const compress: string[] = [];
  const plain = new Set(p.bootModules.flatMap(([, mods]) => mods));
  for (const m of p.modules) {
    fs.mkdirSync(path.dirname(path.join(dst, m)), { recursive: true });
    fs.copyFileSync(path.join(src, m), path.join(dst, m));
    const z = COMPRESSED_MODULE.exec(m)?.[1] as 'xz' | 'gz' | 'zst' | undefined;
    if (plain.has(m) && z) {
      // gzip in-process, as vmlinux.ts does; the others with their tools (both on the requirements list)
      if (z === 'gz') fs.writeFileSync(path.join(dst, plainModule(m)), zlib.gunzipSync(fs.readFileSync(path.join(dst, m))));
      else await runToolOk(MODULE_DECOMPRESSORS[z][0], MODULE_DECOMPRESSORS[z][1].concat(m), `decompressing the boot module ${m}`, { cwd: dst });
      fs.rmSync(path.join(dst, m), { force: true });
    } else if (!plain.has(m) && !z) compress.push(m);
  }
  fs.mkdirSync(at('/etc/vslab'), { recursive: true });
  for (const [list, mods] of p.bootModules) {
    fs.writeFileSync(at(list), mods.map((m) => `/usr/lib/modules/${kernel.release}/${plainModule(m)}\n`).join(''));
  }
  for (let i = 0; i < compress.length; i += 200) {
    await runToolOk('zstd', ['-q', '-19', '--rm', ...compress.slice(i, i + 200)], 'compressing guest modules (install zstd)', { cwd: dst });
  }
  for (const f of ['modules.order', 'modules.builtin', 'modules.builtin.modinfo']) {
    if (fs.existsSync(path.join(src, f))) fs.copyFileSync(path.join(src, f), path.join(dst, f));
  }
  await runToolOk('depmod', ['-b', stage, kernel.release], 'depmod for the guest modules');
}
