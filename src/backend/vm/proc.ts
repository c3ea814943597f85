// Running host tools (apt-get, dpkg-deb, depmod, cc, xz...) for the VM backend's build steps.
import { spawn } from 'child_process';

export interface ToolResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: Buffer;
  stderr: string;
}

export interface ToolOptions {
  cwd?: string;
  input?: Buffer | string;
  env?: NodeJS.ProcessEnv;
  timeoutMs?: number;
  /** Write stdout to this file descriptor instead of collecting it. */
  stdoutFd?: number;
}

/** Run a host tool to completion. Never throws for a non-zero exit; throws if it cannot be started. */
export function runTool(cmd: string, args: string[], opts: ToolOptions = {}): Promise<ToolResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, {
      cwd: opts.cwd,
      env: opts.env ?? process.env,
      stdio: ['pipe', opts.stdoutFd ?? 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let timer: NodeJS.Timeout | undefined;
    if (opts.timeoutMs) timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs);
    child.stdout?.on('data', (b: Buffer) => out.push(b));
    child.stderr?.on('data', (b: Buffer) => err.push(b));
    child.on('error', (e) => {
      if (timer) clearTimeout(timer);
      reject(new Error(`cannot run ${cmd}: ${e.message}`));
    });
    child.on('close', (code, signal) => {
      if (timer) clearTimeout(timer);
      resolve({ code, signal, stdout: Buffer.concat(out), stderr: Buffer.concat(err).toString() });
    });
    child.stdin!.on('error', () => undefined);
    child.stdin!.end(opts.input ?? '');
  });
}

/** Run a host tool and throw, with its stderr, unless it exits 0. */
export async function runToolOk(cmd: string, args: string[], what: string, opts: ToolOptions = {}): Promise<ToolResult> {
  const r = await runTool(cmd, args, opts);
  if (r.code !== 0) {
    const tail = r.stderr.trim().split('\n').slice(-8).join('\n');
    throw new Error(`${what}: \`${cmd} ${args.join(' ')}\` exited with ${r.code ?? r.signal}${tail ? `:\n${tail}` : ''}`);
  }
  return r;
}
