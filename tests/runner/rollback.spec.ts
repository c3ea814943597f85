// A lab whose preparation fails is rolled back completely, and the failure is told once: the next lab
// built in the same place starts clean, nothing of the failed one remains, and later tests that needed
// the failed lab say they did not run (naming the first cause) instead of failing again with a
// consequence of it ("Cannot create namespace file … File exists" 58 times on a fresh machine).
import { expect, test } from '@playwright/test';
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { VmGuest, labNamespacesInGuest, realisePlanInGuest } from '../../src/backend/vm';
import { LabPool, LabUnavailableError } from '../../src/runner/labs';
import { bootRunVms, destroyRunVms, type RunVm } from '../../src/runner/vms';
import { loadTopologyFile } from '../../src/topology/load';

const REPO = path.join(__dirname, '..', '..');
const NAT = path.join(REPO, 'suites/forwarding/topologies/nat.yaml');
const DR = path.join(REPO, 'suites/forwarding/topologies/dr.yaml');
const LAB = loadTopologyFile(NAT).name;
const FAILING = 'no-such-fault-on-purpose';

test.describe.configure({ mode: 'serial' });

function hostNamespaces(lab: string): string[] {
  return execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' }).split('\n').map((l) => l.split(' ')[0]).filter((n) => n.startsWith(`vslab-${lab}`));
}

test('netns: a lab whose preparation fails is taken down, the same lab then comes up clean, later users are told once', async () => {
  const rec = fs.mkdtempSync(path.join(os.tmpdir(), 'vslab-rollback-'));
  const before = hostNamespaces(LAB);
  const failing = new LabPool({ backend: 'netns', director: 'none', fault: FAILING, recordDir: rec });
  try {
    const first = await failing.get({ topology: NAT }).then(() => undefined, (e: Error) => e);
    expect(first?.message).toContain(FAILING);
    expect(first).not.toBeInstanceOf(LabUnavailableError);
    expect(hostNamespaces(LAB)).toEqual(before);
    // The same worker, and another worker of the run (a new pool, the same run directory), do not try again.
    for (const pool of [failing, new LabPool({ backend: 'netns', director: 'none', fault: FAILING, recordDir: rec })]) {
      const later = await pool.get({ topology: NAT }).then(() => undefined, (e: Error) => e);
      expect(later).toBeInstanceOf(LabUnavailableError);
      expect(later!.message).toContain(FAILING);
      expect(later!.message).toContain('did not run');
    }
  } finally {
    await failing.close();
  }
  const ok = new LabPool({ backend: 'netns', director: 'none' });
  try {
    const p = await ok.get({ topology: NAT });
    expect(p.responders.size).toBeGreaterThan(0);
  } finally {
    await ok.close();
  }
  expect(hostNamespaces(LAB)).toEqual(before);
  fs.rmSync(rec, { recursive: true, force: true });
});

test.describe('in the run\'s shared VM', () => {
  test.skip(process.env.VSLAB_SKIP_VM === '1', 'VSLAB_SKIP_VM=1: VM tests skipped on request');
  test.setTimeout(300_000);
  let dir = '';
  let vms: RunVm[] = [];
  test.beforeAll(async () => {
    test.setTimeout(300_000);
    process.env.VSLAB_VM_NAME_PREFIX ||= `vslabrb${process.pid}-`;
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vslab-rollback-vm-'));
    vms = await bootRunVms({ count: 1, dir, memoryMiB: 1024 });
  });
  test.afterAll(async () => {
    await destroyRunVms(vms);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('a failed preparation leaves nothing of its lab in the VM, and the next lab there passes', async () => {
    const failing = new LabPool({ backend: 'vm', director: 'ipvs', fault: FAILING, sharedVm: vms[0], recordDir: path.join(dir, 'a') });
    const first = await failing.get({ topology: NAT }).then(() => undefined, (e: Error) => e);
    await failing.close();
    expect(first?.message).toContain(FAILING);
    const guest = await VmGuest.attach(vms[0].runDir);
    try {
      // The director had been programmed and the offloads turned off before the fault failed: all gone.
      expect(await labNamespacesInGuest(guest, LAB)).toEqual([]);
    } finally {
      guest.detach();
    }
    // A worker of the same run that needs the lab is told it could not be prepared, with the cause.
    const sameRun = new LabPool({ backend: 'vm', director: 'ipvs', sharedVm: vms[0], recordDir: path.join(dir, 'a') });
    const later = await sameRun.get({ topology: NAT }).then(() => undefined, (e: Error) => e);
    await sameRun.close();
    expect(later).toBeInstanceOf(LabUnavailableError);
    expect(later!.message).toContain(FAILING);
    // The next lab built in the same VM (the same topology, so the same namespace names) comes up and is prepared.
    const next = new LabPool({ backend: 'vm', director: 'ipvs', sharedVm: vms[0], recordDir: path.join(dir, 'b') });
    try {
      const p = await next.get({ topology: NAT });
      expect(p.directors.size).toBe(1);
      expect(p.responders.size).toBeGreaterThan(0);
    } finally {
      await next.close();
    }
  });

  test('a lab a stopped worker left half-built in the VM is rebuilt, not refused with "File exists"', async () => {
    const model = loadTopologyFile(DR);
    const guest = await VmGuest.attach(vms[0].runDir);
    try {
      // What a worker killed by a test timeout leaves: the namespaces, and no note that the lab was prepared.
      await realisePlanInGuest(guest, model, model.name);
      expect((await labNamespacesInGuest(guest, model.name)).length).toBeGreaterThan(0);
    } finally {
      guest.detach();
    }
    const pool = new LabPool({ backend: 'vm', director: 'ipvs', sharedVm: vms[0], recordDir: path.join(dir, 'c') });
    try {
      const p = await pool.get({ topology: DR });
      expect(p.directors.size).toBe(1);
      expect(p.responders.size).toBeGreaterThan(0);
    } finally {
      await pool.close();
    }
  });
});
