// What a report shows, gathered from run directories: results.json, each test's checks.json, its
// expectations re-evaluated on its capture (for the field diffs of failed checks, with frame numbers), the
// journeys of its client flows through every captured hop, scheduler replays, lab topologies and a
// mutation run's matrix. Plain JSON-able data: src/report/html.ts draws it. Big runs are summarised
// (journeys cut to a number of hops, the rest left to the pcapng next to the report).
import * as fs from 'fs';
import * as path from 'path';
import { decodeCaptureWithInterfaces } from '../packet/capturefile';
import { evaluateExpectation, type FieldDiff } from '../packet/expect';
import { formatPacketLine } from '../packet/format';
import { traceFlow, type FlowTuple } from '../packet/journey';
import type { DecodedPacket } from '../packet/layers';
import { EXPECTATIONS_FILE, validateExpectationFile, type ExpectationFile } from '../packet/rundir';
import type { LabRecord } from '../runner/labs';
import { MUTATION_FILE, type MutationResults } from '../runner/mutation';
import { readRun } from '../runner/merge';
import { readChecks, type RunResults, type TestResult } from '../runner/results';
import { RESULTS_FILE, SUITES_ROOT } from '../runner/run';
import { loadTopologyFile } from '../topology/load';
import type { Role } from '../topology/model';

export interface ReportLimits {
  /** Client flows traced per test. */
  flowsPerTest: number;
  /** Hops drawn per flow (the rest are counted, and are in the pcapng). */
  hopsPerFlow: number;
  /** Failed checks with a field diff per test. */
  diffsPerTest: number;
}

export const DEFAULT_LIMITS: ReportLimits = { flowsPerTest: 3, hopsPerFlow: 60, diffsPerTest: 6 };

export interface TopoIface { name: string; segment: string; addrs: string[] }
export interface TopoNode { name: string; role: Role; ifaces: TopoIface[]; extra: string[] }
export interface TopoSegment { name: string; kind: 'lan' | 'p2p'; members: string[] }
export interface TopoView { lab: string; topology: string; nodes: TopoNode[]; segments: TopoSegment[]; services: string[] }

export interface HopView {
  link: string;
  node: string;
  /** Frame number in the test's capture.pcapng as Wireshark counts (1-based). */
  frame?: number;
  ts?: string;
  line: string;
  /** Fields rewritten since the previous hop of the same packet ("ipv4.dst 198.19.0.100 -> 198.18.1.11"). */
  changed: string[];
  icmpError?: boolean;
}

export interface JourneyView {
  flow: string;
  transmissions: Array<{ direction: 'c2s' | 's2c'; hops: HopView[] }>;
  hops: number;
  omittedHops: number;
  warnings: string[];
}

export interface DiffRow { layer: string; field: string; expected: string; seen: string; status: FieldDiff['status'] }
export interface FailedCheckView {
  id: string;
  link: string;
  reason: string;
  broken: string[];
  /** 1-based frame of the closest (present) or offending (absent) packet. */
  frame?: number;
  rows: DiffRow[];
}

export interface DistributionView {
  scheduler: string;
  kernel: string;
  servers: Array<{ name: string; expected: number; observed: number }>;
  /** Allowed difference per server in connections (0 for the exact schedulers: every choice must agree). */
  tolerance: number;
  toleranceNote: string;
  /** The model's and the kernel's choice per flow, from flow `shownFrom` on (cut around the divergence). */
  shownFrom: number;
  predicted: Array<string | null>;
  observed: Array<string | null>;
  firstDivergence: number | null;
  flows: number;
  ok: boolean;
}

export interface TestView extends Omit<TestResult, 'notes'> {
  notes: string[];
  lab?: string;
  journeys: JourneyView[];
  failedCheckDiffs: FailedCheckView[];
  omittedFailedChecks: number;
  /** Every link the test's flows were seen on: the path drawn on the topology. */
  path: string[];
  distribution?: DistributionView;
  /** The capture relative to the report file, for the download link. */
  captureHref?: string;
}

export interface RunView {
  label: string;
  /** The implementation(s) under test, as the labs or (scheduler suites) the replays name them. */
  implementation: string;
  dir: string;
  results: Omit<RunResults, 'tests' | 'labs'>;
  labs: LabRecord[];
  tests: TestView[];
  topologies: TopoView[];
  mutation?: MutationResults;
  problems: string[];
}

export interface ReportData {
  generatedAt: string;
  runs: RunView[];
}

const ROLES: Role[] = ['client', 'router', 'director', 'real-server'];

/** The lab's topology file: where the run read it, or the same file under suites/ of this checkout (a run made elsewhere). */
function topologyFile(rec: LabRecord): string | undefined {
  if (fs.existsSync(rec.topology)) return rec.topology;
  const parts = rec.topology.split(/[\\/]/);
  const k = parts.lastIndexOf('suites');
  const here = k >= 0 ? path.join(SUITES_ROOT, ...parts.slice(k + 1)) : undefined;
  return here && fs.existsSync(here) ? here : undefined;
}

function topoOf(rec: LabRecord): TopoView | string {
  const file = topologyFile(rec);
  if (!file) return `lab ${rec.lab}: topology ${rec.topology} is not on this machine; not drawn`;
  try {
    const m = loadTopologyFile(file);
    return {
      lab: rec.lab, topology: path.basename(rec.topology),
      nodes: m.nodes.slice().sort((a, b) => ROLES.indexOf(a.role) - ROLES.indexOf(b.role) || a.index - b.index).map((n) => ({
        name: n.name, role: n.role,
        ifaces: n.interfaces.map((i) => ({ name: i.name, segment: i.segment, addrs: [i.ipv4, i.ipv6].filter((a): a is NonNullable<typeof a> => !!a).map((a) => `${a.addr}/${a.prefixLen}`) })),
        extra: n.loopbackAddrs,
      })),
      segments: m.segments.map((s) => ({ name: s.name, kind: s.kind, members: s.members.map((x) => `${x.node}:${x.iface}`) })),
      services: m.services.map((s) => `${s.name}: ${s.protocol} ${s.vip ?? `fwmark ${s.fwmark}`}${s.vip && s.family === 6 ? `.${s.port}` : `:${s.port}`} ${s.scheduler} → ${s.realServers.map((r) => `${r.node} (${r.method}${r.tunnel ? `/${r.tunnel.type}` : ''})`).join(', ')}`),
    };
  } catch (e) {
    return `lab ${rec.lab}: ${(e as Error).message.split('\n')[0]}`;
  }
}

function show(v: unknown): string {
  if (v === undefined) return '—';
  return typeof v === 'string' ? v : JSON.stringify(v);
}

/** The client's flows of a test, from its expectations on client links (c2s packets as the client sends them). */
function clientFlows(exp: ExpectationFile, clients: Set<string>): FlowTuple[] {
  const flows = new Map<string, FlowTuple>();
  for (const e of exp.expectations) {
    if ((e.mode ?? 'present') !== 'present' || !clients.has(e.link.split(':')[0])) continue;
    const ip = e.layers.find((l) => l.type === 'ipv4' || l.type === 'ipv6');
    const l4 = e.layers.find((l) => l.type === 'tcp' || l.type === 'udp');
    if (!ip || !l4 || typeof ip.src !== 'string' || typeof ip.dst !== 'string' || typeof l4.sport !== 'number' || typeof l4.dport !== 'number') continue;
    // Client-to-server packets (ids "c2s.…" or "f<k>.c2s.…"): the client's own address is the source.
    if (!/(^|\.)c2s\./.test(e.id)) continue;
    const t: FlowTuple = { proto: l4.type === 'tcp' ? 6 : 17, src: ip.src, sport: l4.sport, dst: ip.dst, dport: l4.dport };
    flows.set(`${t.proto} ${t.src} ${t.sport} ${t.dst} ${t.dport}`, t);
  }
  return [...flows.values()];
}

function flowLabel(t: FlowTuple): string {
  const p = t.proto === 6 ? 'tcp' : t.proto === 17 ? 'udp' : `proto ${t.proto}`;
  const hp = (a: string, port: number) => (a.includes(':') ? `[${a}]:${port}` : `${a}:${port}`);
  return `${p} ${hp(t.src, t.sport)} → ${hp(t.dst, t.dport)}`;
}

function frameOf(index: number | undefined): number | undefined {
  return index === undefined ? undefined : index + 1;
}

function diffRows(layers: Array<{ index: number; expectedType?: string; seenType?: string; ignored?: boolean; fields: FieldDiff[] }>): DiffRow[] {
  const rows: DiffRow[] = [];
  for (const l of layers) {
    const name = `${l.expectedType ?? l.seenType ?? '?'}${l.expectedType && l.seenType && l.expectedType !== l.seenType ? ` (seen ${l.seenType})` : ''}`;
    if (l.ignored) continue;
    if (!l.fields.length && l.expectedType !== l.seenType) rows.push({ layer: name, field: '(layer)', expected: l.expectedType ?? '—', seen: l.seenType ?? '—', status: 'mismatch' });
    for (const f of l.fields) if (f.status !== 'ignored') rows.push({ layer: name, field: f.field, expected: show(f.expected), seen: show(f.seen), status: f.status });
  }
  return rows;
}

interface TestFiles {
  packets: DecodedPacket[];
  links: string[];
  exp: ExpectationFile;
}

function readTestFiles(runDir: string, t: TestResult): TestFiles | string | undefined {
  if (!t.expectations || !t.capture) return undefined;
  try {
    const expFile = path.join(runDir, t.expectations);
    const exp = validateExpectationFile(JSON.parse(fs.readFileSync(expFile, 'utf8')), expFile);
    const { packets, interfaces } = decodeCaptureWithInterfaces(path.join(runDir, t.capture), { payload: true, ...(exp.decode?.guePort ? { guePort: exp.decode.guePort } : {}) });
    return { packets, links: interfaces, exp };
  } catch (e) {
    return `${t.id}: its capture or ${EXPECTATIONS_FILE} cannot be read (${(e as Error).message.split('\n')[0]}); no journey or diff drawn`;
  }
}

/** The packet as tcpdump would print it, without time and link (shown beside it) and without TCP options. */
function hopLine(p: DecodedPacket): string {
  const line = formatPacketLine({ ...p, ts: undefined }, { link: false }).replace(/, options \[[^\]]*\]/, '');
  return line.length > 150 ? `${line.slice(0, 149)}…` : line;
}

function buildJourneys(files: TestFiles, clients: Set<string>, limits: ReportLimits): { journeys: JourneyView[]; path: string[] } {
  const journeys: JourneyView[] = [];
  const seenLinks = new Set<string>();
  for (const flow of clientFlows(files.exp, clients).slice(0, limits.flowsPerTest)) {
    const j = traceFlow(files.packets, flow);
    let budget = limits.hopsPerFlow;
    const transmissions: JourneyView['transmissions'] = [];
    for (const tr of j.transmissions) {
      for (const h of tr.hops) seenLinks.add(h.link);
      if (budget <= 0) continue;
      const hops = tr.hops.slice(0, budget).map((h): HopView => ({
        link: h.link, node: h.link.split(':')[0], frame: frameOf(h.index ?? h.packet.index), ts: h.ts, line: hopLine(h.packet), changed: h.changed,
        ...(h.icmpError ? { icmpError: true } : {}),
      }));
      budget -= hops.length;
      transmissions.push({ direction: tr.direction, hops });
    }
    const drawn = transmissions.reduce((a, t) => a + t.hops.length, 0);
    const total = j.transmissions.reduce((a, t) => a + t.hops.length, 0);
    journeys.push({ flow: flowLabel(flow), transmissions, hops: total, omittedHops: total - drawn, warnings: j.warnings });
  }
  return { journeys, path: [...seenLinks].sort() };
}

function failedCheckViews(files: TestFiles, failed: Array<{ id: string; reason: string; broken: string[] }>, limits: ReportLimits): FailedCheckView[] {
  const out: FailedCheckView[] = [];
  for (const c of failed.slice(0, limits.diffsPerTest)) {
    const e = files.exp.expectations.find((x) => x.id === c.id);
    if (!e) {
      out.push({ id: c.id, link: '?', reason: c.reason, broken: c.broken, rows: [] });
      continue;
    }
    const r = evaluateExpectation(e, files.packets, files.links);
    out.push({
      id: c.id, link: e.link, reason: r.reason, broken: c.broken,
      frame: frameOf(r.closest?.packet.index ?? r.matched[0]?.index),
      rows: r.closest ? diffRows(r.closest.diff.layers) : e.layers.flatMap((l) => Object.entries(l).filter(([k]) => k !== 'type').map(([k, v]): DiffRow => ({ layer: l.type, field: k, expected: show(v), seen: '—', status: 'missing' }))),
    });
  }
  return out;
}

interface ReplayFile {
  scheduler?: string; kernel?: string; predicted?: Array<string | null>; observed?: Array<string | null>; ok?: boolean;
}

function distributionOf(runDir: string, t: TestResult): DistributionView | string | undefined {
  if (!t.replay) return undefined;
  let r: ReplayFile;
  try {
    r = JSON.parse(fs.readFileSync(path.join(runDir, t.replay), 'utf8')) as ReplayFile;
  } catch (e) {
    return `${t.id}: ${t.replay}: ${(e as Error).message}`;
  }
  if (!Array.isArray(r.predicted) || !Array.isArray(r.observed)) return `${t.id}: ${t.replay} has no predicted/observed choices`;
  const names = [...new Set([...r.predicted, ...r.observed].filter((x): x is string => typeof x === 'string'))].sort((a, b) => a.localeCompare(b, 'en', { numeric: true }));
  const count = (xs: Array<string | null>, n: string) => xs.filter((x) => x === n).length;
  const n = Math.max(r.predicted.length, r.observed.length);
  let first: number | null = null;
  for (let i = 0; i < n; i++) if ((r.predicted[i] ?? null) !== (r.observed[i] ?? null)) { first = i; break; }
  // Around the first divergence (or the start): enough to see it, not every flow of a 1000-flow scenario.
  const from = first === null ? 0 : Math.max(0, first - 20);
  return {
    scheduler: r.scheduler ?? '?', kernel: r.kernel ?? '?',
    servers: names.map((name) => ({ name, expected: count(r.predicted!, name), observed: count(r.observed!, name) })),
    tolerance: 0, toleranceNote: 'an exact scheduler: the kernel must choose what the model chooses, flow by flow (tolerance 0)',
    shownFrom: from, predicted: r.predicted.slice(from, from + 80), observed: r.observed.slice(from, from + 80),
    firstDivergence: first, flows: n, ok: r.ok === true,
  };
}

export function loadRunForReport(dirIn: string, limits: ReportLimits = DEFAULT_LIMITS, hrefBase?: string): RunView {
  const dir = path.resolve(dirIn);
  const problems: string[] = [];
  let results: RunResults;
  let mutation: MutationResults | undefined;
  const mf = path.join(dir, MUTATION_FILE);
  if (fs.existsSync(mf)) mutation = JSON.parse(fs.readFileSync(mf, 'utf8')) as MutationResults;
  if (!fs.existsSync(path.join(dir, RESULTS_FILE)) && mutation && fs.existsSync(path.join(mutation.baseline.out, RESULTS_FILE))) {
    // A mutation run's directory: the reference run is its baseline.
    results = readRun(mutation.baseline.out);
  } else results = readRun(dir);
  const runDir = fs.existsSync(path.join(dir, RESULTS_FILE)) ? dir : mutation!.baseline.out;
  const topologies: TopoView[] = [];
  const clientsOf = new Map<string, Set<string>>();
  for (const rec of results.labs) {
    const t = topoOf(rec);
    if (typeof t === 'string') problems.push(t);
    else {
      topologies.push(t);
      clientsOf.set(rec.lab, new Set(t.nodes.filter((n) => n.role === 'client').map((n) => n.name)));
    }
  }
  const allClients = new Set([...clientsOf.values()].flatMap((s) => [...s]));
  const tests: TestView[] = results.tests.map((t) => {
    const checks = readChecks(runDir, t.id);
    const view: TestView = { ...t, notes: t.notes ?? [], lab: checks?.lab, journeys: [], failedCheckDiffs: [], omittedFailedChecks: 0, path: [] };
    if (t.capture) view.captureHref = path.join(hrefBase ? path.relative(hrefBase, runDir) : '.', t.capture).split(path.sep).join('/');
    const files = readTestFiles(runDir, t);
    if (typeof files === 'string') problems.push(files);
    else if (files) {
      const clients = (checks?.lab && clientsOf.get(checks.lab)) || allClients;
      const j = buildJourneys(files, clients, limits);
      view.journeys = j.journeys;
      view.path = j.path;
      const failed = (checks?.checks ?? []).filter((c) => !c.ok);
      view.failedCheckDiffs = failedCheckViews(files, failed, limits);
      view.omittedFailedChecks = Math.max(0, failed.length - view.failedCheckDiffs.length);
    }
    const d = distributionOf(runDir, t);
    if (typeof d === 'string') problems.push(d);
    else if (d) view.distribution = d;
    return view;
  });
  const { tests: _t, labs, ...rest } = results;
  void _t;
  // Scheduler suites prepare no lab records: their replays name the kernel.
  const kernels = [...new Set(tests.map((t) => t.distribution?.kernel).filter((k): k is string => !!k && k !== '?'))];
  const impl = results.implementations.join('; ') || (kernels.length ? kernels.map((k) => `kernel ${k}`).join('; ') : results.director);
  const label = `${results.director}${results.fault ? ` + fault ${results.fault}` : ''} (${impl})${results.kernel ? ` kernel ${results.kernel}` : ''}`;
  return { label, implementation: impl, dir, results: rest, labs, tests, topologies, mutation, problems };
}

export function loadReport(dirs: string[], limits: ReportLimits = DEFAULT_LIMITS, hrefBase?: string): ReportData {
  return { generatedAt: new Date().toISOString(), runs: dirs.map((d) => loadRunForReport(d, limits, hrefBase)) };
}

