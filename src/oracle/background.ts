// Background classes: packets a lab legitimately carries besides the flows under test. Decided from the
// captures of a reference run on kernel IPVS (docs/conformance.md, "Every packet is explained"): the lab
// nodes' address resolution, nothing else. A director implementation that emits more (a health-check
// prober, keepalives between directors) declares its own classes in its capabilities
// (DirectorCapabilities.background); they are counted per class in every test, never silently ignored.
import type { ExpectedLayer } from '../packet/expect';
import type { BackgroundClass } from './accounting';

const nd = (icmpType: number): ExpectedLayer[] => [{ type: 'eth' }, { type: 'ipv6', proto: 58 }, { type: 'icmpv6', icmpType, code: 0 }];

export const BUILTIN_BACKGROUND: BackgroundClass[] = [
  {
    name: 'arp',
    why: 'IPv4 address resolution between lab nodes (requests and replies, before and while the flows run)',
    declaredBy: 'vslab',
    patterns: [[{ type: 'eth' }, { type: 'arp' }]],
  },
  {
    name: 'nd',
    why: 'IPv6 neighbour solicitations and advertisements between lab nodes (address resolution, reachability confirmation)',
    declaredBy: 'vslab',
    patterns: [nd(135), nd(136)],
  },
];

/** The classes a test is judged with: the built-in ones, then the director driver's own. */
export function backgroundClasses(declared: BackgroundClass[] = []): BackgroundClass[] {
  const names = new Set(BUILTIN_BACKGROUND.map((c) => c.name));
  for (const c of declared) {
    if (names.has(c.name)) throw new Error(`background class "${c.name}" declared by ${c.declaredBy} is already declared (by vslab)`);
    names.add(c.name);
  }
  return [...BUILTIN_BACKGROUND, ...declared];
}
