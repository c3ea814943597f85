// Host side of the scheduler replayer's flow driver: starts vslab-flowdrv (guest/flows/vslab-flowdrv.c,
// a static C program in every guest image) in the client node and turns its commands into promises.
// One command runs at a time (the driver itself is sequential). The driver opens flows one after
// another from their exact source address and port, each a full TCP connection (or UDP exchange) with
// vslab's responder, held or closed before the next, and reports a ClientConnEvent per flow.
//
// Commands (formatCommand): "open N" then N lines "I tcp|udp SRC SPORT DST DPORT HOLD TIMEOUT_MS",
// "close N I1 .. IN", "time". Events (parseDriverEvent): one JSON object per line, see DriverEvent.
import * as net from 'net';
import * as readline from 'readline';
import { GUEST_FLOWDRV } from '../../backend/vm/agent-build';
import type { LabNode, NodeProcess } from '../../backend/types';
import type { ClientConnEvent } from '../../traffic/events';
import { OUTCOMES } from '../../traffic/events';

/** One flow to open, as the host sends it. */
export interface DriverFlow {
  i: number;
  proto: 'tcp' | 'udp';
  src: string;
  sport: number;
  dst: string;
  dport: number;
  /** TCP: keep the connection open after the answer (until a close command). */
  hold: boolean;
  timeoutMs?: number;
}

export type DriverCommand =
  | { op: 'open'; flows: DriverFlow[] }
  | { op: 'close'; flows: number[] }
  | { op: 'time' };

/**
 * What the driver prints. `flow` per opened flow, in order, once it no longer blocks the next one
 * (held and answered, or its socket closed); `opened` after an open command; `closed` per closed
 * held flow, then `closeDone`; `error` for a bad command. Times are ms on the driver's monotonic clock.
 */
export type DriverEvent =
  | { event: 'ready'; t: number }
  | { event: 'flow'; i: number; t0: number; t1: number; rec: ClientConnEvent }
  | { event: 'opened'; n: number; t: number }
  | { event: 'closed'; i: number; t: number; rec: ClientConnEvent }
  | { event: 'closeDone'; n: number; t: number }
  | { event: 'time'; t: number }
  | { event: 'error'; message: string };

export interface OpenedFlow {
  i: number;
  /** Driver clock (ms) when the flow started and when it stopped blocking the next one. */
  t0: number;
  t1: number;
  rec: ClientConnEvent;
}

export interface ClosedFlow {
  i: number;
  t: number;
  rec: ClientConnEvent;
}

const DEFAULT_TIMEOUT_MS = 3000;

const isInt = (v: unknown, lo: number, hi: number): v is number => typeof v === 'number' && Number.isInteger(v) && v >= lo && v <= hi;

/** The command's text for vslab-flowdrv (lines ending in "\n"); throws on a flow it could not read back. */
export function formatCommand(cmd: DriverCommand): string {
  switch (cmd.op) {
    case 'open':
      return [`open ${cmd.flows.length}`, ...cmd.flows.map((f) => {
        const timeout = f.timeoutMs ?? DEFAULT_TIMEOUT_MS;
        if (!isInt(f.i, 0, 2 ** 31 - 1) || (f.proto !== 'tcp' && f.proto !== 'udp') || !net.isIP(f.src) || !net.isIP(f.dst) ||
            net.isIP(f.src) !== net.isIP(f.dst) || !isInt(f.sport, 0, 65535) || !isInt(f.dport, 0, 65535) || !isInt(timeout, 1, 2 ** 31 - 1)) {
          throw new Error(`flow driver: cannot send flow ${JSON.stringify(f)} (index, protocol, addresses of one family, ports, timeout)`);
        }
        return `${f.i} ${f.proto} ${f.src} ${f.sport} ${f.dst} ${f.dport} ${f.hold ? 1 : 0} ${timeout}`;
      })].join('\n') + '\n';
    case 'close':
      for (const i of cmd.flows) if (!isInt(i, 0, 2 ** 31 - 1)) throw new Error(`flow driver: cannot close flow ${JSON.stringify(i)}`);
      return `close ${cmd.flows.length}${cmd.flows.map((i) => ` ${i}`).join('')}\n`;
    case 'time':
      return 'time\n';
  }
}

const REC_STRINGS = ['id', 'dst'] as const;
const REC_NULLABLE_STRINGS = ['src', 'stage', 'code', 'server', 'local', 'peer', 'afterAnswer'] as const;
const REC_NULLABLE_NUMBERS = ['sport', 'lport', 'pport', 'connectMs', 'answerMs', 'heldMs'] as const;
const REC_NUMBERS = ['i', 'dport', 'start', 'totalMs', 'bytes'] as const;

function checkRecord(v: unknown): ClientConnEvent {
  const r = v as Record<string, unknown>;
  const bad = (what: string) => new Error(`flow driver: a record with ${what}: ${String(JSON.stringify(v)).slice(0, 300)}`);
  if (typeof r !== 'object' || r === null || r.event !== 'conn') throw bad('no event "conn"');
  if (r.proto !== 'tcp' && r.proto !== 'udp') throw bad('a bad proto');
  if (!OUTCOMES.includes(r.outcome as never)) throw bad('a bad outcome');
  for (const k of REC_STRINGS) if (typeof r[k] !== 'string') throw bad(`${k} not a string`);
  for (const k of REC_NULLABLE_STRINGS) if (r[k] !== null && typeof r[k] !== 'string') throw bad(`${k} neither a string nor null`);
  for (const k of REC_NUMBERS) if (typeof r[k] !== 'number') throw bad(`${k} not a number`);
  for (const k of REC_NULLABLE_NUMBERS) if (r[k] !== null && typeof r[k] !== 'number') throw bad(`${k} neither a number nor null`);
  return r as unknown as ClientConnEvent;
}

/**
 * One line of the driver's output as an event; null for a line that is not JSON (not the driver's).
 * Throws on JSON that is not a well-formed event: the replayer must not read a half-understood record.
 */
export function parseDriverEvent(line: string): DriverEvent | null {
  if (!line.startsWith('{')) return null;
  let v: unknown;
  try {
    v = JSON.parse(line);
  } catch {
    return null;
  }
  const e = v as Record<string, unknown>;
  const bad = () => new Error(`flow driver: not an event: ${line.slice(0, 300)}`);
  const num = (k: string) => {
    if (typeof e[k] !== 'number') throw bad();
    return e[k] as number;
  };
  switch (e.event) {
    case 'ready': return { event: 'ready', t: num('t') };
    case 'flow': return { event: 'flow', i: num('i'), t0: num('t0'), t1: num('t1'), rec: checkRecord(e.rec) };
    case 'opened': return { event: 'opened', n: num('n'), t: num('t') };
    case 'closed': return { event: 'closed', i: num('i'), t: num('t'), rec: checkRecord(e.rec) };
    case 'closeDone': return { event: 'closeDone', n: num('n'), t: num('t') };
    case 'time': return { event: 'time', t: num('t') };
    case 'error':
      if (typeof e.message !== 'string') throw bad();
      return { event: 'error', message: e.message };
    default: throw bad();
  }
}

interface Pending {
  onEvent(e: DriverEvent): boolean; // true when the command is complete
  reject(e: Error): void;
}

export class DriverClient {
  private pending: Pending | null = null;
  private queue: Promise<unknown> = Promise.resolve();
  private stderr = '';
  exited = false;
  private readonly exitedPromise: Promise<{ code: number | null; signal: string | null }>;

  private constructor(private readonly node: LabNode, private readonly proc: NodeProcess) {
    proc.stderr.setEncoding('utf8');
    proc.stderr.on('data', (d: string) => {
      if (this.stderr.length < 64 * 1024) this.stderr += d;
    });
    this.exitedPromise = proc.wait().then((st) => {
      this.exited = true;
      this.pending?.reject(new Error(`flow driver in node ${node.name} exited (code ${st.code}, signal ${st.signal}): ${this.stderr.trim() || 'no stderr'}`));
      this.pending = null;
      return st;
    }, (e: Error) => {
      this.exited = true;
      this.pending?.reject(new Error(`flow driver in node ${node.name}: lost (${e.message})`));
      this.pending = null;
      throw e;
    });
    this.exitedPromise.catch(() => undefined); // awaited by stop(); never an unhandled rejection
    const rl = readline.createInterface({ input: proc.stdout, crlfDelay: Infinity });
    rl.on('line', (line) => {
      let ev: DriverEvent | null;
      try {
        ev = parseDriverEvent(line);
      } catch (e) {
        const p = this.pending;
        this.pending = null;
        p?.reject(new Error(`in node ${node.name}: ${(e as Error).message}`));
        return;
      }
      const p = this.pending;
      if (!ev || !p) return;
      if (ev.event === 'error') {
        this.pending = null;
        p.reject(new Error(`flow driver in node ${node.name}: ${ev.message}`));
        return;
      }
      if (p.onEvent(ev)) this.pending = null;
    });
  }

  /**
   * Starts the driver in `node` and waits for its ready line. `program`: the driver as the node sees it,
   * by default GUEST_FLOWDRV of the guest image (the tests run a host build in a namespace).
   */
  static async start(node: LabNode, opts: { program?: string; readyTimeoutMs?: number } = {}): Promise<DriverClient> {
    const proc = node.spawn([opts.program ?? GUEST_FLOWDRV]);
    const c = new DriverClient(node, proc);
    await c.command<void>(null, (e) => (e.event === 'ready' ? { done: true, value: undefined } : { done: false }), opts.readyTimeoutMs ?? 60_000);
    return c;
  }

  private command<T>(cmd: DriverCommand | null, step: (e: DriverEvent) => { done: true; value: T } | { done: false }, timeoutMs: number): Promise<T> {
    let text = '';
    try {
      if (cmd) text = formatCommand(cmd);
    } catch (e) {
      return Promise.reject(e);
    }
    const run = () =>
      new Promise<T>((resolve, reject) => {
        if (this.exited) {
          reject(new Error(`flow driver in node ${this.node.name} is not running: ${this.stderr.trim()}`));
          return;
        }
        const timer = setTimeout(() => {
          this.pending = null;
          reject(new Error(`flow driver in node ${this.node.name}: no answer to ${cmd ? cmd.op : 'start'} within ${timeoutMs} ms`));
        }, timeoutMs);
        this.pending = {
          onEvent: (e) => {
            const r = step(e);
            if (r.done) {
              clearTimeout(timer);
              resolve(r.value);
            }
            return r.done;
          },
          reject: (e) => {
            clearTimeout(timer);
            reject(e);
          },
        };
        if (cmd) this.proc.stdin.write(text);
      });
    const p = this.queue.then(run, run);
    this.queue = p.catch(() => undefined);
    return p;
  }

  /** Opens flows one after another; resolves with one record per flow, in order. */
  open(flows: DriverFlow[]): Promise<OpenedFlow[]> {
    const out: OpenedFlow[] = [];
    const perFlow = Math.max(...flows.map((f) => f.timeoutMs ?? DEFAULT_TIMEOUT_MS), DEFAULT_TIMEOUT_MS) * 2 + 500;
    return this.command<OpenedFlow[]>({ op: 'open', flows }, (e) => {
      if (e.event === 'flow') out.push({ i: e.i, t0: e.t0, t1: e.t1, rec: e.rec });
      if (e.event === 'opened') return { done: true, value: out };
      return { done: false };
    }, 60_000 + flows.length * perFlow);
  }

  /** Closes held flows (all at once) and waits until every one of them is gone. */
  close(indices: number[]): Promise<ClosedFlow[]> {
    const out: ClosedFlow[] = [];
    return this.command<ClosedFlow[]>({ op: 'close', flows: indices }, (e) => {
      if (e.event === 'closed') out.push({ i: e.i, t: e.t, rec: e.rec });
      if (e.event === 'closeDone') return { done: true, value: out };
      return { done: false };
    }, 60_000 + indices.length * 100);
  }

  /** The driver's clock (ms). */
  time(): Promise<number> {
    return this.command<number>({ op: 'time' }, (e) => (e.event === 'time' ? { done: true, value: e.t } : { done: false }), 30_000);
  }

  /** Closes stdin (the driver closes every held flow and exits). */
  async stop(): Promise<void> {
    if (this.exited) return;
    this.proc.stdin.end();
    const t = setTimeout(() => this.proc.kill('SIGKILL'), 15_000);
    await this.exitedPromise;
    clearTimeout(t);
  }
}
