// A lab node whose network namespace is a file of this host (/run/netns/NAME for the netns backend,
// /proc/PID/ns/net for a container): programs run from the host's filesystem inside that namespace
// through nsenter, so capture and traffic tools need nothing inside the node.
import { spawn, type ChildProcess } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import type { ExecOptions, ExecResult, LabNode, NodeProcess, SpawnOptions } from './types';

/** Runs argv inside the network namespace at `netnsPath` and collects its output. */
export function execInNetns(netnsPath: string, argv: string[], opts: ExecOptions = {}): Promise<ExecResult> {
  return new Promise((resolve, reject) => {
    const child = spawn('nsenter', [`--net=${netnsPath}`, '--', ...argv], { cwd: opts.cwd, env: { ...process.env, ...opts.env }, stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [], err: Buffer[] = [];
    let timedOut = false;
    const timer = setTimeout(() => { timedOut = true; child.kill('SIGKILL'); }, opts.timeoutMs ?? 60_000);
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => err.push(d));
    child.on('error', (e) => { clearTimeout(timer); reject(new Error(`cannot run ${argv[0]} in ${netnsPath}: ${e.message}`)); });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code: code ?? -1, signal, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString(), timedOut });
    });
    child.stdin.on('error', () => { /* the program may exit without reading its input */ });
    child.stdin.end(opts.input ?? '');
  });
}

export class ChildNodeProcess implements NodeProcess {
  private done: Promise<{ code: number | null; signal: string | null }>;
  constructor(private readonly child: ChildProcess) {
    this.done = new Promise((resolve) => {
      child.on('close', (code, signal) => resolve({ code, signal }));
      child.on('error', () => resolve({ code: -1, signal: null }));
    });
  }
  get pid() { return this.child.pid; }
  get stdout() { return this.child.stdout!; }
  get stderr() { return this.child.stderr!; }
  get stdin() { return this.child.stdin!; }
  wait() { return this.done; }
  kill(signal: NodeJS.Signals = 'SIGTERM') { if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill(signal); }
}

/** A node reached through its namespace file; its work directory is a host directory. */
export class HostNamespaceNode implements LabNode {
  readonly workDir: string;
  constructor(readonly name: string, readonly netnsPath: string, workDir: string) {
    this.workDir = workDir;
  }
  exec(argv: string[], opts?: ExecOptions): Promise<ExecResult> {
    return execInNetns(this.netnsPath, argv, opts);
  }
  spawn(argv: string[], opts: SpawnOptions = {}): NodeProcess {
    const child = spawn('nsenter', [`--net=${this.netnsPath}`, '--', ...argv], { cwd: opts.cwd, env: { ...process.env, ...opts.env }, stdio: ['pipe', 'pipe', 'pipe'] });
    child.stdin.on('error', () => { /* closed early */ });
    return new ChildNodeProcess(child);
  }
  async fetchFile(nodePath: string, hostPath: string): Promise<void> {
    const src = path.isAbsolute(nodePath) ? nodePath : path.join(this.workDir, nodePath);
    if (path.resolve(src) !== path.resolve(hostPath)) await fs.promises.copyFile(src, hostPath);
  }
  readFileFrom(nodePath: string, offset: number): Promise<Buffer> {
    return readHostFileFrom(path.isAbsolute(nodePath) ? nodePath : path.join(this.workDir, nodePath), offset);
  }
}

/** A host file's bytes from `offset` to its end as read now (a file another process is still writing). */
export async function readHostFileFrom(file: string, offset: number): Promise<Buffer> {
  const fh = await fs.promises.open(file, 'r');
  try {
    const chunks: Buffer[] = [];
    for (let at = offset; ;) {
      const b = Buffer.alloc(256 << 10);
      const { bytesRead } = await fh.read(b, 0, b.length, at);
      if (!bytesRead) break;
      chunks.push(b.subarray(0, bytesRead));
      at += bytesRead;
    }
    return Buffer.concat(chunks);
  } finally {
    await fh.close();
  }
}
