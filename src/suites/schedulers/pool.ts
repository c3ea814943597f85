// Scenarios that sleep, run beside the others in one VM. Most of the exact suite's wall time was spent
// sleeping on real time (wait events, timeouts left to expire: 511 s of the 95 files' waits), while the
// guest's vCPU had nothing to do. A pool holds one worker's replay lab (the "primary", where a test runs
// its scenario itself) and up to `slots - 1` sibling labs in the same guest (ReplayLab.sibling: own
// namespaces, so own IPVS table, timeouts and sysctls). When a test runs, the scenarios with waits among
// the tests still to come in this worker (`ahead`, the rest of its lane) are started on free siblings;
// their tests, later, take the finished result. Every scenario is replayed and compared exactly as it is
// alone (replayScenario, same checks); only where and when it runs changes. The replayer builds the model
// with the real timing of each flow (the timed scenario), so a scenario slowed by its neighbours is still
// compared connection by connection.
import { resolveScenario, runScenario, type Scenario } from '../../models/scenario';
import type { ReplayLab } from './lab';
import { replayScenario, type ReplayResult } from './replay';

export interface PoolScenario {
  name: string;
  scenario: Scenario;
}

export interface PoolOutcome {
  result?: ReplayResult;
  error?: unknown;
  /** The replayer's progress lines. */
  log: string[];
  /** Where it ran: the worker's lab, or a sibling's name. */
  lab: string;
  /** Started ahead of its test, on a sibling. */
  background: boolean;
  /** Milliseconds its test waited for it (0 when it ran in the test). */
  waitedMs: number;
}

export interface PoolOptions {
  /** Labs in the guest, the worker's own included (1: no siblings, every scenario runs in its test). */
  slots: number;
  /** Name prefix of the sibling labs (they get -b1, -b2, ...). */
  name: string;
  /** Real-server nodes of a sibling (default 6); a scenario needing more runs in its test. */
  siblingServers?: number;
  /** The replayer (tests of the pool pass a stand-in). */
  replay?: typeof replayScenario;
}

/** Real-server nodes a scenario needs: its distinct server addresses, those added by events included. */
export function serverNodesNeeded(sc: Scenario): number {
  const addrs = new Set(sc.servers.map((x) => x.addr));
  for (const e of sc.events ?? []) if (e.op === 'add') addrs.add(e.server.addr);
  return addrs.size;
}

/** Seconds the scenario sleeps in its wait events. */
export function scenarioWaitSeconds(sc: Scenario): number {
  return (sc.events ?? []).reduce((t, e) => t + (e.op === 'wait' ? e.seconds : 0), 0);
}

/** Flows the scenario opens (generated sets counted). */
export function scenarioFlowCount(sc: Scenario): number {
  return sc.flows.reduce((n, f) => n + ('generate' in f ? f.generate.count : 1), 0);
}

/**
 * Splits the scenarios into `lanes` ordered lists, one per worker (a lane runs in one worker, in order).
 * The CPU-bound scenarios are balanced by their flows (longest first, each to the lightest lane) and run
 * first; the scenarios that wait are dealt out by their waits and go last in their lane, so the pool has
 * started them on siblings long before their tests come up.
 */
export function planLanes<T extends PoolScenario>(items: T[], lanes: number): T[][] {
  const cost = (s: T) => 1 + scenarioFlowCount(s.scenario) / 50;
  const waiting = items.filter((s) => scenarioWaitSeconds(s.scenario) > 0).sort((a, b) => scenarioWaitSeconds(b.scenario) - scenarioWaitSeconds(a.scenario) || a.name.localeCompare(b.name));
  const busy = items.filter((s) => scenarioWaitSeconds(s.scenario) === 0).sort((a, b) => cost(b) - cost(a) || a.name.localeCompare(b.name));
  const head: T[][] = Array.from({ length: lanes }, () => []);
  const tail: T[][] = Array.from({ length: lanes }, () => []);
  const load = new Array<number>(lanes).fill(0);
  const waits = new Array<number>(lanes).fill(0);
  const lightest = (w: number[]) => w.indexOf(Math.min(...w));
  for (const s of waiting) {
    const i = lightest(waits);
    tail[i].push(s);
    waits[i] += scenarioWaitSeconds(s.scenario);
    load[i] += cost(s);
  }
  for (const s of busy) {
    const i = lightest(load);
    head[i].push(s);
    load[i] += cost(s);
  }
  return head.map((h, i) => [...h, ...tail[i]]);
}

/**
 * Scenarios with more flows than this run in their tests even when they wait: their flows are CPU work
 * the guest's one vCPU would share with the foreground (and a sibling runs at a lower priority).
 */
export const MAX_BACKGROUND_FLOWS = 200;

/**
 * A flow of a background scenario waits this long for its answer (the replayer's default is 3 s): its
 * programs run at a lower priority, and an answer that comes late is the same answer (the model is run
 * with the real timing). A flow nobody answers costs the whole of it, so a scenario where the model
 * gives some flow no server keeps the default (`backgroundFlowTimeout`).
 */
export const BACKGROUND_FLOW_TIMEOUT_MS = 10_000;

/** The flow timeout of a scenario run on a sibling: longer, unless the model predicts unanswered flows. */
export function backgroundFlowTimeout(sc: Scenario): number | undefined {
  try {
    return runScenario(resolveScenario(sc)).assignments.some((a) => a === null) ? undefined : BACKGROUND_FLOW_TIMEOUT_MS;
  } catch {
    return undefined; // the replay reports what is wrong with the scenario
  }
}

export class ScenarioPool {
  private readonly started = new Map<string, Promise<PoolOutcome>>();
  private readonly idle: ReplayLab[] = [];
  private readonly siblings: ReplayLab[] = [];
  private queue: PoolScenario[] = [];
  private busy = 0;
  private made = 0;
  private closed = false;

  private readonly replay: typeof replayScenario;

  constructor(readonly primary: ReplayLab, private readonly opts: PoolOptions) {
    this.replay = opts.replay ?? replayScenario;
    if (!(Number.isInteger(opts.slots) && opts.slots >= 1)) throw new RangeError(`a scenario pool needs a whole number of slots >= 1, not ${opts.slots}`);
  }

  /** Scenarios started ahead of their tests so far. */
  backgroundStarted = 0;

  /**
   * The outcome of `s`: taken from its run on a sibling if that was started earlier, else replayed now on
   * the worker's lab. Before that, the scenarios with waits in `ahead` (those this worker runs later, in
   * order) are started on free siblings.
   */
  async run(s: PoolScenario, ahead: PoolScenario[]): Promise<PoolOutcome> {
    const fits = (x: PoolScenario) => serverNodesNeeded(x.scenario) <= (this.opts.siblingServers ?? 6) && scenarioFlowCount(x.scenario) <= MAX_BACKGROUND_FLOWS;
    this.queue = ahead.filter((x) => x.name !== s.name && scenarioWaitSeconds(x.scenario) > 0 && fits(x));
    this.pump();
    const pending = this.started.get(s.name);
    if (pending) {
      const t0 = Date.now();
      const out = await pending;
      // A sibling that could not be built leaves the scenario to its test.
      if (!out.error || !(out.error instanceof SiblingUnavailable)) return { ...out, waitedMs: Date.now() - t0 };
    }
    this.started.set(s.name, Promise.resolve({ log: [], lab: this.primary.name, background: false, waitedMs: 0 }));
    return replayOn(this.replay, this.primary, s, false);
  }

  private pump(): void {
    while (!this.closed && this.busy < this.opts.slots - 1) {
      const next = this.queue.find((x) => !this.started.has(x.name));
      if (!next) return;
      this.busy++;
      this.backgroundStarted++;
      this.started.set(next.name, this.background(next));
    }
  }

  /**
   * One background scenario at a time is in its busy start (building a sibling, setting up, flows up to
   * its first wait): the guest has one vCPU, and the test running in the foreground needs it too. The
   * next one starts when the previous one sleeps (or ends).
   */
  private gate: Promise<void> = Promise.resolve();

  private async background(s: PoolScenario): Promise<PoolOutcome> {
    let release!: () => void;
    const previous = this.gate;
    this.gate = new Promise<void>((r) => (release = r));
    let lab: ReplayLab | undefined;
    try {
      await previous;
      if (this.closed) return { error: new SiblingUnavailable('(none)', new Error('the pool was closed')), log: [], lab: '(none)', background: true, waitedMs: 0 };
      lab = this.idle.pop();
      if (!lab) {
        const name = `${this.opts.name}-b${++this.made}`;
        try {
          lab = await this.primary.sibling(name, this.opts.siblingServers ?? 6);
        } catch (e) {
          return { error: new SiblingUnavailable(name, e), log: [], lab: name, background: true, waitedMs: 0 };
        }
        this.siblings.push(lab);
      }
      const out = await replayOn(this.replay, lab, s, true, { flowTimeoutMs: backgroundFlowTimeout(s.scenario) }, (line) => {
        if (/: before flow \d+: wait /.test(line)) release();
      });
      // A sibling whose scenario ended in an error may hold its leftovers: it is not reused.
      if (!out.error) this.idle.push(lab);
      return out;
    } finally {
      release();
      this.busy--;
      this.pump();
    }
  }

  /** Stops starting scenarios and stops the siblings' traffic tools (the VM goes with the worker's lab). */
  async close(): Promise<void> {
    this.closed = true;
    await Promise.all(this.siblings.map((l) => l.down().catch(() => undefined)));
  }
}

class SiblingUnavailable extends Error {
  override name = 'SiblingUnavailable';
  constructor(lab: string, cause: unknown) {
    super(`cannot build sibling replay lab ${lab}: ${cause instanceof Error ? cause.message : String(cause)}`);
  }
}

async function replayOn(replay: typeof replayScenario, lab: ReplayLab, s: PoolScenario, background: boolean, opts: { flowTimeoutMs?: number } = {}, onLog?: (line: string) => void): Promise<PoolOutcome> {
  const log: string[] = [];
  try {
    const result = await replay(lab, s.scenario, { ...opts, log: (l) => { log.push(l); onLog?.(l); } });
    return { result, log, lab: lab.name, background, waitedMs: 0 };
  } catch (error) {
    return { error, log, lab: lab.name, background, waitedMs: 0 };
  }
}
