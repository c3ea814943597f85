// Who a VM belongs to: an ephemeral guest dies with its owner process however that process ends;
// a persistent one (vslab up) survives it, another process attaches to it, and destroying it leaves nothing.
import { test, expect } from '@playwright/test';
import { spawn } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { destroyVmByRunDir, VmGuest } from '../../src/backend/vm/guest';
import { findVmLeftovers } from '../../src/backend/vm/leftovers';
import { vmBackend } from '../../src/backend/vm/index';
import { ourQemus, pidAlive, TEST_PREFIX, VM_TEST_TIMEOUT } from './vm-helpers';

test.describe.configure({ timeout: VM_TEST_TIMEOUT });

const root = path.resolve(__dirname, '..', '..');

/** Boot a guest in a child node process (from dist/), which then exits, hangs, or ends as `how` says. */
function ownerProcess(name: string, persistent: boolean, then: 'exit' | 'wait') {
  const guestJs = path.join(root, 'dist', 'backend', 'vm', 'guest.js');
  if (!fs.existsSync(guestJs)) throw new Error(`${guestJs} is missing: run node scripts/build.js first`);
  const script = `
    const { VmGuest } = require(${JSON.stringify(guestJs)});
    VmGuest.boot({ namePrefix: ${JSON.stringify(TEST_PREFIX)}, name: ${JSON.stringify(name)}, persistent: ${persistent}, bootTimeoutMs: 150000 })
      .then((g) => {
        console.log(JSON.stringify({ qemuPid: g.qemuPid, runDir: g.runDir }));
        if (${JSON.stringify(then)} === 'exit') process.exit(0);
        setInterval(() => {}, 1000);
      }, (e) => { console.error(e.message); process.exit(3); });`;
  const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  child.stderr.on('data', (b: Buffer) => (err += b.toString()));
  const booted = new Promise<{ qemuPid: number; runDir: string }>((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (b: Buffer) => {
      out += b.toString();
      const line = out.split('\n').find((l) => l.startsWith('{'));
      if (line) resolve(JSON.parse(line));
    });
    child.on('exit', (code) => { if (!out.includes('{')) reject(new Error(`owner exited ${code}: ${err}`)); });
  });
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  return { child, booted, exited };
}

test('an ephemeral guest dies when its owner exits without shutting it down', async () => {
  const o = ownerProcess(`own-exit-${process.pid}`, false, 'exit');
  const { qemuPid, runDir } = await o.booted;
  await o.exited;
  await expect.poll(() => pidAlive(qemuPid), { timeout: 20_000 }).toBe(false);
  expect(fs.existsSync(runDir)).toBe(false);
});

test('an ephemeral guest dies when its owner is killed outright (SIGKILL)', async () => {
  const o = ownerProcess(`own-kill-${process.pid}`, false, 'wait');
  const { qemuPid, runDir } = await o.booted;
  expect(pidAlive(qemuPid)).toBe(true);
  o.child.kill('SIGKILL');
  await o.exited;
  await expect.poll(() => pidAlive(qemuPid), { timeout: 20_000 }).toBe(false);
  // Its run directory is left behind; the gc helpers find it, and so does the backend's gc under this test
  // prefix (VSLAB_VM_NAME_PREFIX: a killed test or bench of another prefix must not leave it for good).
  const left = findVmLeftovers(TEST_PREFIX).filter((l) => l.runDir === runDir);
  expect(left).toEqual([{ runDir, name: path.basename(runDir), reason: `qemu (pid ${qemuPid}) is gone` }]);
  const before = process.env.VSLAB_VM_NAME_PREFIX;
  process.env.VSLAB_VM_NAME_PREFIX = TEST_PREFIX;
  try {
    const items = (await vmBackend.leftovers!(new Set())).filter((i) => i.id === runDir);
    expect(items.map((i) => [i.kind, i.reason])).toEqual([['vm-rundir', `qemu (pid ${qemuPid}) is gone`]]);
    await vmBackend.removeLeftover!(items[0]);
  } finally {
    if (before === undefined) delete process.env.VSLAB_VM_NAME_PREFIX;
    else process.env.VSLAB_VM_NAME_PREFIX = before;
  }
  expect(fs.existsSync(runDir)).toBe(false);
});

test('a persistent guest outlives its owner, another process attaches to it, and destroying it leaves nothing', async () => {
  const o = ownerProcess(`own-keep-${process.pid}`, true, 'exit');
  const { qemuPid, runDir } = await o.booted;
  try {
    await o.exited;
    expect(pidAlive(qemuPid)).toBe(true);
    const g = await VmGuest.attach(runDir);
    expect((await g.exec(null, ['cat', '/proc/sys/kernel/hostname'])).code).toBe(0);
    g.detach();
    expect(pidAlive(qemuPid)).toBe(true);
  } finally {
    await destroyVmByRunDir(runDir);
  }
  expect(pidAlive(qemuPid)).toBe(false);
  expect(fs.existsSync(runDir)).toBe(false);
  await expect(VmGuest.attach(runDir)).rejects.toThrow(/no VM in/);
});

test('no qemu started by these tests is left running', () => {
  expect(ourQemus().filter((q) => q.name.includes(`-${process.pid}`))).toEqual([]);
});
