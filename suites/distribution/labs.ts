// The labs of the distribution suite (suites/distribution/topologies): the same services over NAT and
// through a proxy, so each implementation runs the file whose forwarding it has (the other lab is not built,
// its tests not applicable with the driver's reason).
import * as path from 'path';
import type { SuiteLabSpec } from '../../src/runner/labs';

export const LABS = {
  nat: { topology: path.join(__dirname, 'topologies', 'nat.yaml') },
  proxy: { topology: path.join(__dirname, 'topologies', 'proxy.yaml') },
} satisfies Record<string, SuiteLabSpec>;
