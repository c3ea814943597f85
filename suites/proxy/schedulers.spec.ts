// The scheduler mapping each proxy driver declares, checked from the real servers' answers (which server
// served each connection), with the suites' statistics at the 1e-4 false-failure bound (src/models/stats.ts):
//  - wrr (haproxy roundrobin, nginx's weighted round-robin) over weights 3:1: the shares match the weights;
//  - sh (haproxy source, nginx hash $remote_addr consistent): every connection of one client address goes to
//    one real server (stickiness; the server chosen is the implementation's hash, not IPVS's table).
// Each run's packets are accounted for and no probe is sent (PROXY-008).
import { testDistribution } from '../../src/models/stats';
import { noProbeChecks } from '../../src/oracle/proxy';
import { expect, test, statements } from '../fixtures';
import { LABS } from './labs';

test.use({ suiteLab: LABS.proxy });

test('wrr4: 80 connections over weights 3:1 follow the weights', statements('PROXY-008', 'FWD-COM-001', 'FWD-COM-009'), async ({ requires, traffic, expectFlow }) => {
  requires({ method: 'proxy', scheduler: 'wrr', family: 4 });
  const run = await traffic.run('wrr4', { count: 80 });
  const servers = traffic.service('wrr4').realServers.map((r) => ({ name: r.node, weight: r.weight }));
  const verdict = testDistribution(run.conns.map((c) => c.server), servers);
  test.info().annotations.push({ type: 'note', description: `wrr4: ${verdict.message}` });
  await expectFlow.checks(() => [...noProbeChecks(traffic.model, run.flows, 'wrr4'), ...traffic.unansweredChecks(run)]);
  expect(verdict.ok, verdict.message).toBe(true);
});

test('sh4: 30 connections from one client address all go to one real server', statements('PROXY-008', 'FWD-COM-001', 'FWD-COM-009'), async ({ requires, traffic, expectFlow }) => {
  requires({ method: 'proxy', scheduler: 'sh', family: 4 });
  const run = await traffic.run('sh4', { count: 30 });
  const chosen = [...new Set(run.conns.map((c) => c.server))];
  test.info().annotations.push({ type: 'note', description: `sh4: servers chosen for one client address: ${chosen.join(', ')}` });
  await expectFlow.checks(() => [...noProbeChecks(traffic.model, run.flows, 'sh4'), ...traffic.unansweredChecks(run)]);
  expect(chosen, 'one client address, one real server (source hashing is sticky)').toHaveLength(1);
  expect(chosen[0]).not.toBeNull();
});
