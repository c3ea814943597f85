// Check sets for whole flows, built from the oracle's plan: what a suite asks for with expectFlow().
import type { DecodedPacket } from '../packet/layers';
import type { LabModel } from '../topology/model';
import { absentChecks, KINDS, originPackets, seededChecks, skeletonCheck, type OracleCheck, type PacketKind } from './expect';
import { oracleFor } from './methods';
import type { Explainer } from './accounting';
import type { Flow, FlowPlan, PlanOptions } from './types';

export function planFlow(lab: LabModel, flow: Flow, opts?: PlanOptions): FlowPlan {
  const svc = lab.services.find((s) => s.name === flow.service);
  if (!svc) throw new Error(`lab ${lab.name} has no service ${flow.service}`);
  const rs = svc.realServers.find((r) => r.node === flow.realServer);
  if (!rs) throw new Error(`service ${svc.name} has no real server on ${flow.realServer}`);
  return oracleFor(rs.method).plan(lab, flow, opts);
}

export interface ExchangeOptions {
  /** Prefix for check ids (several flows in one test). */
  idPrefix?: string;
  /** Decoder GUE port the seeded expectations are decoded with. */
  guePort?: number;
  /** Skip the seeded checks (only the plan's skeleton and absent rules). */
  skeletonOnly?: boolean;
}

/**
 * A whole exchange on every hop, both directions: for TCP the SYN, SYN-ACK and the first data segment each
 * way (skeleton); for UDP the request and the reply; every packet either side really sent, carried onto
 * every later hop (seeded); and the links each direction must avoid.
 */
export function exchangeChecks(lab: LabModel, flow: Flow, packets: DecodedPacket[], opts: ExchangeOptions = {}): OracleCheck[] {
  const plan = planFlow(lab, flow);
  const prefix = opts.idPrefix ?? '';
  const kinds: Array<['c2s' | 's2c', PacketKind]> = plan.protocol === 'tcp'
    ? [['c2s', KINDS.syn], ['s2c', KINDS.synAck], ['c2s', KINDS.data], ['s2c', KINDS.data]]
    : [['c2s', KINDS.udp], ['s2c', KINDS.udp]];
  const out: OracleCheck[] = [];
  for (const [dir, kind] of kinds) for (const hop of plan[dir]) out.push(skeletonCheck(plan, hop, kind, prefix));
  if (!opts.skeletonOnly) {
    for (const dir of ['c2s', 's2c'] as const) out.push(...seededChecks(plan, dir, originPackets(plan, dir, packets), { idPrefix: prefix, guePort: opts.guePort }));
  }
  out.push(...absentChecks(plan, prefix));
  return out;
}

/**
 * What packet accounting needs to explain a test's flows: every packet each endpoint sent, on its own first
 * link (any number — the endpoints' stacks decide what they send), and each of them carried onto every
 * later hop, once (a second copy there is a duplicate). Built for every flow a test ran, whatever it checks.
 */
export function flowExplainers(lab: LabModel, flows: Flow[], packets: DecodedPacket[], opts: { guePort?: number } = {}): Explainer[] {
  const out: Explainer[] = [];
  const seen = new Set<string>();
  flows.forEach((flow) => {
    const key = `${flow.service} ${flow.client} ${flow.clientAddr} ${flow.clientPort} ${flow.realServer}`;
    if (seen.has(key)) return;
    seen.add(key);
    const k = seen.size - 1;
    const plan = planFlow(lab, flow);
    for (const dir of ['c2s', 's2c'] as const) {
      const first = plan[dir].find((h) => h.wire === 0 && h.end === 'tx');
      if (first) {
        const ipType = first.ip.family === 4 ? 'ipv4' : 'ipv6';
        out.push({
          once: false,
          expectation: {
            id: `x${k}.${dir}.sent@${first.link}`, link: first.link, description: `what ${dir === 'c2s' ? flow.client : flow.realServer} sends in flow ${k}`,
            layers: [{ type: 'eth' }, { type: ipType, src: first.ip.src, dst: first.ip.dst }, { type: first.l4.proto === 'udp' ? 'udp' : 'tcp', sport: first.l4.sport, dport: first.l4.dport }],
          },
        });
      }
      for (const c of seededChecks(plan, dir, originPackets(plan, dir, packets), { idPrefix: `x${k}.`, guePort: opts.guePort })) {
        out.push({ expectation: c.expectation, once: true, ...(c.origin !== undefined ? { origin: c.origin } : {}) });
      }
    }
  });
  return out;
}
