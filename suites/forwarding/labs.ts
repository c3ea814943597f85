// The labs of the forwarding suite: one topology per method (suites/forwarding/topologies).
import * as path from 'path';
import type { SuiteLabSpec } from '../../src/runner/labs';

const topo = (name: string) => path.join(__dirname, 'topologies', `${name}.yaml`);

export const LABS = {
  nat: { topology: topo('nat'), unserved: ['closed4', 'closed6'] },
  dr: { topology: topo('dr') },
  tun: { topology: topo('tun') },
  fullnat: { topology: topo('fullnat'), unserved: ['closed4', 'closed6'] },
} satisfies Record<string, SuiteLabSpec>;
