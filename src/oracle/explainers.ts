// What packet accounting (accounting.ts) takes as explained for a test's flows, whatever the test checks:
// every packet each endpoint sent, on its own first link (any number: the endpoints' stacks decide what they
// send), each of them carried onto every later hop (once: a second copy there is a duplicate), and for
// tunnelled flows the path-MTU errors an oversize packet legitimately causes.
import type { DecodedPacket } from '../packet/layers';
import type { ExpectedLayer } from '../packet/expect';
import type { LabModel } from '../topology/model';
import type { Explainer } from './accounting';
import { originPackets, seededChecks } from './expect';
import { planFlow } from './flow-checks';
import { proxyLegs } from './methods';
import { linkName, nodeOf, routedPath } from './route';
import type { Flow, FlowPlan } from './types';

export function flowExplainers(lab: LabModel, flows: Flow[], packets: DecodedPacket[], opts: { guePort?: number } = {}): Explainer[] {
  const out: Explainer[] = [];
  const seen = new Set<string>();
  for (const flow of flows) {
    const key = `${flow.service} ${flow.client} ${flow.clientAddr} ${flow.clientPort} ${flow.realServer} ${flow.director ?? ''}${flow.leg ? ` ${flow.leg.addr} ${flow.leg.port}` : ''}`;
    if (seen.has(key)) continue;
    seen.add(key);
    const k = seen.size - 1;
    const whole = planFlow(lab, flow);
    // A proxy's two connections are explained each from its own originators (the director originates two of the four directions).
    const legs = whole.method === 'proxy' ? Object.entries(proxyLegs(whole)).map(([n, p]) => [p, `${n}.`] as const) : [[whole, ''] as const];
    for (const [plan, leg] of legs) for (const dir of ['c2s', 's2c'] as const) {
      const first = plan[dir].find((h) => h.wire === 0 && h.end === 'tx');
      if (first) {
        out.push({
          once: false,
          expectation: {
            id: `x${k}.${leg}${dir}.sent@${first.link}`, link: first.link, description: `what ${first.link.split(':')[0]} sends in flow ${k}${leg ? ` (${leg.slice(0, -1)} leg)` : ''}`,
            layers: [{ type: 'eth' }, { type: first.ip.family === 4 ? 'ipv4' : 'ipv6', src: first.ip.src, dst: first.ip.dst }, { type: first.l4.proto === 'udp' ? 'udp' : 'tcp', sport: first.l4.sport, dport: first.l4.dport }],
          },
        });
      }
      for (const c of seededChecks(plan, dir, originPackets(plan, dir, packets), { idPrefix: `x${k}.${leg}`, guePort: opts.guePort })) {
        out.push({ expectation: c.expectation, once: true, ...(c.origin !== undefined ? { origin: c.origin } : {}) });
      }
      out.push(...endpointErrorExplainers(plan, dir, `x${k}.${leg}`));
    }
    out.push(...pathMtuExplainers(lab, whole, `x${k}.`));
  }
  return out;
}

/**
 * A connection the client gave up on (no answer in time, under load) whose real server neither its answer nor
 * the director's table names: the capture shows where the director sent it — the real server on whose link
 * the client's packets arrived as the method prescribes for that real server. Only when exactly one real
 * server of the service received them; those packets are then the flow's, not unexplained.
 */
export function flowFromWire(lab: LabModel, partial: Omit<Flow, 'realServer'>, packets: DecodedPacket[]): Flow | undefined {
  const service = lab.services.find((s) => s.name === partial.service);
  if (!service) return undefined;
  const found = new Set<string>();
  for (const rs of new Set(service.realServers.map((r) => r.node))) {
    const flow: Flow = { ...partial, realServer: rs };
    let plan: FlowPlan;
    try {
      plan = planFlow(lab, flow);
    } catch {
      continue;
    }
    const arrival = plan.c2s.filter((h) => h.stage === 'from-director' && h.end === 'rx').pop();
    if (!arrival) continue;
    const seen = packets.some((p) => {
      if (p.link !== arrival.link) return false;
      const ips = p.layers.filter((l) => (l.type === 'ipv4' || l.type === 'ipv6') && !l.quoted) as Array<{ src: string; dst: string }>;
      const ip = ips[ips.length - 1];
      const l4 = p.layers[p.layers.indexOf(ip as never) + 1];
      return !!ip && ip.src === arrival.ip.src && ip.dst === arrival.ip.dst && !!l4 && (l4.type === 'tcp' || l4.type === 'udp') && l4.sport === arrival.l4.sport && l4.dport === arrival.l4.dport;
    });
    if (seen) found.add(rs);
  }
  return found.size === 1 ? { ...partial, realServer: [...found][0] } : undefined;
}

/**
 * An endpoint's ICMP error about a packet of the flow it received (a UDP reply reaching a client that has
 * given up, a datagram to a closed port): the endpoint's stack sends it and the director translates it like
 * the flow, so on every hop of the endpoint's direction it is an error quoting the other direction as it
 * looks on that hop. Any number (icmpErrorChecks judges the content where a test asks for one).
 */
function endpointErrorExplainers(plan: FlowPlan, dir: 'c2s' | 's2c', prefix: string): Explainer[] {
  const l4 = plan.protocol === 'udp' ? 'udp' : 'tcp';
  return plan[dir].filter((h) => !h.outer).map((h) => {
    const ipk = h.ip.family === 4 ? 'ipv4' : 'ipv6';
    const error: ExpectedLayer = h.ip.family === 4 ? { type: 'icmp', icmpType: 3 } : { type: 'icmpv6', icmpType: 1 };
    return {
      once: false,
      expectation: {
        id: `${prefix}${dir}.icmp-error.w${h.wire}.${h.end}@${h.link}`, link: h.link, description: `an ICMP error ${dir === 'c2s' ? plan.flow.client : plan.flow.realServer} sends about a packet of the flow`,
        layers: [{ type: 'eth' }, { type: ipk, src: h.ip.src, dst: h.ip.dst }, error, { type: ipk, src: h.ip.dst, dst: h.ip.src }, { type: l4, sport: h.l4.dport, dport: h.l4.sport }],
      },
    };
  });
}

/**
 * A tunnelled flow whose client sends packets too big for the tunnel: the director answers each with
 * "fragmentation needed" / "packet too big" from the VIP, on every hop back to the client; a router beyond
 * the director answers each oversize tunnel packet with one to the director. How many is the stacks'
 * business (tooBigChecks and tunnelRelayChecks judge the content), so these explain any number.
 */
function pathMtuExplainers(lab: LabModel, plan: FlowPlan, prefix: string): Explainer[] {
  const egress = plan.c2s.find((h) => h.stage === 'from-director' && h.end === 'tx');
  if (!egress?.outer) return [];
  const fam = plan.family;
  const ipk = fam === 4 ? 'ipv4' : 'ipv6';
  const tooBig: ExpectedLayer = fam === 4 ? { type: 'icmp', icmpType: 3, code: 4 } : { type: 'icmpv6', icmpType: 2, code: 0 };
  const l4 = plan.protocol === 'udp' ? 'udp' : 'tcp';
  const quotedClient: ExpectedLayer[] = [{ type: ipk, src: plan.flow.clientAddr, dst: plan.vip }, { type: l4, sport: plan.flow.clientPort, dport: plan.vport }];
  const out: Explainer[] = [];
  const along = (from: string, dst: string) => [...new Set(routedPath(lab, from, dst).wires.flatMap((w) => [linkName(w.from), linkName(w.to)]))];
  for (const link of along(plan.director, plan.flow.clientAddr)) {
    out.push({ once: false, expectation: { id: `${prefix}pmtu.director@${link}`, link, layers: [{ type: 'eth' }, { type: ipk, src: plan.vip, dst: plan.flow.clientAddr }, tooBig, ...quotedClient], description: 'the director tells the client its packet does not fit the tunnel' } });
  }
  const o = egress.outer;
  const outerQuoted: ExpectedLayer[] = [{ type: o.family === 4 ? 'ipv4' : 'ipv6', src: o.src, dst: o.dst }];
  if (o.encap === 'gue') outerQuoted.push({ type: 'udp' }, { type: 'gue' });
  if (o.encap === 'gre') outerQuoted.push({ type: 'gre' });
  const outerTooBig: ExpectedLayer = o.family === 4 ? { type: 'icmp', icmpType: 3, code: 4 } : { type: 'icmpv6', icmpType: 2, code: 0 };
  // Routers between the director and the real server, each reporting back to the tunnel's source.
  const routers = [...new Set(plan.c2s.filter((h) => h.stage === 'from-director' && h.end === 'rx').map((h) => h.link.split(':')[0]))].filter((n) => nodeOf(lab, n).role === 'router');
  for (const r of routers) {
    for (const link of along(r, o.src)) {
      out.push({ once: false, expectation: { id: `${prefix}pmtu.${r}@${link}`, link, layers: [{ type: 'eth' }, { type: o.family === 4 ? 'ipv4' : 'ipv6', dst: o.src }, outerTooBig, ...outerQuoted, ...quotedClient], description: `${r} tells the director a tunnel packet does not fit its next link` } });
    }
  }
  return out;
}
