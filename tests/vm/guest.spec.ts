// A real guest under qemu (TCG): the agent's exec/spawn/netlink/file operations, and how the host
// notices a crashed kernel and a hung agent. Every qemu started here is gone when the file is done.
import { test, expect } from '@playwright/test';
import { execFileSync } from 'child_process';
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { AgentRequestError, AgentTimeoutError } from '../../src/backend/vm/agent-channel';
import { VmGuest, VmGuestError } from '../../src/backend/vm/guest';
import { resolveKernel } from '../../src/backend/vm/kernel';
import {
  bootTestGuest, CTRL_ATTR_FAMILY_ID, CTRL_ATTR_FAMILY_NAME, CTRL_CMD_NEWFAMILY, GENL_ID_CTRL, getFamily, getLinkDump, linkNames, NETLINK_GENERIC,
  NETLINK_ROUTE, nlAttrs, nlParse, NLMSG_DONE, NLMSG_ERROR, ourQemus, pidAlive, VM_TEST_TIMEOUT,
} from './vm-helpers';

test.describe.configure({ timeout: VM_TEST_TIMEOUT });

const NS = 'vslabvm-a';
let guest: VmGuest;

test.describe('one guest, many requests', () => {
  test.beforeAll(async () => {
    test.setTimeout(VM_TEST_TIMEOUT);
    guest = await bootTestGuest();
    // A namespace with a device of its own, used by several tests below.
    const setup = await guest.exec(null, ['sh', '-c', `ip netns add ${NS} && ip -n ${NS} link add d0 type dummy`]);
    expect(setup, setup.stderr).toMatchObject({ code: 0 });
  });
  test.afterAll(async () => {
    const pid = guest?.qemuPid;
    await guest?.shutdown();
    if (pid) expect(pidAlive(pid)).toBe(false);
  });

  test('boots the Debian kernel and runs commands with input, output, exit codes and timeouts', async () => {
    expect(guest.hello?.release).toBe(guest.kernel?.release);
    const uname = await guest.exec(null, ['uname', '-r']);
    expect(uname).toMatchObject({ code: 0, stdout: `${guest.kernel?.release}\n`, timedOut: false, signal: null });

    const r = await guest.exec(null, ['sh', '-c', 'cat; echo err >&2; exit 3'], { input: 'hello\nworld' });
    expect(r).toMatchObject({ code: 3, stdout: 'hello\nworld', stderr: 'err\n', timedOut: false });

    const env = await guest.exec(null, ['sh', '-c', 'echo "$VSLAB_T:$PWD"'], { env: { VSLAB_T: 'x y' }, cwd: '/proc' });
    expect(env.stdout).toBe('x y:/proc\n');

    const slow = await guest.exec(null, ['sleep', '60'], { timeoutMs: 500 });
    expect(slow).toMatchObject({ timedOut: true, signal: 'SIGKILL' });

    const noProgram = await guest.exec(null, ['/no/such/program']).then(() => undefined, (e: Error) => e);
    expect(noProgram).toBeInstanceOf(AgentRequestError);
    expect(noProgram!.message).toMatch(/cannot execute \/no\/such\/program: No such file/);

    // The guest has no link to the host network: no device but lo.
    const links = await guest.exec(null, ['ls', '/sys/class/net']);
    expect(links.stdout.split(/\s+/).filter(Boolean)).toEqual(['lo']);
  });

  test('/init set the guest up: pseudo filesystems, its drivers, lo, and kmod as the kernel\'s module helper', async () => {
    const mounts = (await guest.exec(null, ['cat', '/proc/mounts'])).stdout;
    for (const [dir, type] of [['/proc', 'proc'], ['/sys', 'sysfs'], ['/dev', 'devtmpfs'], ['/dev/pts', 'devpts'], ['/dev/shm', 'tmpfs']]) {
      expect(mounts, `${dir} (${type})`).toMatch(new RegExp(`^\\S+ ${dir} ${type} `, 'm'));
    }
    const mods = (await guest.exec(null, ['lsmod'])).stdout;
    for (const m of ['virtio_pci', 'virtio_console']) expect(mods).toMatch(new RegExp(`^${m} `, 'm'));
    expect(mods, 'vxlan is loaded below by the kernel itself, on demand').not.toMatch(/^vxlan /m);
    expect((await guest.exec(null, ['ip', '-o', 'link', 'show', 'lo'])).stdout).toMatch(/<LOOPBACK,UP,LOWER_UP>/);
    // No modprobe while the kernel ran its initcalls; /init then linked kmod's, which the kernel runs on demand.
    expect((await guest.exec(null, ['readlink', '/sbin/modprobe'])).stdout.trim()).toBe('/usr/lib/vslab/modprobe');
    expect((await guest.exec(null, ['cat', '/proc/sys/kernel/modprobe'])).stdout.trim()).toBe('/sbin/modprobe');
    const vx = await guest.exec(NS, ['ip', 'link', 'add', 'vx0', 'type', 'vxlan', 'id', '7', 'dstport', '4789']);
    expect(vx, vx.stderr).toMatchObject({ code: 0 });
    expect((await guest.exec(null, ['lsmod'])).stdout).toMatch(/^vxlan /m);
    expect((await guest.exec(NS, ['ip', 'link', 'del', 'vx0'])).code).toBe(0);
  });

  test('runs programs inside a named guest namespace, isolated from the initial one', async () => {
    expect((await guest.exec(NS, ['ip', 'link', 'add', 'd1', 'type', 'dummy'])).code).toBe(0);
    const inNs = await guest.exec(NS, ['ls', '/sys/class/net']);
    expect(inNs.stdout.split(/\s+/).filter(Boolean).sort()).toEqual(['d0', 'd1', 'lo']);
    const outside = await guest.exec(null, ['ls', '/sys/class/net']);
    expect(outside.stdout).not.toContain('d1');
    await guest.exec(NS, ['ip', 'link', 'del', 'd1']);

    const fwd = (ns: string | null) => guest.exec(ns, ['cat', '/proc/sys/net/ipv4/ip_forward']).then((x) => x.stdout.trim());
    const before = await fwd(null);
    await guest.exec(NS, ['sh', '-c', `echo ${before === '1' ? 0 : 1} > /proc/sys/net/ipv4/ip_forward`]);
    expect(await fwd(NS)).toBe(before === '1' ? '0' : '1');
    expect(await fwd(null)).toBe(before);

    await expect(guest.exec('vslabvm-missing', ['true'])).rejects.toThrow(/no network namespace \/run\/netns\/vslabvm-missing/);
  });

  test('streams a long-lived program, feeds its stdin, signals it and waits for it', async () => {
    const p = guest.spawn(NS, ['sh', '-c', 'trap "echo got TERM; exit 7" TERM; echo started; while :; do sleep 0.2; done']);
    let out = '';
    p.stdout.on('data', (b: Buffer) => (out += b.toString()));
    await p.waitStarted();
    expect(p.pid).toBeGreaterThan(1);
    await expect.poll(() => out, { timeout: 30_000 }).toContain('started');
    p.kill('SIGTERM');
    expect(await p.wait()).toEqual({ code: 7, signal: null });
    expect(out).toContain('got TERM');

    const cat = guest.spawn(null, ['cat']);
    const chunks: Buffer[] = [];
    cat.stdout.on('data', (b: Buffer) => chunks.push(b));
    cat.stdin.write('abc');
    cat.stdin.end('def');
    expect(await cat.wait()).toEqual({ code: 0, signal: null });
    expect(Buffer.concat(chunks).toString()).toBe('abcdef');

    const missing = guest.spawn(null, ['/no/such/program']);
    await expect(missing.wait()).rejects.toThrow(/cannot execute/);
  });

  test('relays netlink into a guest namespace: an RTM_GETLINK dump sees that namespace only', async () => {
    const inNs = await guest.netlinkTransact(NS, NETLINK_ROUTE, getLinkDump(101));
    const msgs = nlParse(inNs);
    expect(msgs[msgs.length - 1]).toMatchObject({ type: NLMSG_DONE, seq: 101 });
    expect(linkNames(inNs).sort()).toEqual(['d0', 'lo']);
    const initial = await guest.netlinkTransact(null, NETLINK_ROUTE, getLinkDump(102));
    expect(linkNames(initial)).toEqual(['lo']);
    await expect(guest.netlinkTransact('vslabvm-missing', NETLINK_ROUTE, getLinkDump(103))).rejects.toThrow(/no network namespace/);
  });

  test('relays generic netlink: CTRL_CMD_GETFAMILY finds IPVS once ip_vs is loaded, two requests in one buffer', async () => {
    expect((await guest.exec(null, ['modprobe', 'ip_vs'])).code).toBe(0);
    const reply = await guest.netlinkTransact(NS, NETLINK_GENERIC, Buffer.concat([getFamily(201, 'IPVS'), getFamily(202, 'VSLABVM_NO_SUCH')]));
    const msgs = nlParse(reply);
    const fam = msgs.find((m) => m.type === GENL_ID_CTRL && m.seq === 201);
    expect(fam, 'a NEWFAMILY answer for IPVS').toBeTruthy();
    expect(fam!.payload[0]).toBe(CTRL_CMD_NEWFAMILY);
    const attrs = nlAttrs(fam!.payload.subarray(4));
    expect(attrs.get(CTRL_ATTR_FAMILY_NAME)?.toString().replace(/\0.*$/s, '')).toBe('IPVS');
    expect(attrs.get(CTRL_ATTR_FAMILY_ID)!.readUInt16LE(0)).toBeGreaterThan(GENL_ID_CTRL);
    const ack = msgs.find((m) => m.type === NLMSG_ERROR && m.seq === 201);
    expect(ack!.payload.readInt32LE(0)).toBe(0);
    const missing = msgs.find((m) => m.type === NLMSG_ERROR && m.seq === 202);
    expect(-missing!.payload.readInt32LE(0)).toBe(2); // ENOENT
  });

  test('moves files both ways, byte for byte', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vslabvm-files-'));
    try {
      const data = crypto.randomBytes(300_000);
      await guest.writeFile('/vslab/work/t/in.bin', data);
      const sum = await guest.exec(null, ['sha256sum', '/vslab/work/t/in.bin']);
      expect(sum.stdout.split(' ')[0]).toBe(crypto.createHash('sha256').update(data).digest('hex'));

      await guest.exec(null, ['dd', 'if=/dev/urandom', 'of=/vslab/work/t/out.bin', 'bs=1024', 'count=1500']);
      const guestSum = (await guest.exec(null, ['sha256sum', '/vslab/work/t/out.bin'])).stdout.split(' ')[0];
      await guest.fetchFile('/vslab/work/t/out.bin', path.join(dir, 'out.bin'));
      const host = fs.readFileSync(path.join(dir, 'out.bin'));
      expect(host.length).toBe(1500 * 1024);
      expect(crypto.createHash('sha256').update(host).digest('hex')).toBe(guestSum);

      await expect(guest.fetchFile('/vslab/work/t/missing', path.join(dir, 'missing'))).rejects.toThrow(/cannot open \/vslab\/work\/t\/missing/);
      expect(fs.existsSync(path.join(dir, 'missing'))).toBe(false);

      // A file read from an offset (a capture read again as it grows): exactly its tail, nothing past the end.
      expect((await guest.readFile('/vslab/work/t/in.bin', 123_457)).equals(data.subarray(123_457))).toBe(true);
      expect((await guest.readFile('/vslab/work/t/in.bin', data.length)).length).toBe(0);
      expect((await guest.readFile('/vslab/work/t/in.bin', data.length + 10)).length).toBe(0);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

test('a guest kernel crash is detected and reported with the console', async () => {
  const g = await bootTestGuest();
  const pid = g.qemuPid!;
  try {
    const failed = new Promise<VmGuestError>((resolve) => g.onFailure(resolve));
    const err = await g.exec(null, ['sh', '-c', 'echo c > /proc/sysrq-trigger']).then(() => undefined, (e: Error) => e);
    expect(err).toBeInstanceOf(VmGuestError);
    expect((err as VmGuestError).kind).toBe('crashed');
    expect(err!.message).toMatch(/Kernel panic - not syncing: sysrq triggered crash/);
    expect((await failed).kind).toBe('crashed');
    await expect.poll(() => pidAlive(pid), { timeout: 20_000 }).toBe(false);
    await expect(g.exec(null, ['true'])).rejects.toThrow(/crashed/);
  } finally {
    await g.shutdown();
  }
  expect(pidAlive(pid)).toBe(false);
});

test('a hung agent is detected, reported with the console, and its qemu stopped', async () => {
  const g = await bootTestGuest({ stallGraceMs: 3000, alivePingMs: 5000 });
  const pid = g.qemuPid!;
  try {
    const failed = new Promise<VmGuestError>((resolve) => g.onFailure(resolve));
    // The shell stops its parent, the agent: nothing answers any more.
    const err = await g.exec(null, ['sh', '-c', 'kill -STOP $PPID'], { timeoutMs: 1000 }).then(() => undefined, (e: Error) => e);
    expect(err).toBeInstanceOf(AgentTimeoutError);
    const hung = await failed;
    expect(hung.kind).toBe('hung');
    expect(hung.message).toMatch(/stopped answering .* neither did a ping/);
    expect(hung.message).toContain('--- guest console (last lines) ---');
    await expect.poll(() => pidAlive(pid), { timeout: 20_000 }).toBe(false);
    await expect(g.exec(null, ['true'])).rejects.toThrow(/stopped answering/);
  } finally {
    await g.shutdown();
  }
});

test('without network a Debian kernel fetch fails with a clear error', async () => {
  const cache = fs.mkdtempSync(path.join(os.tmpdir(), 'vslabvm-cache-'));
  const saved = { c: process.env.VSLAB_CACHE_DIR, m: process.env.VSLAB_DEBIAN_MIRROR };
  process.env.VSLAB_CACHE_DIR = cache;
  process.env.VSLAB_DEBIAN_MIRROR = 'http://127.0.0.1:9/debian';
  try {
    await expect(resolveKernel({ kind: 'debian', suite: 'bookworm' })).rejects.toThrow(/Cannot reach http:\/\/127\.0\.0\.1:9\/debian .*--kernel <vmlinuz> --modules <dir>/s);
  } finally {
    if (saved.c === undefined) delete process.env.VSLAB_CACHE_DIR; else process.env.VSLAB_CACHE_DIR = saved.c;
    if (saved.m === undefined) delete process.env.VSLAB_DEBIAN_MIRROR; else process.env.VSLAB_DEBIAN_MIRROR = saved.m;
    fs.rmSync(cache, { recursive: true, force: true });
  }
});

test('boots a kernel given as an image and a modules directory (--kernel/--modules)', async () => {
  const debian = await resolveKernel({ kind: 'debian', suite: 'bookworm' });
  const image = path.join(debian.modulesRoot, 'boot', `vmlinuz-${debian.release}`);
  const modules = path.join(debian.modulesRoot, 'lib', 'modules', debian.release);
  const g = await bootTestGuest({ kernel: { kind: 'local', image, modules } });
  try {
    expect(g.kernel!.vmlinux).not.toBe(debian.vmlinux);
    expect((await g.exec(null, ['uname', '-r'])).stdout.trim()).toBe(debian.release);
    expect((await g.exec(null, ['modprobe', 'ipip'])).code).toBe(0);
    expect((await g.exec(null, ['ls', '/sys/class/net'])).stdout).toContain('tunl0');
  } finally {
    await g.shutdown();
  }
});

test('boot modules shipped compressed (xz, zst) in a --modules directory are loaded by /init, shares too', async () => {
  // /init loads the control channel's and the 9p client's modules itself, from plain .ko files: the image
  // builder decompresses the ones a modules directory ships compressed. The user's directory is a hard-linked
  // copy here, with those modules replaced by compressed ones; the builder never writes into it.
  const debian = await resolveKernel({ kind: 'debian', suite: 'bookworm' });
  const src = path.join(debian.modulesRoot, 'lib', 'modules', debian.release);
  const base = fs.mkdtempSync(path.join(os.tmpdir(), 'vslabvm-zmods-'));
  const modules = path.join(base, debian.release);
  const share = fs.mkdtempSync(path.join(os.tmpdir(), 'vslabvm-zshare-'));
  fs.writeFileSync(path.join(share, 'hello'), 'over 9p\n');
  let g: VmGuest | undefined;
  let cacheEntry: string | undefined;
  try {
    execFileSync('cp', ['-al', src, modules]); // hard links: each module compressed below is unlinked, not written through
    const compressed: Array<[string, string, string]> = [
      // (not gzip: this host's kmod is built without zlib, so its depmod does not see .ko.gz at all)
      ['kernel/drivers/virtio/virtio.ko', 'zstd', 'zst'], ['kernel/drivers/virtio/virtio_pci.ko', 'xz', 'xz'],
      ['kernel/drivers/char/virtio_console.ko', 'zstd', 'zst'], ['kernel/fs/9p/9p.ko', 'xz', 'xz'],
    ];
    for (const [m, tool, ext] of compressed) {
      const file = path.join(modules, m);
      fs.writeFileSync(`${file}.${ext}`, execFileSync(tool, ['-c', file], { maxBuffer: 64 << 20 }));
      fs.unlinkSync(file);
    }
    const original = fs.readFileSync(path.join(src, 'kernel/drivers/virtio/virtio.ko'));
    const local = { kind: 'local', image: debian.vmlinux, modules } as const;
    cacheEntry = (await resolveKernel(local)).modulesRoot;
    g = await bootTestGuest({ kernel: local, shares: [{ hostPath: share, guestPath: '/vslab/zshare' }] });
    const mods = (await g.exec(null, ['lsmod'])).stdout;
    for (const m of ['virtio', 'virtio_pci', 'virtio_console', '9p']) expect(mods).toMatch(new RegExp(`^${m} `, 'm'));
    expect((await g.exec(null, ['cat', '/vslab/zshare/hello'])).stdout).toBe('over 9p\n');
    const list = (await g.exec(null, ['cat', '/etc/vslab/boot-modules', '/etc/vslab/share-modules'])).stdout;
    expect(list).toContain(`/usr/lib/modules/${debian.release}/kernel/drivers/virtio/virtio.ko\n`);
    expect(list).not.toMatch(/\.ko\.(gz|xz|zst)/);
    const inImage = await g.exec(null, ['md5sum', `/usr/lib/modules/${debian.release}/kernel/drivers/virtio/virtio.ko`]);
    expect(inImage.stdout.split(' ')[0]).toBe(crypto.createHash('md5').update(original).digest('hex'));
    expect(fs.existsSync(path.join(modules, 'kernel/drivers/virtio/virtio.ko.zst')), 'the user\'s directory is left as it was').toBe(true);
  } finally {
    await g?.shutdown();
    // This kernel's cache entry and image are keyed by the temporary directory: nothing else will use them.
    if (cacheEntry) fs.rmSync(cacheEntry, { recursive: true, force: true });
    if (g?.image) fs.rmSync(g.image.path, { force: true });
    fs.rmSync(base, { recursive: true, force: true });
    fs.rmSync(share, { recursive: true, force: true });
  }
});

test('boots the bookworm-backports 6.12 kernel, which mounts a 9p share', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vslabvm-share-'));
  fs.writeFileSync(path.join(dir, 'hello.txt'), 'from the host\n');
  const g = await bootTestGuest({ kernel: { kind: 'debian', suite: 'bookworm-backports' }, shares: [{ hostPath: dir, guestPath: '/mnt/share' }] });
  try {
    expect(g.kernel!.release).toMatch(/^6\.12\./);
    expect((await g.exec(null, ['cat', '/mnt/share/hello.txt'])).stdout).toBe('from the host\n');
    const w = await g.exec(null, ['sh', '-c', 'echo x > /mnt/share/new.txt']);
    expect(w.code).not.toBe(0); // read-only share
    expect(fs.existsSync(path.join(dir, 'new.txt'))).toBe(false);
  } finally {
    await g.shutdown();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('no qemu started by these tests is left running', () => {
  expect(ourQemus()).toEqual([]);
});

