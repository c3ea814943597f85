#!/usr/bin/env node
// vslab traffic client: opens N TCP connections or UDP exchanges to a target from chosen sources, and
// accounts for every one (answered / refused / timeout / reset / unreachable / closed / error), with the
// real server that answered. Runs inside a lab node. See docs/traffic.md. Node built-ins only.
import { randomBytes } from 'crypto';
import * as net from 'net';
import * as readline from 'readline';
import { performance } from 'perf_hooks';
import type { Flow, FlowSpec } from './client-flow';
import { TcpFlow } from './client-tcp';
import { UdpFlow } from './client-udp';
import type { ClientConnEvent, ClientHoldingEvent, ClientSummaryEvent, Outcome } from './events';
import { OUTCOMES } from './events';
import { JsonLinesWriter } from './json-lines';
import { Endpoint, MAX_TCP_PAYLOAD, MAX_UDP_PAYLOAD, Proto, formatEndpoint, parseEndpoint } from './protocol';
import { ArgReader, ToolUsageError } from './tool-args';

export interface ClientConfig {
  proto: Proto;
  target: Endpoint;
  count: number;
  /** Most connections in their opening phase (connect..answer) at once. Held connections do not count. */
  concurrency: number;
  /** Source addresses, used round-robin (connection i uses sources[i % n]); empty: the kernel's choice. */
  sources: string[];
  /** Source ports, used round-robin (connection i uses sports[i % n]); empty: ephemeral. */
  sports: number[];
  timeoutMs: number;
  /** After the answer: 0 close at once, N ms hold each, or 'release' hold all until released. */
  hold: number | 'release';
  up: number;
  down: number | undefined;
  echo: boolean | undefined;
  /** Print no per-connection lines, only the summary. */
  quiet: boolean;
  /** Prefix of the request ids (`<run>-<i>`). */
  run: string;
}

export const CLIENT_USAGE = `usage: client.js --target ADDR:PORT|[IPV6]:PORT [--proto tcp|udp] [--count N] [--concurrency C | --sequential]
                 [--source ADDR[,ADDR...]] [--sport SPEC] [--timeout MS] [--hold MS | --hold-until-release]
                 [--up N] [--down N] [--echo] [--quiet] [--run ID]
  --count N        connections (TCP) or exchanges (UDP), default 1
  --concurrency C  at most C connections opening at once (default 1); held ones do not count
  --sequential     one after another: each is answered (or has failed) before the next starts (= --concurrency 1)
  --source LIST    source addresses, connection i uses the (i mod n)-th
  --sport SPEC     source ports: "ephemeral" (default), "40000-40099", "40000,40007", combinations; i uses the (i mod n)-th
  --timeout MS     per connection, from start until the whole answer (default 3000)
  --hold MS        keep each answered TCP connection open MS ms, then close it
  --hold-until-release  keep every answered TCP connection open; print {"event":"holding"} once all are
                   answered or failed; close them on a "release" line on stdin, stdin EOF, SIGUSR1, SIGTERM or SIGINT
  --up N           send N payload bytes after the request line
  --down N         ask the responder for N payload bytes (default: the responder's --payload)
  --echo           ask the responder to echo the payload
  --quiet          print only the summary line
  --run ID         request id prefix (default random); ids are ID-<i>
  --serve          (the only argument) one client for many runs: reads a JSON array of the arguments above
                   per line, runs it, then prints {"event":"served","code":0|2}; stdin EOF ends it`;

export function parseClientArgs(argv: string[]): ClientConfig {
  const a = new ArgReader(
    argv,
    ['target', 'proto', 'count', 'concurrency', 'source', 'sport', 'timeout', 'hold', 'up', 'down', 'run'],
    ['sequential', 'hold-until-release', 'echo', 'quiet'],
  );
  const t = a.last('target');
  if (!t) throw new ToolUsageError('--target ADDR:PORT is required');
  let target: Endpoint;
  try {
    target = parseEndpoint(t, '--target');
  } catch (e) {
    throw new ToolUsageError((e as Error).message);
  }
  const proto = (a.last('proto') ?? 'tcp') as Proto;
  if (proto !== 'tcp' && proto !== 'udp') throw new ToolUsageError(`--proto ${JSON.stringify(proto)}: expected tcp or udp`);
  if (a.flag('sequential') && a.last('concurrency') !== undefined && a.last('concurrency') !== '1') {
    throw new ToolUsageError('--sequential and --concurrency > 1 contradict each other');
  }
  if (a.flag('hold-until-release') && a.last('hold') !== undefined) throw new ToolUsageError('give --hold MS or --hold-until-release, not both');
  const family = net.isIP(target.address);
  const sources = a.all('source').flatMap((v) => v.split(',')).map((s) => s.trim()).filter((s) => s !== '');
  for (const s of sources) {
    if (net.isIP(s) === 0) throw new ToolUsageError(`--source ${JSON.stringify(s)} is not an IP address`);
    if (net.isIP(s) !== family) throw new ToolUsageError(`--source ${s} is IPv${net.isIP(s)} but the target ${t} is IPv${family}`);
  }
  let hold: number | 'release' = a.int('hold', 0, 0, 86_400_000);
  if (a.flag('hold-until-release')) hold = 'release';
  if (proto === 'udp' && hold !== 0) throw new ToolUsageError('--hold / --hold-until-release are for TCP only');
  const maxPayload = proto === 'udp' ? MAX_UDP_PAYLOAD - 400 : MAX_TCP_PAYLOAD;
  const run = a.last('run') ?? randomBytes(4).toString('hex');
  if (!/^[A-Za-z0-9._:]{1,40}$/.test(run)) throw new ToolUsageError(`--run ${JSON.stringify(run)}: 1-40 of A-Z a-z 0-9 . _ :`);
  const down = a.last('down');
  return {
    proto,
    target,
    count: a.int('count', 1, 1, 10_000_000),
    concurrency: a.flag('sequential') ? 1 : a.int('concurrency', 1, 1, 100_000),
    sources,
    sports: parsePortSpec(a.last('sport') ?? 'ephemeral'),
    timeoutMs: a.int('timeout', 3000, 1, 3_600_000),
    hold,
    up: a.int('up', 0, 0, maxPayload),
    down: down === undefined ? undefined : a.int('down', 0, 0, maxPayload),
    echo: a.flag('echo') ? true : undefined,
    quiet: a.flag('quiet'),
    run,
  };
}

/** "ephemeral" -> []; "40000-40002,41000" -> [40000, 40001, 40002, 41000]. */
export function parsePortSpec(spec: string): number[] {
  if (spec === 'ephemeral' || spec === '') return [];
  const out: number[] = [];
  for (const part of spec.split(',')) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part.trim());
    if (!m) throw new ToolUsageError(`--sport ${JSON.stringify(part)}: expected PORT or FIRST-LAST`);
    const lo = Number(m[1]);
    const hi = m[2] === undefined ? lo : Number(m[2]);
    if (lo < 1 || hi > 65535 || hi < lo) throw new ToolUsageError(`--sport ${part}: ports must be 1-65535, FIRST <= LAST`);
    for (let p = lo; p <= hi; p++) out.push(p);
  }
  return out;
}

/** Runs every flow and writes the JSON lines. Resolves with the summary. */
export class ClientRun {
  private readonly out = new JsonLinesWriter();
  private readonly runStart = performance.now();
  private readonly flows: Flow[] = [];
  private readonly outcomes = Object.fromEntries(OUTCOMES.map((o) => [o, 0])) as Record<Outcome, number>;
  private readonly servers: Record<string, number> = {};
  private next = 0;
  private opening = 0;
  private settled = 0;
  private settledFailed = 0;
  /** Answered connections whose socket is still open (held). */
  private openAnswered = 0;
  /** The real server of each answered connection (index order), for the `holding` line. */
  private readonly answeredBy: Array<string | null> = [];
  private finals = 0;
  private released = false;
  private aborted = false;
  private done!: (s: ClientSummaryEvent) => void;

  constructor(private readonly cfg: ClientConfig) {}

  run(): Promise<ClientSummaryEvent> {
    return new Promise((resolve) => {
      this.done = resolve;
      this.launch();
    });
  }

  /** Close held connections (hold-until-release). */
  release(): void {
    if (this.released) return;
    this.released = true;
    for (const f of this.flows) f.release();
  }

  /** SIGTERM/SIGINT: release what is held; if the run had not finished opening, stop it and account for the rest. */
  stop(): void {
    if (this.cfg.hold === 'release' && this.settled === this.cfg.count) {
      this.release();
      return;
    }
    this.aborted = true;
    // Connections never started are accounted as error/ABORTED.
    while (this.next < this.cfg.count) {
      const i = this.next++;
      const spec = this.flowSpec(i);
      this.settled++;
      this.settledFailed++;
      this.onFinal({
        event: 'conn', i, proto: spec.proto, id: spec.id, src: spec.src, sport: spec.sport, dst: spec.dst, dport: spec.dport,
        outcome: 'error', stage: 'start', code: 'ABORTED', server: null, local: null, lport: null, peer: null, pport: null,
        start: Math.round((performance.now() - this.runStart) * 1000) / 1000, connectMs: null, answerMs: null, heldMs: null,
        totalMs: 0, bytes: 0, afterAnswer: null,
      });
    }
    for (const f of this.flows) f.abort();
  }

  private flowSpec(i: number): FlowSpec {
    const c = this.cfg;
    return {
      i,
      id: `${c.run}-${i}`,
      proto: c.proto,
      dst: c.target.address,
      dport: c.target.port,
      src: c.sources.length ? c.sources[i % c.sources.length] : null,
      sport: c.sports.length ? c.sports[i % c.sports.length] : null,
      timeoutMs: c.timeoutMs,
      up: c.up,
      down: c.down,
      echo: c.echo,
      hold: c.hold,
    };
  }

  private launch(): void {
    while (!this.aborted && this.opening < this.cfg.concurrency && this.next < this.cfg.count) {
      const i = this.next++;
      this.opening++;
      const spec = this.flowSpec(i);
      const cb = { settled: (answered: boolean, rec: ClientConnEvent) => this.onSettled(answered, rec), final: (rec: ClientConnEvent) => this.onFinal(rec) };
      const flow = this.cfg.proto === 'tcp' ? new TcpFlow(spec, this.runStart, cb) : new UdpFlow(spec, this.runStart, cb);
      this.flows[i] = flow;
      flow.start();
    }
  }

  private onSettled(answered: boolean, rec: ClientConnEvent): void {
    this.opening--;
    this.settled++;
    this.answeredBy[rec.i] = answered ? rec.server : null;
    if (answered) this.openAnswered++;
    else this.settledFailed++;
    if (this.settled === this.cfg.count && this.cfg.hold === 'release' && !this.aborted) {
      const servers = Array.from({ length: this.cfg.count }, (_, i) => this.answeredBy[i] ?? null);
      const ev: ClientHoldingEvent = { event: 'holding', held: this.openAnswered, failed: this.settledFailed, servers };
      this.out.write(ev);
      if (this.released) for (const f of this.flows) f.release();
    }
    // Launch from a fresh tick so a synchronous failure cannot recurse deeply.
    if (this.next < this.cfg.count) setImmediate(() => this.launch());
  }

  private onFinal(rec: ClientConnEvent): void {
    this.finals++;
    this.outcomes[rec.outcome]++;
    if (rec.outcome === 'answered' && rec.server !== null) this.servers[rec.server] = (this.servers[rec.server] ?? 0) + 1;
    if (rec.outcome === 'answered') this.openAnswered--;
    delete this.flows[rec.i];
    if (!this.cfg.quiet) this.out.write(rec);
    if (this.finals === this.cfg.count) {
      const elapsedMs = performance.now() - this.runStart;
      const summary: ClientSummaryEvent = {
        event: 'summary',
        proto: this.cfg.proto,
        target: formatEndpoint(this.cfg.target),
        count: this.cfg.count,
        outcomes: this.outcomes,
        servers: this.servers,
        elapsedMs: Math.round(elapsedMs * 1000) / 1000,
        perSecond: Math.round((this.cfg.count / elapsedMs) * 1000 * 10) / 10,
      };
      this.out.write(summary);
      void this.out.flush().then(() => this.done(summary));
    }
  }
}

/**
 * `client.js --serve`: one long-lived client for many runs, so a lab node pays the program's start once
 * (under TCG that start is most of a short run). Prints {"event":"serving"}; then reads one JSON array of
 * client arguments per line and runs them exactly as a fresh `client.js ARGS...` would, one run at a time,
 * writing the same lines followed by {"event":"served","code":0} (or code 2 and "error" for arguments the
 * client refuses). --hold-until-release is refused here (its release comes on stdin). EOF: exit 0.
 */
async function serve(): Promise<number> {
  const out = (ev: object) => new Promise<void>((resolve) => { process.stdout.write(JSON.stringify(ev) + '\n', () => resolve()); });
  let current: ClientRun | null = null;
  const stop = (): void => { if (current) current.stop(); else process.exit(0); };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  const rl = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
  await out({ event: 'serving' });
  for await (const line of rl) {
    if (!line.trim()) continue;
    let cfg: ClientConfig;
    try {
      const argv = JSON.parse(line) as unknown;
      if (!Array.isArray(argv) || !argv.every((a) => typeof a === 'string')) throw new ToolUsageError('expected a JSON array of strings (client arguments)');
      cfg = parseClientArgs(argv);
      if (cfg.hold === 'release') throw new ToolUsageError('--hold-until-release is not served (its release comes on stdin): run the client on its own');
    } catch (e) {
      await out({ event: 'served', code: 2, error: (e as Error).message });
      continue;
    }
    current = new ClientRun(cfg);
    await current.run();
    current = null;
    await out({ event: 'served', code: 0 });
  }
  return 0;
}

async function main(): Promise<number> {
  let cfg: ClientConfig;
  if (process.argv.length === 3 && process.argv[2] === '--serve') return serve();
  if (process.argv.includes('--help') || process.argv.includes('-h')) {
    process.stdout.write(CLIENT_USAGE + '\n');
    return 0;
  }
  try {
    cfg = parseClientArgs(process.argv.slice(2));
  } catch (e) {
    process.stderr.write(`client: ${(e as Error).message}\n${CLIENT_USAGE}\n`);
    return 2;
  }
  const run = new ClientRun(cfg);
  const stop = (): void => run.stop();
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  if (cfg.hold === 'release') {
    process.on('SIGUSR1', () => run.release());
    let buf = '';
    process.stdin.setEncoding('utf8');
    process.stdin.on('data', (d: string) => {
      buf += d;
      if (/(^|\n)release\r?\n/.test(buf)) run.release();
      if (buf.length > 4096) buf = buf.slice(-100);
    });
    process.stdin.on('end', () => run.release());
    process.stdin.on('error', () => run.release());
  }
  await run.run();
  return 0;
}

if (require.main === module) {
  void main().then((code) => process.exit(code));
}
