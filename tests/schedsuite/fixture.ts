// One replay lab (a VM with kernel IPVS, 6 real-server nodes) per spec file for the replayer's own
// tests, booted before the file's first test and stopped after its last, so no VM outlives the file
// when the whole test suite runs in one worker. VMs are named vslabss-... unless
// VSLAB_VM_NAME_PREFIX says otherwise.
import { expect, test } from '@playwright/test';
import * as fs from 'fs';
import * as path from 'path';
import type { Scenario } from '../../src/models/scenario';
import { ReplayLab } from '../../src/suites/schedulers/lab';
import { pidAlive } from '../../src/util/process';


export const SCENARIOS = path.join(__dirname, '..', '..', 'suites', 'schedulers', 'scenarios');
export const loadScenario = (name: string): Scenario => JSON.parse(fs.readFileSync(path.join(SCENARIOS, `${name}.json`), 'utf8')) as Scenario;
/** Generous: TCG on a 2-core host shared with other work. */
export const VM_TEST_TIMEOUT = 300_000;

let counter = 0;


/** Registers beforeAll/afterAll hooks in the calling spec file; the returned function gives the lab. */
export function useReplayLab(): () => ReplayLab {
  let lab: ReplayLab | undefined;
  // The VM prefix is set only while this file's lab exists: the whole test suite shares one worker
  // process, and a prefix left in its environment would rename every later file's VMs.
  let savedPrefix: string | undefined;
  test.beforeAll(async () => {
    test.setTimeout(VM_TEST_TIMEOUT);
    savedPrefix = process.env.VSLAB_VM_NAME_PREFIX;
    process.env.VSLAB_VM_NAME_PREFIX ||= 'vslabss-';
    lab = await ReplayLab.up({ servers: 6, kernel: process.env.VSLAB_KERNEL || undefined, name: `ss-t${process.pid}-${++counter}` });
  });
  test.afterAll(async () => {
    test.setTimeout(VM_TEST_TIMEOUT);
    const pid = lab?.lab.guest.qemuPid;
    await lab?.down();
    lab = undefined;
    if (savedPrefix === undefined) delete process.env.VSLAB_VM_NAME_PREFIX;
    else process.env.VSLAB_VM_NAME_PREFIX = savedPrefix;
    // the VM is gone with the lab
    if (pid) expect(pidAlive(pid)).toBe(false);
  });
  return () => {
    if (!lab) throw new Error('the replay lab is not up (did beforeAll fail?)');
    return lab;
  };
}

export { test, expect } from '@playwright/test';
