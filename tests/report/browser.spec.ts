// The HTML report in a real browser (Debian's chromium, installed by scripts/setup.sh; nothing downloads a
// browser): reports of real runs kept in tests/fixtures/report-runs (a passing run, a run against a faulty
// director, a scheduler run) are written by `vslab report` and opened from disk; the test asserts what a
// person sees and keeps a screenshot of each view. The page must log no console error.
import { test, expect, type Page, type TestInfo } from '@playwright/test';
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';

const REPO = path.join(__dirname, '..', '..');
const RUNS = path.join(REPO, 'tests', 'fixtures', 'report-runs');
const CHROMIUM = '/usr/bin/chromium';

test.use({
  browserName: 'chromium',
  viewport: { width: 1400, height: 1000 },
  launchOptions: {
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  },
});

test.beforeAll(() => {
  if (!fs.existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: bash scripts/setup.sh installs Debian's chromium`);
});

/** Writes the report of a fixture run into the test's output directory and opens it; returns the open time. */
async function openReport(page: Page, info: TestInfo, run: string): Promise<{ errors: string[]; loadMs: number; file: string }> {
  const file = info.outputPath(`${run}.html`);
  const r = spawnSync(process.execPath, [path.join(REPO, 'bin', 'vslab.js'), 'report', path.join(RUNS, run), '--out', file], { encoding: 'utf8', timeout: 120_000 });
  expect(r.status, r.stderr).toBe(0);
  const errors: string[] = [];
  page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
  page.on('pageerror', (e) => errors.push(String(e)));
  // Anything the page asks the network for is an error: the report is self-contained.
  await page.route(/^(?!file:)/, (route) => { errors.push(`network request: ${route.request().url()}`); return route.abort(); });
  const t0 = Date.now();
  await page.goto(`file://${file}`, { waitUntil: 'load' });
  const loadMs = Date.now() - t0;
  info.annotations.push({ type: 'open time', description: `${run}: ${loadMs} ms, ${(fs.statSync(file).size / 1024).toFixed(0)} KiB` });
  return { errors, loadMs, file };
}

async function shot(page: Page, info: TestInfo, name: string): Promise<void> {
  await info.attach(name, { body: await page.screenshot(), contentType: 'image/png' });
}

test('a passing run: summary, statement matrix and its status filter, journeys with rewritten fields, topology path', async ({ page }, info) => {
  const { errors, loadMs } = await openReport(page, info, 'pass');
  expect(loadMs).toBeLessThan(2000);
  const summary = page.getByTestId('summary');
  await expect(summary).toContainText('Linux IPVS');
  await expect(summary).toContainText('4 passed');
  await expect(summary).toContainText('1 known failures');
  await shot(page, info, 'summary-and-matrix');

  const row = (id: string) => page.locator(`[data-testid=matrix] tr[data-statement="${id}"]`);
  await expect(row('FWD-NAT-001').locator('td[data-cell]')).toHaveText(/passed/);
  await expect(row('FWD-NAT-005').locator('td[data-cell]')).toHaveText(/known-failure/);
  await expect(row('FWD-TUN-001').locator('td[data-cell]')).toHaveText(/not-checked/);
  // Only the statements that did not pass.
  await page.locator('#filter input[data-status=passed]').uncheck();
  await page.locator('#filter input[data-status=not-checked]').uncheck();
  await expect(row('FWD-NAT-001')).toBeHidden();
  await expect(row('FWD-TUN-001')).toBeHidden();
  await expect(row('FWD-NAT-005')).toBeVisible();
  await shot(page, info, 'matrix-filtered-to-known-failures');
  await page.locator('#filter input[data-status=passed]').check();

  // The NAT journey: the director's rewrite of the destination is highlighted on its hop.
  const t = page.locator('details.test', { hasText: 'forwarding.nat.tcp4-handshake-and-data-on-every-hop-port-mapped' });
  await t.locator('summary').click();
  const journey = t.locator('svg.journey').first();
  await expect(journey).toBeVisible();
  await expect(journey.locator('text.lane')).toHaveText(['client1', 'director', /^rs\d$/]);
  // The director's hop towards the real server: VIP and port rewritten, TTL decremented, highlighted.
  await expect(journey.locator('tspan.chg', { hasText: /^ip\.dst 198\.19\.0\.100 -> 198\.18\.1\.\d+$/ }).first()).toBeVisible();
  await expect(journey.locator('tspan.chg', { hasText: 'dport 80 -> 8080' }).first()).toBeVisible();
  await expect(journey.locator('tspan.chg', { hasText: 'ttl 64 -> 63' }).first()).toBeVisible();
  await expect(journey.locator('text.hopt').first()).toContainText('#');
  await t.scrollIntoViewIfNeeded();
  await shot(page, info, 'journey-nat-tcp4');

  // Its path on the topology: the links it crossed light up.
  await t.getByRole('button', { name: 'show path on the topology' }).click();
  const topo = page.locator('svg.topo[data-lab=r0-fwnat]');
  await expect(topo.locator('g.node')).toHaveCount(5);
  for (const n of ['client1', 'director', 'rs1', 'rs2', 'rs3']) await expect(topo.locator(`g.node[data-node=${n}]`)).toBeVisible();
  await expect(topo.locator('.edge.on[data-link="client1:eth0"]')).toHaveCount(1);
  await expect(topo.locator('.edge.on[data-link="director:eth1"]')).toHaveCount(1);
  await expect(topo.locator('g.node.on')).not.toHaveCount(0);
  await shot(page, info, 'topology-with-path');
  expect(errors).toEqual([]);
});

test('a run against a faulty director: failed statements, the failing test\'s field diff and its frame numbers', async ({ page }, info) => {
  const { errors } = await openReport(page, info, 'fault');
  await expect(page.getByTestId('summary')).toContainText('nat-reply-rs-source');
  const cell = page.locator('[data-testid=matrix] tr[data-statement="FWD-NAT-003"] td[data-cell]');
  await expect(cell).toHaveText(/failed/);
  await shot(page, info, 'fault-matrix');
  await cell.locator('a').first().click();
  const t = page.locator('details.test[open]');
  await expect(t).toHaveCount(1);
  await expect(t.locator('summary')).toContainText('failed');
  const check = t.getByTestId('failed-check').first();
  await expect(check).toBeVisible();
  await expect(check.getByTestId('frame')).toHaveText(/^frame \d+$/);
  await expect(check.locator('a[download]')).toHaveAttribute('href', /capture\.pcapng$/);
  const bad = check.locator('tr[data-diff=mismatch], tr[data-diff=missing]');
  await expect(bad.first()).toBeVisible();
  // The replies never came back translated, so the client never sent its data: the closest packet it did
  // send is its SYN (what the oracle's diff says, field by field).
  const data = t.getByTestId('failed-check').filter({ hasText: 'c2s.data.w0.tx@client1:eth0' });
  await expect(data.locator('tr[data-diff=mismatch]')).toHaveCount(1);
  await expect(data.locator('tr[data-diff=mismatch] td')).toHaveText(['tcp', 'flags', 'PA', 'S']);
  await check.scrollIntoViewIfNeeded();
  await shot(page, info, 'fault-diff');
  expect(errors).toEqual([]);
});

test('a scheduler run: the distribution per real server against the model, and the choice sequence', async ({ page }, info) => {
  const { errors } = await openReport(page, info, 'sched');
  const tests = page.locator('details.test');
  await expect(tests).toHaveCount(3);
  const t = tests.filter({ hasText: 'rr-basic' });
  await t.locator('summary').click();
  const d = t.getByTestId('distribution');
  await expect(d).toBeVisible();
  await expect(d.locator('text.srv', { hasText: /^rs1$/ }).first()).toBeVisible();
  await expect(d.locator('rect.exp')).not.toHaveCount(0);
  await expect(d.locator('rect.obs.off')).toHaveCount(0);
  await expect(t).toContainText('the kernel chose what the model chose for every flow');
  await d.scrollIntoViewIfNeeded();
  await shot(page, info, 'scheduler-distribution');
  expect(errors).toEqual([]);
});
