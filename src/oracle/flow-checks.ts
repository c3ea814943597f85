// Check sets for whole flows, built from the oracle's plan: what a suite asks for with expectFlow().
import type { DecodedPacket } from '../packet/layers';
import type { LabModel } from '../topology/model';
import { absentChecks, KINDS, originPackets, seededChecks, skeletonCheck, type OracleCheck, type PacketKind } from './expect';
import type { HopHeaders } from './types';
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
  for (const [dir, kind] of kinds) for (const hop of plan[dir]) out.push(skeletonCheck(plan, hop, plan.method === 'proxy' ? proxyKind(hop, kind, packets) : kind, prefix));
  if (!opts.skeletonOnly) {
    // A proxy's two connections each carry their own packets; nothing is carried from one to the other.
    const legs: Array<[FlowPlan, string]> = plan.method === 'proxy' ? Object.entries(proxyLegs(plan)).map(([k, p]) => [p, `${prefix}${k}.`]) : [[plan, prefix]];
    for (const [p, pre] of legs) for (const dir of ['c2s', 's2c'] as const) out.push(...seededChecks(p, dir, originPackets(p, dir, packets), { idPrefix: pre, guePort: opts.guePort }));
  }
  out.push(...absentChecks(plan, prefix));
  return out;
}


/**
 * A proxy writes the data it relays with its own segmentation and flags: the last bytes may go out with its
 * FIN (FPA). The data skeleton of a proxy hop takes the flags of the first segment with payload seen there
 * (any with ACK set); the bytes themselves are judged by streamChecks (src/oracle/proxy.ts).
 */
function proxyKind(hop: HopHeaders, kind: PacketKind, packets: DecodedPacket[]): PacketKind {
  if (kind !== KINDS.data) return kind;
  for (const p of packets) {
    if (p.link !== hop.link) continue;
    const ip = p.layers.find((l) => (l.type === 'ipv4' || l.type === 'ipv6') && !l.quoted) as { src: string; dst: string } | undefined;
    const t = p.layers.find((l) => l.type === 'tcp' && !l.quoted);
    if (!ip || !t || t.type !== 'tcp' || ip.src !== hop.ip.src || ip.dst !== hop.ip.dst || t.sport !== hop.l4.sport || t.dport !== hop.l4.dport) continue;
    if (!p.layers.some((l) => l.type === 'payload' && l.len > 0)) continue;
    return t.flags.includes('A') && !t.flags.includes('S') && !t.flags.includes('R') ? { ...kind, flags: t.flags } : kind;
  }
  return kind;
}
