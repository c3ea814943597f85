// The benches' distribution scenario: wrr with weights 4, 3, 2, 1 over four real servers, `count`
// distinct generated clients, each connection closed before the next.
import type { Scenario } from '../src/models/scenario';

export function wrrScenario(name: string, count: number, seed: number, clients: string): Scenario {
  return {
    name,
    scheduler: 'wrr',
    service: { proto: 'tcp', vip: '198.19.0.100', port: 80 },
    servers: [4, 3, 2, 1].map((weight, i) => ({ name: `rs${i + 1}`, addr: `198.18.1.${11 + i}`, port: 80, weight })),
    flows: [{ generate: { count, seed, clients } }],
    hold: false,
    // the closed connections would otherwise pile up in FIN_WAIT for 120 s; they do not matter to wrr
    timeouts: { tcpfin: 30 },
  };
}
