// The distribution suite's tests, written once and declared by each lab's file (schedulers-nat.spec.ts,
// schedulers-proxy.spec.ts, so each test's id names its file): which real server each new connection reaches, judged without a model of the
// implementation (src/models/distribution-checks.ts, spec/distribution.yaml, docs/distribution.md).
//
// Every test first asks the director for the scheduler (`requires({ scheduler })`: not applicable with the
// driver's reason otherwise), sends its connections, accounts for every packet of the capture (the flows
// of the answers explain them: a connection whose packets went to another server than the one that
// answered fails FWD-COM-001), then records the scheduling verdict as a check of its DIST statement.
import { cyclicWindowCheck, heldSchedule, HeldLoad, leastConnectionCheck, overflowCheck, twoChoicesCheck, type CheckedServer, type PickVerdict } from '../../src/models/distribution-checks';
import { testDistribution } from '../../src/models/stats';
import type { SuiteLabSpec } from '../../src/runner/labs';
import type { HeldRun, TestRecord, Traffic } from '../../src/runner/suite-api';
import { expect, notApplicable, test, statements, type ExpectFlow } from '../fixtures';

type TestBody = Parameters<typeof test>[2];
type TestDetails = ReturnType<typeof statements>;

/** A test of the suite: what each lab's file passes to `test(title, details, body)`. */
export interface DistributionTest {
  title: string;
  details: TestDetails;
  body: TestBody;
}
import { DIST_SCHEDULES } from './plan';

/** Packet accounting every test makes besides its DIST statement. */
const ACCOUNTED = ['FWD-COM-001', 'FWD-COM-009'];

/**
 * After a batch of held connections is released: time for the director to see both ends close before the
 * next decision (a proxy counts a connection until its session ends; IPVS moves it out of the active count
 * on the FIN). The client's report comes after its own FIN is sent; 300 ms is ample on a lab on this host.
 */
const SETTLE_MS = 300;

function serversOf(traffic: Traffic, service: string): CheckedServer[] {
  return traffic.service(service).realServers.map((r) => ({ name: r.node, weight: r.weight, ...(r.upper ? { upper: r.upper } : {}) }));
}

function note(text: string): void {
  test.info().annotations.push({ type: 'note', description: text });
}

/** The capture's packets accounted for and no connection left unanswered; then the scheduling verdict. */
async function judge(expectFlow: ExpectFlow, traffic: Traffic, record: TestRecord, id: string, v: PickVerdict, statement: string): Promise<void> {
  note(`${id}: ${v.message}`);
  await expectFlow.checks(() => traffic.runs.flatMap((r) => traffic.unansweredChecks(r)));
  record.judge(id, v.ok, v.message, [statement]);
}

/** Runs a held-connection schedule on `service`; every batch is released at the end. */
async function runSchedule(traffic: Traffic, service: string, plan: { seed: number; picks: number; maxHeld: number; maxBatch: number }): Promise<HeldLoad> {
  const load = new HeldLoad();
  const batches: Array<{ id: number; run: HeldRun }> = [];
  for (const op of heldSchedule(plan.seed, plan)) {
    if (op.op === 'open') {
      const run = await traffic.hold(service, { count: op.count });
      batches.push({ id: load.opened(run.servers), run });
    } else {
      const b = batches[op.batch];
      await b.run.release();
      load.released(b.id);
      await new Promise((r) => setTimeout(r, SETTLE_MS));
    }
  }
  return load;
}

const TESTS: DistributionTest[] = [];
const define = (title: string, details: TestDetails, body: TestBody): void => { TESTS.push({ title, details, body }); };

/** Declares the suite's tests in the calling file, on `lab`. */
export function distributionTests(lab: SuiteLabSpec, declare: (title: string, details: TestDetails, body: TestBody) => void): void {
  test.use({ suiteLab: lab });
  for (const t of TESTS) declare(t.title, t.details, t.body);
}

{
  for (const { service, scheduler, count, label } of [
    { service: 'rr3', scheduler: 'rr', count: 60, label: 'equal weights' },
    { service: 'wrr3', scheduler: 'wrr', count: 70, label: 'weights 4:2:1' },
  ]) {
    define(`${service}: ${count} connections one after another over ${label}: shares follow the weights and every window of the weights' sum has each server weight times`,
      statements('DIST-001', 'DIST-002', ...ACCOUNTED), async ({ requires, traffic, expectFlow, record }) => {
        requires({ scheduler });
        const run = await traffic.run(service, { count });
        const servers = serversOf(traffic, service);
        const picks = run.conns.map((c) => (c.outcome === 'answered' ? c.server : null));
        const shares = testDistribution(picks, servers);
        note(`${service} shares: ${shares.message}`);
        await expectFlow.checks(() => traffic.unansweredChecks(run));
        const cyclic = cyclicWindowCheck(picks, servers);
        note(`${service} order: ${cyclic.message}`);
        // Both verdicts are recorded before either fails the test, so the run shows which statement broke.
        const failures: string[] = [];
        for (const [id, v, st] of [[`${service}.shares`, shares, 'DIST-001'], [`${service}.cycle`, cyclic, 'DIST-002']] as const) {
          try {
            record.judge(id, v.ok, v.message, [st]);
          } catch (e) {
            failures.push((e as Error).message);
          }
        }
        expect(failures, failures.join('\n')).toEqual([]);
      });
  }

  define('sh3: 30 connections from one client address all reach one real server', statements('DIST-003', ...ACCOUNTED), async ({ requires, traffic, expectFlow, record }) => {
    requires({ scheduler: 'sh' });
    const run = await traffic.run('sh3', { count: 30 });
    const picks = run.conns.map((c) => (c.outcome === 'answered' ? c.server : null));
    const chosen = [...new Set(picks)];
    const ok = chosen.length === 1 && chosen[0] !== null;
    await judge(expectFlow, traffic, record, 'sh3.sticky', {
      ok, message: ok ? `all ${picks.length} connections from one client address reached ${chosen[0]}` : `connections from one client address reached ${chosen.map((s) => `${s ?? 'no server'} ×${picks.filter((p) => p === s).length}`).join(', ')}`,
    }, 'DIST-003');
  });

  define(`lc3: ${DIST_SCHEDULES.lc.picks} held connections opened and released in batches: each goes to a server with the fewest active connections`,
    statements('DIST-004', ...ACCOUNTED), async ({ requires, traffic, expectFlow, record }) => {
      requires({ scheduler: 'wlc' });
      const held = await runSchedule(traffic, 'lc3', DIST_SCHEDULES.lc);
      await judge(expectFlow, traffic, record, 'lc3.least', leastConnectionCheck(held.picks, serversOf(traffic, 'lc3')), 'DIST-004');
    });

  define(`ovf3: ${DIST_SCHEDULES.ovf.picks} held connections opened and released in batches: each goes to the first server below its upper threshold`,
    statements('DIST-005', ...ACCOUNTED), async ({ requires, capabilities, traffic, expectFlow, record }) => {
      requires({ scheduler: 'ovf' });
      // The check counts a released connection out at once; IPVS keeps counting it until its entry expires.
      if (capabilities?.thresholdCounts === 'active+inactive') {
        notApplicable(`${capabilities.implementation} counts closing and TIME_WAIT entries against the upper threshold until they expire `
          + '(ip_vs_dest_totalconns), so released connections keep a server full for minutes; its ovf is checked connection by connection '
          + 'against the IPVS model in suites/schedulers (ovf-overflow, ovf-release)');
      }
      const held = await runSchedule(traffic, 'ovf3', DIST_SCHEDULES.ovf);
      await judge(expectFlow, traffic, record, 'ovf3.order', overflowCheck(held.picks, serversOf(traffic, 'ovf3')), 'DIST-005');
    });

  define(`twos3: ${DIST_SCHEDULES.twos.picks} held connections opened and released in batches: the less loaded of two random draws wins`,
    statements('DIST-006', ...ACCOUNTED), async ({ requires, traffic, expectFlow, record }) => {
      requires({ scheduler: 'twos' });
      // ≈ 70–95 s at load 3–4 (130 client processes, 115 releases with their 300 ms settle): room for a loaded host.
      test.setTimeout(600_000);
      const held = await runSchedule(traffic, 'twos3', DIST_SCHEDULES.twos);
      const v = twoChoicesCheck(held.picks, serversOf(traffic, 'twos3'), { drawSlack: DIST_SCHEDULES.twos.drawSlack });
      Object.assign(record.figures, { decisions: held.picks.length, mostLoadedPicks: v.mostLoadedPicks, mostLoadedBound: Number(v.mostLoadedBound.toFixed(2)), notLeastPicks: v.notLeastPicks, notLeastBound: Number(v.notLeastBound.toFixed(2)) });
      await judge(expectFlow, traffic, record, 'twos3.choices', v, 'DIST-006');
    });
}
