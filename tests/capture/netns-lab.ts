// Test helper: a minimal LabNode over `ip netns exec`, and small labs of namespaces joined by veth pairs
// (198.18.0.0/15 and 2001:db8::/32 only). Everything is named vslabpk-<pid>-... and removed by cleanup().
import { execFileSync, spawn } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import type { ExecOptions, ExecResult, LabNode, NodeProcess, SpawnOptions } from '../../src/backend/types';
import { readHostFileFrom } from '../../src/backend/nsnode';

export class NetnsNode implements LabNode {
  constructor(readonly name: string, readonly ns: string, readonly workDir: string) {}

  exec(argv: string[], opts: ExecOptions = {}): Promise<ExecResult> {
    return new Promise((resolve) => {
      const child = spawn('ip', ['netns', 'exec', this.ns, ...argv], { env: { ...process.env, ...opts.env }, cwd: opts.cwd });
      let stdout = '';
      let stderr = '';
      let timedOut = false;
      child.stdout.on('data', (d) => (stdout += d));
      child.stderr.on('data', (d) => (stderr += d));
      const timer = setTimeout(() => {
        timedOut = true;
        child.kill('SIGKILL');
      }, opts.timeoutMs ?? 60000);
      child.on('close', (code, signal) => {
        clearTimeout(timer);
        resolve({ code: code ?? -1, signal, stdout, stderr, timedOut });
      });
      if (opts.input !== undefined) child.stdin.end(opts.input);
      else child.stdin.end();
    });
  }

  spawn(argv: string[], opts: SpawnOptions = {}): NodeProcess {
    // `ip netns exec` execs the program, so the pid (and signals) are the program's own.
    const child = spawn('ip', ['netns', 'exec', this.ns, ...argv], { env: { ...process.env, ...opts.env }, cwd: opts.cwd, stdio: ['pipe', 'pipe', 'pipe'] });
    const exited = new Promise<{ code: number | null; signal: string | null }>((res) => child.on('exit', (code, signal) => res({ code, signal })));
    child.on('error', () => undefined);
    return {
      pid: child.pid,
      stdout: child.stdout,
      stderr: child.stderr,
      stdin: child.stdin,
      wait: () => exited,
      kill: (sig?: NodeJS.Signals) => {
        if (child.exitCode === null && child.signalCode === null) child.kill(sig ?? 'SIGTERM');
      },
    };
  }

  async fetchFile(nodePath: string, hostPath: string): Promise<void> {
    fs.copyFileSync(nodePath, hostPath);
  }

  readFileFrom(nodePath: string, offset: number): Promise<Buffer> {
    return readHostFileFrom(nodePath, offset);
  }

  /** Runs and throws on failure (setup steps). */
  async must(argv: string[], opts: ExecOptions = {}): Promise<string> {
    const r = await this.exec(argv, opts);
    if (r.code !== 0) throw new Error(`${this.name}: ${argv.join(' ')} failed (${r.code}${r.timedOut ? ', timed out' : ''}): ${r.stderr}`);
    return r.stdout;
  }
}

function sh(args: string[]): void {
  execFileSync(args[0], args.slice(1), { stdio: ['ignore', 'ignore', 'pipe'] });
}

export class TestLab {
  readonly nodes = new Map<string, NetnsNode>();
  readonly root: string;
  private readonly tag: string;

  constructor(label: string) {
    this.tag = `vslabpk-${process.pid}-${label}`;
    this.root = fs.mkdtempSync(path.join(os.tmpdir(), `${this.tag}-`));
  }

  node(name: string): NetnsNode {
    const n = this.nodes.get(name);
    if (!n) throw new Error(`no node ${name}`);
    return n;
  }

  addNode(name: string): NetnsNode {
    const ns = `${this.tag}-${name}`;
    sh(['ip', 'netns', 'add', ns]);
    const dir = path.join(this.root, name);
    fs.mkdirSync(dir);
    const n = new NetnsNode(name, ns, dir);
    this.nodes.set(name, n);
    sh(['ip', '-n', ns, 'link', 'set', 'lo', 'up']);
    return n;
  }

  /** A veth pair created directly inside the two namespaces (no host-side names). */
  link(a: string, aIf: string, b: string, bIf: string): void {
    const na = this.node(a).ns;
    const nb = this.node(b).ns;
    sh(['ip', 'link', 'add', aIf, 'netns', na, 'type', 'veth', 'peer', 'name', bIf, 'netns', nb]);
    sh(['ip', '-n', na, 'link', 'set', aIf, 'up']);
    sh(['ip', '-n', nb, 'link', 'set', bIf, 'up']);
  }

  addr(node: string, iface: string, cidr: string): void {
    const extra = cidr.includes(':') ? ['nodad'] : [];
    sh(['ip', '-n', this.node(node).ns, 'addr', 'add', cidr, 'dev', iface, ...extra]);
  }

  route(node: string, ...args: string[]): void {
    sh(['ip', '-n', this.node(node).ns, 'route', 'add', ...args]);
  }

  sysctl(node: string, key: string, value: string): void {
    sh(['ip', 'netns', 'exec', this.node(node).ns, 'sysctl', '-qw', `${key}=${value}`]);
  }

  cleanup(): void {
    for (const n of this.nodes.values()) {
      try {
        sh(['ip', 'netns', 'del', n.ns]);
      } catch {
        /* already gone */
      }
    }
    fs.rmSync(this.root, { recursive: true, force: true });
  }
}

/** Two nodes a and b joined by a veth pair eth0<->eth0: 198.18.0.1/24 + 2001:db8:0:1::1/64 and .2/::2. */
export function pairLab(label: string): TestLab {
  const lab = new TestLab(label);
  try {
    lab.addNode('a');
    lab.addNode('b');
    lab.link('a', 'eth0', 'b', 'eth0');
    lab.addr('a', 'eth0', '198.18.0.1/24');
    lab.addr('b', 'eth0', '198.18.0.2/24');
    lab.addr('a', 'eth0', '2001:db8:0:1::1/64');
    lab.addr('b', 'eth0', '2001:db8:0:1::2/64');
  } catch (e) {
    lab.cleanup();
    throw e;
  }
  return lab;
}

/** A node script (run inside a namespace) that sends `count` UDP datagrams as fast as the socket allows. */
export function udpBlastScript(dst: string, port: number, count: number, size = 64): string {
  return `const s=require('dgram').createSocket('${dst.includes(':') ? 'udp6' : 'udp4'}');let done=0;` +
    `for(let i=0;i<${count};i++){const b=Buffer.alloc(${size},i&255);b.writeUInt32BE(i,0);s.send(b,${port},'${dst}',(e)=>{if(e){console.error(e.message);process.exit(1)}if(++done===${count})s.close()});}`;
}
