// The Docker engine as vslab talks to it: dockerode over the daemon's socket, never the docker CLI.
// Exec with exit code and demultiplexed output, label-filtered listing, and the daemon check.
import Docker from 'dockerode';
import { PassThrough } from 'stream';
import type { ExecOptions, ExecResult } from '../types';

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

/** Runs argv inside a container (its own filesystem: the image's programs) and collects exit code and output. */
export async function execInContainer(id: string, argv: string[], opts: ExecOptions = {}): Promise<ExecResult> {
  const c = docker().getContainer(id);
  const ex = await c.exec({
    Cmd: argv, AttachStdout: true, AttachStderr: true, AttachStdin: opts.input !== undefined,
    Env: opts.env ? Object.entries(opts.env).map(([k, v]) => `${k}=${v}`) : undefined, WorkingDir: opts.cwd,
  });
  const stream = await ex.start({ hijack: true, stdin: opts.input !== undefined });
  const out: Buffer[] = [], err: Buffer[] = [];
  const o = new PassThrough(), e = new PassThrough();
  o.on('data', (d: Buffer) => out.push(d));
  e.on('data', (d: Buffer) => err.push(d));
  docker().modem.demuxStream(stream, o, e);
  if (opts.input !== undefined) stream.end(opts.input);
  let timedOut = false;
  await new Promise<void>((resolve) => {
    const timer = setTimeout(() => { timedOut = true; stream.destroy(); resolve(); }, opts.timeoutMs ?? 60_000);
    stream.on('end', () => { clearTimeout(timer); resolve(); });
    stream.on('close', () => { clearTimeout(timer); resolve(); });
    stream.on('error', () => { clearTimeout(timer); resolve(); });
  });
  let code = -1;
  for (let i = 0; i < 50; i++) {
    const info = await ex.inspect();
    if (!info.Running) { code = info.ExitCode ?? -1; break; }
    if (timedOut) break;
    await new Promise((r) => setTimeout(r, 20));
  }
  return { code, signal: null, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString(), timedOut };
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
