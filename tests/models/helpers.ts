// Small builders for model tests: a service with servers added in a given order, and flows.
import { parseAddress } from '../../src/models/address';
import { SeededRandom } from '../../src/models/prng';
import { type FlowSpec, ServiceModel, type ServiceOptions } from '../../src/models/service';
import type { SchedulerName } from '../../src/models/scheduler';

export const VIP = parseAddress('198.19.0.100');

export function service(scheduler: SchedulerName | ServiceOptions['scheduler'], servers: [string, number][], extra: Partial<ServiceOptions> = {}): ServiceModel {
  const svc = new ServiceModel({ scheduler, family: 4, proto: 'tcp', vip: VIP, port: 80, ...extra });
  servers.forEach(([name, weight], i) => svc.addDest({ name, addr: parseAddress(`198.18.1.${11 + i}`), port: 80, weight }));
  return svc;
}

export function flow(client: string, cport: number, extra: Partial<FlowSpec> = {}): FlowSpec {
  return { client: parseAddress(client), cport, dst: VIP, dport: 80, proto: 'tcp', hold: true, ...extra };
}

/** Opens n flows from one client on consecutive ports and returns the chosen names. */
export function pick(svc: ServiceModel, n: number, extra: Partial<FlowSpec> = {}, firstPort = 40000): (string | null)[] {
  const out: (string | null)[] = [];
  for (let i = 0; i < n; i++) out.push(svc.openFlow(flow('198.18.0.2', firstPort + i, extra)).dest?.name ?? null);
  return out;
}

/** n distinct random clients in 198.18.64.0/18 with random ports. */
export function randomClients(seed: number, n: number): FlowSpec[] {
  const rng = new SeededRandom(seed);
  const seen = new Set<string>();
  const out: FlowSpec[] = [];
  while (out.length < n) {
    const a = `198.18.${64 + rng.below(64)}.${rng.below(256)}`;
    const p = 1024 + rng.below(64512);
    if (seen.has(`${a}:${p}`)) continue;
    seen.add(`${a}:${p}`);
    out.push(flow(a, p, { hold: false }));
  }
  return out;
}
