// The scenario replayer: runs a scheduler scenario (the `vslab predict` format) on kernel IPVS in
// the replay lab and compares the kernel's choice with the reference model, connection by
// connection.
//
//  1. The scenario's addresses are used as given when they fit the lab (else moved, see addresses.ts)
//     and the model predicts with exactly what will be sent.
//  2. The lab gets the scenario's addresses and routes, the director its service exactly as stated
//     (scheduler, flags, persistence, one-packet, fwmark rule, ipvsadm --set timeouts, sysctls),
//     servers added one by one in the scenario's order.
//  3. Flows are opened one after another from their exact client address and port (held or closed
//     before the next), with the events applied at their place (edits with every field given, adds,
//     removes, closes, waits).
//  4. The kernel's choice per flow is observed twice: the real server that answered (the responder's
//     identity) and the director's connection table (/proc/net/ip_vs_conn, read before anything could
//     change it); the two must agree.
//  5. The model is run again with the replay's real timing (a wait before every flow and close, of
//     the time that really passed), so timers expire in the model when they did in the kernel; that
//     timed prediction is what the kernel is compared with (compareAssignments). Random schedulers
//     (twos) are checked pick by pick against the model's exact distributions (testRandomPicks).
import { type AssignmentComparison, compareAssignments, formatComparison } from '../../models/compare';
import { type FlowResult, type ResolvedScenario, resolveScenario, type RunOptions, runScenario, type Scenario, type ScenarioEvent } from '../../models/scenario';
import type { ServiceModel } from '../../models/service';
import { testRandomPicks } from '../../models/stats';
import type { IpvsConnection } from '../../netlink/ipvs-types';
import type { ClientConnEvent } from '../../traffic/events';
import { type AddressMap, mapScenario, planAddressMap } from './addresses';
import type { DriverFlow, OpenedFlow } from './driver-client';
import type { ReplayLab } from './lab';
import { ScenarioSetup } from './setup';

export interface ReplayOptions {
  /** Per-flow timeout in the client (default 3000 ms; a dropped flow costs this long). */
  flowTimeoutMs?: number;
  /** Progress lines (scenario steps). */
  log?: (line: string) => void;
  /** Override the scenario's seed for the model of a random scheduler. */
  seed?: number;
  /** Judge the kernel against another model (e.g. a deliberately wrong one, to show the replay catches it). */
  model?: RunOptions['scheduler'];
}

/** What happened to one flow in the kernel. */
export interface KernelFlow {
  index: number;
  /** client:cport -> dst:dport/proto, in the scenario's addresses. */
  flow: string;
  /** The server that answered (scenario name), or null (refused, timed out: no destination or dropped). */
  server: string | null;
  outcome: ClientConnEvent['outcome'];
  code: string | null;
  /** The destination in the director's connection table: a scenario name, null (no entry), undefined (not checked). */
  table?: string | null;
  /** Driver clock (ms) when the flow started. */
  t: number;
}

/** The model's reasoning for one flow (what `vslab predict --trace` prints). */
export interface TraceEntry extends FlowResult {
  counters: ReturnType<ServiceModel['snapshot']>;
  scheduler?: Record<string, unknown>;
}

export interface ReplayResult {
  name: string;
  scheduler: string;
  kernel: string;
  addressMap: string;
  /** The model with zero time between actions (what `vslab predict` says). */
  nominal: (string | null)[];
  /** The model with the replay's real timing: the reference the kernel is held to. */
  predicted: (string | null)[];
  /** The kernel's choice per flow (from the answering real server). */
  observed: (string | null)[];
  flows: KernelFlow[];
  trace: TraceEntry[];
  /** Deterministic schedulers: model (timed) vs kernel. */
  comparison: AssignmentComparison | null;
  /** Random schedulers: the pick-by-pick test. */
  randomTest: { ok: boolean; message: string } | null;
  /** Flows where the connection table and the answering server disagree. */
  tableDisagreements: { index: number; responder: string | null; table: string | null }[];
  /** Answered flows that had no entry in the connection table when it was read. */
  tableMissing: number[];
  /** Flows the client could not even try (a local error): the replay itself failed there. */
  harnessErrors: { index: number; outcome: string; code: string | null; stage: string | null }[];
  /** The model's timing warnings in the timed run (an expiry too close to an action to call). */
  warnings: string[];
  /** Hand-checked expectations of the scenario file vs the kernel, when it has them. */
  expectComparison: AssignmentComparison | null;
  /** Where the timed prediction differs from the nominal one (the replay's own timing mattered). */
  timingChanged: number[];
  /** The scenario as it really ran (lab addresses, a wait of the elapsed time before every flow and
   *  close): `vslab predict --file` on it reproduces `predicted`. */
  timedScenario: Scenario;
  durationMs: number;
  ok: boolean;
}

interface TimelineItem {
  before: number;
  /** Driver clock (ms) of the action, for the timed model. */
  t?: number;
  /** An original scenario event (not a wait). */
  event?: ScenarioEvent;
}

/** The kernel cannot run the scenario (its scheduler is not built); not a disagreement. */
export class KernelLacksScheduler extends Error {
  override name = 'KernelLacksScheduler';
  constructor(readonly scheduler: string, readonly kernel: string, readonly available: string[]) {
    super(`kernel ${kernel} cannot load the ${scheduler} scheduler (ip_vs_${scheduler} is not built); it has ${available.join(' ')}`);
  }
}

export function flowKey(proto: string, client: string, cport: number, vaddr: string, vport: number): string {
  return `${proto.toUpperCase()}|${client}|${cport}|${vaddr}|${vport}`;
}

/** The scenario with waits of the real elapsed time before every flow and close (original waits dropped). */
export function timedScenario(mapped: Scenario, timeline: TimelineItem[], timingMargin = 1): Scenario {
  const events: ScenarioEvent[] = [];
  let prev: number | null = null;
  for (const item of timeline) {
    if (item.t !== undefined) {
      if (prev !== null && item.t > prev) {
        const seconds = Math.round(item.t - prev) / 1000;
        if (seconds > 0) events.push({ before: item.before, op: 'wait', seconds });
      }
      prev = Math.max(prev ?? item.t, item.t);
    }
    if (item.event) events.push({ ...item.event, before: item.before });
  }
  return { ...mapped, events, timingMargin };
}

/** Replays one scenario on the kernel in `lab`. Throws only for a broken scenario or lab. */
export async function replayScenario(lab: ReplayLab, raw: unknown, opts: ReplayOptions = {}): Promise<ReplayResult> {
  const started = Date.now();
  const log = opts.log ?? (() => undefined);
  resolveScenario(raw); // validate the scenario as written (errors name its own JSON paths)
  const source = raw as Scenario;
  const map: AddressMap = planAddressMap(source);
  const mapped = mapScenario(source, map);
  if (opts.seed !== undefined) mapped.seed = opts.seed;
  const rs: ResolvedScenario = resolveScenario(mapped);
  const name = source.name ?? '(unnamed)';
  const random = rs.options.scheduler === 'twos';
  const nominal = runScenario(rs, { scheduler: opts.model }).assignments;
  const available = await lab.schedulers();
  if (!available.includes(rs.options.scheduler as string)) throw new KernelLacksScheduler(rs.options.scheduler as string, lab.kernel, available);

  const setup = new ScenarioSetup(lab, rs);
  const driver = await lab.driver();
  const flows: KernelFlow[] = [];
  const records: OpenedFlow[] = [];
  const timeline: TimelineItem[] = [];
  const tableBy: (string | null | undefined)[] = [];
  const tableMissing: number[] = [];
  const openHeld = new Set<number>();
  let problems: string[] = [];
  // server name per scenario address (the latest name given to that address)
  const nameOfAddr = new Map<string, string>();
  const nameOfNode = new Map<string, string>();
  const current = new Map<string, { addr: ResolvedScenario['servers'][number]['addr']; port: number; weight: number; upper: number; lower: number; forward: string }>();
  const bind = (s: ResolvedScenario['servers'][number]) => {
    nameOfAddr.set(s.addr.text, s.name);
    const slot = setup.slotOfAddress(s.addr.text)!;
    nameOfNode.set(slot.node, s.name);
    current.set(s.name, { addr: s.addr, port: s.port, weight: s.weight, upper: s.upper, lower: s.lower, forward: s.forward });
  };
  const nodes = ['client', ...[...setup.slots.values()].map((s) => s.node)];
  try {
    await lab.killConnections(nodes);
    log(`${name}: setting up (${setup.slots.size} servers, ${rs.flows.length} flows; ${map.describe()})`);
    await setup.apply();
    await setup.programDirector();
    for (const s of rs.servers) bind(s);
    const key = setup.serviceKey();

    let holdOverride: boolean | null = null;
    let checked = 0; // flows whose table entry has been looked at
    const readTable = async (upTo: number) => {
      if (checked >= upTo) return;
      const table = await lab.ipvs.connections();
      const entries = new Map<string, IpvsConnection>();
      // Two entries of one key: an earlier flow's entry of a removed server not yet flushed (the kernel
      // expires it from a work item queued at the delete) beside the new flow's. Only the one of a present
      // server can be the new flow's: a flow scheduled after the removal cannot go to the removed server.
      const presentDests = new Set([...current.values()].map((v) => `${v.addr.text}|${v.port}`));
      const present = (x: IpvsConnection) => presentDests.has(`${x.destAddress}|${x.destPort}`);
      for (const c of table) {
        if (c.template) continue;
        const k = flowKey(c.protocol, c.clientAddress, c.clientPort, c.virtualAddress, c.virtualPort);
        const had = entries.get(k);
        if (!had || (!present(had) && present(c))) entries.set(k, c);
      }
      // only the last flow per key since the previous read can still own its entry
      const lastOfKey = new Map<string, number>();
      for (let i = checked; i < upTo; i++) {
        const f = rs.flows[i];
        lastOfKey.set(flowKey(f.proto, f.client.text, f.cport, setup.flowDst[i], f.dport), i);
      }
      for (const [k, i] of lastOfKey) {
        const e = entries.get(k);
        if (!e) {
          tableBy[i] = null;
          if (flows[i]?.server) tableMissing.push(i);
        } else {
          const n = nameOfAddr.get(e.destAddress);
          // an entry of a removed server: its packets are dropped (expire_nodest_conn=0), no answer
          tableBy[i] = n === undefined ? `(unknown ${e.destAddress})` : current.has(n) ? n : `${n} (removed)`;
        }
      }
      checked = upTo;
    };

    const byIndex = new Map<number, ScenarioEvent>();
    rs.events.forEach((e, k) => {
      const m = /^\$\.events\[(\d+)\]$/.exec(e.path);
      if (m) byIndex.set(k, mapped.events![Number(m[1])]);
    });

    let ev = 0;
    const applyEvents = async (i: number) => {
      if (ev < rs.events.length && rs.events[ev].before === i) await readTable(i);
      while (ev < rs.events.length && rs.events[ev].before === i) {
        const k = ev;
        const e = rs.events[ev++];
        const original = byIndex.get(k)!;
        switch (e.op) {
          case 'edit': {
            const c = current.get(e.server)!;
            c.weight = e.weight ?? c.weight;
            c.upper = e.upper ?? c.upper;
            c.lower = e.lower ?? c.lower;
            log(`${name}: before flow ${i}: edit ${e.server} weight ${c.weight} upper ${c.upper} lower ${c.lower}`);
            await lab.ipvs.editDestination(key, setup.destinationSpec(c));
            timeline.push({ before: i, event: original });
            break;
          }
          case 'add':
            log(`${name}: before flow ${i}: add ${e.server.name}`);
            bind(e.server);
            await lab.ipvs.addDestination(key, setup.destinationSpec(e.server));
            timeline.push({ before: i, event: original });
            break;
          case 'remove': {
            const c = current.get(e.server)!;
            log(`${name}: before flow ${i}: remove ${e.server}`);
            await lab.ipvs.deleteDestination(key, { address: c.addr.text, port: c.port });
            current.delete(e.server);
            timeline.push({ before: i, event: original });
            break;
          }
          case 'close': {
            if (openHeld.has(e.flow)) {
              const [c] = await driver.close([e.flow]);
              openHeld.delete(e.flow);
              timeline.push({ before: i, t: c?.t, event: original });
            } else timeline.push({ before: i, event: original });
            break;
          }
          case 'release': {
            const all = [...openHeld];
            openHeld.clear();
            const closed = all.length ? await driver.close(all) : [];
            const t = closed.length ? Math.min(...closed.map((c) => c.t)) : undefined;
            timeline.push({ before: i, t, event: original });
            break;
          }
          case 'hold':
            holdOverride = e.hold;
            timeline.push({ before: i, event: original });
            break;
          case 'wait':
            log(`${name}: before flow ${i}: wait ${e.seconds} s`);
            await lab.wait(e.seconds);
            break;
        }
      }
    };

    for (let i = 0; i < rs.flows.length;) {
      await applyEvents(i);
      let j = i + 1;
      while (j < rs.flows.length && !(ev < rs.events.length && rs.events[ev].before === j)) j++;
      const batch: DriverFlow[] = [];
      for (let k = i; k < j; k++) {
        const f = rs.flows[k];
        const hold = holdOverride === null || f.explicitHold ? f.hold : holdOverride;
        batch.push({ i: k, proto: f.proto, src: f.client.text, sport: f.cport, dst: setup.flowDst[k], dport: f.dport, hold, timeoutMs: opts.flowTimeoutMs ?? 3000 });
      }
      const opened = await driver.open(batch);
      for (const o of opened) {
        records[o.i] = o;
        const r = o.rec;
        const f = rs.flows[o.i];
        const held = batch[o.i - i].hold && f.proto === 'tcp' && r.outcome === 'answered';
        if (held) openHeld.add(o.i);
        timeline.push({ before: o.i, t: o.t0 });
        const server = r.outcome === 'answered' ? nameOfNode.get(String(r.server)) ?? `(unknown node ${r.server})` : null;
        flows[o.i] = {
          index: o.i,
          flow: `${map.toScenario(f.client.text)}:${f.cport} -> ${map.toScenario(setup.flowDst[o.i])}:${f.dport}/${f.proto}`,
          server, outcome: r.outcome, code: r.code, t: o.t0,
        };
      }
      i = j;
    }
    await readTable(rs.flows.length);
    await applyEvents(rs.flows.length);
    log(`${name}: all ${rs.flows.length} flows done`);
    for (let i = 0; i < flows.length; i++) if (tableBy[i] !== undefined) flows[i].table = tableBy[i];
  } finally {
    log(`${name}: cleaning up`);
    await lab.killConnections(nodes).catch((e: Error) => problems.push(e.message));
    const held = [...openHeld];
    if (held.length) await driver.close(held).catch((e: Error) => problems.push(e.message));
    problems = problems.concat(await setup.remove());
    log(`${name}: cleaned up`);
  }
  if (problems.length) log(`${name}: cleanup problems: ${problems.join('; ')}`);

  const observed = flows.map((f) => f.server);
  const timedRaw = timedScenario(mapped, timeline);
  const trace: TraceEntry[] = [];
  const timed = runScenario(timedRaw, {
    scheduler: opts.model,
    observed: random ? observed : undefined,
    onFlow: (r, svc) => trace.push({ ...r, counters: svc.snapshot(), scheduler: svc.scheduler.describeState?.() }),
  });
  const predicted = timed.assignments;
  const comparison = random ? null : compareAssignments(predicted, observed);
  const randomTest = random ? testRandomPicks(observed, timed.flows.map((f) => f.choices ?? [])) : null;
  const tableDisagreements = flows
    .filter((f) => f.table !== undefined && f.table !== null && f.table !== f.server && !(f.server === null && f.table.endsWith(' (removed)')))
    .map((f) => ({ index: f.index, responder: f.server, table: f.table! }));
  const harnessErrors = flows
    .filter((f) => !['answered', 'refused', 'timeout'].includes(f.outcome))
    .map((f) => ({ index: f.index, outcome: f.outcome, code: f.code, stage: records[f.index]?.rec.stage ?? null }));
  const expectComparison = source.expect ? compareAssignments(source.expect, observed) : null;
  const timingChanged = predicted.flatMap((p, i) => (p !== nominal[i] ? [i] : []));
  const ok = (comparison ? comparison.equal : !!randomTest?.ok) && tableDisagreements.length === 0 && harnessErrors.length === 0;
  return {
    name, scheduler: rs.options.scheduler as string, kernel: lab.kernel, addressMap: map.describe(),
    nominal, predicted, observed, flows, trace, comparison, randomTest, tableDisagreements, tableMissing, harnessErrors,
    warnings: timed.warnings, expectComparison, timingChanged, timedScenario: timedRaw, durationMs: Date.now() - started, ok,
  };
}

/** A readable account of a replay: verdict, and for a mismatch each differing flow with the model's reasoning. */
export function formatReplay(r: ReplayResult, limit = 5): string {
  const lines: string[] = [];
  const verdict = r.ok ? 'kernel agrees with the model' : 'KERNEL AND MODEL DISAGREE';
  lines.push(`${r.name} (${r.scheduler}, kernel ${r.kernel}, ${r.flows.length} flows, ${(r.durationMs / 1000).toFixed(1)} s): ${verdict}`);
  if (r.comparison) lines.push(`  model vs kernel: ${formatComparison(r.comparison, limit).split('\n').join('\n  ')}`);
  if (r.randomTest) lines.push(`  random picks: ${r.randomTest.ok ? 'consistent with the model' : 'NOT consistent'}: ${r.randomTest.message}`);
  if (r.timingChanged.length) lines.push(`  the replay's real timing changed the prediction at flows ${r.timingChanged.slice(0, 10).join(', ')}${r.timingChanged.length > 10 ? ' ...' : ''} (nominal model: ${r.timingChanged.slice(0, 10).map((i) => r.nominal[i] ?? 'none').join(', ')})`);
  if (r.tableDisagreements.length) {
    lines.push(`  connection table and answering server disagree on ${r.tableDisagreements.length} flows:`);
    for (const d of r.tableDisagreements.slice(0, limit)) lines.push(`    flow ${d.index} (${r.flows[d.index].flow}): answered by ${d.responder ?? 'none'}, table says ${d.table ?? 'no entry'}`);
  }
  if (r.harnessErrors.length) {
    lines.push(`  ${r.harnessErrors.length} flows could not be driven (the replay failed, not the scheduler):`);
    for (const h of r.harnessErrors.slice(0, limit)) lines.push(`    flow ${h.index} (${r.flows[h.index].flow}): ${h.outcome} ${h.code ?? ''} at ${h.stage ?? '?'}`);
  }
  if (r.expectComparison && !r.expectComparison.equal) lines.push(`  hand-checked "expect" vs kernel: ${formatComparison(r.expectComparison, limit).split('\n').join('\n  ')}`);
  const diffs = r.comparison?.differences ?? [];
  for (const d of diffs.slice(0, limit)) {
    const t = r.trace[d.index];
    const before = d.index > 0 ? r.trace[d.index - 1] : undefined;
    const f = r.flows[d.index];
    lines.push(`  flow ${d.index}: ${f.flow}`);
    lines.push(`    model:  ${t.server ?? 'none'} (via ${t.via})`);
    lines.push(`    kernel: ${f.server ?? 'none'} (${f.outcome}${f.code ? ` ${f.code}` : ''}; connection table: ${f.table === undefined ? 'not read' : f.table ?? 'no entry'})`);
    if (before) {
      lines.push(`    model state before it: counters ${JSON.stringify(before.counters.map((c) => ({ [c.name]: `w${c.weight} a${c.active} i${c.inactive} p${c.persist}${c.overload ? ' OVL' : ''}${c.available ? '' : ' gone'}` })))}`);
      if (before.scheduler) lines.push(`    scheduler state before it: ${JSON.stringify(before.scheduler).slice(0, 600)}`);
    }
  }
  if (r.warnings.length) {
    lines.push(`  model timing warnings (${r.warnings.length}):`);
    for (const w of r.warnings.slice(0, limit)) lines.push(`    ${w}`);
  }
  if (r.tableMissing.length) lines.push(`  answered flows without a connection-table entry when read: ${r.tableMissing.length} (e.g. ${r.tableMissing.slice(0, 5).join(', ')})`);
  return lines.join('\n');
}
