// The host end of the control channel to the guest agent: requests with ids, replies dispatched back,
// streamed processes, netlink relay and file transfer over one virtio-serial socket.
import * as fs from 'fs';
import type { Socket } from 'net';
import * as os from 'os';
import { PassThrough, Writable } from 'stream';
import type { ExecOptions, ExecResult, NodeProcess, SpawnOptions } from '../types';
import { encodeFrame, Field, Frame, FrameDecoder, FrameType } from './protocol';

/** The agent did not answer a request in time (the guest may be hung; the owner checks with a ping). */
export class AgentTimeoutError extends Error {
  override name = 'AgentTimeoutError';
}

/** The agent refused a request (no such namespace, program not found...). */
export class AgentRequestError extends Error {
  override name = 'AgentRequestError';
}

interface Pending {
  what: string;
  onFrame(f: Frame): boolean; // true when the request is complete
  fail(e: Error): void;
  timer?: NodeJS.Timeout;
}

export interface AgentHello {
  protocol: string;
  release: string;
}

/** Extra time the host waits beyond a request's own guest-side timeout (TCG on a loaded 2-core host is slow). */
export const DEFAULT_GRACE_MS = 30_000;

const signalNames = new Map<number, string>(Object.entries(os.constants.signals).map(([k, v]) => [v as number, k]));

export class AgentChannel {
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private readonly decoder = new FrameDecoder();
  private closedWith: Error | undefined;
  private helloWaiters: Array<(h: AgentHello) => void> = [];
  hello: AgentHello | undefined;

  /**
   * @param onStall called when a request got no answer in time: the owner decides whether the guest is hung.
   * @param onBroken called if the stream from the agent is corrupt or closes; the owner must then close() the
   *   channel with the error pending requests should see.
   */
  constructor(
    private readonly socket: Socket,
    private readonly onStall: (what: string) => void,
    private readonly onBroken: (e: Error) => void,
    private readonly graceMs = DEFAULT_GRACE_MS,
  ) {
    socket.on('data', (b: Buffer) => {
      let frames: Frame[];
      try {
        frames = this.decoder.push(b);
      } catch (e) {
        this.close(e as Error);
        this.onBroken(e as Error);
        return;
      }
      for (const f of frames) this.dispatch(f);
    });
    socket.on('close', () => {
      // The owner closes the channel with the reason (it knows whether qemu exited or the kernel crashed).
      if (!this.closedWith) this.onBroken(new Error('the guest agent channel closed'));
    });
    socket.on('error', () => undefined); // 'close' follows
  }

  /** Resolves when the agent said HELLO (or answered a ping). */
  waitHello(): Promise<AgentHello> {
    if (this.hello) return Promise.resolve(this.hello);
    return new Promise((resolve) => this.helloWaiters.push(resolve));
  }

  private gotHello(h: AgentHello): void {
    if (this.hello) return;
    this.hello = h;
    for (const w of this.helloWaiters.splice(0)) w(h);
    this.refIfBusy();
  }

  private dispatch(f: Frame): void {
    if (f.type === FrameType.Hello) {
      this.gotHello({ protocol: f.fields[0]?.toString() ?? '?', release: f.fields[1]?.toString() ?? '?' });
      return;
    }
    const p = this.pending.get(f.id);
    if (!p) return; // a late answer to a request we gave up on
    let done: boolean;
    try {
      done = p.onFrame(f);
    } catch (e) {
      done = true;
      p.fail(e as Error);
    }
    if (done) {
      if (p.timer) clearTimeout(p.timer);
      this.pending.delete(f.id);
      this.refIfBusy();
    }
  }

  /** An idle channel does not keep this process alive (a persistent guest outlives `vslab up`). */
  private refIfBusy(): void {
    if (this.closedWith) return;
    if (this.pending.size || !this.hello) this.socket.ref();
    else this.socket.unref();
  }

  /** Fail every pending request with err and refuse new ones. */
  close(err: Error): void {
    if (this.closedWith) return;
    this.closedWith = err;
    for (const [, p] of this.pending) {
      if (p.timer) clearTimeout(p.timer);
      p.fail(err);
    }
    this.pending.clear();
    this.socket.destroy();
  }

  get closed(): boolean {
    return !!this.closedWith;
  }

  private send(id: number, type: number, fields: Field[]): void {
    if (this.closedWith) throw this.closedWith;
    this.socket.write(encodeFrame(id, type, fields));
  }

  /** Start a request; `deadlineMs` (0 = none) arms the stall detector. */
  private request(type: number, fields: Field[], what: string, deadlineMs: number, onFrame: (f: Frame) => boolean, fail: (e: Error) => void): number {
    if (this.closedWith) {
      fail(this.closedWith);
      return 0;
    }
    const id = this.nextId++;
    const p: Pending = { what, onFrame, fail };
    if (deadlineMs > 0) {
      p.timer = setTimeout(() => {
        this.pending.delete(id);
        this.refIfBusy();
        fail(new AgentTimeoutError(`the guest agent did not answer ${what} within ${Math.round(deadlineMs / 1000)} s`));
        this.onStall(what);
      }, deadlineMs);
    }
    this.pending.set(id, p);
    this.refIfBusy();
    this.send(id, type, fields);
    return id;
  }

  private simple<T>(type: number, fields: Field[], what: string, deadlineMs: number, expect: number, map: (f: Frame) => T): Promise<T> {
    return new Promise((resolve, reject) => {
      this.request(type, fields, what, deadlineMs, (f) => {
        if (f.type === FrameType.Error) reject(new AgentRequestError(`${what}: ${f.fields[0]?.toString() ?? 'failed'}`));
        else if (f.type === expect) resolve(map(f));
        else reject(new Error(`${what}: unexpected answer type 0x${f.type.toString(16)} from the guest agent`));
        return true;
      }, reject);
    });
  }

  /** Round trip to the agent; resolves with the guest's protocol and kernel release. */
  ping(timeoutMs = 10_000): Promise<AgentHello> {
    return this.simple(FrameType.Ping, [], 'ping', timeoutMs, FrameType.Pong, (f) => {
      const h = { protocol: f.fields[0]?.toString() ?? '?', release: f.fields[1]?.toString() ?? '?' };
      this.gotHello(h);
      return h;
    });
  }

  /** Send a ping without stall handling (used while waiting for the agent to come up). */
  probe(): void {
    if (this.closedWith) return;
    this.ping(60_000).catch(() => undefined);
  }

  exec(ns: string | null, argv: string[], opts: ExecOptions = {}): Promise<ExecResult> {
    if (!argv.length) return Promise.reject(new Error('exec: empty argv'));
    const timeout = opts.timeoutMs ?? 60_000;
    const env = Object.entries(opts.env ?? {}).map(([k, v]) => `${k}=${v}`);
    const input = opts.input === undefined ? Buffer.alloc(0) : Buffer.isBuffer(opts.input) ? opts.input : Buffer.from(opts.input);
    const what = `exec ${JSON.stringify(argv.join(' ').slice(0, 120))}${ns ? ` in ${ns}` : ''}`;
    return new Promise((resolve, reject) => {
      this.request(FrameType.Run, ['collect', ns ?? '', opts.cwd ?? '', timeout, input, env.length, ...env, ...argv], what, timeout + this.graceMs, (f) => {
        if (f.type === FrameType.Error) reject(new AgentRequestError(`${what}: ${f.fields[0]?.toString()}`));
        else if (f.type === FrameType.Exit) resolve(exitResult(f));
        else return false;
        return true;
      }, reject);
    });
  }

  spawn(ns: string | null, argv: string[], opts: SpawnOptions & { timeoutMs?: number } = {}): GuestProcess {
    const proc = new GuestProcess(this, argv);
    if (!argv.length) {
      proc.failed(new Error('spawn: empty argv'));
      return proc;
    }
    const env = Object.entries(opts.env ?? {}).map(([k, v]) => `${k}=${v}`);
    const what = `spawn ${JSON.stringify(argv.join(' ').slice(0, 120))}${ns ? ` in ${ns}` : ''}`;
    const id = this.request(FrameType.Run, ['stream', ns ?? '', opts.cwd ?? '', opts.timeoutMs ?? 0, Buffer.alloc(0), env.length, ...env, ...argv], what, 0, (f) => {
      switch (f.type) {
        case FrameType.Started:
          proc.started(parseInt(f.fields[0].toString(), 10));
          return false;
        case FrameType.Output:
          proc.output(f.fields[0].toString() === '2' ? 2 : 1, f.fields[1]);
          return false;
        case FrameType.Exit: {
          const r = exitResult(f);
          proc.exited(r.timedOut ? null : r.code, r.signal);
          return true;
        }
        case FrameType.Error:
          proc.failed(new AgentRequestError(`${what}: ${f.fields[0]?.toString()}`));
          return true;
        default:
          return false;
      }
    }, (e) => proc.failed(e));
    proc.attach(id);
    return proc;
  }

  /** @internal used by GuestProcess */
  sendStdin(id: number, data: Buffer): void {
    if (!this.closedWith) this.send(id, FrameType.Stdin, [data]);
  }

  /** @internal used by GuestProcess */
  sendSignal(id: number, signo: number): void {
    if (!this.closedWith) this.send(id, FrameType.Signal, [signo]);
  }

  netlink(ns: string | null, protocol: number, request: Buffer, timeoutMs = 5000): Promise<Buffer> {
    return this.simple(FrameType.Netlink, [ns ?? '', protocol, timeoutMs, request], `netlink (protocol ${protocol})${ns ? ` in ${ns}` : ''}`,
      timeoutMs + this.graceMs, FrameType.NlReply, (f) => Buffer.from(f.fields[0] ?? Buffer.alloc(0)));
  }

  /** Copy a guest file to hostPath (written to a temp file, renamed when complete). */
  fetchToFile(guestPath: string, hostPath: string, timeoutMs = 300_000): Promise<number> {
    const tmp = `${hostPath}.part-${process.pid}`;
    const fd = fs.openSync(tmp, 'w');
    let closed = false;
    const cleanup = (ok: boolean) => {
      if (!closed) fs.closeSync(fd);
      closed = true;
      if (ok) fs.renameSync(tmp, hostPath);
      else fs.rmSync(tmp, { force: true });
    };
    let received = 0;
    return new Promise<number>((resolve, reject) => {
      this.request(FrameType.Fetch, [guestPath], `fetch ${guestPath}`, timeoutMs, (f) => {
        if (f.type === FrameType.Chunk) {
          fs.writeSync(fd, f.fields[0]);
          received += f.fields[0].length;
          return false;
        }
        if (f.type === FrameType.End) {
          // The agent says how many bytes it read: fewer arriving means chunks were lost on the way, and a
          // truncated capture must never be judged as if it were whole.
          const sent = parseInt(f.fields[0].toString(), 10);
          if (sent !== received) {
            cleanup(false);
            reject(new AgentRequestError(`fetch ${guestPath}: the guest sent ${sent} bytes but ${received} arrived`));
            return true;
          }
          cleanup(true);
          resolve(sent);
        } else {
          cleanup(false);
          reject(new AgentRequestError(f.fields[0]?.toString() ?? `fetch ${guestPath} failed`));
        }
        return true;
      }, (e) => {
        cleanup(false);
        reject(e);
      });
    });
  }

  /** A guest file's bytes, from byte `offset` (default 0) to its end as the agent read it. */
  readFile(guestPath: string, timeoutMs = 300_000, offset = 0): Promise<Buffer> {
    const chunks: Buffer[] = [];
    return new Promise((resolve, reject) => {
      this.request(FrameType.Fetch, offset ? [guestPath, offset] : [guestPath], `read ${guestPath}`, timeoutMs, (f) => {
        if (f.type === FrameType.Chunk) {
          chunks.push(Buffer.from(f.fields[0]));
          return false;
        }
        if (f.type === FrameType.End) {
          const data = Buffer.concat(chunks);
          const sent = parseInt(f.fields[0].toString(), 10);
          if (sent !== data.length) reject(new AgentRequestError(`read ${guestPath}: the guest sent ${sent} bytes but ${data.length} arrived`));
          else resolve(data);
        }
        else reject(new AgentRequestError(f.fields[0]?.toString() ?? `read ${guestPath} failed`));
        return true;
      }, reject);
    });
  }

  writeFile(guestPath: string, data: string | Buffer, mode = 0o644, timeoutMs = 120_000): Promise<void> {
    return this.simple(FrameType.Put, [guestPath, mode.toString(8), Buffer.isBuffer(data) ? data : Buffer.from(data)], `write ${guestPath}`,
      timeoutMs, FrameType.Ok, () => undefined);
  }

  /** Ask the guest to power off; resolves when the agent acknowledged. */
  poweroff(timeoutMs = 10_000): Promise<void> {
    return this.simple(FrameType.Poweroff, [], 'poweroff', timeoutMs, FrameType.Ok, () => undefined);
  }
}

function exitResult(f: Frame): ExecResult {
  const code = f.fields[0]?.length ? parseInt(f.fields[0].toString(), 10) : -1;
  const sig = f.fields[1]?.length ? parseInt(f.fields[1].toString(), 10) : 0;
  return {
    code: sig ? 128 + sig : code,
    signal: sig ? signalNames.get(sig) ?? String(sig) : null,
    timedOut: f.fields[2]?.toString() === '1',
    stdout: f.fields[3]?.toString() ?? '',
    stderr: f.fields[4]?.toString() ?? '',
  };
}

/** A long-lived program in the guest, shaped like a child process (the NodeProcess contract). */
export class GuestProcess implements NodeProcess {
  pid: number | undefined;
  readonly stdout = new PassThrough();
  readonly stderr = new PassThrough();
  readonly stdin: Writable;
  private id = 0;
  private result: { code: number | null; signal: string | null } | undefined;
  private error: Error | undefined;
  private readonly waiters: Array<{ resolve: (r: { code: number | null; signal: string | null }) => void; reject: (e: Error) => void }> = [];
  private readonly startWaiters: Array<(ok: boolean) => void> = [];

  constructor(private readonly channel: AgentChannel, readonly argv: string[]) {
    this.stdin = new Writable({
      write: (chunk: Buffer, _enc, cb) => {
        if (this.id && chunk.length) this.channel.sendStdin(this.id, chunk);
        cb();
      },
      final: (cb) => {
        if (this.id) this.channel.sendStdin(this.id, Buffer.alloc(0));
        cb();
      },
    });
  }

  attach(id: number): void {
    this.id = id;
  }

  started(pid: number): void {
    this.pid = pid;
    for (const w of this.startWaiters.splice(0)) w(true);
  }

  output(fd: 1 | 2, data: Buffer): void {
    (fd === 1 ? this.stdout : this.stderr).write(Buffer.from(data));
  }

  exited(code: number | null, signal: string | null): void {
    this.result = { code, signal };
    this.stdout.end();
    this.stderr.end();
    for (const w of this.waiters.splice(0)) w.resolve(this.result);
    for (const w of this.startWaiters.splice(0)) w(true);
  }

  failed(e: Error): void {
    if (this.result || this.error) return;
    this.error = e;
    this.stdout.end();
    this.stderr.end();
    for (const w of this.waiters.splice(0)) w.reject(e);
    for (const w of this.startWaiters.splice(0)) w(false);
  }

  /** Resolves once the program runs in the guest (or rejects if it could not start). */
  waitStarted(): Promise<void> {
    if (this.pid !== undefined || this.result) return Promise.resolve();
    if (this.error) return Promise.reject(this.error);
    return new Promise((resolve, reject) => this.startWaiters.push((ok) => (ok ? resolve() : reject(this.error))));
  }

  wait(): Promise<{ code: number | null; signal: string | null }> {
    if (this.result) return Promise.resolve(this.result);
    if (this.error) return Promise.reject(this.error);
    return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }));
  }

  kill(signal: NodeJS.Signals = 'SIGTERM'): void {
    if (this.result || this.error || !this.id) return;
    const n = os.constants.signals[signal];
    if (n === undefined) throw new Error(`unknown signal ${signal}`);
    this.channel.sendSignal(this.id, n);
  }
}
