// The scenario pool without a VM: lanes (every scenario once, the waiting ones last and spread by their
// waits), and the pool's scheduling with stand-in labs and a stand-in replayer that sleeps: which
// scenarios run ahead on siblings, how many at once, one in its busy start at a time, results handed to
// the right test, a sibling that cannot be built or whose scenario failed.
import { test, expect } from '@playwright/test';
import * as fs from 'fs';
import * as path from 'path';
import type { Scenario } from '../../src/models/scenario';
import type { ReplayLab } from '../../src/suites/schedulers/lab';
import { BACKGROUND_FLOW_TIMEOUT_MS, backgroundFlowTimeout, planLanes, scenarioWaitSeconds, ScenarioPool, serverNodesNeeded, type PoolScenario } from '../../src/suites/schedulers/pool';
import type { ReplayResult } from '../../src/suites/schedulers/replay';

const SCENARIOS = path.join(__dirname, '..', '..', 'suites', 'schedulers', 'scenarios');
const shipped = (): PoolScenario[] =>
  fs.readdirSync(SCENARIOS).filter((f) => f.endsWith('.json')).sort().map((f) => ({ name: f.replace(/\.json$/, ''), scenario: JSON.parse(fs.readFileSync(path.join(SCENARIOS, f), 'utf8')) as Scenario }));

const sc = (name: string, wait: number, flows = 2, servers = 2): PoolScenario => ({
  name,
  scenario: {
    name, scheduler: 'rr', service: { proto: 'tcp', vip: '198.19.0.100', port: 80 },
    servers: Array.from({ length: servers }, (_, i) => ({ name: `rs${i + 1}`, addr: `198.18.1.${11 + i}`, port: 80, weight: 1 })),
    flows: Array.from({ length: flows }, (_, i) => ({ client: '198.18.0.2', cport: 40000 + i })),
    events: wait ? [{ before: 1, op: 'wait', seconds: wait }] : [],
  } as Scenario,
});

test.describe('lanes', () => {
  test('the shipped scenarios: each exactly once, waiting ones last in their lane, the longest waits apart', () => {
    const all = shipped();
    for (const n of [1, 2, 3]) {
      const lanes = planLanes(all, n);
      expect(lanes.length).toBe(n);
      const names = lanes.flat().map((s) => s.name).sort();
      expect(names).toEqual(all.map((s) => s.name).sort());
      for (const lane of lanes) {
        const firstWaiting = lane.findIndex((s) => scenarioWaitSeconds(s.scenario) > 0);
        if (firstWaiting >= 0) expect(lane.slice(firstWaiting).every((s) => scenarioWaitSeconds(s.scenario) > 0)).toBe(true);
      }
    }
    const two = planLanes(all, 2);
    const laneOf = (name: string) => two.findIndex((l) => l.some((s) => s.name === name));
    expect(laneOf('lc-fin-wait-120s')).not.toBe(laneOf('rr-persistence-keepalive'));
    // balanced on flows: neither lane has more than 60 % of them
    const flows = two.map((l) => l.reduce((n, s) => n + s.scenario.flows.reduce((k, f) => k + ('generate' in f ? f.generate.count : 1), 0), 0));
    expect(Math.max(...flows) / (flows[0] + flows[1])).toBeLessThan(0.6);
  });

  test('background flows wait longer, except in scenarios where the model leaves flows unanswered', () => {
    const byName = new Map(shipped().map((s) => [s.name, s.scenario]));
    expect(backgroundFlowTimeout(byName.get('rr-udp-persistence-unassured')!)).toBe(BACKGROUND_FLOW_TIMEOUT_MS);
    expect(backgroundFlowTimeout(byName.get('dh-quiesce')!)).toBeUndefined(); // weight-0 destinations get nothing
    expect(backgroundFlowTimeout(byName.get('rr-removed-server-drops')!)).toBeUndefined();
  });

  test('server nodes a scenario needs count servers added by events', () => {
    const s = sc('x', 0, 1, 2).scenario;
    expect(serverNodesNeeded(s)).toBe(2);
    s.events = [{ before: 1, op: 'add', server: { name: 'rs9', addr: '198.18.1.99', port: 80, weight: 1 } }];
    expect(serverNodesNeeded(s)).toBe(3);
    s.servers.push({ name: 'dup', addr: '198.18.1.11', port: 8080, weight: 1 });
    expect(serverNodesNeeded(s)).toBe(3);
  });
});

/** A stand-in lab: a name, and siblings made on request (or refused). */
function fakeLab(name: string, made: string[], refuse = false): ReplayLab {
  return {
    name,
    async sibling(n: string) {
      if (refuse) throw new Error('no room');
      made.push(n);
      return fakeLab(n, made, refuse);
    },
    async down() {},
  } as unknown as ReplayLab;
}

/** A stand-in replayer: logs like the real one, sleeps its wait (scaled 1 s -> 50 ms), records where and when. */
function fakeReplay(trace: Array<{ name: string; lab: string; start: number; end: number }>, running: { now: number; max: number }, fail = new Set<string>()) {
  return async (lab: ReplayLab, raw: unknown, opts: { log?: (l: string) => void } = {}): Promise<ReplayResult> => {
    const s = raw as Scenario;
    const rec = { name: s.name!, lab: lab.name, start: Date.now(), end: 0 };
    running.now++;
    running.max = Math.max(running.max, running.now);
    try {
      opts.log?.(`${s.name}: setting up`);
      await new Promise((r) => setTimeout(r, 10));
      const w = scenarioWaitSeconds(s);
      if (w) {
        opts.log?.(`${s.name}: before flow 1: wait ${w} s`);
        await new Promise((r) => setTimeout(r, w * 50));
      }
      if (fail.has(s.name!)) throw new Error(`${s.name} failed`);
      return { ok: true, scenario: s.name } as unknown as ReplayResult;
    } finally {
      rec.end = Date.now();
      trace.push(rec);
      running.now--;
    }
  };
}

test.describe('scenario pool (stand-ins, no VM)', () => {
  test('waiting scenarios run ahead on siblings, at most slots - 1 at once; the rest in their tests', async () => {
    const made: string[] = [];
    const trace: Array<{ name: string; lab: string; start: number; end: number }> = [];
    const running = { now: 0, max: 0 };
    const pool = new ScenarioPool(fakeLab('w0', made), { slots: 3, name: 'w0', replay: fakeReplay(trace, running) as never });
    const lane = [sc('busy1', 0), sc('busy2', 0), sc('wait5', 5), sc('wait4', 4), sc('wait3', 3), sc('big', 2, 2, 9)];
    // the model (run for each background scenario's flow timeout) compiles its schema once: not timed here
    expect(backgroundFlowTimeout(lane[2].scenario)).toBe(BACKGROUND_FLOW_TIMEOUT_MS);
    const t0 = Date.now();
    const outs = [];
    for (let i = 0; i < lane.length; i++) outs.push(await pool.run(lane[i], lane.slice(i + 1)));
    const wall = Date.now() - t0;
    await pool.close();
    expect(outs.map((o) => (o.result as unknown as { scenario: string }).scenario)).toEqual(lane.map((s) => s.name));
    // busy ones and the one needing 9 servers (siblings have 6) ran in their tests, on the worker's lab
    for (const n of ['busy1', 'busy2', 'big']) expect(trace.find((t) => t.name === n)!.lab).toBe('w0');
    for (const n of ['wait5', 'wait4', 'wait3']) expect(trace.find((t) => t.name === n)!.lab).toMatch(/^w0-b\d$/);
    expect(outs.filter((o) => o.background).length).toBe(3);
    // two siblings (slots 3), reused; never more than 3 replays at once (two siblings + the test's own)
    expect(made).toEqual(['w0-b1', 'w0-b2']);
    expect(running.max).toBeLessThanOrEqual(3);
    // the waits overlapped: the same lane with one slot (everything in its test, as before the pool) takes longer
    const alone = new ScenarioPool(fakeLab('w9', []), { slots: 1, name: 'w9', replay: fakeReplay([], { now: 0, max: 0 }) as never });
    const t1 = Date.now();
    for (let i = 0; i < lane.length; i++) await alone.run(lane[i], lane.slice(i + 1));
    const sequential = Date.now() - t1;
    expect(sequential).toBeGreaterThanOrEqual(700);
    expect(wall / sequential).toBeLessThan(0.85);
  });

  test('one background scenario in its busy start at a time: the next starts when it sleeps', async () => {
    const trace: Array<{ name: string; lab: string; start: number; end: number }> = [];
    const running = { now: 0, max: 0 };
    const logs: string[] = [];
    const replay = fakeReplay(trace, running);
    const spy = (async (lab: ReplayLab, raw: unknown, opts: { log?: (l: string) => void } = {}) => replay(lab, raw, { log: (l) => { logs.push(l); opts.log?.(l); } })) as never;
    const pool = new ScenarioPool(fakeLab('w0', []), { slots: 4, name: 'w0', replay: spy });
    const lane = [sc('first', 0), sc('a', 5), sc('b', 5), sc('c', 5)];
    for (let i = 0; i < lane.length; i++) await pool.run(lane[i], lane.slice(i + 1));
    await pool.close();
    // each background scenario's setup line comes after the previous one's wait line
    const order = logs.filter((l) => /^[abc]: /.test(l));
    expect(order.indexOf('b: setting up')).toBeGreaterThan(order.indexOf('a: before flow 1: wait 5 s'));
    expect(order.indexOf('c: setting up')).toBeGreaterThan(order.indexOf('b: before flow 1: wait 5 s'));
  });

  test('a sibling that cannot be built leaves the scenario to its test; a failed one is reported to its test and not reused', async () => {
    const trace: Array<{ name: string; lab: string; start: number; end: number }> = [];
    const running = { now: 0, max: 0 };
    const refused = new ScenarioPool(fakeLab('w0', [], true), { slots: 3, name: 'w0', replay: fakeReplay(trace, running) as never });
    const lane = [sc('first', 0), sc('w', 2)];
    await refused.run(lane[0], lane.slice(1));
    const out = await refused.run(lane[1], []);
    expect(out.error).toBeUndefined();
    expect(out.background).toBe(false);
    expect(trace.find((t) => t.name === 'w')!.lab).toBe('w0');

    const made: string[] = [];
    const failing = new ScenarioPool(fakeLab('w1', made), { slots: 2, name: 'w1', replay: fakeReplay(trace, running, new Set(['bad'])) as never });
    const lane2 = [sc('first', 0), sc('bad', 2), sc('after', 2)];
    const outs = [];
    for (let i = 0; i < lane2.length; i++) outs.push(await failing.run(lane2[i], lane2.slice(i + 1)));
    expect(String(outs[1].error)).toContain('bad failed');
    expect(outs[1].background).toBe(true);
    expect(outs[2].error).toBeUndefined();
    // 'after' ran on a new sibling, not on the one 'bad' left
    expect(made).toEqual(['w1-b1', 'w1-b2']);
    await failing.close();
  });

  test('slots must be a whole number >= 1', () => {
    expect(() => new ScenarioPool(fakeLab('w0', []), { slots: 0, name: 'w0' })).toThrow(/slots >= 1/);
  });
});
