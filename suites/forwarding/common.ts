// Statement sets and shared steps of the forwarding suite files.
import type { DirectorDriver } from '../../src/director/types';
import { connectionTableChecks, statsChecks, statsDeltas } from '../../src/oracle/director-checks';
import { settledStats, type TrafficRun, type Traffic } from '../../src/runner/suite-api';
import type { ForwardingMethod } from '../../src/topology/model';
import type { ExpectFlow } from '../fixtures';

/** What packet accounting answers to, in every test that evaluates checks: nothing off the flows' paths, nothing extra. */
export const ACCOUNTED = ['FWD-COM-001', 'FWD-COM-009'];

const COMMON = ['FWD-COM-001', 'FWD-COM-002', 'FWD-COM-003', 'FWD-COM-004', 'FWD-COM-005', 'FWD-COM-006', 'FWD-COM-009'];

/** What an exchange on every hop checks, per method. */
export const EXCHANGE: Record<Exclude<ForwardingMethod, 'proxy'>, string[]> = {
  nat: [...COMMON, 'FWD-NAT-001', 'FWD-NAT-002', 'FWD-NAT-003', 'FWD-NAT-004'],
  dr: [...COMMON, 'FWD-DR-001', 'FWD-DR-002'],
  tun: [...COMMON, 'FWD-TUN-001', 'FWD-TUN-002', 'FWD-TUN-003'],
  fullnat: [...COMMON, 'FWD-FNAT-001', 'FWD-FNAT-002', 'FWD-FNAT-003', 'FWD-FNAT-005'],
};

/** Three connections one after another (the scheduler spreads them), then the director's table against the wire. */
export async function connectionTableAgrees(traffic: Traffic, director: DirectorDriver, expectFlow: ExpectFlow, service: string, count = 3): Promise<TrafficRun> {
  const run = await traffic.run(service, { count });
  const table = await director.connections();
  await expectFlow.checks(() => [...connectionTableChecks(traffic.model, run.flows, table), ...traffic.unansweredChecks(run)]);
  return run;
}

/** One connection; the service's and real servers' counter deltas against the wire. */
export async function countersAgree(traffic: Traffic, director: DirectorDriver, expectFlow: ExpectFlow, service: string): Promise<TrafficRun> {
  const services = traffic.model.services.filter((s) => s.director === director.node);
  const foldMs = (await director.capabilities()).countersFoldMs ?? 2000;
  await traffic.countersCaughtUp(foldMs);
  const before = await director.stats(services);
  const run = await traffic.run(service);
  if (!run.flows.length) {
    // Nothing says which real server it went to: the check standing for the lost connection fails the test.
    await expectFlow.checks(() => traffic.unansweredChecks(run));
    return run;
  }
  const after = await settledStats(director, services, service, before, 1, 30_000, foldMs);
  await expectFlow.checks(() => statsChecks(traffic.model, run.flows[0], statsDeltas(service, before, after)));
  return run;
}
