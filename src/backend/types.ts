// What every backend (netns, vm, docker) offers. Backends know nothing about LVS:
// they realise a LabModel's nodes, links, addresses, routes and sysctls, and run programs in nodes.
import type { Readable, Writable } from 'stream';
import type { LabModel } from '../topology/model';

export type BackendKind = 'netns' | 'vm' | 'docker';

export interface ExecOptions {
  /** Bytes written to the program's standard input (then closed). */
  input?: string | Buffer;
  /** Kill the program after this long and report a timeout (default 60 s). */
  timeoutMs?: number;
  env?: Record<string, string>;
  cwd?: string;
}

export interface ExecResult {
  code: number;
  signal: string | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

export interface SpawnOptions {
  env?: Record<string, string>;
  cwd?: string;
}

export interface NodeProcess {
  readonly pid: number | undefined;
  readonly stdout: Readable;
  readonly stderr: Readable;
  readonly stdin: Writable;
  /** Resolves when the process has exited. */
  wait(): Promise<{ code: number | null; signal: string | null }>;
  kill(signal?: NodeJS.Signals): void;
}

/** A node of a running lab: somewhere programs can be run inside the node's network namespace. */
export interface LabNode {
  readonly name: string;
  /** Run argv[0] with arguments inside the node and collect its output. Never throws on a non-zero exit. */
  exec(argv: string[], opts?: ExecOptions): Promise<ExecResult>;
  /** Start a long-lived program inside the node. */
  spawn(argv: string[], opts?: SpawnOptions): NodeProcess;
  /** A path of the node's filesystem, as seen from the host, where files can be left for the host to read
   *  (captures, logs). For the netns backend this is a host directory; other backends copy back. */
  readonly workDir: string;
  /** Copy a file the node wrote (under workDir) to a host path. */
  fetchFile(nodePath: string, hostPath: string): Promise<void>;
  /** A file the node is writing (under workDir), from byte `offset` to its end as read now: a capture read as it
   *  grows. */
  readFileFrom(nodePath: string, offset: number): Promise<Buffer>;
  /** The node's network namespace as a file of this host (/run/netns/..., /proc/PID/ns/net), when it has one here:
   *  netlink sockets and sysctl writes can then be made in it directly. Undefined when the node lives elsewhere (a VM). */
  readonly netnsPath?: string;
  /** Starts a program of the node's own filesystem, for a node that has one apart from the host's (a container's
   *  image): what `vslab exec` runs there. Absent: the node's programs are the host's, and `spawn` runs them. */
  spawnInImage?(argv: string[], opts?: SpawnOptions): NodeProcess & { missing?: { program: string; detail: string } };
  /** The image a node runs, when it runs one (docker). */
  readonly image?: string;
}

export interface RunningLab {
  readonly name: string;
  readonly backend: BackendKind;
  readonly model: LabModel;
  /** Milliseconds from the start of `up` until the lab was ready. */
  readonly readyMs: number;
  node(name: string): LabNode;
  down(): Promise<void>;
}

export interface UpOptions {
  /** Lab name; defaults to the model's name, made unique if taken. */
  name?: string;
  /** Put before the model's name when no name is given (a run's labs on a machine several people share). */
  namePrefix?: string;
  /** Called with short progress messages. */
  progress?: (msg: string) => void;
  /** Ephemeral labs belong to the calling process: gc removes them once it is gone. */
  ephemeral?: boolean;
}

/** What `up` takes for any backend; each backend reads the options that concern it. */
export interface LabUpOptions extends UpOptions {
  backend?: BackendKind;
  /** VM backend: kernel to boot ("bookworm", "backports" or a vmlinuz path). */
  kernel?: string;
  /** VM backend: modules directory for a kernel given by path. */
  modules?: string;
}

export interface LabSummary {
  name: string;
  backend: BackendKind;
  topology: string;
  nodes: string[];
  createdAt: string;
  ownerPid: number;
  alive: boolean;
}
