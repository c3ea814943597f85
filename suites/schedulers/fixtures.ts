// Playwright fixtures of the scheduler suites: one replay lab (a VM with kernel IPVS) per worker,
// shared by every test the worker runs; each scenario flushes IPVS and removes its addresses after
// itself, so tests stay independent.
//
//   VSLAB_KERNEL=backports   guest kernel for every worker (default: bookworm, 6.1); `vslab test --kernel`
//                            (VSLAB_TEST_KERNEL, with --modules as VSLAB_TEST_MODULES) takes precedence
//   VSLAB_REPLAY_SERVERS=N   real-server nodes per lab (default 20, the largest shipped scenario)
//   VSLAB_REPLAY_SLOTS=N     replay labs per VM for the exact suite, real clocks only (default 3: the
//                            worker's own and 2 siblings where scenarios with waits run ahead of their
//                            tests; 1 = none); with the warp clock always 1
//   VSLAB_REPLAY_CLOCK=...   warp (default): the guests' clocks jump through the scenarios' waits
//                            (VmBootOptions.clock), one lab per VM (a jump moves the whole guest); real:
//                            waits take real time and the sibling labs of VSLAB_REPLAY_SLOTS overlap them
import { test as base } from '@playwright/test';
import * as fs from 'fs';
import * as path from 'path';
import type { Scenario } from '../../src/models/scenario';
import { ReplayLab } from '../../src/suites/schedulers/lab';
import { ScenarioPool } from '../../src/suites/schedulers/pool';
export { planLanes } from '../../src/suites/schedulers/pool';

export const SCENARIO_DIR = path.join(__dirname, 'scenarios');

export interface ScenarioFile {
  name: string;
  file: string;
  scenario: Scenario;
}

/** Every scenario file, by name. */
export function loadScenarios(dir = SCENARIO_DIR): ScenarioFile[] {
  return fs
    .readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((f) => {
      const file = path.join(dir, f);
      return { name: f.replace(/\.json$/, ''), file, scenario: JSON.parse(fs.readFileSync(file, 'utf8')) as Scenario };
    });
}

/** Seconds the scenario sleeps in its wait events. */
export function waitSeconds(sc: Scenario): number {
  return (sc.events ?? []).reduce((t, e) => t + (e.op === 'wait' ? e.seconds : 0), 0);
}

/** Flows the scenario opens (generated sets counted). */
export function flowCount(sc: Scenario): number {
  return sc.flows.reduce((n, f) => n + ('generate' in f ? f.generate.count : 1), 0);
}

/** A generous per-test timeout: boot allowance, waits, and ~100 ms per flow under TCG (x3). */
export function scenarioTimeoutMs(sc: Scenario): number {
  return 180_000 + waitSeconds(sc) * 1000 * 1.2 + flowCount(sc) * 300;
}

/**
 * Replay labs per VM (VSLAB_REPLAY_SLOTS): 1 with the warp clock (the default); with the real clock 3 by default
 * (on a quiet machine the whole exact suite took 280 s with 3 slots against 509 s with 1 before the C flow
 * tools, bench/scheduler-suite.js). Bad values are refused, naming the variable.
 */
export function replaySlots(): number {
  const v = process.env.VSLAB_REPLAY_SLOTS;
  const warp = replayClock() === 'warp';
  if (v === undefined || v === '') return warp ? 1 : 3;
  const n = Number(v);
  if (!(Number.isInteger(n) && n >= 1 && n <= 16)) throw new Error(`VSLAB_REPLAY_SLOTS=${v}: expected a whole number from 1 to 16`);
  if (warp && n > 1) throw new Error(`VSLAB_REPLAY_SLOTS=${v} with VSLAB_REPLAY_CLOCK=warp: a wait moves the whole guest's clock, so sibling labs cannot share it (use 1)`);
  return n;
}

/**
 * The replay guests' clock (VSLAB_REPLAY_CLOCK): warp, the default (waits pass on the guest's clock in seconds,
 * src/backend/vm/guest.ts advanceClock: the whole scheduler suite took 125 s against 210 s with real clocks and
 * sibling labs, docs/scheduler-conformance.md), or real; bad values are refused, naming the variable.
 */
export function replayClock(): 'real' | 'warp' {
  const v = process.env.VSLAB_REPLAY_CLOCK;
  if (v === undefined || v === '' || v === 'warp') return 'warp';
  if (v === 'real') return 'real';
  throw new Error(`VSLAB_REPLAY_CLOCK=${v}: expected real or warp`);
}

export const test = base.extend<object, { replayLab: ReplayLab; replayPool: ScenarioPool; labKernel: string | undefined }>({
  /** The guest kernel of this worker's lab (test.use({ labKernel: 'backports' }) in a describe). */
  labKernel: [process.env.VSLAB_TEST_KERNEL || process.env.VSLAB_KERNEL || undefined, { scope: 'worker', option: true }],
  replayLab: [
    async ({ labKernel }, use, workerInfo) => {
      const lab = await ReplayLab.up({
        kernel: labKernel,
        modules: process.env.VSLAB_TEST_MODULES || undefined,
        servers: Number(process.env.VSLAB_REPLAY_SERVERS || 20),
        name: `ss-${process.pid}-w${workerInfo.workerIndex}`,
        // Sibling labs (the pool) run their own responders and flow drivers in the same guest.
        memoryMiB: replaySlots() > 1 ? 1536 : undefined,
        clock: replayClock(),
      });
      try {
        await use(lab);
      } finally {
        await lab.down();
      }
    },
    { scope: 'worker', timeout: 300_000 },
  ],
  /** The worker's lab plus sibling labs in its VM, for the exact suite (src/suites/schedulers/pool.ts). */
  replayPool: [
    async ({ replayLab }, use) => {
      const pool = new ScenarioPool(replayLab, { slots: replaySlots(), name: replayLab.name });
      try {
        await use(pool);
      } finally {
        await pool.close();
      }
    },
    { scope: 'worker', timeout: 120_000 },
  ],
});

export { expect } from '@playwright/test';
