import { defineConfig } from '@playwright/test';

// The conformance suites users run (`npx playwright test -c suites/playwright.config.ts [suites/<area>]`,
// and `vslab test`). vslab's own tests have the config at the repository root.
//
// Suites share one lab per worker (worker-scoped fixtures): a VM per worker on hosts without IPVS, so
// workers default to 2 on a small machine. VSLAB_SUITE_WORKERS changes it; VSLAB_KERNEL picks the guest
// kernel ("bookworm" 6.1 by default, "backports" 6.12, or an image path).
export default defineConfig({
  testDir: '.',
  testMatch: '**/*.spec.ts',
  fullyParallel: true,
  workers: Number(process.env.VSLAB_TEST_WORKERS || process.env.VSLAB_SUITE_WORKERS || 2),
  timeout: 300_000,
  forbidOnly: !!process.env.CI,
  reporter: [
    ['list'],
    ['json', { outputFile: '../test-results/suites/results.json' }],
    ['junit', { outputFile: '../test-results/suites/junit.xml' }],
  ],
  outputDir: '../test-results/suites/artifacts',
});
