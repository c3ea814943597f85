// A guest booted with clock 'warp' (qemu -icount sleep=off plus a holder that keeps its vCPU busy): its clock
// follows real time while the host talks to it, and jumps through a wait only when asked (advanceClock), with
// the timers on the way firing in order. A guest with the default clock takes a wait in real time.
import { test, expect } from '@playwright/test';
import type { VmGuest } from '../../src/backend/vm/guest';
import { bootTestGuest } from './vm-helpers';

test.describe.configure({ timeout: 300_000 });

const uptime = async (g: VmGuest) => Number((await g.exec(null, ['cat', '/proc/uptime'])).stdout.split(' ')[0]);

test('a warp guest keeps real time between requests and jumps a 120 s wait in seconds, its timers firing in order', async () => {
  const g = await bootTestGuest({ clock: 'warp' });
  try {
    expect(g.clock).toBe('warp');
    // While the host is idle the guest is not: its clock moves about as real time does (not minutes ahead).
    const a = await uptime(g);
    await new Promise((r) => setTimeout(r, 2000));
    const b = await uptime(g);
    expect(b - a).toBeGreaterThan(0.5);
    expect(b - a).toBeLessThan(10);

    // A timer due inside the wait fires inside it: a background `sleep 60` started before the jump has ended
    // when the jump is over, and one of 200 s has not.
    const bg = await g.exec(null, ['sh', '-c', '(sleep 60; echo done60 > /tmp/t60) >/dev/null 2>&1 & (sleep 200; echo done200 > /tmp/t200) >/dev/null 2>&1 & echo started']);
    expect(bg.stdout.trim()).toBe('started');
    const t0 = Date.now();
    const moved = await g.advanceClock(120);
    const realMs = Date.now() - t0;
    expect(moved).toBeGreaterThanOrEqual(120);
    expect(moved).toBeLessThan(125);
    expect(realMs).toBeLessThan(30_000);
    const files = await g.exec(null, ['sh', '-c', 'cat /tmp/t60 2>/dev/null; cat /tmp/t200 2>/dev/null; true']);
    expect(files.stdout.trim()).toBe('done60');

    // And after the jump the holder is back: real time again.
    const c = await uptime(g);
    await new Promise((r) => setTimeout(r, 2000));
    const d = await uptime(g);
    expect(d - c).toBeLessThan(10);
    await expect(g.advanceClock(-1)).rejects.toThrow(/not a wait/);
  } finally {
    await g.shutdown();
  }
});

test('a guest with the default clock takes a wait in real time', async () => {
  const g = await bootTestGuest();
  try {
    expect(g.clock).toBe('real');
    const t0 = Date.now();
    const moved = await g.advanceClock(1.5);
    expect(moved).toBeGreaterThanOrEqual(1.5);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(1400);
  } finally {
    await g.shutdown();
  }
});
