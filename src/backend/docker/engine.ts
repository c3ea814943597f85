// The Docker engine as vslab talks to it: dockerode over the daemon's socket, never the docker CLI.
// Exec with exit code and demultiplexed output, label-filtered listing, and the daemon check.
import Docker from 'dockerode';
import { PassThrough, type Duplex } from 'stream';
import type { ExecOptions, ExecResult, NodeProcess, SpawnOptions } from '../types';

/** Labels on everything vslab makes in Docker. */
export const LABEL_LAB = 'vslab.lab';
export const LABEL_NODE = 'vslab.node';
/** The lab registry (VSLAB_RUN_DIR) a container belongs to: gc of one registry never touches another's. */
export const LABEL_RUN_DIR = 'vslab.rundir';
export const LABEL_IMAGE = 'vslab.image';

export const DOCKER_SOCKET = process.env.VSLAB_DOCKER_SOCKET ?? '/var/run/docker.sock';

let client: Docker | undefined;
export function docker(): Docker {
  client ??= new Docker({ socketPath: DOCKER_SOCKET });
  return client;
}

export interface DaemonInfo { ok: boolean; version?: string; apiVersion?: string; error?: string }

/** Whether a daemon answers on the socket, and its version (for doctor and the backend's preflight). */
export async function daemonInfo(timeoutMs = 3000): Promise<DaemonInfo> {
  const timeout = new Promise<never>((_, rej) => setTimeout(() => rej(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs).unref());
  try {
    const v = await Promise.race([docker().version(), timeout]);
    return { ok: true, version: v.Version, apiVersion: v.ApiVersion };
  } catch (e) {
    return { ok: false, error: (e as Error).message };
  }
}

export async function requireDaemon(): Promise<void> {
  const d = await daemonInfo();
  if (!d.ok) {
    throw new Error(`the docker backend needs a Docker daemon on ${DOCKER_SOCKET}, and none answers (${d.error}). ` +
      '`bash scripts/setup.sh` installs docker.io and starts one with flags that leave the host alone; `vslab doctor` shows what is missing.');
  }
}

/** What runc says when the program of an exec is not in the image: `exec: "PROG": executable file not found
 *  in $PATH` or `exec: "/path": stat /path: no such file or directory`. */
const NOT_IN_IMAGE = /^OCI runtime exec failed: .*?exec: "([^"]+)": ([^\r\n]*?)(?:: unknown)?\r?\n?$/s;

/** The program an exec named that the image does not have (from the daemon's message), if that is what happened. */
export function programNotInImage(code: number | null, firstOutput: string): { program: string; detail: string } | undefined {
  if (code !== 126 && code !== 127) return undefined;
  const m = NOT_IN_IMAGE.exec(firstOutput);
  return m ? { program: m[1], detail: m[2] } : undefined;
}

/** The error a person reads when an image lacks a program: the image, the node, what is missing. */
export function notInImageMessage(image: string, node: string, missing: { program: string; detail: string }): string {
  return `image ${image} (node ${node}) has no program ${missing.program} (${missing.detail})`;
}

/**
 * A program of the image running inside a container through the engine's exec: output demultiplexed into
 * stdout and stderr as it comes, standard input forwarded (its end closes the program's input), the exit
 * code read from the exec once its stream ends. A program the image lacks exits 127 and `missing` says which.
 */
export class ContainerProcess implements NodeProcess {
  readonly pid = undefined;
  readonly stdout = new PassThrough();
  readonly stderr = new PassThrough();
  readonly stdin = new PassThrough();
  missing?: { program: string; detail: string };
  private stream?: Duplex;
  private readonly done: Promise<{ code: number | null; signal: string | null }>;

  constructor(id: string, argv: string[], opts: SpawnOptions = {}) {
    this.done = this.run(id, argv, opts).catch((e: Error) => {
      this.stderr.write(`${e.message}\n`);
      this.stdout.end();
      this.stderr.end();
      return { code: 126, signal: null };
    });
  }

  private async run(id: string, argv: string[], opts: SpawnOptions): Promise<{ code: number | null; signal: string | null }> {
    const ex = await docker().getContainer(id).exec({
      Cmd: argv, AttachStdout: true, AttachStderr: true, AttachStdin: true,
      Env: opts.env ? Object.entries(opts.env).map(([k, v]) => `${k}=${v}`) : undefined, WorkingDir: opts.cwd,
    });
    const stream = (await ex.start({ hijack: true, stdin: true })) as Duplex;
    this.stream = stream;
    // The daemon's own complaint (no such program) comes first on stdout: it is held back and turned into `missing`.
    const out = new PassThrough();
    let first = true;
    out.on('data', (d: Buffer) => {
      if (first) {
        first = false;
        if (d.toString().startsWith('OCI runtime exec failed')) { this.pendingFirst = d.toString(); return; }
      }
      this.stdout.write(d);
    });
    docker().modem.demuxStream(stream, out, this.stderr);
    this.stdin.pipe(stream);
    this.stdin.on('end', () => stream.end());
    stream.on('error', () => undefined);
    await new Promise<void>((resolve) => { stream.on('end', resolve); stream.on('close', resolve); });
    let code: number | null = null;
    for (let i = 0; i < 100; i++) {
      const info = await ex.inspect();
      if (!info.Running) { code = info.ExitCode ?? null; break; }
      await new Promise((r) => setTimeout(r, 20));
    }
    if (this.pendingFirst !== undefined) {
      this.missing = programNotInImage(code, this.pendingFirst);
      if (!this.missing) this.stdout.write(this.pendingFirst);
      else code = 127;
    }
    this.stdout.end();
    this.stderr.end();
    return { code, signal: null };
  }
  private pendingFirst?: string;

  wait() { return this.done; }
  /** Ends the connection to the program (the engine has no signal for one exec: the program sees its input and output close). */
  kill(): void { this.stream?.destroy(); }
}

/** Runs argv inside a container (its own filesystem: the image's programs) and collects exit code and output. */
export async function execInContainer(id: string, argv: string[], opts: ExecOptions = {}): Promise<ExecResult & { missing?: { program: string; detail: string } }> {
  const p = new ContainerProcess(id, argv, { env: opts.env, cwd: opts.cwd });
  const out: Buffer[] = [], err: Buffer[] = [];
  p.stdout.on('data', (d: Buffer) => out.push(d));
  p.stderr.on('data', (d: Buffer) => err.push(d));
  p.stdin.end(opts.input ?? '');
  let timedOut = false;
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<{ code: number | null; signal: string | null }>((resolve) => {
    timer = setTimeout(() => { timedOut = true; p.kill(); resolve({ code: -1, signal: null }); }, opts.timeoutMs ?? 60_000);
  });
  const r = await Promise.race([p.wait(), timeout]);
  clearTimeout(timer);
  return { code: r.code ?? -1, signal: null, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString(), timedOut, ...(p.missing ? { missing: p.missing } : {}) };
}

/** Containers carrying all the given labels (value undefined: the label is present with any value). */
export async function containersLabelled(labels: Record<string, string | undefined>): Promise<Docker.ContainerInfo[]> {
  const label = Object.entries(labels).map(([k, v]) => (v === undefined ? k : `${k}=${v}`));
  return docker().listContainers({ all: true, filters: { label } });
}

export async function removeContainer(id: string): Promise<void> {
  try {
    await docker().getContainer(id).remove({ force: true, v: true });
  } catch (e) {
    const status = (e as { statusCode?: number }).statusCode;
    if (status !== 404 && status !== 409) throw e; // gone already, or removal already under way
  }
}
