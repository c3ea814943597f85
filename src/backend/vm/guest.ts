// A running VM guest: qemu (TCG) booting a cached kernel + initramfs, with the control agent
// on a virtio-serial port. Boots with a timeout and retries, watches the console for panics and oopses,
// notices a hung agent, and never lets qemu outlive its owner (kill on shutdown, on failure, on
// process exit, and qemu's parent-death signal for a owner killed outright).
import { ChildProcess, spawn } from 'child_process';
import * as fs from 'fs';
import * as net from 'net';
import * as path from 'path';
import type { ExecOptions, ExecResult, SpawnOptions } from '../types';
import { AgentChannel, AgentHello, GuestProcess } from './agent-channel';
import { buildInitramfs, GuestImage, InitramfsOptions } from './initramfs';
import { DEFAULT_KERNEL, GuestKernel, KernelSpec, resolveKernel } from './kernel';
import { AGENT_PORT_NAME } from './protocol';

export interface VmShare {
  /** Host directory to share over virtio-9p. */
  hostPath: string;
  /** Where the guest mounts it (absolute, no spaces or colons). Defaults to hostPath. */
  guestPath?: string;
  /** Default true: the guest cannot write to the host. */
  readOnly?: boolean;
}

export interface VmBootOptions {
  /** Distinguishing part of the VM name; the full name is namePrefix + name (default: pid and a counter). */
  name?: string;
  /** "vslab-" for labs (what `vslab gc` looks for), "vslabvm-" in this backend's own tests. */
  namePrefix?: string;
  kernel?: KernelSpec;
  /** Guest memory in MiB (default 192, enough for the labs; qemu's RSS is ~310-340 MiB regardless). */
  memoryMiB?: number;
  initramfs?: InitramfsOptions;
  shares?: VmShare[];
  /** Per attempt, from qemu start to the agent's hello (default 90 s: TCG on a busy 2-core host). */
  bootTimeoutMs?: number;
  /** Boot attempts before giving up (default 3; -M pc has not hung in early boot here, but be safe). */
  bootAttempts?: number;
  /** Directory for the socket, pidfile and console log (default /run/vslab/vm/<name>); removed on shutdown. */
  runDir?: string;
  /** Also keep the guest console here (it survives shutdown). */
  consoleLogPath?: string;
  /** Print the whole kernel boot log on the console (slower; default only warnings, panics and oopses). */
  verboseConsole?: boolean;
  /** Extra kernel command line arguments. */
  kernelArgs?: string[];
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
const CRASH_PATTERNS = [/Kernel panic - not syncing/, /\bOops: /, /^\s*(\[[\s\d.]+\]\s*)?BUG: /m, /general protection fault/, /Attempted to kill init/];

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

/** The qemu binary (override with VSLAB_QEMU). */
function qemuBinary(): string {
  return process.env.VSLAB_QEMU || 'qemu-system-x86_64';
}

interface Launch {
  child: ChildProcess;
  server: net.Server;
  channel?: AgentChannel;
  exited: boolean;
  exitInfo?: string;
}

export class VmGuest {
  readonly name: string;
  readonly runDir: string;
  /** Milliseconds from starting qemu to the agent's hello (last, successful attempt). */
  bootMs = 0;
  /** Attempts the boot took. */
  attempts = 0;
  kernel!: GuestKernel;
  image!: GuestImage;
  hello!: AgentHello;
  failure: VmGuestError | undefined;

  private launch: Launch | undefined;
  private console: string[] = [];
  private consolePartial = '';
  private consoleBytes = 0;
  private consoleFd: number | undefined;
  private keepFd: number | undefined;
  private failureListeners: Array<(e: VmGuestError) => void> = [];
  private aliveCheck: Promise<void> | undefined;
  private crashTimer: NodeJS.Timeout | undefined;
  private stopping = false;

  private constructor(private readonly opts: VmBootOptions) {
    const prefix = opts.namePrefix ?? 'vslab-';
    this.name = `${prefix}${opts.name ?? `${process.pid}-${++counter}`}`;
    if (!/^[A-Za-z0-9_.-]+$/.test(this.name)) throw new Error(`VM name ${this.name}: use letters, digits, '-', '_' and '.' only`);
    this.runDir = opts.runDir ?? path.join('/run/vslab/vm', this.name);
  }

  /** Boot a guest and wait until its agent answers. Throws VmGuestError (with the console tail) if it cannot. */
  static async boot(opts: VmBootOptions = {}): Promise<VmGuest> {
    const g = new VmGuest(opts);
    const progress = opts.progress ?? (() => undefined);
    g.kernel = await resolveKernel(opts.kernel ?? DEFAULT_KERNEL, progress);
    g.image = await buildInitramfs(g.kernel, opts.initramfs ?? {}, progress);
    const attempts = Math.max(1, opts.bootAttempts ?? 3);
    installExitHook();
    liveGuests.add(g);
    let last: Error | undefined;
    try {
      for (let i = 1; i <= attempts; i++) {
        g.attempts = i;
        try {
          progress(`booting ${g.name} (${g.kernel.release})${i > 1 ? `, attempt ${i} of ${attempts}` : ''}`);
          await g.launchOnce();
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

  private qemuArgs(): string[] {
    const o = this.opts;
    const cmdline = [
      'console=ttyS0', 'rdinit=/init', 'norandmaps', 'panic=-1', 'oops=panic', 'reboot=t',
      ...(o.verboseConsole ? [] : ['quiet', 'loglevel=4']),
    ];
    const args = [
      '-name', `${this.name},process=${this.name}`,
      '-M', 'pc', '-accel', 'tcg', '-cpu', 'max,cx16=off', '-smp', '1', '-m', `${o.memoryMiB ?? 192}M`,
      '-nodefaults', '-no-user-config', '-nic', 'none', '-display', 'none', '-vga', 'none', '-no-reboot',
      '-chardev', 'stdio,id=con,signal=off', '-serial', 'chardev:con', '-monitor', 'none',
      '-pidfile', path.join(this.runDir, 'qemu.pid'),
      '-kernel', this.kernel.vmlinux, '-initrd', this.image.path,
      '-device', 'virtio-serial-pci,id=vser0',
      '-chardev', `socket,id=agent,path=${path.join(this.runDir, 'agent.sock')}`,
      '-device', `virtserialport,bus=vser0.0,chardev=agent,name=${AGENT_PORT_NAME}`,
    ];
    (o.shares ?? []).forEach((s, i) => {
      const guestPath = s.guestPath ?? s.hostPath;
      if (!path.isAbsolute(guestPath) || /[\s:,]/.test(guestPath)) throw new Error(`9p share ${guestPath}: the guest path must be absolute without spaces, ':' or ','`);
      if (/,/.test(s.hostPath)) throw new Error(`9p share ${s.hostPath}: qemu cannot share a path with ','`);
      const tag = `vslab${i}`;
      args.push('-fsdev', `local,id=fs${i},path=${s.hostPath},security_model=none${s.readOnly === false ? '' : ',readonly=on'}`);
      args.push('-device', `virtio-9p-pci,fsdev=fs${i},mount_tag=${tag}`);
      cmdline.push(`vslab.9p=${tag}:${guestPath}:${s.readOnly === false ? 'rw' : 'ro'}`);
    });
    cmdline.push(...(o.kernelArgs ?? []));
    args.push('-append', cmdline.join(' '));
    return args;
  }

  private async launchOnce(): Promise<void> {
    fs.mkdirSync(this.runDir, { recursive: true, mode: 0o700 });
    const sock = path.join(this.runDir, 'agent.sock');
    fs.rmSync(sock, { force: true });
    fs.writeFileSync(path.join(this.runDir, 'owner.json'), JSON.stringify({ ownerPid: process.pid, name: this.name, createdAt: new Date().toISOString() }) + '\n');
    if (this.consoleFd === undefined) this.consoleFd = fs.openSync(path.join(this.runDir, 'console.log'), 'a');
    if (this.opts.consoleLogPath && this.keepFd === undefined) this.keepFd = fs.openSync(this.opts.consoleLogPath, 'a');
    this.console = [];
    this.consolePartial = '';
    this.consoleNote(`---- ${new Date().toISOString()} boot attempt ${this.attempts} of ${this.name}`);

    const server = net.createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(sock, () => resolve());
    });
    const args = this.qemuArgs();
    // setpriv --pdeathsig: the kernel kills qemu if this process dies without running its exit hooks.
    const child = spawn('setpriv', ['--pdeathsig', 'KILL', '--', qemuBinary(), ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    const launch: Launch = { child, server, exited: false };
    this.launch = launch;
    const started = Date.now();

    return new Promise<void>((resolve, reject) => {
      let settled = false;
      const timers: NodeJS.Timeout[] = [];
      const settle = (err?: VmGuestError) => {
        if (settled) return;
        settled = true;
        timers.forEach(clearTimeout);
        if (err) reject(err);
        else resolve();
      };
      child.stdout!.on('data', (b: Buffer) => this.onConsole(b));
      child.stderr!.on('data', (b: Buffer) => {
        for (const l of b.toString().split('\n').filter(Boolean)) this.consoleNote(`[qemu] ${l}`);
      });
      child.on('error', (e) => settle(new VmGuestError('qemu-exited', this.name, `cannot start ${qemuBinary()}: ${e.message}`, this.consoleTail())));
      child.on('exit', (code, signal) => {
        launch.exited = true;
        launch.exitInfo = signal ? `signal ${signal}` : `exit code ${code}`;
        const crashed = this.console.some((l) => CRASH_PATTERNS.some((p) => p.test(l)));
        const err = new VmGuestError(crashed ? 'crashed' : 'qemu-exited', this.name,
          crashed ? `the guest kernel crashed (qemu ${launch.exitInfo})` : `qemu exited (${launch.exitInfo})`, this.consoleTail());
        if (!settled) settle(err);
        else this.fail(err);
      });
      server.on('connection', (socket) => {
        if (launch.channel) {
          socket.destroy();
          return;
        }
        const channel = new AgentChannel(socket, (what) => this.onStall(what), (e) => {
          if (!this.stopping && !launch.exited) this.fail(new VmGuestError('channel-broken', this.name, e.message, this.consoleTail()));
        });
        launch.channel = channel;
        channel.waitHello().then((h) => {
          if (h.protocol !== '1') {
            settle(new VmGuestError('channel-broken', this.name, `the guest agent speaks protocol ${h.protocol}, this host speaks 1`, this.consoleTail()));
            return;
          }
          this.hello = h;
          this.bootMs = Date.now() - started;
          settle();
        });
        // The agent says hello by itself; probe too, in case its hello went out before qemu forwarded it.
        const probe = () => {
          if (settled || channel.closed) return;
          channel.probe();
          timers.push(setTimeout(probe, 3000));
        };
        timers.push(setTimeout(probe, 5000));
      });
      const timeout = this.opts.bootTimeoutMs ?? 90_000;
      timers.push(setTimeout(() => settle(new VmGuestError('boot-timeout', this.name, `the guest agent did not come up within ${Math.round(timeout / 1000)} s`, this.consoleTail())), timeout));
      this.onCrashDuringBoot = (e) => settle(e);
    });
  }

  private onCrashDuringBoot: ((e: VmGuestError) => void) | undefined;

  private onConsole(b: Buffer): void {
    const text = this.consolePartial + b.toString('utf8');
    const lines = text.split(/\r?\n/);
    this.consolePartial = lines.pop() ?? '';
    for (const l of lines) this.consoleLine(l);
    if (this.consolePartial.length > 4096) {
      this.consoleLine(this.consolePartial);
      this.consolePartial = '';
    }
  }

  private consoleNote(line: string): void {
    this.consoleLine(line, true);
  }

  private consoleLine(line: string, note = false): void {
    const out = Buffer.from(line + '\n');
    if (this.consoleFd !== undefined) fs.writeSync(this.consoleFd, out);
    if (this.keepFd !== undefined) fs.writeSync(this.keepFd, out);
    this.console.push(line);
    this.consoleBytes += line.length;
    while (this.console.length > 400) this.consoleBytes -= this.console.shift()!.length;
    if (!note && !this.crashTimer && CRASH_PATTERNS.some((p) => p.test(line))) {
      // Give the kernel a moment to print the trace (and qemu to exit on panic), then report.
      this.crashTimer = setTimeout(() => {
        const err = new VmGuestError('crashed', this.name, `the guest kernel crashed: ${line.trim()}`, this.consoleTail());
        if (this.onCrashDuringBoot && !this.hello) this.onCrashDuringBoot(err);
        else this.fail(err);
      }, 1500);
    }
  }

  /** The last lines the guest printed on its console (and qemu's own messages). */
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
    this.launch?.channel?.close(err);
    this.killNow();
    for (const cb of this.failureListeners) cb(err);
  }

  private onStall(what: string): void {
    if (this.aliveCheck || this.failure) return;
    this.aliveCheck = (async () => {
      try {
        await this.channel().ping(20_000);
      } catch {
        this.fail(new VmGuestError('hung', this.name, `the guest agent stopped answering (${what} got no reply, and neither did a ping)`, this.consoleTail()));
      } finally {
        this.aliveCheck = undefined;
      }
    })();
  }

  private channel(): AgentChannel {
    if (this.failure) throw this.failure;
    const c = this.launch?.channel;
    if (!c || c.closed) throw new VmGuestError('channel-broken', this.name, 'the guest is not running', this.consoleTail());
    return c;
  }

  get qemuPid(): number | undefined {
    return this.launch?.child.pid;
  }

  get alive(): boolean {
    return !!this.launch && !this.launch.exited && !this.failure;
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
    return this.channel().exec(ns, argv, opts);
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
    return this.channel().netlink(ns, protocol, request, timeoutMs);
  }

  /** Copy a guest file to the host. */
  async fetchFile(guestPath: string, hostPath: string): Promise<void> {
    await this.channel().fetchToFile(guestPath, hostPath);
  }

  readFile(guestPath: string): Promise<Buffer> {
    return this.channel().readFile(guestPath);
  }

  writeFile(guestPath: string, data: string | Buffer, mode?: number): Promise<void> {
    return this.channel().writeFile(guestPath, data, mode);
  }

  /** Stop the guest and remove its run directory. Safe to call more than once. */
  async shutdown(): Promise<void> {
    this.stopping = true;
    if (this.crashTimer) clearTimeout(this.crashTimer);
    this.launch?.channel?.close(this.failure ?? new Error(`VM ${this.name} was shut down`));
    await this.stopQemu();
    liveGuests.delete(this);
    for (const fd of [this.consoleFd, this.keepFd]) if (fd !== undefined) fs.closeSync(fd);
    this.consoleFd = this.keepFd = undefined;
    if (!this.opts.runDir) fs.rmSync(this.runDir, { recursive: true, force: true });
    else for (const f of ['agent.sock', 'qemu.pid', 'owner.json']) fs.rmSync(path.join(this.runDir, f), { force: true });
  }

  private async stopQemu(): Promise<void> {
    const l = this.launch;
    if (!l) return;
    l.channel?.close(new Error(`VM ${this.name} stopped`));
    if (!l.exited && l.child.pid) {
      const gone = new Promise<void>((r) => l.child.once('exit', () => r()));
      try {
        l.child.kill('SIGKILL');
      } catch {
        /* already gone */
      }
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([gone, new Promise((r) => (timer = setTimeout(r, 10_000)))]);
      clearTimeout(timer);
    }
    l.server.close();
    this.launch = undefined;
  }

  /** Synchronous kill for exit hooks and failures. */
  killNow(removeRunDir = false): void {
    const l = this.launch;
    if (l && !l.exited && l.child.pid) {
      try {
        process.kill(l.child.pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
    if (removeRunDir && !this.opts.runDir) fs.rmSync(this.runDir, { recursive: true, force: true });
  }
}
