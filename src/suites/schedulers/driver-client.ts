// Host side of the flow driver (flow-driver.ts): starts it in the client node and turns its
// commands into promises. One command runs at a time (the driver itself is sequential).
import * as path from 'path';
import * as readline from 'readline';
import type { LabNode, NodeProcess } from '../../backend/types';
import type { ClientConnEvent } from '../../traffic/events';
import type { DriverCommand, DriverEvent, DriverFlow } from './flow-driver';

export type { DriverFlow };

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

interface Pending {
  onEvent(e: DriverEvent): boolean; // true when the command is complete
  reject(e: Error): void;
}

/** Where the compiled driver is: <repo>/dist/suites/schedulers/flow-driver.js (this file is in src/ or dist/). */
export function driverScript(): string {
  return path.resolve(__dirname, '..', '..', '..', 'dist', 'suites', 'schedulers', 'flow-driver.js');
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
      if (!line.startsWith('{')) return;
      let ev: DriverEvent;
      try {
        ev = JSON.parse(line) as DriverEvent;
      } catch {
        return;
      }
      const p = this.pending;
      if (!p) return;
      if (ev.event === 'error') {
        this.pending = null;
        p.reject(new Error(`flow driver in node ${node.name}: ${ev.message}`));
        return;
      }
      if (p.onEvent(ev)) this.pending = null;
    });
  }

  /** Starts the driver in `node` and waits for its ready line. */
  static async start(node: LabNode, opts: { nodeBinary?: string; readyTimeoutMs?: number } = {}): Promise<DriverClient> {
    const proc = node.spawn([opts.nodeBinary ?? process.execPath, driverScript()]);
    const c = new DriverClient(node, proc);
    await c.command<void>(null, (e) => (e.event === 'ready' ? { done: true, value: undefined } : { done: false }), opts.readyTimeoutMs ?? 60_000);
    return c;
  }

  private command<T>(cmd: DriverCommand | null, step: (e: DriverEvent) => { done: true; value: T } | { done: false }, timeoutMs: number): Promise<T> {
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
        if (cmd) this.proc.stdin.write(JSON.stringify(cmd) + '\n');
      });
    const p = this.queue.then(run, run);
    this.queue = p.catch(() => undefined);
    return p;
  }

  /** Opens flows one after another; resolves with one record per flow, in order. */
  open(flows: DriverFlow[]): Promise<OpenedFlow[]> {
    const out: OpenedFlow[] = [];
    const perFlow = Math.max(...flows.map((f) => f.timeoutMs ?? 3000), 3000) * 2 + 500;
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
