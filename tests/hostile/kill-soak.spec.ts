// A short kill soak (the full one is bench/kill-soak.js): `vslab up`/`vslab down`/`vslab test` SIGKILLed at random
// points on every backend the CLI offers, then `vslab gc`; nothing of this soak's labs may remain —
// no namespace, link, guard route, nft table, qemu, container, image or file under /run/vslab.
// Only labs named h11t-* are counted: other labs on the machine are not this test's business.
import { test, expect } from '@playwright/test';
import { KINDS, leftovers, print, soak } from '../../bench/kill-soak.js';

test.describe.configure({ timeout: 15 * 60_000 });

test('labs killed at random points in up and down leave nothing behind once gc has run', async () => {
  process.env.VSLAB_VM_NAME_PREFIX ??= 'h11-';
  const runs = { netns: 6, vm: 3, docker: 3 } as Record<string, number>;
  const report = { backends: [] as Array<{ backend: string; leaks: Record<string, number> }>, unavailable: [] as string[] };
  for (const backend of ['netns', 'vm', 'docker']) {
    const r = await soak({ runs: runs[backend] ?? 2, rounds: 0, backends: [backend], prefix: 'h11t' });
    console.log(print(r));
    report.backends.push(...r.backends);
    report.unavailable.push(...r.unavailable);
  }
  const c = await soak({ runs: 0, rounds: 2, backends: [], prefix: 'h11t' });
  console.log(print(c));
  expect(report.backends.map((b) => b.backend)).toContain('netns');
  for (const b of report.backends) expect(b.leaks, b.backend).toEqual(Object.fromEntries(KINDS.map((k: string) => [k, 0])));
  expect(c.concurrent, 'the concurrent rounds ran').toBeDefined();
  expect(c.concurrent!.failures).toBe(0);
  expect(c.concurrent!.leaks).toEqual(Object.fromEntries(KINDS.map((k: string) => [k, 0])));
  const left = leftovers('h11t', false);
  expect(Object.values(left).flat()).toEqual([]);
});
