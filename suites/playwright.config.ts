// Playwright Test configuration for the conformance suites, driven by `vslab test` (src/runner/run.ts),
// which passes the run's options in VSLAB_TEST_* variables (src/runner/env.ts) and reads the JSON report.
// It also works on its own: `npx playwright test -c suites/playwright.config.ts suites/forwarding`.
import { defineConfig } from '@playwright/test';
import * as path from 'path';

const out = path.resolve(process.env.VSLAB_TEST_OUT || path.join(__dirname, 'test-results', 'run'));

export default defineConfig({
  testDir: __dirname,
  testMatch: '**/*.spec.ts',
  // Tests of one file share its lab (worker-scoped): run them in order, one VM per worker.
  fullyParallel: false,
  workers: Number(process.env.VSLAB_TEST_WORKERS || process.env.VSLAB_SUITE_WORKERS || 1),
  retries: 0,
  // Generous: a TCG guest on a busy 2-core host is slow; the first test of a file also brings its lab up.
  timeout: 240_000,
  reporter: [
    ['list'],
    ['json', { outputFile: path.join(out, 'playwright-report.json') }],
    ['junit', { outputFile: path.join(out, 'junit.xml') }],
  ],
  outputDir: path.join(out, '.artifacts'),
  preserveOutput: 'failures-only',
});
