// Check sets for whole flows, built from the oracle's plan: what a suite asks for with expectFlow().
import type { DecodedPacket } from '../packet/layers';
import type { LabModel } from '../topology/model';
import { absentChecks, KINDS, originPackets, seededChecks, skeletonCheck, type OracleCheck, type PacketKind } from './expect';
import { oracleFor, proxyLegs } from './methods';
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
    // A proxy's two connections each carry their own packets; nothing is carried from one to the other.
    const legs: Array<[FlowPlan, string]> = plan.method === 'proxy' ? Object.entries(proxyLegs(plan)).map(([k, p]) => [p, `${prefix}${k}.`]) : [[plan, prefix]];
    for (const [p, pre] of legs) for (const dir of ['c2s', 's2c'] as const) out.push(...seededChecks(p, dir, originPackets(p, dir, packets), { idPrefix: pre, guePort: opts.guePort }));
  }
  out.push(...absentChecks(plan, prefix));
  return out;
}

