// Test helper: a minimal LabNode over `ip netns exec`, and a two-node lab (client, server) joined by a
// veth pair, for the traffic tool tests until the lead's netns backend lands. Everything is named
// vslabtr-* and removed by `down()`.
import { ChildProcess, execFileSync, spawn } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import type { ExecOptions, ExecResult, LabNode, NodeProcess, SpawnOptions } from '../../src/backend/types';
import { readHostFileFrom } from '../../src/backend/nsnode';

export class NetnsNode implements LabNode {
  private readonly children = new Set<ChildProcess>();

  constructor(readonly name: string, readonly ns: string, readonly workDir: string) {}

  exec(argv: string[], opts: ExecOptions = {}): Promise<ExecResult> {
    return new Promise((resolve) => {
      const child = spawn('ip', ['netns', 'exec', this.ns, ...argv], { cwd: opts.cwd, env: { ...process.env, ...opts.env } });
      this.children.add(child);
      let stdout = '';
      let stderr = '';
      let timedOut = false;
      child.stdout.setEncoding('utf8').on('data', (d: string) => { stdout += d; });
      child.stderr.setEncoding('utf8').on('data', (d: string) => { stderr += d; });
      const timer = setTimeout(() => {
        timedOut = true;
        child.kill('SIGKILL');
      }, opts.timeoutMs ?? 60_000);
      child.on('error', (e) => { stderr += String(e); });
      child.on('close', (code, signal) => {
        clearTimeout(timer);
        this.children.delete(child);
        resolve({ code: code ?? -1, signal, stdout, stderr, timedOut });
      });
      child.stdin.on('error', () => { /* the program may exit without reading its input (EPIPE), as nsnode.ts */ });
      child.stdin.end(opts.input ?? '');
    });
  }

  spawn(argv: string[], opts: SpawnOptions = {}): NodeProcess {
    const child = spawn('ip', ['netns', 'exec', this.ns, ...argv], { cwd: opts.cwd, env: { ...process.env, ...opts.env } });
    this.children.add(child);
    const exited = new Promise<{ code: number | null; signal: string | null }>((resolve) => {
      child.on('exit', (code, signal) => {
        this.children.delete(child);
        resolve({ code, signal });
      });
    });
    child.stdin.on('error', () => undefined); // writing to a process that already ended
    return {
      pid: child.pid,
      stdout: child.stdout,
      stderr: child.stderr,
      stdin: child.stdin,
      wait: () => exited,
      kill: (signal) => { child.kill(signal ?? 'SIGTERM'); },
    };
  }

  async fetchFile(nodePath: string, hostPath: string): Promise<void> {
    await fs.promises.copyFile(nodePath, hostPath);
  }

  readFileFrom(nodePath: string, offset: number): Promise<Buffer> {
    return readHostFileFrom(nodePath, offset);
  }

  /** Runs a command in the node and throws with its stderr when it fails. */
  sh(cmd: string[]): string {
    return execFileSync('ip', ['netns', 'exec', this.ns, ...cmd], { encoding: 'utf8' });
  }

  killAll(): void {
    for (const c of this.children) c.kill('SIGKILL');
  }
}

export interface Pair {
  client: NetnsNode;
  server: NetnsNode;
  down(): void;
}

/** Addresses of the pair. */
export const ADDR = {
  client4: '198.18.0.1',
  client4b: '198.18.0.11',
  server4: '198.18.0.2',
  client6: '2001:db8::1',
  client6b: '2001:db8::11',
  server6: '2001:db8::2',
  /** Not configured anywhere at first; the client routes it to the server (a VIP a test puts on the server's lo). */
  vip4: '198.18.100.1',
  vip6: '2001:db8:100::1',
};

let serial = 0;

/** Client and server namespaces joined by a veth pair (eth0 on both sides). */
export function makePair(tag: string): Pair {
  const base = `vslabtr-${tag}-${process.pid % 100000}-${serial++}`;
  const cns = `${base}-c`;
  const sns = `${base}-s`;
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'vslabtr-'));
  const ip = (...a: string[]): void => { execFileSync('ip', a, { stdio: ['ignore', 'ignore', 'pipe'] }); };
  const client = new NetnsNode('client', cns, work);
  const server = new NetnsNode('server', sns, work);
  const down = (): void => {
    client.killAll();
    server.killAll();
    for (const ns of [cns, sns]) {
      try { ip('netns', 'del', ns); } catch { /* not created */ }
    }
    fs.rmSync(work, { recursive: true, force: true });
  };
  try {
    ip('netns', 'add', cns);
    ip('netns', 'add', sns);
    ip('link', 'add', 'eth0', 'netns', cns, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', sns);
    for (const ns of [cns, sns]) {
      ip('-n', ns, 'link', 'set', 'lo', 'up');
      ip('-n', ns, 'link', 'set', 'eth0', 'up');
    }
    ip('-n', cns, 'addr', 'add', `${ADDR.client4}/24`, 'dev', 'eth0');
    ip('-n', cns, 'addr', 'add', `${ADDR.client4b}/24`, 'dev', 'eth0');
    ip('-n', cns, 'addr', 'add', `${ADDR.client6}/64`, 'dev', 'eth0', 'nodad');
    ip('-n', cns, 'addr', 'add', `${ADDR.client6b}/64`, 'dev', 'eth0', 'nodad');
    ip('-n', sns, 'addr', 'add', `${ADDR.server4}/24`, 'dev', 'eth0');
    ip('-n', sns, 'addr', 'add', `${ADDR.server6}/64`, 'dev', 'eth0', 'nodad');
    ip('-n', cns, 'route', 'add', '198.18.100.0/24', 'via', ADDR.server4);
    ip('-n', cns, 'route', 'add', '2001:db8:100::/64', 'via', ADDR.server6);
  } catch (e) {
    down();
    throw e;
  }
  return { client, server, down };
}

/** The tools run from dist/: fail early, and say what to do, when dist is older than the sources. */
export function assertToolsBuilt(): void {
  const root = path.resolve(__dirname, '..', '..');
  const src = path.join(root, 'src', 'traffic');
  const dist = path.join(root, 'dist', 'traffic');
  for (const f of fs.readdirSync(src).filter((n) => n.endsWith('.ts'))) {
    const js = path.join(dist, f.replace(/\.ts$/, '.js'));
    if (!fs.existsSync(js) || fs.statSync(js).mtimeMs < fs.statSync(path.join(src, f)).mtimeMs) {
      throw new Error(`${path.relative(root, js)} is missing or older than src/traffic/${f}: run \`node scripts/build.js\` first`);
    }
  }
}
