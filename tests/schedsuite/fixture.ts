// One replay lab (a VM with kernel IPVS, 6 real-server nodes) per test worker for the replayer's own
// tests. VMs are named vslabss-... unless VSLAB_VM_NAME_PREFIX says otherwise.
import { test as base } from '@playwright/test';
import * as fs from 'fs';
import * as path from 'path';
import type { Scenario } from '../../src/models/scenario';
import { ReplayLab } from '../../src/suites/schedulers/lab';

process.env.VSLAB_VM_NAME_PREFIX ||= 'vslabss-';

export const SCENARIOS = path.join(__dirname, '..', '..', 'suites', 'schedulers', 'scenarios');
export const loadScenario = (name: string): Scenario => JSON.parse(fs.readFileSync(path.join(SCENARIOS, `${name}.json`), 'utf8')) as Scenario;
/** Generous: TCG on a 2-core host shared with other work. */
export const VM_TEST_TIMEOUT = 300_000;

export const test = base.extend<object, { replayLab: ReplayLab }>({
  replayLab: [
    async ({}, use, workerInfo) => {
      const lab = await ReplayLab.up({ servers: 6, kernel: process.env.VSLAB_KERNEL || undefined, name: `ss-t${process.pid}-w${workerInfo.workerIndex}` });
      try {
        await use(lab);
      } finally {
        await lab.down();
      }
    },
    { scope: 'worker', timeout: VM_TEST_TIMEOUT },
  ],
});

export { expect } from '@playwright/test';
