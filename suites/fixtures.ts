// The suite test API. Conformance suites import `test` and `expect` from here:
//
//   test.use({ suiteLab: { topology: 'suites/forwarding/topologies/nat.yaml' } });
//   test('tcp4 on every hop', statements('FWD-NAT-001', ...), async ({ traffic, expectFlow }) => {
//     const run = await traffic.run('tcp4');
//     await expectFlow(run);
//   });
//
// Worker fixtures: `labPool` (one VM per worker on the vm backend; each lab brought up once and reused by
// every test of the worker). Test fixtures: `lab` (the running lab of the file's topology, prepared:
// offloads off, director programmed, the run's fault applied, responders up), `director` (its driver),
// `capture` (tcpdump on every link end, started before the test body), `traffic` (client runs with fresh
// source ports), `expectFlow` (oracle checks evaluated on the test's capture, recorded in the run
// directory for `vslab replay`, failing the test with decoded diffs and the statements broken).
import { test as base, expect, type TestInfo } from '@playwright/test';
import * as path from 'path';
import type { RunningLab } from '../src/backend/types';
import type { DirectorCapabilities, DirectorDriver } from '../src/director/types';
import type { OracleCheck } from '../src/oracle/expect';
import { backgroundClasses, haGroupBackground } from '../src/oracle/background';
import { exchangeChecks } from '../src/oracle/flow-checks';
import { flowExplainers } from '../src/oracle/explainers';
import { readRunEnv, type RunEnv } from '../src/runner/env';
import { LabPool, LabUnavailableError, type SuiteLabSpec } from '../src/runner/labs';
import { labBeyondDirector } from '../src/director/program';
import { loadTopologyFile } from '../src/topology/load';
import { readRunVms } from '../src/runner/vms';
import type { PreparedLab } from '../src/runner/prepare';
import { PortAllocator, TestCapture, TestRecord, Traffic, testIdOf, type CapturedTest, type TrafficRun } from '../src/runner/suite-api';
import type { Flow } from '../src/oracle/types';
import type { ForwardingMethod, Family, Protocol, TunnelType } from '../src/topology/model';

export { expect };

export const SUITES_ROOT = __dirname;

/** Test details declaring the conformance statements a test checks (spec/*.yaml ids). */
export function statements(...ids: string[]): { annotation: Array<{ type: string; description: string }> } {
  return { annotation: ids.map((id) => ({ type: 'statement', description: id })) };
}

/** Marks the running test "not applicable" (reported as such, never as passed) and stops it. */
export function notApplicable(reason: string): never {
  base.info().annotations.push({ type: 'not-applicable', description: reason });
  base.skip(true, reason);
  throw new Error('unreachable');
}

/**
 * Marks the running test as failing for a known, documented reason (a kernel bug with its fix named):
 * reported as "known-failure", never as passed; if it starts passing, the report says so.
 */
export function knownFailure(reason: string): void {
  base.info().annotations.push({ type: 'known-failure', description: reason });
  base.fail(true, reason);
}

export type FlowTarget = TrafficRun | (Flow & { answered?: boolean }) | Array<TrafficRun | Flow>;

export interface ExpectFlow {
  /** Every hop of each flow, both directions (skeleton + seeded + absent checks). */
  (target: FlowTarget): Promise<void>;
  /**
   * Any checks built by the caller (ICMP, path MTU, director state...), evaluated and recorded the same way.
   * `flows`: flows besides the traffic runs' whose packets the accounting takes as explained (e.g. a
   * proxy's server legs to a real server that refused them, known only from the capture).
   */
  checks(build: (captured: CapturedTest) => OracleCheck[] | Promise<OracleCheck[]>, flows?: Flow[] | ((captured: CapturedTest) => Flow[])): Promise<void>;
}

/** What a test needs of the director under test; anything missing makes the test not applicable, with the reason. */
export interface SuiteRequirements {
  method?: ForwardingMethod;
  family?: Family;
  protocol?: Protocol;
  tunnel?: TunnelType;
  tunnelFlags?: string[];
  scheduler?: string;
  schedulerFlags?: string[];
  persistence?: boolean;
  persistenceEngine?: string;
  onePacket?: boolean;
  fwmark?: boolean;
  thresholds?: boolean;
  weightZero?: boolean;
  mixedFamilyTunnels?: boolean;
  /** A readable connection table (for `method`, when given). */
  connections?: boolean;
  /** Per-service and per-real-server counters (for `method`, when given). */
  stats?: boolean;
  rates?: boolean;
  /** A transparent proxy: the server leg from the client's address. */
  transparent?: boolean;
}

/** The first requirement the capabilities do not meet, as a reason; undefined when all are met. */
export function unmetRequirement(c: DirectorCapabilities, r: SuiteRequirements): string | undefined {
  const who = `director ${c.implementation}`;
  if (r.method && !c.methods.includes(r.method)) return `${who} has no ${r.method} forwarding`;
  if (r.family && !c.families.includes(r.family)) return `${who} does not handle IPv${r.family}`;
  if (r.protocol && !c.protocols.includes(r.protocol)) return `${who} does not handle ${r.protocol}`;
  if (r.tunnel && !c.tunnelTypes.includes(r.tunnel)) return `${who} has no ${r.tunnel} tunnels`;
  const flag = (r.tunnelFlags ?? []).find((f) => !c.tunnelFlags.includes(f));
  if (flag) return `${who} has no tunnel flag ${flag}`;
  if (r.scheduler && !c.schedulers.includes(r.scheduler)) return `${who} has no ${r.scheduler} scheduler (it has ${c.schedulers.join(', ') || 'none'})`;
  const sflag = (r.schedulerFlags ?? []).find((f) => !c.schedulerFlags.includes(f));
  if (sflag) return `${who} has no scheduler flag ${sflag}`;
  if (r.persistence && !c.persistence) return `${who} has no persistence`;
  if (r.persistenceEngine && !c.persistenceEngines.includes(r.persistenceEngine)) return `${who} has no ${r.persistenceEngine} persistence engine`;
  if (r.onePacket && !c.onePacket) return `${who} has no one-packet scheduling`;
  if (r.fwmark && !c.fwmark) return `${who} has no fwmark services`;
  if (r.thresholds && !c.thresholds) return `${who} has no connection thresholds`;
  if (r.weightZero && !c.weightZero) return `${who} cannot quiesce a real server with weight 0`;
  if (r.mixedFamilyTunnels && !c.mixedFamilyTunnels) return `${who} cannot tunnel to real servers of another address family`;
  if (r.connections && (!c.connections || (r.method && c.connectionMethods && !c.connectionMethods.includes(r.method)))) return `${who} has no readable connection table${c.connections && r.method ? ` for ${r.method}` : ''}`;
  if (r.stats && (!c.stats || (r.method && c.statsMethods && !c.statsMethods.includes(r.method)))) return `${who} has no per-service counters${c.stats && r.method ? ` for ${r.method}` : ''}`;
  if (r.rates && !c.rates) return `${who} has no rate estimates`;
  if (r.transparent && !c.transparent) return `${who} cannot open the server leg from the client's address (no transparent proxying)`;
  return undefined;
}

type WorkerFixtures = { runEnv: RunEnv; labPool: LabPool; ports: PortAllocator };
type TestFixtures = {
  suiteLab: SuiteLabSpec;
  prepared: PreparedLab;
  lab: RunningLab;
  director: DirectorDriver;
  capabilities: DirectorCapabilities;
  record: TestRecord;
  capture: TestCapture;
  traffic: Traffic;
  expectFlow: ExpectFlow;
  /** N/A unless the director under test can do all of this. */
  requires: (r: SuiteRequirements) => void;
};

function declaredStatements(info: TestInfo): string[] {
  return info.annotations.filter((a) => a.type === 'statement' && a.description).map((a) => a.description!);
}

function flowsOf(t: FlowTarget): { flows: Flow[]; runs: TrafficRun[] } {
  const items = Array.isArray(t) ? t : [t];
  const flows: Flow[] = [];
  const runs: TrafficRun[] = [];
  for (const i of items) {
    if ('report' in i) {
      runs.push(i);
      flows.push(...i.flows);
    } else flows.push(i);
  }
  return { flows, runs };
}

export const test = base.extend<TestFixtures, WorkerFixtures>({
  runEnv: [async ({}, use) => use(readRunEnv()), { scope: 'worker' }],
  labPool: [async ({ runEnv }, use, workerInfo) => {
    // Under `vslab test` the VMs belong to the run (one per worker slot) and survive worker replacement.
    const vms = runEnv.backend === 'vm' && runEnv.vmsFile ? readRunVms(runEnv.vmsFile) : [];
    const sharedVm = vms.length ? vms[workerInfo.parallelIndex % vms.length] : undefined;
    const pool = new LabPool({ backend: runEnv.backend, director: runEnv.director, kernel: runEnv.kernel, modules: runEnv.modules, fault: runEnv.fault, recordDir: runEnv.out, sharedVm });
    try {
      await use(pool);
    } finally {
      await pool.close();
    }
  }, { scope: 'worker', timeout: 300_000 }],
  ports: [async ({ runEnv }, use, workerInfo) => {
    const vms = runEnv.backend === 'vm' && runEnv.vmsFile ? readRunVms(runEnv.vmsFile) : [];
    const shared = vms.length ? vms[workerInfo.parallelIndex % vms.length] : undefined;
    await use(new PortAllocator(shared ? path.join(shared.stateDir, 'next-client-port') : undefined));
  }, { scope: 'worker' }],

  suiteLab: [{ topology: '' }, { option: true }],
  prepared: async ({ suiteLab, labPool }, use, testInfo) => {
    if (!suiteLab.topology) throw new Error('this test file did not say which lab it uses: test.use({ suiteLab: { topology: ... } })');
    // A lab none of whose services the driver can express is not built: its tests are not applicable.
    const beyond = labBeyondDirector(labPool.opts.director, loadTopologyFile(suiteLab.topology));
    if (beyond) notApplicable(beyond);
    let p: PreparedLab;
    try {
      p = await labPool.get(suiteLab);
    } catch (e) {
      // The lab failed to prepare for an earlier test, which reported the cause: this one is not run.
      if (e instanceof LabUnavailableError) testInfo.skip(true, e.message);
      throw e;
    }
    await use(p);
  },
  lab: async ({ prepared }, use) => use(prepared.lab),
  director: async ({ prepared }, use) => {
    const [d] = [...prepared.directors.values()];
    if (!d) throw new Error(`lab ${prepared.model.name} has no programmed director`);
    await use(d);
  },
  capabilities: async ({ prepared }, use) => {
    const [c] = [...prepared.capabilities.values()];
    await use(c);
  },
  requires: async ({ capabilities }, use) => {
    await use((r) => {
      const why = capabilities && unmetRequirement(capabilities, r);
      if (why) notApplicable(why);
    });
  },
  record: async ({ runEnv, prepared }, use, info) => {
    const id = testIdOf(info.file, info.title, SUITES_ROOT);
    const r = new TestRecord(id, path.join(runEnv.out, id), info.title, path.relative(SUITES_ROOT, info.file), declaredStatements(info));
    r.lab = prepared.model.name;
    r.fault = runEnv.fault;
    await use(r);
    r.write();
    if (info.status === 'passed' && r.evaluated === 0 && info.expectedStatus !== 'skipped') throw new Error(`test "${info.title}" evaluated no check`);
  },
  capture: async ({ lab, record }, use) => {
    const t0 = Date.now();
    const c = await TestCapture.start(lab, record.dir);
    record.phase('capture start', Date.now() - t0);
    try {
      await use(c);
    } finally {
      await c.abort();
    }
  },
  traffic: async ({ prepared, ports }, use) => {
    const t = new Traffic(prepared, ports, notApplicable);
    try {
      await use(t);
    } finally {
      await t.releaseAll();
    }
  },
  expectFlow: async ({ prepared, capture, record, traffic, capabilities }, use, info) => {
    const evaluate = async (build: (c: CapturedTest) => OracleCheck[] | Promise<OracleCheck[]>, flowsOf: Flow[] | ((c: CapturedTest) => Flow[]) = []) => {
      const first = !('capture stop' in record.phases);
      const captured = await capture.finish();
      if (first && captured.timing) {
        record.phase('traffic', traffic.clientMs);
        record.phase('capture stop', captured.timing.stopMs);
        record.phase('capture fetch', captured.timing.fetchMs);
        record.phase('capture decode', captured.timing.decodeMs);
      }
      const t0 = Date.now();
      const checks = await build(captured);
      const flows = typeof flowsOf === 'function' ? flowsOf(captured) : flowsOf;
      // Every packet of the capture is accounted for: the flows of every traffic run of the test explain theirs.
      const allFlows: Flow[] = [...traffic.runs.flatMap((r) => r.flows), ...flows];
      // Connections the client gave up on and nothing named a real server for: where the wire shows them going.
      allFlows.push(...traffic.wireFlows(captured.packets));
      // An ha group's own traffic (VRRP, sync, health checks) is background its model declares.
      const accounting = { explainers: flowExplainers(prepared.model, allFlows, captured.packets, { guePort: captured.guePort }), background: backgroundClasses([...(capabilities?.background ?? []), ...haGroupBackground(prepared.model)]) };
      try {
        record.evaluate(checks, captured, accounting);
      } finally {
        record.phase('checks', Date.now() - t0);
        await info.attach('capture.pcapng', { path: captured.file, contentType: 'application/vnd.tcpdump.pcap' }).catch(() => undefined);
      }
    };
    const fn = (async (target: FlowTarget) => {
      const { flows, runs } = flowsOf(target);
      await evaluate((captured) => {
        const checks: OracleCheck[] = [];
        flows.forEach((f, k) => checks.push(...exchangeChecks(prepared.model, f, captured.packets, { idPrefix: flows.length > 1 ? `f${k}.` : '', guePort: captured.guePort })));
        for (const run of runs) checks.push(...traffic.unansweredChecks(run));
        return checks;
      }, flows);
    }) as ExpectFlow;
    fn.checks = (build, flows) => evaluate(build, flows);
    await use(fn);
  },
});
