// The labs of the proxy suite (suites/proxy/topologies).
import * as path from 'path';
import type { SuiteLabSpec } from '../../src/runner/labs';

export const LABS = {
  proxy: { topology: path.join(__dirname, 'topologies', 'proxy.yaml'), unserved: ['closed4', 'closed6'] },
  transparent: { topology: path.join(__dirname, 'topologies', 'transparent.yaml') },
} satisfies Record<string, SuiteLabSpec>;
