// A running VM guest: qemu (TCG) booting a cached kernel + initramfs, with the control agent on a
// virtio-serial port whose host end is a unix socket qemu listens on.
//
// Boots with a timeout and retries; watches the console (a file qemu writes) for panics and oopses;
// notices qemu exiting and an agent that stops answering; reports each with the console's last lines.
// An ephemeral guest (tests, `vslab run`) never outlives its owner: it is killed on shutdown, on
// failure, on process exit, and by the parent-death signal qemu is started with (setpriv
// --pdeathsig), for an owner killed outright. A persistent guest (`vslab up`) runs detached until
// shut down; other processes reach it with VmGuest.attach().
import { ChildProcess, spawn } from 'child_process';
import * as fs from 'fs';
import * as net from 'net';
import * as path from 'path';
import type { ExecOptions, ExecResult, SpawnOptions } from '../types';
import { AgentChannel, AgentHello, GuestProcess } from './agent-channel';
import { buildInitramfs, GuestImage, InitramfsOptions } from './initramfs';
import { DEFAULT_KERNEL, GuestKernel, KernelSpec, resolveKernel } from './kernel';
import { AGENT_PORT_NAME, AGENT_PROTOCOL } from './protocol';
import { pidAlive } from '../../util/process';

export interface VmShare {
  /** Host directory to share over virtio-9p. */
  hostPath: string;
  /** Where the guest mounts it (absolute, no spaces, ':' or ','). Defaults to hostPath. */
  guestPath?: string;
  /** Default true: the guest cannot write to the host. */
  readOnly?: boolean;
}

export interface VmBootOptions {
  /** Distinguishing part of the VM name; the full name is namePrefix + name (default: pid and a counter). */
  name?: string;
  /** "vslab-" for labs (what `vslab gc` looks for; the default), "vslabvm-" in this backend's own tests. */
  namePrefix?: string;
  kernel?: KernelSpec;
  /** Guest memory in MiB (default 192, enough for the labs; qemu's RSS is ~310-340 MiB regardless). */
  memoryMiB?: number;
  initramfs?: InitramfsOptions;
  /** Host directories shared read-only (by default) over virtio-9p. */
  shares?: VmShare[];
  /** Per attempt, from starting qemu to the agent's hello (default 90 s: TCG on a busy 2-core host). */
  bootTimeoutMs?: number;
  /** Boot attempts before giving up (default 3). */
  bootAttempts?: number;
  /** Directory for the socket, pidfile and logs (default /run/vslab/vm/<name>); removed on shutdown. */
  runDir?: string;
  /** Persistent guests keep running when this process exits (for `vslab up`); default false. */
  persistent?: boolean;
  /** Print the whole kernel boot log on the console (default: only warnings, panics and oopses). */
  verboseConsole?: boolean;
  /** Extra kernel command line arguments. */
  kernelArgs?: string[];
  /**
   * The guest's firmware: 'seabios' (qemu's default, and ours) or 'qboot' (a minimal firmware that loads the
   * kernel straight from fw_cfg: paired quiet boots 2.11 s against 2.26 s, docs/vm.md). qboot is opt-in: the
   * first CI run with it as the default lost a guest of the forwarding suite (agent silent, nothing on the
   * console) and that is not explained yet. `VSLAB_VM_FIRMWARE` sets the default.
   */
  firmware?: 'qboot' | 'seabios';
  /**
   * The guest's clock. 'real' (default): it runs with real time, so a wait in the guest takes as long on the
   * host. 'warp': qemu counts instructions (`-icount shift=auto,sleep=off`) and a holder in the guest keeps its
   * vCPU busy (so the clock follows the instructions run, about real time, and cannot jump while the host
   * talks to the guest); `advanceClock(s)` stops the holder for the wait, the guest idles and qemu moves its
   * clock straight to each next timer: a 140 s wait took 0.23 s here, every timer on the way firing in order.
   * Costs: guest CPU work ≈1.3–1.9× slower (instruction counting), one host core busy while the guest runs.
   */
  clock?: 'real' | 'warp';
  /** How long past a request's own timeout the agent may stay silent before the guest is checked (default 30 s). */
  stallGraceMs?: number;
  /** How long the liveness ping after a stall may take before the guest counts as hung (default 20 s). */
  alivePingMs?: number;
  progress?: (msg: string) => void;
}

export type VmFailureKind = 'boot-timeout' | 'qemu-exited' | 'crashed' | 'hung' | 'channel-broken';

/** A guest that did not boot, crashed, or stopped answering; carries the end of its console. */
export class VmGuestError extends Error {
  override name = 'VmGuestError';
  constructor(
    readonly kind: VmFailureKind,
    readonly vmName: string,
    what: string,
    readonly consoleTail: string,
  ) {
    super(`VM ${vmName}: ${what}\n--- guest console (last lines) ---\n${consoleTail || '(nothing on the console)'}\n---`);
  }
}

/** Lines on the console that mean the guest kernel is dying. */
export const CRASH_PATTERNS = [/Kernel panic - not syncing/, /\bOops: /, /\bBUG: /, /general protection fault/, /Attempted to kill init/];

/**
 * The console lines of a crash report: from just before the first crash line on (a panic's stack dump can
 * push that line out of the last 40 lines), with the end of a long report kept as well; the last lines
 * when no crash line was printed.
 */
export function crashExcerpt(all: string[], head = 60, end = 15): string {
  const at = all.findIndex((l) => CRASH_PATTERNS.some((p) => p.test(l)));
  if (at < 0) return all.slice(-40).join('\n');
  const rest = all.slice(Math.max(0, at - 5));
  if (rest.length <= head + end) return rest.join('\n');
  return [...rest.slice(0, head), `[… ${rest.length - head - end} console lines left out …]`, ...rest.slice(-end)].join('\n');
}

/** Kernel arguments: serial console, PVH-friendly, fast under TCG, and die loudly (panic -> qemu exits). */
/** Where Debian's qemu-system-data puts qboot. */
export const QBOOT_ROM = '/usr/share/qemu/qboot.rom';

/** qemu arguments for the firmware asked for (see VmBootOptions.firmware). */
export function firmwareArgs(asked?: 'qboot' | 'seabios'): string[] {
  const env = process.env.VSLAB_VM_FIRMWARE;
  if (env !== undefined && env !== '' && env !== 'qboot' && env !== 'seabios') throw new Error(`VSLAB_VM_FIRMWARE=${env}: expected qboot or seabios`);
  const want = asked ?? ((env || undefined) as 'qboot' | 'seabios' | undefined) ?? 'seabios';
  if (want === 'seabios') return [];
  if (!fs.existsSync(QBOOT_ROM)) {
    if (asked === 'qboot' || env === 'qboot') throw new Error(`qboot was asked for but ${QBOOT_ROM} is missing (package qemu-system-data)`);
    return [];
  }
  return ['-bios', QBOOT_ROM];
}

const BASE_CMDLINE = [
  'console=ttyS0', 'rdinit=/init', 'panic=-1', 'oops=panic', 'reboot=t',
  // exec of dynamic binaries ~3x faster under TCG (docs/vm.md)
  'norandmaps',
  // skip probing and checks that cost boot time under TCG and mean nothing in this guest
  'i8042.noaux', 'i8042.nokbd', 'i8042.nopnp', '8250.nr_uarts=1', 'tsc=reliable', 'no_timer_check', 'audit=0', 'mitigations=off',
  // Measured with initcall_debug (docs/vm.md): the ACPI interrupt-link setup made virtio_pci's probe
  // take 2.1 s of guest time (24 ms with the BIOS's PIRQ table), and the crypto self-tests 0.75 s.
  'acpi=noirq', 'cryptomgr.notests',
  // No read-only kernel text: skips the W+X page-table walk at the end of boot (debug_checkwx, not
  // switchable otherwise in 6.1). Interleaved boots: median 2.39 s against 2.53 s with it (load ≈3).
  'rodata=off',
  // No local APIC timer: the kernel would calibrate it against the tick first (≈0.12 s of waiting at boot; TCG
  // offers no TSC-deadline timer that would spare it), and the one vCPU's timers run on the HPET instead, in
  // the same one-shot high-resolution mode (/proc/timer_list: hrtimer_interrupt). Paired boots: guest uptime
  // at ready 1.66 → 1.45 s; timers in the guest behave the same (usleep, sleep 1, the warp clock).
  'noapictimer',
];

/**
 * The guest CPU. `cx16=off`: 6.12 oopsed in 9 of 11 boots without it (docs/vm.md). `erms=off,fsrm=off`: without
 * "enhanced rep movsb" the kernel and glibc copy and clear memory 8 bytes per step (rep movsq, unrolled loops)
 * instead of byte by byte through `rep movsb/stosb`, which TCG runs one iteration at a time. Paired boots:
 * unpacking the initramfs 0.19 s against 0.23–0.43 s, a 64 MiB dd 95 ms against 160 ms, exec round trips
 * 10–15 % shorter, boot to a ready agent ≈0.15 s shorter.
 */
const GUEST_CPU = 'max,cx16=off,erms=off,fsrm=off';

/**
 * No ACPI PCI hotplug (nothing is plugged into a running guest): qemu's DSDT then has no per-slot hotplug
 * methods for the kernel's ACPI interpreter to load, which took acpi_init from ≈0.13 s to ≈0.10 s under TCG.
 */
const NO_PCI_HOTPLUG = ['-global', 'PIIX4_PM.acpi-root-pci-hotplug=off', '-global', 'PIIX4_PM.acpi-pci-hotplug-with-bridge-support=off'];

export const VM_RUN_ROOT = process.env.VSLAB_VM_RUN_DIR ?? '/run/vslab/vm';

/** What a run directory records about its guest (vm.json). */
export interface VmRecord {
  name: string;
  qemuPid: number;
  ownerPid: number;
  persistent: boolean;
  release: string;
  createdAt: string;
}

const liveGuests = new Set<VmGuest>();
let exitHookInstalled = false;
let counter = 0;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const g of liveGuests) g.killNow(true);
  });
}

function qemuBinary(): string {
  return process.env.VSLAB_QEMU || 'qemu-system-x86_64';
}


/** Whether pid is a qemu started with `-name <name>` (guards every kill by pid from a file). */
export function isQemuNamed(pid: number, name: string): boolean {
  try {
    const argv = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    const i = argv.indexOf('-name');
    return i >= 0 && (argv[i + 1] ?? '').split(',')[0] === name && argv.some((a) => /qemu-system/.test(path.basename(a)));
  } catch {
    return false;
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class VmGuest {
  readonly name: string;
  readonly runDir: string;
  /** Milliseconds from starting qemu to the agent's hello (last, successful attempt). */
  bootMs = 0;
  /** Attempts the boot took. */
  attempts = 0;
  kernel: GuestKernel | undefined;
  image: GuestImage | undefined;
  hello: AgentHello | undefined;
  failure: VmGuestError | undefined;
  qemuPid: number | undefined;

  private child: ChildProcess | undefined;
  private qemuExited = false;
  private channelRef: AgentChannel | undefined;
  private console: string[] = [];
  private consolePartial = '';
  private consoleOffset = 0;
  private monitor: NodeJS.Timeout | undefined;
  private crashTimer: NodeJS.Timeout | undefined;
  private failureListeners: Array<(e: VmGuestError) => void> = [];
  private aliveCheck: Promise<void> | undefined;
  private stopping = false;
  private bootWaiter: ((e: VmGuestError) => void) | undefined;

  private constructor(name: string, runDir: string, private readonly opts: VmBootOptions) {
    if (!/^[A-Za-z0-9_.-]+$/.test(name)) throw new Error(`VM name ${name}: use letters, digits, '-', '_' and '.' only`);
    this.name = name;
    this.runDir = runDir;
  }

  // ------------------------------------------------------------------ boot / attach

  /** Boot a guest and wait until its agent answers. Throws VmGuestError (with the console tail) if it cannot. */
  static async boot(opts: VmBootOptions = {}): Promise<VmGuest> {
    const name = `${opts.namePrefix ?? 'vslab-'}${opts.name ?? `${process.pid}-${++counter}`}`;
    const g = new VmGuest(name, opts.runDir ?? path.join(VM_RUN_ROOT, name), opts);
    const progress = opts.progress ?? (() => undefined);
    g.kernel = await resolveKernel(opts.kernel ?? DEFAULT_KERNEL, progress);
    g.image = await buildInitramfs(g.kernel, opts.initramfs ?? {}, progress);
    const attempts = Math.max(1, opts.bootAttempts ?? 3);
    if (!opts.persistent) installExitHook();
    liveGuests.add(g);
    let last: Error | undefined;
    try {
      for (let i = 1; i <= attempts; i++) {
        g.attempts = i;
        try {
          progress(`booting ${g.name} (${g.kernel.release})${i > 1 ? `, attempt ${i} of ${attempts}` : ''}`);
          await g.launchOnce();
          if (opts.persistent) liveGuests.delete(g);
          return g;
        } catch (e) {
          last = e as Error;
          await g.stopQemu();
          if (!(e instanceof VmGuestError)) throw e;
          if (i < attempts) progress(`${g.name}: ${e.kind} during boot, retrying`);
        }
      }
      throw last!;
    } catch (e) {
      await g.shutdown();
      throw e;
    }
  }

  /** Connect to a guest another process booted (persistent), by its run directory. */
  static async attach(runDir: string, timeoutMs = 20_000): Promise<VmGuest> {
    let rec: VmRecord;
    try {
      rec = JSON.parse(fs.readFileSync(path.join(runDir, 'vm.json'), 'utf8')) as VmRecord;
    } catch (e) {
      throw new Error(`no VM in ${runDir} (${(e as Error).message})`);
    }
    const g = new VmGuest(rec.name, runDir, { persistent: true });
    if (!pidAlive(rec.qemuPid) || !isQemuNamed(rec.qemuPid, rec.name)) {
      g.readConsole();
      throw new VmGuestError('qemu-exited', rec.name, `qemu (pid ${rec.qemuPid}) is not running any more`, g.consoleTail());
    }
    g.qemuPid = rec.qemuPid;
    g.consoleOffset = Math.max(0, (fs.existsSync(g.consolePath) ? fs.statSync(g.consolePath).size : 0) - 16384);
    g.readConsole();
    const socket = await g.connect(timeoutMs);
    const channel = g.makeChannel(socket);
    g.startMonitor();
    try {
      g.hello = await channel.ping(timeoutMs);
    } catch (e) {
      g.stopMonitor();
      channel.close(e as Error);
      throw new VmGuestError('hung', rec.name, `the guest agent does not answer (${(e as Error).message})`, g.consoleTail());
    }
    return g;
  }

  private get consolePath(): string {
    return path.join(this.runDir, 'console.log');
  }

  private qemuArgs(): string[] {
    const o = this.opts;
    const cmdline = [...BASE_CMDLINE, ...(o.verboseConsole ? [] : ['quiet', 'loglevel=4'])];
    const args = [
      '-name', `${this.name},process=${this.name}`,
      '-M', 'pc', '-accel', 'tcg', '-cpu', GUEST_CPU, '-smp', '1', '-m', `${o.memoryMiB ?? 192}M`,
      ...NO_PCI_HOTPLUG,
      '-nodefaults', '-no-user-config', '-nic', 'none', '-display', 'none', '-vga', 'none', '-no-reboot',
      '-chardev', `file,id=con,path=${this.consolePath}`, '-serial', 'chardev:con', '-monitor', 'none',
      '-pidfile', path.join(this.runDir, 'qemu.pid'),
      ...firmwareArgs(o.firmware),
      ...(o.clock === 'warp' ? ['-icount', 'shift=auto,sleep=off'] : []),
      '-kernel', this.kernel!.vmlinux, '-initrd', this.image!.path,
      '-device', 'virtio-serial-pci,id=vser0',
      '-chardev', `socket,id=agent,path=${path.join(this.runDir, 'agent.sock')},server=on,wait=off`,
      '-device', `virtserialport,bus=vser0.0,chardev=agent,name=${AGENT_PORT_NAME}`,
    ];
    (o.shares ?? []).forEach((s, i) => {
      const guestPath = s.guestPath ?? s.hostPath;
      if (!path.isAbsolute(guestPath) || /[\s:,]/.test(guestPath)) throw new Error(`9p share ${guestPath}: the guest path must be absolute without spaces, ':' or ','`);
      if (/,/.test(s.hostPath)) throw new Error(`9p share ${s.hostPath}: qemu cannot share a path containing ','`);
      const tag = `vslab${i}`;
      args.push('-fsdev', `local,id=fs${i},path=${s.hostPath},security_model=none${s.readOnly === false ? '' : ',readonly=on'}`);
      args.push('-device', `virtio-9p-pci,fsdev=fs${i},mount_tag=${tag}`);
      cmdline.push(`vslab.9p=${tag}:${guestPath}:${s.readOnly === false ? 'rw' : 'ro'}`);
    });
    if (o.clock === 'warp') cmdline.push('vslab.clock=warp');
    cmdline.push(...(o.kernelArgs ?? []));
    args.push('-append', cmdline.join(' '));
    return args;
  }

  private async launchOnce(): Promise<void> {
    fs.mkdirSync(this.runDir, { recursive: true, mode: 0o700 });
    for (const f of ['agent.sock', 'qemu.pid']) fs.rmSync(path.join(this.runDir, f), { force: true });
    // Who is booting it, until vm.json says more: gc tells a boot in progress from one whose owner was killed.
    fs.writeFileSync(path.join(this.runDir, 'owner.pid'), `${process.pid}\n`);
    fs.appendFileSync(this.consolePath, '');
    this.consoleOffset = fs.statSync(this.consolePath).size;
    this.console = [];
    this.consolePartial = '';
    this.qemuExited = false;
    this.failure = undefined;
    if (this.crashTimer) clearTimeout(this.crashTimer);
    this.crashTimer = undefined;
    const qlog = fs.openSync(path.join(this.runDir, 'qemu.log'), 'a');
    const args = this.qemuArgs();
    const persistent = !!this.opts.persistent;
    // Ephemeral: setpriv --pdeathsig makes the kernel kill qemu if this process dies without running
    // its exit hooks. Persistent: qemu gets its own session and survives us.
    const child = persistent
      ? spawn(qemuBinary(), args, { stdio: ['ignore', qlog, qlog], detached: true })
      : spawn('setpriv', ['--pdeathsig', 'KILL', '--', qemuBinary(), ...args], { stdio: ['ignore', qlog, qlog] });
    fs.closeSync(qlog);
    this.child = child;
    this.qemuPid = child.pid;
    const started = Date.now();
    child.on('exit', (code, signal) => {
      this.qemuExited = true;
      this.onQemuExit(signal ? `signal ${signal}` : `exit code ${code}`);
    });
    if (persistent) child.unref();

    const bootFailed = new Promise<never>((_, reject) => {
      this.bootWaiter = reject;
      child.on('error', (e) => reject(new VmGuestError('qemu-exited', this.name, `cannot start ${qemuBinary()}: ${e.message}`, this.consoleTail())));
    });
    bootFailed.catch(() => undefined);
    this.startMonitor();
    const timeoutMs = this.opts.bootTimeoutMs ?? 90_000;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        this.readConsole();
        reject(new VmGuestError('boot-timeout', this.name, `the guest agent did not come up within ${Math.round(timeoutMs / 1000)} s`, this.consoleTail()));
      }, timeoutMs);
    });
    try {
      const socket = await Promise.race([this.connect(timeoutMs), bootFailed, timeout]);
      const channel = this.makeChannel(socket);
      // The agent says hello by itself once it runs; ping as well, in case its hello went out
      // before this end was connected (qemu drops what the guest writes to an unconnected socket).
      let probing = true;
      const probe = async () => {
        while (probing && !channel.closed && !channel.hello) {
          channel.probe();
          await sleep(2000);
        }
      };
      void probe();
      try {
        this.hello = await Promise.race([channel.waitHello(), bootFailed, timeout]);
      } finally {
        probing = false;
      }
      if (this.hello.protocol !== AGENT_PROTOCOL) {
        throw new VmGuestError('channel-broken', this.name, `the guest agent speaks protocol ${this.hello.protocol}, this host ${AGENT_PROTOCOL}`, this.consoleTail());
      }
      this.bootMs = Date.now() - started;
      this.bootWaiter = undefined;
      const rec: VmRecord = {
        name: this.name, qemuPid: child.pid!, ownerPid: process.pid, persistent, release: this.kernel!.release, createdAt: new Date().toISOString(),
      };
      fs.writeFileSync(path.join(this.runDir, 'vm.json'), JSON.stringify(rec, null, 2) + '\n');
    } finally {
      clearTimeout(timer);
    }
  }

  /** Connect to qemu's agent socket, retrying while qemu creates it. */
  private async connect(timeoutMs: number): Promise<net.Socket> {
    const sock = path.join(this.runDir, 'agent.sock');
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (this.qemuExited) throw new VmGuestError('qemu-exited', this.name, 'qemu exited before its agent socket appeared', this.consoleTail());
      try {
        return await new Promise<net.Socket>((resolve, reject) => {
          const s = net.connect(sock);
          s.once('connect', () => {
            s.removeAllListeners('error');
            resolve(s);
          });
          s.once('error', reject);
        });
      } catch (e) {
        if (Date.now() > deadline) throw new Error(`cannot connect to ${sock}: ${(e as Error).message}`);
        await sleep(25);
      }
    }
  }

  private makeChannel(socket: net.Socket): AgentChannel {
    const channel = new AgentChannel(socket, (what) => this.onStall(what), (e) => {
      if (this.stopping) {
        channel.close(e);
        return;
      }
      // qemu exiting closes the socket too: give its exit handler a moment to say why (crash, exit).
      setTimeout(() => {
        if (!this.stopping && !this.qemuExited && !this.failure) this.fail(new VmGuestError('channel-broken', this.name, e.message, this.consoleTail()));
        channel.close(this.failure ?? e);
      }, 500);
    }, this.opts.stallGraceMs);
    this.channelRef = channel;
    return channel;
  }

  // ------------------------------------------------------------------ watching the guest

  private startMonitor(): void {
    this.stopMonitor();
    this.monitor = setInterval(() => {
      this.readConsole();
      // An attached guest is not our child: notice its qemu going away by pid.
      if (!this.child && this.qemuPid && !this.qemuExited && !pidAlive(this.qemuPid)) {
        this.qemuExited = true;
        this.onQemuExit('gone');
      }
    }, 250);
    this.monitor.unref();
  }

  private stopMonitor(): void {
    if (this.monitor) clearInterval(this.monitor);
    this.monitor = undefined;
  }

  /** Read what the guest printed since last time. */
  private readConsole(): void {
    let fd: number;
    try {
      fd = fs.openSync(this.consolePath, 'r');
    } catch {
      return;
    }
    try {
      const buf = Buffer.alloc(65536);
      for (;;) {
        const n = fs.readSync(fd, buf, 0, buf.length, this.consoleOffset);
        if (n <= 0) break;
        this.consoleOffset += n;
        const lines = (this.consolePartial + buf.subarray(0, n).toString('utf8')).split(/\r?\n/);
        this.consolePartial = lines.pop() ?? '';
        for (const l of lines) this.consoleLine(l);
      }
    } finally {
      fs.closeSync(fd);
    }
  }

  private consoleLine(line: string): void {
    this.console.push(line);
    if (this.console.length > 400) this.console.splice(0, this.console.length - 400);
    if (!this.crashTimer && !this.stopping && CRASH_PATTERNS.some((p) => p.test(line))) {
      // Let the kernel finish printing its trace (and qemu exit, on a panic), then report.
      this.crashTimer = setTimeout(() => {
        this.readConsole();
        this.fail(new VmGuestError('crashed', this.name, `the guest kernel crashed: ${line.trim()}`, this.crashExcerpt()));
      }, 1500);
    }
  }

  private onQemuExit(how: string): void {
    if (this.stopping) return;
    this.readConsole();
    const crashLine = this.console.find((l) => CRASH_PATTERNS.some((p) => p.test(l)));
    const qlog = (() => {
      try {
        return fs.readFileSync(path.join(this.runDir, 'qemu.log'), 'utf8').trim().split('\n').slice(-5).map((l) => `[qemu] ${l}`).join('\n');
      } catch {
        return '';
      }
    })();
    const tail = [crashLine ? this.crashExcerpt() : this.consoleTail(), qlog].filter(Boolean).join('\n');
    this.fail(new VmGuestError(crashLine ? 'crashed' : 'qemu-exited', this.name, crashLine ? `the guest kernel crashed: ${crashLine.trim()} (qemu ${how})` : `qemu exited (${how})`, tail));
  }

  /** The console of a crash report: see crashExcerpt(). */
  crashExcerpt(): string {
    return crashExcerpt(this.consolePartial ? [...this.console, this.consolePartial] : this.console);
  }

  /** The last lines the guest printed on its console. */
  consoleTail(lines = 40): string {
    const all = this.consolePartial ? [...this.console, this.consolePartial] : this.console;
    return all.slice(-lines).join('\n');
  }

  /** Called with the error when the guest crashes, hangs or its qemu exits after boot. */
  onFailure(cb: (e: VmGuestError) => void): void {
    this.failureListeners.push(cb);
  }

  private fail(err: VmGuestError): void {
    if (this.failure || this.stopping) return;
    this.failure = err;
    if (this.bootWaiter) {
      const w = this.bootWaiter;
      this.bootWaiter = undefined;
      w(err);
      return; // boot() retries or reports
    }
    this.channelRef?.close(err);
    this.killNow();
    for (const cb of this.failureListeners) cb(err);
  }

  private onStall(what: string): void {
    if (this.aliveCheck || this.failure) return;
    this.aliveCheck = (async () => {
      try {
        await this.channel().ping(this.opts.alivePingMs ?? 20_000);
      } catch {
        this.readConsole();
        this.fail(new VmGuestError('hung', this.name, `the guest agent stopped answering (${what} got no reply, and neither did a ping)`, this.consoleTail()));
      } finally {
        this.aliveCheck = undefined;
      }
    })();
  }

  private channel(): AgentChannel {
    if (this.failure) throw this.failure;
    const c = this.channelRef;
    if (!c || c.closed) throw new VmGuestError('channel-broken', this.name, 'the guest is not running', this.consoleTail());
    return c;
  }

  get alive(): boolean {
    return !!this.qemuPid && !this.qemuExited && !this.failure && !this.stopping;
  }

  // ------------------------------------------------------------------ what the guest offers

  /** Round trip to the agent, in milliseconds. */
  async ping(timeoutMs = 20_000): Promise<number> {
    const t = process.hrtime.bigint();
    await this.channel().ping(timeoutMs);
    return Number(process.hrtime.bigint() - t) / 1e6;
  }

  /** Run a program in the guest (in network namespace `ns`, or the guest's initial one for null) and collect its output. */
  exec(ns: string | null, argv: string[], opts?: ExecOptions): Promise<ExecResult> {
    try {
      return this.channel().exec(ns, argv, opts);
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /** Start a long-lived program in the guest; its output streams back as it comes. */
  spawn(ns: string | null, argv: string[], opts?: SpawnOptions & { timeoutMs?: number }): GuestProcess {
    return this.channel().spawn(ns, argv, opts);
  }

  /**
   * Send netlink request(s) from a socket opened inside guest namespace `ns` (null: the guest's initial
   * namespace) and return every reply message, concatenated: the same contract as the host's native
   * netlinkTransact (waits until each request sequence number got an ACK/ERROR or DONE).
   */
  netlinkTransact(ns: string | null, protocol: number, request: Buffer, timeoutMs = 5000): Promise<Buffer> {
    try {
      return this.channel().netlink(ns, protocol, request, timeoutMs);
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /** netlinkTransact bound to a namespace and protocol (default 16, generic netlink), as a { transact } transport. */
  netlinkTransport(ns: string | null, protocol = 16, timeoutMs = 20_000): { transact(request: Buffer): Promise<Buffer> } {
    return { transact: (request: Buffer) => this.netlinkTransact(ns, protocol, request, timeoutMs) };
  }

  /** Copy a guest file to the host. */
  async fetchFile(guestPath: string, hostPath: string): Promise<void> {
    await this.channel().fetchToFile(guestPath, hostPath);
  }

  /** How the guest's clock runs (VmBootOptions.clock, as this process booted it; 'real' for an attached guest). */
  get clock(): 'real' | 'warp' {
    return this.opts.clock ?? 'real';
  }

  /**
   * Lets `seconds` pass on the guest's clock. A 'warp' guest gets there as fast as it can run the timers due
   * on the way (the holder is stopped and continued inside the guest, so no host round trip lets the clock
   * run on); a 'real' guest takes that long. Resolves with the seconds the guest's clock moved.
   */
  async advanceClock(seconds: number): Promise<number> {
    if (!(Number.isFinite(seconds) && seconds >= 0 && seconds <= 86_400)) throw new RangeError(`advanceClock: ${seconds} s is not a wait from 0 to 86400 s`);
    // The guest knows whether it was booted with a clock holder (an attached guest's options are not known here).
    const script = 'read a _ < /proc/uptime; if [ -s /run/vslab-clock-holder.pid ]; then p=$(cat /run/vslab-clock-holder.pid); ' +
      'kill -STOP "$p" || exit 3; sleep "$1"; kill -CONT "$p"; else sleep "$1"; fi; read b _ < /proc/uptime; echo "$a $b"';
    const r = await this.exec(null, ['sh', '-c', script, 'sh', String(seconds)], { timeoutMs: seconds * 1000 + 60_000 });
    const m = /^([\d.]+) ([\d.]+)$/.exec(r.stdout.trim());
    if (r.code !== 0 || !m) throw new Error(`advancing the guest's clock by ${seconds} s failed (exit ${r.code}): ${r.stderr.trim() || r.stdout.trim() || 'no output'}${r.code === 3 ? ' (the clock holder is gone)' : ''}`);
    return Number(m[2]) - Number(m[1]);
  }

  /** A guest file's bytes from `offset` (default 0) to its end. */
  async readFile(guestPath: string, offset = 0): Promise<Buffer> {
    return this.channel().readFile(guestPath, undefined, offset);
  }

  async writeFile(guestPath: string, data: string | Buffer, mode?: number): Promise<void> {
    return this.channel().writeFile(guestPath, data, mode);
  }

  // ------------------------------------------------------------------ stopping

  /** Close this process's connection and leave the guest running (persistent guests). */
  detach(): void {
    this.stopping = true;
    this.stopMonitor();
    this.channelRef?.close(new Error(`detached from VM ${this.name}`));
    liveGuests.delete(this);
  }

  /** Stop the guest (kill qemu) and remove its run directory. Safe to call more than once. */
  async shutdown(): Promise<void> {
    this.stopping = true;
    if (this.crashTimer) clearTimeout(this.crashTimer);
    this.stopMonitor();
    this.channelRef?.close(this.failure ?? new Error(`VM ${this.name} was shut down`));
    await this.stopQemu();
    liveGuests.delete(this);
    if (!this.opts.runDir) fs.rmSync(this.runDir, { recursive: true, force: true });
    else for (const f of ['agent.sock', 'qemu.pid', 'owner.pid', 'vm.json']) fs.rmSync(path.join(this.runDir, f), { force: true });
  }

  private async stopQemu(): Promise<void> {
    const pid = this.qemuPid;
    if (!pid || this.qemuExited) return;
    const wasStopping = this.stopping;
    this.stopping = true; // an exit we cause is not a failure
    this.channelRef?.close(new Error(`VM ${this.name} was stopped`));
    if (this.child) {
      const gone = new Promise<void>((r) => this.child!.once('exit', () => r()));
      this.killNow();
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([gone, new Promise((r) => (timer = setTimeout(r, 10_000)))]);
      clearTimeout(timer);
    } else {
      this.killNow();
      for (let i = 0; i < 200 && pidAlive(pid); i++) await sleep(50);
    }
    this.qemuExited = true;
    this.child = undefined;
    this.stopping = wasStopping;
  }

  /** Synchronous SIGKILL of qemu (exit hooks, failures). */
  killNow(removeRunDir = false): void {
    const pid = this.qemuPid;
    if (pid && !this.qemuExited && (this.child || isQemuNamed(pid, this.name))) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* already gone */
      }
    }
    if (removeRunDir && !this.opts.runDir) fs.rmSync(this.runDir, { recursive: true, force: true });
  }
}

/** Kill a guest by its run directory (for `vslab down`/gc of a persistent VM) and remove the directory. */
export async function destroyVmByRunDir(runDir: string): Promise<void> {
  try {
    const rec = JSON.parse(fs.readFileSync(path.join(runDir, 'vm.json'), 'utf8')) as VmRecord;
    if (pidAlive(rec.qemuPid) && isQemuNamed(rec.qemuPid, rec.name)) {
      process.kill(rec.qemuPid, 'SIGKILL');
      for (let i = 0; i < 200 && pidAlive(rec.qemuPid); i++) await sleep(50);
    }
  } catch {
    /* no record: nothing running to kill */
  }
  fs.rmSync(runDir, { recursive: true, force: true });
}
