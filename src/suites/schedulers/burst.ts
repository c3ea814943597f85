// The fast kernel path for distribution tests: every flow of a scenario is only its first packet (a
// TCP SYN or the first UDP datagram), sent by vslab-syngen (guest/syngen, a static C program in the
// guest image) from the flow's own source address and port in the client node. IPVS schedules a
// connection on that packet, so the director's connection table then holds one entry per flow,
// naming its real server; every flow is looked up there, and the scenario's model must give the
// same server, flow by flow. The server nodes drop those packets on arrival (nft, priority raw) and
// run no responders: what a server would answer is not part of the scheduling decision, and an answer,
// a reset and a request socket per flow would cost the guest's one vCPU more than the director does.
//
// Compared with replayScenario() (replay.ts: a full handshake per flow from a Node program, the
// answering responder and the connection table both observed, ~100 flows/s under TCG) this costs one
// sendto() per flow in the guest. What it cannot do follows from sending one packet: no flow is ever
// established, held or closed, so only schedulers whose choice does not depend on connection counts
// (rr, wrr, sh, mh, dh; no thresholds) and scenarios without hold/close/release/wait events or
// persistence are accepted -- anything else is refused with the reason, never approximated.
import { performance } from 'perf_hooks';
import { GUEST_SYNGEN } from '../../backend/vm/agent-build';
import { type AssignmentComparison, compareAssignments } from '../../models/compare';
import { resolveScenario, runScenario, type ResolvedScenario, type Scenario } from '../../models/scenario';
import { type AddressMap, mapScenario, planAddressMap } from './addresses';
import type { ReplayLab } from './lab';
import { flowKey, KernelLacksScheduler } from './replay';
import { ScenarioSetup } from './setup';

/** Schedulers whose pick depends only on the packet and the server list (not on connection counts). */
export const BURST_SCHEDULERS = ['rr', 'wrr', 'sh', 'mh', 'dh'];

export interface BurstOptions {
  log?: (m: string) => void;
  /** Passed to vslab-syngen: sleep pauseUs after every pauseEvery packets (default: no pause). */
  pauseEvery?: number;
  pauseUs?: number;
}

export interface BurstResult {
  name: string;
  scheduler: string;
  kernel: string;
  addressMap: string;
  /** The model's server per flow. */
  predicted: (string | null)[];
  /** The server of each flow's connection-table entry (null: no entry, i.e. not scheduled). */
  observed: (string | null)[];
  comparison: AssignmentComparison;
  /** Flows with no connection entry (packet lost or not scheduled): every one is a failure. */
  missing: number[];
  /** Entries whose real server is no server of the scenario. */
  unknown: { index: number; dest: string }[];
  /** Milliseconds inside vslab-syngen (its own clock, summed over the segments between events). */
  sendMs: number;
  /** Milliseconds on the host from handing the first segment to the guest until the last one returned. */
  sendWallMs: number;
  /** Milliseconds reading the connection table(s). */
  tableMs: number;
  /** Flows per second over sendWallMs (every one of them accounted for in the table). */
  perSecond: number;
  durationMs: number;
  ok: boolean;
}

/** Why a scenario cannot be run by first packets alone, or null when it can. */
export function burstRefusal(rs: ResolvedScenario): string | null {
  const sched = typeof rs.options.scheduler === 'string' ? rs.options.scheduler : rs.options.scheduler.name;
  if (!BURST_SCHEDULERS.includes(sched)) return `scheduler ${sched} depends on connection counts; first packets alone leave every connection half-open (use replayScenario)`;
  if (rs.options.persistence) return 'persistence templates expire with their connections; use replayScenario';
  if (rs.options.onePacket) return 'one-packet services leave no connection entry to account a flow by';
  const servers = [...rs.servers, ...rs.events.flatMap((e) => (e.op === 'add' ? [e.server] : []))];
  const thr = servers.find((s) => s.upper || s.lower);
  if (thr || rs.events.some((e) => e.op === 'edit' && (e.upper || e.lower))) return 'upper/lower thresholds compare connection counts; use replayScenario';
  const ev = rs.events.find((e) => !['add', 'remove', 'edit'].includes(e.op));
  if (ev) return `event ${ev.path} (${ev.op}) needs real connections; only add/remove/edit events are supported`;
  const held = rs.flows.find((f) => f.hold && f.proto === 'tcp');
  if (held) return `flow ${held.path} is held; first packets never establish a connection`;
  const keys = new Set<string>();
  for (const f of rs.flows) {
    const k = `${f.proto}|${f.client.text}|${f.cport}|${f.dst.text}|${f.dport}`;
    if (keys.has(k)) return `flow ${f.path} repeats an earlier flow's addresses and ports; its entry could not be told apart`;
    keys.add(k);
  }
  return null;
}

/** Runs a scenario by first packets only and accounts every flow by the director's connection table. */
export async function burstScenario(lab: ReplayLab, raw: unknown, opts: BurstOptions = {}): Promise<BurstResult> {
  const started = performance.now();
  const log = opts.log ?? (() => undefined);
  resolveScenario(raw); // errors name the scenario's own JSON paths
  const source = raw as Scenario;
  const map: AddressMap = planAddressMap(source);
  const rs = resolveScenario(mapScenario(source, map));
  const name = source.name ?? '(unnamed)';
  const why = burstRefusal(rs);
  if (why) throw new Error(`${name}: cannot run by first packets: ${why}`);
  const scheduler = rs.options.scheduler as string;
  const available = await lab.schedulers();
  if (!available.includes(scheduler)) throw new KernelLacksScheduler(scheduler, lab.kernel, available);
  const predicted = runScenario(rs).assignments;

  const setup = new ScenarioSetup(lab, rs);
  const nameOfAddr = new Map<string, string>();
  for (const s of rs.servers) nameOfAddr.set(s.addr.text, s.name);
  const observed: (string | null)[] = new Array(rs.flows.length).fill(null);
  const missing: number[] = [];
  const unknown: { index: number; dest: string }[] = [];
  let sendMs = 0;
  let sendWallMs = 0;
  let tableMs = 0;
  let problems: string[] = [];
  try {
    await lab.killConnections(['client']);
    await setup.apply({ firstPacketsOnly: true });
    await setup.programDirector();
    const key = setup.serviceKey();
    const current = new Map(rs.servers.map((s) => [s.name, { ...s }]));
    const args = opts.pauseEvery && opts.pauseUs !== undefined ? ['--pause-every', String(opts.pauseEvery), '--pause-us', String(opts.pauseUs)] : [];
    let ev = 0;
    for (let i = 0; i < rs.flows.length;) {
      while (ev < rs.events.length && rs.events[ev].before === i) {
        const e = rs.events[ev++];
        log(`${name}: before flow ${i}: ${e.op}`);
        if (e.op === 'add') {
          nameOfAddr.set(e.server.addr.text, e.server.name);
          current.set(e.server.name, { ...e.server });
          await lab.ipvs.addDestination(key, setup.destinationSpec(e.server));
        } else if (e.op === 'remove') {
          const c = current.get(e.server)!;
          await lab.ipvs.deleteDestination(key, { address: c.addr.text, port: c.port });
          current.delete(e.server);
        } else if (e.op === 'edit') {
          const c = current.get(e.server)!;
          c.weight = e.weight ?? c.weight;
          await lab.ipvs.editDestination(key, setup.destinationSpec(c));
        }
      }
      let j = i + 1;
      while (j < rs.flows.length && !(ev < rs.events.length && rs.events[ev].before === j)) j++;
      const lines: string[] = [];
      for (let k = i; k < j; k++) {
        const f = rs.flows[k];
        lines.push(`${f.proto} ${f.client.text} ${f.cport} ${setup.flowDst[k]} ${f.dport}`);
      }
      const t0 = performance.now();
      const r = await lab.node('client').exec([GUEST_SYNGEN, ...args], { input: lines.join('\n') + '\n', timeoutMs: 60_000 + lines.length * 10 });
      sendWallMs += performance.now() - t0;
      if (r.code !== 0) throw new Error(`${name}: vslab-syngen in the client node failed (exit ${r.code}): ${r.stderr.trim() || r.stdout.trim()}`);
      const report = JSON.parse(r.stdout.trim().split('\n').pop() ?? '{}') as { sent?: number; elapsedUs?: number };
      if (report.sent !== lines.length) throw new Error(`${name}: vslab-syngen sent ${report.sent} of ${lines.length} packets: ${r.stdout.trim()}`);
      sendMs += (report.elapsedUs ?? 0) / 1000;
      // account this segment before the next event can change what the table says
      const tt = performance.now();
      await account(i, j);
      tableMs += performance.now() - tt;
      i = j;
    }
  } finally {
    problems = await setup.remove();
  }
  if (problems.length) log(`${name}: cleanup problems: ${problems.join('; ')}`);

  async function account(from: number, to: number): Promise<void> {
    const want = new Map<string, number>();
    for (let k = from; k < to; k++) {
      const f = rs.flows[k];
      want.set(flowKey(f.proto, f.client.text, f.cport, setup.flowDst[k], f.dport), k);
    }
    // The packets are processed in the sender's own softirq on the guest's one CPU, so the entries are
    // there when vslab-syngen returns; a short grace covers a packet still queued.
    const deadline = Date.now() + 2000;
    for (;;) {
      const table = await lab.ipvs.connections();
      let found = 0;
      for (const c of table) {
        if (c.template) continue;
        const k = want.get(flowKey(c.protocol, c.clientAddress, c.clientPort, c.virtualAddress, c.virtualPort));
        if (k === undefined) continue;
        found++;
        const n = nameOfAddr.get(c.destAddress);
        observed[k] = n ?? `(unknown ${c.destAddress})`;
        if (n === undefined && !unknown.some((u) => u.index === k)) unknown.push({ index: k, dest: c.destAddress });
      }
      if (found === want.size || Date.now() > deadline) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    for (let k = from; k < to; k++) if (observed[k] === null) missing.push(k);
  }

  const comparison = compareAssignments(predicted, observed);
  return {
    name, scheduler, kernel: lab.kernel, addressMap: map.describe(), predicted, observed, comparison, missing, unknown,
    sendMs, sendWallMs, tableMs, perSecond: rs.flows.length / (sendWallMs / 1000),
    durationMs: performance.now() - started,
    ok: comparison.equal && missing.length === 0 && unknown.length === 0,
  };
}

/** A short account of a burst run: verdict, rate, and the first differing flows. */
export function formatBurst(r: BurstResult, limit = 5): string {
  const lines = [
    `${r.name} (${r.scheduler}, kernel ${r.kernel}) by first packets: ${r.ok ? 'kernel = model for every flow' : 'MISMATCH'}; ${r.observed.length} flows, ${r.perSecond.toFixed(0)}/s (${(r.sendWallMs / 1000).toFixed(2)} s sending, ${(r.tableMs / 1000).toFixed(2)} s reading the table)`,
    `  counts: kernel ${JSON.stringify(r.comparison.counts.actual)} model ${JSON.stringify(r.comparison.counts.expected)}`,
  ];
  if (r.missing.length) lines.push(`  ${r.missing.length} flows have no connection entry (first: ${r.missing.slice(0, limit).join(', ')})`);
  for (const u of r.unknown.slice(0, limit)) lines.push(`  flow ${u.index}: entry to ${u.dest}, no server of the scenario`);
  for (const d of r.comparison.differences.slice(0, limit)) lines.push(`  flow ${d.index}: model ${d.expected}, kernel ${d.actual}`);
  if (r.comparison.differences.length > limit) lines.push(`  ... ${r.comparison.differences.length - limit} more differences`);
  return lines.join('\n');
}
