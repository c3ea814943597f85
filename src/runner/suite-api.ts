// The pieces behind the suite fixtures (suites/fixtures.ts): per-test captures on every link end, traffic
// with per-test client ports, and evaluating oracle checks into a test directory of the run directory
// (expectations.json + capture.pcapng for `vslab replay`, checks.json for the runner's report).
import * as fs from 'fs';
import * as path from 'path';
import type { RunningLab } from '../backend/types';
import { CaptureSet, labLinkEnds, type TcpdumpOptions } from '../capture/tcpdump';
import { type CaptureWindow, LabCaptures } from '../capture/windows';
import type { DirectorConnection } from '../director/types';
import { accountPackets, EXTRA_STATEMENT, OFF_PATH_STATEMENT, renderAccounting, type Accounting, type BackgroundClass, type Explainer } from '../oracle/accounting';
import { writeAccountingFile } from './accounting-file';
import { attribute, type OracleCheck } from '../oracle/expect';
import { unansweredCheck } from '../oracle/director-checks';
import { flowFromWire } from '../oracle/explainers';
import type { Flow } from '../oracle/types';
import { decodeCaptureWithInterfaces } from '../packet/capturefile';
import { evaluateExpectation, renderResult, type ExpectationResult } from '../packet/expect';
import type { DecodedPacket } from '../packet/layers';
import { CAPTURE_FILE, writeExpectationFile } from '../packet/rundir';
import type { ServiceModel } from '../topology/model';
import { startClient, type ClientConnEvent, type ClientHandle, type ClientReport } from '../traffic';
import { clientSession } from './client-sessions';
import { mergeCaptures } from '../capture/merge';
import type { PreparedLab } from './prepare';

export const CHECKS_FILE = 'checks.json';

/** A test's id in the run directory: "<suite>.<file>.<title>", lower-case, safe as a directory name. */
export function testIdOf(file: string, title: string, suiteRoot: string): string {
  const rel = path.relative(suiteRoot, file).replace(/\.spec\.ts$/, '').split(path.sep).join('.');
  const slug = title.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-+|-+$/g, '');
  return `${rel}.${slug}`.slice(0, 120);
}

// ---- captures ------------------------------------------------------------------------------------

export interface CapturedTest {
  file: string;
  packets: DecodedPacket[];
  links: string[];
  guePort?: number;
  /** Things worth knowing about the capture itself. */
  notes: string[];
  /** Where finishing the capture took its time (ms): stopping every tcpdump, fetching the files, merging and decoding. */
  timing?: { stopMs: number; fetchMs: number; decodeMs: number };
}

/**
 * Whether tests take windows of captures kept for the lab's life (src/capture/windows.ts; the default) or start
 * and stop a tcpdump per link end themselves (VSLAB_CAPTURE_WINDOWS=0: the path before, which
 * bench/forwarding-suite.js measures beside it).
 */
export function captureWindows(): boolean {
  return process.env.VSLAB_CAPTURE_WINDOWS !== '0';
}

const labCaptures = new WeakMap<RunningLab, LabCaptures>();

/** Stops the lab's long-running captures, if it has any (the pool calls this before it releases or leaves the lab). */
export async function closeLabCaptures(lab: RunningLab): Promise<void> {
  const caps = labCaptures.get(lab);
  if (!caps) return;
  labCaptures.delete(lab);
  await caps.close();
}

function captureOptions(lab: RunningLab): Omit<TcpdumpOptions, 'iface'> {
  // A TCG guest on a loaded host (the ha lab: keepalived, health checks, a dozen captures) has been seen
  // to take more than 15 s to start tcpdump: it gets a minute there.
  return lab.backend === 'vm' ? { extraArgs: ['-Z', 'root'], readyTimeoutMs: 60_000 } : {};
}

/** Captures every link end of the lab for one test; finish() stops, merges and decodes once. */
export class TestCapture {
  private finished?: Promise<CapturedTest>;

  private constructor(
    private readonly lab: RunningLab,
    private readonly dir: string,
    private readonly guePort: number | undefined,
    /** The test's own tcpdumps (VSLAB_CAPTURE_WINDOWS=0). */
    private readonly set?: CaptureSet,
    /** Its window of the lab's captures (the default). */
    private readonly win?: { caps: LabCaptures; w: CaptureWindow },
  ) {}

  static async start(lab: RunningLab, dir: string): Promise<TestCapture> {
    fs.mkdirSync(dir, { recursive: true });
    if (captureWindows()) {
      let caps = labCaptures.get(lab);
      if (!caps) labCaptures.set(lab, (caps = new LabCaptures(labLinkEnds(lab), captureOptions(lab), `${lab.name}-${process.pid}`)));
      return new TestCapture(lab, dir, guePortOf(lab), undefined, { caps, w: await caps.begin() });
    }
    const set = await CaptureSet.start(labLinkEnds(lab), captureOptions(lab));
    return new TestCapture(lab, dir, guePortOf(lab), set);
  }

  finish(): Promise<CapturedTest> {
    this.finished ??= this.doFinish();
    return this.finished;
  }

  /** The link must be quiet this long before the stop point: a TCG guest delivers late packets later. */
  private get settleMs(): number {
    return this.lab.backend === 'vm' ? 300 : 150;
  }

  private async doFinish(): Promise<CapturedTest> {
    const scratch = fs.mkdtempSync(path.join(this.dir, '.links-'));
    try {
      let inputs: { path: string; link: string }[];
      let notes: string[];
      let stopMs: number;
      let fetchMs: number;
      if (this.win) {
        const r = await this.win.caps.end(this.win.w, scratch, this.settleMs);
        inputs = r.files.map((f) => ({ path: f.path, link: f.link }));
        notes = r.notes;
        stopMs = r.stopMs;
        fetchMs = r.fetchMs;
      } else {
        const set = this.set!;
        const t0 = Date.now();
        notes = await this.stopAll(set);
        const t1 = Date.now();
        inputs = [];
        for (const c of set.captures) {
          const local = path.join(scratch, `${c.node.name}-${c.iface}.pcap`);
          await c.node.fetchFile(c.file, local);
          inputs.push({ path: local, link: c.link });
        }
        stopMs = t1 - t0;
        fetchMs = Date.now() - t1;
      }
      const t2 = Date.now();
      const file = path.join(this.dir, CAPTURE_FILE);
      // Every link is declared, even a silent one: "captured, nothing there" differs from "not captured".
      mergeCaptures(inputs.map((i) => ({ path: i.path, name: i.link })), file);
      const { packets, interfaces } = decodeCaptureWithInterfaces(file, { payload: true, ...(this.guePort ? { guePort: this.guePort } : {}) });
      return { file, packets, links: interfaces, guePort: this.guePort, notes, timing: { stopMs, fetchMs, decodeMs: Date.now() - t2 } };
    } finally {
      fs.rmSync(scratch, { recursive: true, force: true });
    }
  }

  /**
   * Stops every capture. A tcpdump that printed its final counts (nothing dropped) but whose exit was not
   * reported in time (seen rarely under TCG load) has written everything (-U): its file is used, with a note.
   */
  private async stopAll(set: CaptureSet): Promise<string[]> {
    const settleMs = this.settleMs;
    const res = await Promise.allSettled(set.captures.map((c) => c.stop({ settleMs })));
    const notes: string[] = [];
    for (const [k, r] of res.entries()) {
      const c = set.captures[k];
      if (r.status === 'fulfilled') {
        const late = r.value.arrivedWhileStopping;
        const at = r.value.completeAt;
        if (late) notes.push(at
          ? `capture ${c.link}: ${late} packet(s) reached tcpdump after the stop point (by then it had written all ${at.receivedByFilter} it had received); not written`
          : `capture ${c.link}: ${late} packet(s) reached tcpdump only while it was being stopped, after ${settleMs} ms without traffic; not written`);
        continue;
      }
      const msg = (r.reason as Error).message;
      const complete = /did not exit within/.test(msg) && /\d+ packets? captured/.test(c.messages) && /^0 packets? dropped by kernel/m.test(c.messages);
      if (!complete) throw r.reason;
      notes.push(`capture ${c.link}: tcpdump's exit came late (it had printed its counts, nothing dropped); its file was used`);
    }
    return notes;
  }

  /** Stop without checks (a test that failed before finishing); a window is dropped, the lab's captures go on. */
  async abort(): Promise<void> {
    if (this.finished) {
      await this.finished.catch(() => undefined);
      return;
    }
    if (this.win) this.win.caps.forget(this.win.w);
    if (this.set) await Promise.all(this.set.captures.map((c) => c.abort().catch(() => undefined)));
  }
}

function guePortOf(lab: RunningLab): number | undefined {
  for (const s of lab.model.services) for (const r of s.realServers) if (r.tunnel?.type === 'gue' && r.tunnel.port) return r.tunnel.port;
  return undefined;
}

// ---- traffic -------------------------------------------------------------------------------------

/**
 * Client source ports: each test takes fresh ones, so flows (and the director's entries) of earlier tests
 * never mix in. With a state file the counter outlives the worker (a replacement worker in the run's
 * shared VM must not reuse ports whose connections the director still tracks).
 */
export class PortAllocator {
  private next: number;

  constructor(private readonly stateFile?: string, first = 20000) {
    this.next = first;
    if (stateFile && fs.existsSync(stateFile)) this.next = Number(fs.readFileSync(stateFile, 'utf8')) || first;
  }

  take(n: number): number[] {
    const out = Array.from({ length: n }, (_, k) => this.next + k);
    this.next += Math.max(16, n);
    if (this.next > 60000) this.next = 20000;
    if (this.stateFile) fs.writeFileSync(this.stateFile, String(this.next));
    return out;
  }
}

export interface TrafficOptions {
  /** Connections / exchanges (default 1), one after another. */
  count?: number;
  /** Bytes the client uploads after its request line / asks the server to send. */
  up?: number;
  down?: number;
  timeoutMs?: number;
  /** Client node (default: the lab's first client). */
  client?: string;
  /** The director these connections go through when it is not the service's own (an ha group's master of the moment). */
  director?: string;
  /** Kill the client after this long (default: from count and timeout, 30 s + 6 s a connection). */
  processTimeoutMs?: number;
}

export interface TrafficRun {
  service: ServiceModel;
  client: string;
  report: ClientReport;
  conns: ClientConnEvent[];
  /** One flow per connection; realServer is null when neither the answer nor the director's table says. */
  flows: Array<Flow & { answered: boolean }>;
}

export class Traffic {
  readonly runs: TrafficRun[] = [];
  /** Time spent in traffic runs so far (ms): the client's process, start to report. */
  clientMs = 0;

  /** `notApplicable`: called for a service the director's driver cannot express (the suites mark the test so). */
  constructor(
    private readonly prepared: PreparedLab,
    private readonly ports: PortAllocator,
    private readonly notApplicable: (reason: string) => never = (reason) => { throw new Error(reason); },
  ) {}

  get model(): import('../topology/model').LabModel {
    return this.prepared.model;
  }

  private clientAddress(client: string, family: 4 | 6): string | null {
    const n = this.prepared.model.nodes.find((x) => x.name === client);
    for (const i of n?.interfaces ?? []) {
      const a = family === 4 ? i.ipv4?.addr : i.ipv6?.addr;
      if (a) return a;
    }
    return null;
  }

  /** Checks standing for connections no real server answered and no table names (they fail unless the answer is on the wire after all). */
  unansweredChecks(run: TrafficRun): OracleCheck[] {
    return run.conns
      .filter((c) => !run.flows.some((f) => f.clientPort === c.sport))
      .map((c) => unansweredCheck(this.prepared.model, run.service, run.client, { ...c, src: c.src ?? this.clientAddress(run.client, run.service.family) }));
  }

  service(name: string): ServiceModel {
    const s = this.prepared.model.services.find((x) => x.name === name);
    if (!s) throw new Error(`lab ${this.prepared.model.name} has no service "${name}" (it has ${this.prepared.model.services.map((x) => x.name).join(', ')})`);
    return s;
  }

  /**
   * Flows for the connections of every run that no flow stands for (the client gave up before an answer and the
   * director's table did not name a real server): the real server the capture shows them reaching, if one did.
   * Packet accounting explains their packets with these; no check judges them.
   */
  wireFlows(packets: DecodedPacket[]): Flow[] {
    const out: Flow[] = [];
    for (const r of this.runs) {
      for (const c of r.conns) {
        const src = c.src ?? this.clientAddress(r.client, r.service.family);
        if (!src || !c.sport || r.flows.some((f) => f.clientAddr === src && f.clientPort === c.sport)) continue;
        const f = flowFromWire(this.prepared.model, { service: r.service.name, client: r.client, clientAddr: src, clientPort: c.sport }, packets);
        if (f) out.push(f);
      }
    }
    return out;
  }

  /** The service, programmed (a declined one makes the test not applicable), and the client node to send from. */
  private target(serviceName: string, client?: string): { service: ServiceModel; client: string } {
    const service = this.service(serviceName);
    const why = this.prepared.unsupported.get(service.name);
    if (why) this.notApplicable(`service ${service.name} is not programmed: ${why}`);
    if (!service.vip) throw new Error(`service ${service.name} has no VIP to send to`);
    const c = client ?? this.prepared.model.nodes.find((n) => n.role === 'client')?.name;
    if (!c) throw new Error(`lab ${this.prepared.model.name} has no client node`);
    return { service, client: c };
  }

  async run(serviceName: string, opts: TrafficOptions = {}): Promise<TrafficRun> {
    const { service, client } = this.target(serviceName, opts.client);
    const count = opts.count ?? 1;
    const t0 = Date.now();
    const session = await clientSession(this.prepared, client);
    const report = await session.run({
      target: { address: service.vip!, port: service.port }, proto: service.protocol === 'udp' ? 'udp' : 'tcp',
      count, sequential: true, sports: this.ports.take(count), timeoutMs: opts.timeoutMs ?? 3000, up: opts.up, down: opts.down,
      ...(opts.processTimeoutMs ? { processTimeoutMs: opts.processTimeoutMs } : {}),
    });
    this.clientMs += Date.now() - t0;
    return this.record(service, client, report, opts.director);
  }

  /**
   * Opens `count` TCP connections one after another (each answered before the next starts) and keeps them
   * all open: resolves once every one is answered and held (or has failed), with the real server of each.
   * Connection k was scheduled while the connections held before this call and connections 0..k-1 of
   * this one were open. `release()` closes them and records the run like `run()` does (its flows explain
   * their packets); whatever a test leaves held is closed when the test ends.
   */
  async hold(serviceName: string, opts: Pick<TrafficOptions, 'count' | 'client' | 'timeoutMs'> = {}): Promise<HeldRun> {
    const { service, client } = this.target(serviceName, opts.client);
    if (service.protocol !== 'tcp') throw new Error(`service ${service.name} is ${service.protocol}: only TCP connections can be held`);
    const count = opts.count ?? 1;
    const handle = startClient(this.prepared.lab.node(client), {
      target: { address: service.vip!, port: service.port }, proto: 'tcp', count, sequential: true, sports: this.ports.take(count),
      timeoutMs: opts.timeoutMs ?? 3000, hold: 'release',
    });
    this.open.add(handle);
    let holding;
    try {
      holding = await handle.holding;
    } catch (e) {
      this.open.delete(handle);
      handle.stop();
      throw e;
    }
    let released: Promise<TrafficRun> | undefined;
    return {
      service, client, servers: holding.servers,
      release: () => {
        released ??= (async () => {
          handle.release();
          try {
            return await this.record(service, client, await handle.report);
          } finally {
            this.open.delete(handle);
          }
        })();
        return released;
      },
    };
  }

  private readonly open = new Set<ClientHandle>();

  /** Closes every connection a test left held (the fixture calls it when the test ends). */
  async releaseAll(): Promise<void> {
    const left = [...this.open];
    this.open.clear();
    for (const h of left) h.release();
    await Promise.all(left.map((h) => h.report.catch(() => undefined)));
    if (left.length) this.prepared.lastTrafficAt = Date.now();
  }

  /**
   * Waits until the director's counters show every earlier run in this lab: a director that folds them late
   * (`foldMs`, IPVS every 2 s) has folded at least once after the lab's last traffic ended, with a margin for
   * its last packets (closing segments) and a late timer in a loaded guest. Without it a counters test's
   * "before" could miss the previous test's connection, which the fold during this test then counts as its own.
   */
  async countersCaughtUp(foldMs: number): Promise<void> {
    const MARGIN_MS = 500;
    const last = this.prepared.lastTrafficAt;
    if (!foldMs || last === undefined) return;
    const wait = last + foldMs + MARGIN_MS - Date.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
  }

  /** A finished client run as a TrafficRun: a flow per connection whose real server is known (answer or table). */
  private async record(service: ServiceModel, client: string, report: ClientReport, director?: string): Promise<TrafficRun> {
    this.prepared.lastTrafficAt = Date.now();
    let table: DirectorConnection[] | undefined;
    const flows: TrafficRun['flows'] = [];
    const clientAddr = (c: ClientConnEvent) => c.src ?? this.clientAddress(client, service.family);
    for (const c of report.conns) {
      // A proxy's real server that sent its identity line did serve the connection, even if the rest of the
      // answer stalled on the way (the proxy suite then judges the streams): its server leg is known.
      const proxiedService = service.realServers.every((r) => r.method === 'proxy');
      let rs = c.outcome === 'answered' || (proxiedService && c.peer) ? c.server : null;
      const src = clientAddr(c);
      if (!rs && src && c.sport) {
        table ??= await this.prepared.directors.get(director ?? service.director)?.connections().catch(() => []) ?? [];
        const entry = table.find((e) => e.client.addr === src && e.client.port === c.sport && e.virtual.port === service.port && !e.template);
        rs = entry ? service.realServers.find((r) => r.addr === entry.realServer.addr)?.node ?? null : null;
      }
      // A proxy's server leg starts at a port the proxy picked: the real server's identity line says which.
      const proxied = rs && service.realServers.find((r) => r.node === rs)?.method === 'proxy';
      const leg = proxied && c.peer && c.pport ? { leg: { addr: c.peer, port: c.pport } } : {};
      if (rs && src && c.sport) flows.push({ service: service.name, client, clientAddr: src, clientPort: c.sport, realServer: rs, answered: c.outcome === 'answered', ...(director ? { director } : {}), ...leg });
    }
    const run: TrafficRun = { service, client, report, conns: report.conns, flows };
    this.runs.push(run);
    return run;
  }
}

/** Connections held open by `Traffic.hold`. */
export interface HeldRun {
  service: ServiceModel;
  client: string;
  /** The real server of each connection, in the order they were opened (null: not answered). */
  servers: Array<string | null>;
  /** Closes the connections; resolves with the run once the client has finished. */
  release(): Promise<TrafficRun>;
}

// ---- checks and the test's record ----------------------------------------------------------------

export interface CheckRecord {
  id: string;
  ok: boolean;
  reason: string;
  /** Statements the check answers to (when missing, and per field). */
  covers: string[];
  /** Statements it breaks (empty when it passed). */
  broken: string[];
}

export interface ChecksFile {
  version: 1;
  testId: string;
  title: string;
  file: string;
  /** Statements the test declares it checks. */
  declared: string[];
  checks: CheckRecord[];
  /** Verdict per statement: failed when any check broke it. */
  statements: Record<string, 'passed' | 'failed'>;
  /** Lab and director facts for the report. */
  lab?: string;
  fault?: string;
  notes: string[];
  /** Packet accounting (accounting.json has its inputs): packets per class, the unexpected ones that fail the test, and their consequences. */
  accounting?: Pick<Accounting, 'counts' | 'causes' | 'consequences'>;
  /** Measured figures (HA suite: failoverMs, flowsKept, flowsTotal, maxGapMs, packetsLost). */
  figures?: Record<string, number | null>;
  /** Timestamped actions the test took on the lab (wall clock of the lab machine, ms). */
  events?: Array<{ at: number; what: string }>;
  /** Where the test's time went (ms): capture start and stop, fetch, decode, traffic, evaluation, director reads. */
  phases?: Record<string, number>;
}

/** What a test's packet accounting needs besides the capture: the flows' explainers and the background classes. */
export interface AccountingContext {
  explainers: Explainer[];
  background: BackgroundClass[];
}

/** Statements packet accounting answers to: packets off every flow's path, and packets nobody asked for. */
export const ACCOUNTING_STATEMENTS = [OFF_PATH_STATEMENT, EXTRA_STATEMENT];

function accountingBroken(a: Accounting): string[] {
  return [...new Set(a.causes.map((c) => c.statement!))].sort();
}

export class CheckFailure extends Error {
  override name = 'CheckFailure';
}

export class TestRecord {
  private readonly checks: OracleCheck[] = [];
  private readonly results: ExpectationResult[] = [];
  readonly notes: string[] = [];
  readonly figures: Record<string, number | null> = {};
  readonly events: Array<{ at: number; what: string }> = [];
  /** Where the test's time went (ms), by phase; a phase seen several times adds up. */
  readonly phases: Record<string, number> = {};
  lab?: string;
  fault?: string;
  guePort?: number;
  accounting?: { result: Accounting; explainers: Explainer[]; background: BackgroundClass[] };

  constructor(readonly testId: string, readonly dir: string, readonly title: string, readonly file: string, readonly declared: string[]) {}

  /** Verdicts made from something other than packets (statistics of the real servers chosen), as check records. */
  private readonly judged: CheckRecord[] = [];

  /** Checks evaluated so far: packet checks and judged verdicts. */
  get evaluated(): number {
    return this.results.length + this.judged.length;
  }

  /**
   * Records a verdict not made from packets (a statistical or exact test of which real servers a scheduler
   * chose, src/models/distribution-checks.ts) as a check answering to `statements`, which the test must
   * declare; throws naming the broken statements when it failed. `vslab replay` does not re-decide it (it
   * re-evaluates packet expectations only); checks.json keeps the reason with its figures.
   */
  judge(id: string, ok: boolean, reason: string, statements: string[]): void {
    if (this.judged.some((j) => j.id === id) || this.checks.some((c) => c.expectation.id === id)) throw new Error(`check id ${id} is used twice in test ${this.testId}`);
    const undeclared = statements.filter((s) => !this.declared.includes(s));
    if (undeclared.length) throw new Error(`test "${this.title}" checks statements it does not declare: ${undeclared.join(', ')} (add them to its annotation)`);
    this.judged.push({ id, ok, reason, covers: statements, broken: ok ? [] : statements });
    this.write();
    if (!ok) throw new CheckFailure(`check ${id} failed; statements broken: ${statements.join(', ')}\n${reason}`);
  }

  /** Adds `ms` to a phase of the test's time. */
  phase(name: string, ms: number): void {
    this.phases[name] = (this.phases[name] ?? 0) + Math.round(ms);
  }

  /** Evaluates checks against the test's packets, records them, and throws naming the broken statements. */
  evaluate(checks: OracleCheck[], captured: CapturedTest, accounting?: AccountingContext): void {
    this.guePort ??= captured.guePort;
    for (const n of captured.notes) if (!this.notes.includes(n)) this.notes.push(n);
    const used = new Set(this.checks.map((c) => c.expectation.id));
    const fresh: Array<{ check: OracleCheck; result: ExpectationResult }> = [];
    for (const c of checks) {
      if (used.has(c.expectation.id)) throw new Error(`check id ${c.expectation.id} is used twice in test ${this.testId}`);
      used.add(c.expectation.id);
      const result = evaluateExpectation(c.expectation, captured.packets, captured.links);
      this.checks.push(c);
      this.results.push(result);
      fresh.push({ check: c, result });
    }
    const covered = fresh.flatMap((f) => coveredBy(f.check));
    if (accounting) {
      this.account(captured, accounting);
      covered.push(...ACCOUNTING_STATEMENTS);
    }
    const undeclared = [...new Set(covered)].filter((s) => !this.declared.includes(s));
    this.write();
    if (undeclared.length) throw new Error(`test "${this.title}" checks statements it does not declare: ${undeclared.join(', ')} (add them to its annotation)`);
    const failed = fresh.filter((f) => !f.result.ok && !this.isConsequence(f.check));
    const acct = this.accounting?.result;
    if (failed.length || (acct && !acct.ok)) {
      const broken = [...new Set([...failed.flatMap((f) => attribute(f.check, f.result)), ...(acct ? accountingBroken(acct) : [])])].sort();
      const shown = failed.slice(0, 8).map((f) => renderResult(f.result)).join('\n');
      const more = failed.length > 8 ? `\n… ${failed.length - 8} more (see ${path.join(this.dir, CHECKS_FILE)})` : '';
      throw new CheckFailure(`${failed.length} of ${fresh.length} packet check(s) failed${acct && !acct.ok ? ', packets unaccounted for' : ''}; statements broken: ${broken.join(', ')}\n${shown}${more}${acct && !acct.ok ? `\n${renderAccounting(acct)}` : ''}`);
    }
  }

  /**
   * Packet accounting over the whole capture: the flows' explainers, every present check evaluated so far
   * that explains what it matches (ICMP errors...), and the background classes.
   */
  private account(captured: CapturedTest, ctx: AccountingContext): void {
    const fromChecks: Explainer[] = this.checks
      .filter((c) => (c.expectation.mode ?? 'present') === 'present' && (c.explains ?? 'many') === 'many')
      .map((c) => ({ expectation: { ...c.expectation, count: undefined }, once: false }));
    const explainers = [...ctx.explainers, ...fromChecks];
    const result = accountPackets({ packets: captured.packets, links: captured.links, explainers, background: ctx.background });
    this.accounting = { result, explainers, background: ctx.background };
  }

  /** A failed check carried from a packet that itself is a consequence of an unexpected one blames nobody. */
  private isConsequence(c: OracleCheck): boolean {
    return c.origin !== undefined && !!this.accounting?.result.consequences.some((x) => x.index === c.origin);
  }

  /** Writes expectations.json (for `vslab replay`) and checks.json (for the runner). */
  write(): void {
    fs.mkdirSync(this.dir, { recursive: true });
    if (this.checks.length) {
      writeExpectationFile(this.dir, {
        version: 1, testId: this.testId, title: this.title, capture: CAPTURE_FILE,
        ...(this.guePort ? { decode: { guePort: this.guePort } } : {}),
        expectations: this.checks.map((c) => c.expectation),
        verdicts: Object.fromEntries(this.results.map((r) => [r.id, r.ok ? 'pass' : 'fail'] as const)),
      });
    }
    const records: CheckRecord[] = this.checks.map((c, k) => {
      const consequence = !this.results[k].ok && this.isConsequence(c);
      return {
        id: c.expectation.id, ok: this.results[k].ok, covers: coveredBy(c),
        reason: consequence ? `consequence of an unexpected packet (frame #${c.origin} is one): ${this.results[k].reason}` : this.results[k].reason,
        broken: consequence ? [] : attribute(c, this.results[k]),
      };
    });
    records.push(...this.judged);
    const a = this.accounting;
    if (a) {
      records.push({ id: 'accounting', ok: a.result.ok, reason: a.result.reason, covers: ACCOUNTING_STATEMENTS, broken: accountingBroken(a.result) });
      writeAccountingFile(this.dir, {
        version: 1, testId: this.testId, capture: CAPTURE_FILE, ...(this.guePort ? { decode: { guePort: this.guePort } } : {}),
        background: a.background, explainers: a.explainers,
        verdict: { ok: a.result.ok, causes: a.result.causes.map((c) => c.index), counts: a.result.counts },
      });
    }
    // A declared statement has a verdict only once a check that answers to it was evaluated: a test that
    // failed (or stopped) before its checks leaves its statements unjudged, never passed.
    const statements: Record<string, 'passed' | 'failed'> = {};
    for (const s of this.declared) if (records.some((r) => r.covers.includes(s))) statements[s] = 'passed';
    for (const r of records) for (const s of r.broken) statements[s] = 'failed';
    const f: ChecksFile = {
      version: 1, testId: this.testId, title: this.title, file: this.file, declared: this.declared, checks: records, statements, lab: this.lab, fault: this.fault, notes: this.notes,
      ...(a ? { accounting: { counts: a.result.counts, causes: a.result.causes, consequences: a.result.consequences } } : {}),
      ...(Object.keys(this.figures).length ? { figures: this.figures } : {}), ...(this.events.length ? { events: this.events } : {}),
      ...(Object.keys(this.phases).length ? { phases: this.phases } : {}),
    };
    fs.writeFileSync(path.join(this.dir, CHECKS_FILE), JSON.stringify(f, null, 2) + '\n');
  }
}

function coveredBy(c: OracleCheck): string[] {
  return [...new Set([c.statements.missing, c.statements.other, ...Object.values(c.statements.fields)])];
}

// ---- director state ------------------------------------------------------------------------------

/**
 * IPVS folds its per-CPU counters into what it reports every 2 s (its estimator's timer), so right after a
 * run they may not show the run yet. Reads the service's counters every 200 ms until they show at least
 * `minConns` new connections and either
 *  - they changed between two reads made more than 300 ms after the run, and the next read is the same
 *    (a fold that came after the run's last packet has folded all of it); or
 *  - they stayed the same for longer than one fold period (a fold that came between the run and the first
 *    read; with live counters, `foldMs` 0, two equal reads);
 * or the time is up (a director that never counts: the checks judge what it reports then).
 */
export async function settledStats(
  director: import('../director/types').DirectorDriver,
  services: ServiceModel[],
  service: string,
  before: import('../director/types').DirectorServiceStats[],
  minConns: number,
  timeoutMs = 30_000,
  /** The director's fold period (DirectorCapabilities.countersFoldMs): 0 for live counters. */
  foldMs = 2000,
): Promise<import('../director/types').DirectorServiceStats[]> {
  const conns = (s: import('../director/types').DirectorServiceStats[]) => (s.find((x) => x.service === service)?.counters.conns ?? 0) - (before.find((x) => x.service === service)?.counters.conns ?? 0);
  const runEnd = Date.now();
  const deadline = runEnd + timeoutMs;
  const POLL_MS = 200;
  let last = await director.stats(services);
  let lastAt = Date.now();
  let sameSince = lastAt;
  let foldSeen = false;
  for (;;) {
    await new Promise((r) => setTimeout(r, POLL_MS));
    const now = await director.stats(services);
    const at = Date.now();
    const same = JSON.stringify(stripRates(now)) === JSON.stringify(stripRates(last));
    if (same && conns(now) >= minConns && (foldSeen || at - sameSince > foldMs + POLL_MS)) return now;
    if (!same) {
      // A change seen by two reads both well after the run: the fold happened after its last packet.
      foldSeen = lastAt - runEnd > 300;
      sameSince = at;
    }
    // Not settled in time (a director that never counts): the checks judge what it reports now.
    if (at > deadline) return now;
    last = now;
    lastAt = at;
  }
}

function stripRates(s: import('../director/types').DirectorServiceStats[]): unknown {
  const c = (x: import('../director/types').DirectorCounters) => [x.conns, x.inPkts, x.outPkts, x.inBytes, x.outBytes];
  return s.map((x) => [x.service, c(x.counters), x.realServers.map((r) => [r.addr, r.port, c(r.counters)])]);
}
