// The scenario replayer's client: a long-running program inside the client node that opens flows
// exactly as a scheduler scenario says -- one after another, each from its own source address and
// port, held open or closed before the next -- and closes chosen held flows on request.
//
// It is the traffic client's TCP and UDP flows (src/traffic/client-tcp.ts, client-udp.ts, talking
// to vslab's responder) driven by commands instead of a fixed count, so one process serves a whole
// scenario and a batch of flows costs no round trip per flow.
//
// stdin, one JSON object per line:
//   {"op":"open","flows":[{"i":0,"proto":"tcp","src":"198.18.0.2","sport":40000,"dst":"198.19.0.100","dport":80,"hold":true,"timeoutMs":3000}, ...]}
//   {"op":"close","flows":[0,3]}        close these held flows (all at once) and wait until each is gone
//   {"op":"time"}                       report the driver's clock
// stdout, one JSON object per line:
//   {"event":"ready","t":12.5}
//   {"event":"flow","i":0,"t0":100.1,"t1":104.7,"rec":{...ClientConnEvent...}}   per opened flow, in order
//   {"event":"opened","n":2,"t":105.0}                                           after an open command
//   {"event":"closed","i":0,"t":230.4,"rec":{...}}                               per closed flow
//   {"event":"closeDone","n":2,"t":231.0}
//   {"event":"time","t":300.2}
//   {"event":"error","message":"..."}                                            a bad command (the driver goes on)
// Times are milliseconds on the driver's monotonic clock. A flow that is not held (or failed) is
// reported only once its socket is closed, so "closed before the next flow" holds at the director.
// stdin EOF: every held flow is closed and the driver exits 0.
import { performance } from 'perf_hooks';
import * as readline from 'readline';
import type { Flow, FlowSpec } from '../../traffic/client-flow';
import { TcpFlow } from '../../traffic/client-tcp';
import { UdpFlow } from '../../traffic/client-udp';
import type { ClientConnEvent } from '../../traffic/events';

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

export type DriverEvent =
  | { event: 'ready'; t: number }
  | { event: 'flow'; i: number; t0: number; t1: number; rec: ClientConnEvent }
  | { event: 'opened'; n: number; t: number }
  | { event: 'closed'; i: number; t: number; rec: ClientConnEvent }
  | { event: 'closeDone'; n: number; t: number }
  | { event: 'time'; t: number }
  | { event: 'error'; message: string };

interface Open {
  flow: Flow;
  final: Promise<ClientConnEvent>;
}

const t0 = performance.now();
const now = (): number => Math.round((performance.now() - t0) * 1000) / 1000;
const held = new Map<number, Open>();
const run = Math.random().toString(16).slice(2, 10);

function emit(e: DriverEvent): void {
  process.stdout.write(JSON.stringify(e) + '\n');
}

/**
 * The record a flow keeps updating until its socket is gone. The traffic flows hand it over only in
 * final(); a held flow is reported when it settles, so read it from the flow's bookkeeping (the
 * FlowRecord in its `r` field) and fail loudly if that shape ever changes.
 */
function liveRecord(flow: Flow): ClientConnEvent {
  const r = (flow as unknown as { r?: { rec?: ClientConnEvent } }).r;
  if (!r?.rec) throw new Error('flow-driver: the traffic flow no longer exposes its record (src/traffic/client-flow.ts changed?)');
  return r.rec;
}

/** Starts one flow; resolves when it no longer blocks the next one (held and answered, or gone). */
function openOne(f: DriverFlow): Promise<{ t0: number; t1: number; rec: ClientConnEvent }> {
  const hold = f.proto === 'tcp' && f.hold;
  const spec: FlowSpec = {
    i: f.i, id: `${run}-${f.i}`, proto: f.proto, dst: f.dst, dport: f.dport, src: f.src, sport: f.sport,
    timeoutMs: f.timeoutMs ?? 3000, up: 0, down: undefined, echo: undefined, hold: hold ? 'release' : 0,
  };
  const started = now();
  return new Promise((resolve) => {
    let answered = false;
    let resolveFinal!: (r: ClientConnEvent) => void;
    const final = new Promise<ClientConnEvent>((r) => { resolveFinal = r; });
    let flow: Flow | null = null;
    const cb = {
      settled(ok: boolean) {
        answered = ok;
        if (ok && hold && flow) {
          held.set(f.i, { flow, final });
          resolve({ t0: started, t1: now(), rec: { ...liveRecord(flow) } });
        }
      },
      final(rec: ClientConnEvent) {
        resolveFinal(rec);
        if (!(answered && hold)) resolve({ t0: started, t1: now(), rec: { ...rec } });
      },
    };
    flow = f.proto === 'tcp' ? new TcpFlow(spec, t0, cb) : new UdpFlow(spec, t0, cb);
    liveRecord(flow);
    flow.start();
  });
}

async function handle(cmd: DriverCommand): Promise<void> {
  switch (cmd.op) {
    case 'open': {
      for (const f of cmd.flows) {
        if (held.has(f.i)) {
          emit({ event: 'error', message: `flow ${f.i} is already open` });
          continue;
        }
        const r = await openOne(f);
        emit({ event: 'flow', i: f.i, t0: r.t0, t1: r.t1, rec: r.rec });
      }
      emit({ event: 'opened', n: cmd.flows.length, t: now() });
      return;
    }
    case 'close': {
      const waits = cmd.flows.map(async (i) => {
        const o = held.get(i);
        if (!o) return;
        held.delete(i);
        o.flow.release();
        const rec = await o.final;
        emit({ event: 'closed', i, t: now(), rec });
      });
      await Promise.all(waits);
      emit({ event: 'closeDone', n: cmd.flows.length, t: now() });
      return;
    }
    case 'time':
      emit({ event: 'time', t: now() });
      return;
    default:
      emit({ event: 'error', message: `unknown command ${JSON.stringify(cmd)}` });
  }
}

function main(): void {
  const rl = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
  let chain: Promise<void> = Promise.resolve();
  rl.on('line', (line) => {
    if (!line.trim()) return;
    let cmd: DriverCommand;
    try {
      cmd = JSON.parse(line) as DriverCommand;
    } catch {
      emit({ event: 'error', message: `not JSON: ${line.slice(0, 200)}` });
      return;
    }
    chain = chain.then(() => handle(cmd)).catch((e: Error) => emit({ event: 'error', message: e.message }));
  });
  rl.on('close', () => {
    void chain.then(async () => {
      const all = [...held.values()];
      held.clear();
      for (const o of all) o.flow.release();
      await Promise.race([Promise.all(all.map((o) => o.final)), new Promise((r) => setTimeout(r, 5000))]);
      process.exit(0);
    });
  });
  emit({ event: 'ready', t: now() });
}

main();
