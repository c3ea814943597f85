// Playwright fixture: a fresh client/server namespace pair per test, removed afterwards (also on failure).
import { test as base } from '@playwright/test';
import { Pair, assertToolsBuilt, makePair } from './netns-node';

export const test = base.extend<{ pair: Pair }>({
  // eslint-disable-next-line no-empty-pattern
  pair: async ({}, use, info) => {
    assertToolsBuilt();
    const p = makePair(`t${info.workerIndex}`);
    try {
      await use(p);
    } finally {
      p.down();
    }
  },
});
export { expect } from '@playwright/test';
