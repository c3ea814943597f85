// The director's own view (connection table, counters) turned into packet checks on the wire, so that
// "the director agrees with the wire" is decided from the capture and `vslab replay` re-decides it:
//  - every connection the director lists must show up on the wire towards the real server it names, and
//    the first packet of each flow (SYN / first datagram) is on the director's ingress exactly as many
//    times as the table holds entries for it;
//  - a counter delta over a test with one flow is the number of packets of that flow on the wire.
import type { DirectorConnection, DirectorCounters, DirectorServiceStats } from '../director/types';
import type { ExpectedLayer } from '../packet/expect';
import type { LabModel, ServiceModel } from '../topology/model';
import type { ClientConnEvent } from '../traffic';
import type { OracleCheck } from './expect';
import { planFlow } from './flow-checks';
import { linksOf } from './methods/common';
import type { Flow, FlowPlan } from './types';

function ipType(family: 4 | 6): 'ipv4' | 'ipv6' {
  return family === 4 ? 'ipv4' : 'ipv6';
}

function l4Type(plan: FlowPlan): 'tcp' | 'udp' {
  return plan.protocol === 'udp' ? 'udp' : 'tcp';
}

function countCheck(id: string, link: string, layers: ExpectedLayer[], n: number, statement: string, description: string): OracleCheck {
  return {
    expectation: n === 0
      ? { id, link, layers, mode: 'absent', description }
      : { id, link, layers, count: { min: n, max: n }, description },
    roles: layers.map((l, k) => (k === 0 ? 'eth' : l.type === 'ipv4' || l.type === 'ipv6' ? 'ip' : 'l4')),
    statements: { missing: statement, fields: {}, other: statement },
    // Director state is verified against the wire; the packets themselves are the flows' business.
    explains: 'none',
  };
}

/** The client's packets of a flow as they reach the director ([eth, ip, l4] with the given extra L4 fields). */
function c2sAtDirector(plan: FlowPlan, l4extra: Record<string, unknown> = {}): ExpectedLayer[] {
  const f = plan.flow;
  // Frames addressed to the director: on a LAN it also sends frames of the flow on (direct routing).
  const arrival = plan.c2s.filter((h) => h.stage === 'to-director' && h.end === 'rx').pop();
  return [
    { type: 'eth', ...(arrival ? { dst: arrival.eth.dst } : {}) },
    { type: ipType(plan.family), src: f.clientAddr, dst: plan.vip },
    { type: l4Type(plan), sport: f.clientPort, dport: plan.vport, ...l4extra },
  ];
}

function s2cFromDirector(plan: FlowPlan): ExpectedLayer[] {
  const f = plan.flow;
  const arrival = plan.c2s.filter((h) => h.stage === 'to-director' && h.end === 'rx').pop();
  return [
    { type: 'eth', ...(arrival ? { src: arrival.eth.dst } : {}) },
    { type: ipType(plan.family), src: plan.vip, dst: f.clientAddr },
    { type: l4Type(plan), sport: plan.vport, dport: f.clientPort },
  ];
}

/** A connection the client made that no real server answered and no table names: fails unless the answer is on the wire after all. */
export function unansweredCheck(lab: LabModel, service: ServiceModel, client: string, c: ClientConnEvent): OracleCheck {
  const link = linksOf(lab, client)[0];
  const proto = service.protocol === 'udp' ? 'udp' : 'tcp';
  const layers: ExpectedLayer[] = [
    { type: 'eth' },
    { type: ipType(service.family), src: service.vip, dst: c.src ?? undefined },
    // The answer is a SYN-ACK: a reset from VIP:vport (a closed port behind the director) is no answer.
    { type: proto, sport: service.port, dport: c.sport ?? undefined, ...(proto === 'tcp' ? { flags: 'SA' } : {}) },
  ];
  return {
    expectation: { id: `unanswered.${c.src}.${c.sport}@${link}`, link, layers, description: `connection ${c.i} from ${c.src}:${c.sport} ended ${c.outcome}${c.code ? ` (${c.code})` : ''} without an answer from any real server` },
    roles: ['eth', 'ip', 'l4'],
    statements: { missing: 'FWD-COM-001', fields: {}, other: 'FWD-COM-001' },
  };
}

function firstPacket(plan: FlowPlan): Record<string, unknown> {
  return plan.protocol === 'tcp' ? { flags: 'S' } : {};
}

/**
 * Connection table against the wire for `flows` (the test's own connections): entries are matched by client
 * address and port. Each flow's first packet reaches the director as often as the table lists it (once),
 * and each entry's real server really receives that flow.
 */
export function connectionTableChecks(lab: LabModel, flows: Flow[], table: DirectorConnection[], idPrefix = ''): OracleCheck[] {
  const out: OracleCheck[] = [];
  flows.forEach((flow, k) => {
    const plan = planFlow(lab, flow);
    const entries = table.filter((e) => !e.template && e.client.addr === flow.clientAddr && e.client.port === flow.clientPort && e.virtual.addr === plan.vip && e.virtual.port === plan.vport);
    out.push(countCheck(`${idPrefix}table.f${k}.entries@${plan.directorIngress}`, plan.directorIngress, c2sAtDirector(plan, firstPacket(plan)), entries.length, 'FWD-COM-007',
      `the director lists ${entries.length} connection(s) for ${flow.clientAddr}:${flow.clientPort} -> ${plan.vip}:${plan.vport}; the wire must show that many opening packets`));
    const svc = lab.services.find((s) => s.name === flow.service)!;
    entries.forEach((e, j) => {
      const rs = svc.realServers.find((r) => r.addr === e.realServer.addr && r.port === e.realServer.port) ?? svc.realServers.find((r) => r.addr === e.realServer.addr);
      if (!rs) {
        out.push(countCheck(`${idPrefix}table.f${k}.e${j}.unknown-rs@${plan.directorIngress}`, plan.directorIngress, c2sAtDirector(plan, firstPacket(plan)), 0, 'FWD-COM-007',
          `the director sends ${flow.clientAddr}:${flow.clientPort} to ${e.realServer.addr}:${e.realServer.port}, which is no real server of ${svc.name}`));
        return;
      }
      // Only which real server gets the flow is judged here (headers are the exchange checks' business).
      const named = planFlow(lab, { ...flow, realServer: rs.node });
      const hop = named.c2s.filter((h) => h.stage === 'from-director' && h.end === 'rx').pop()!;
      const layers: ExpectedLayer[] = [{ type: 'eth' }];
      if (hop.outer) {
        layers.push({ type: ipType(hop.outer.family), dst: hop.outer.dst });
        if (hop.outer.encap === 'gue') layers.push({ type: 'udp' }, { type: 'gue' });
        if (hop.outer.encap === 'gre') layers.push({ type: 'gre' });
      }
      layers.push({ type: ipType(hop.ip.family), src: hop.ip.src, dst: hop.ip.dst }, { type: l4Type(named), sport: hop.l4.sport, dport: hop.l4.dport, ...firstPacket(named) });
      out.push({
        expectation: {
          id: `${idPrefix}table.f${k}.e${j}@${hop.link}`, link: hop.link, layers,
          description: `the director's table sends ${flow.clientAddr}:${flow.clientPort} to ${rs.node} (${e.realServer.addr}:${e.realServer.port}); that real server must receive it`,
        },
        roles: layers.map(() => 'other'),
        statements: { missing: 'FWD-COM-007', fields: {}, other: 'FWD-COM-007' },
        explains: 'none',
      });
    });
  });
  return out;
}

export function counterDelta(before: DirectorCounters | undefined, after: DirectorCounters | undefined): DirectorCounters {
  const z = { conns: 0, inPkts: 0, outPkts: 0, inBytes: 0, outBytes: 0, cps: 0, inPps: 0, outPps: 0, inBps: 0, outBps: 0 };
  const b = before ?? z;
  const a = after ?? z;
  return {
    conns: a.conns - b.conns, inPkts: a.inPkts - b.inPkts, outPkts: a.outPkts - b.outPkts, inBytes: a.inBytes - b.inBytes, outBytes: a.outBytes - b.outBytes,
    cps: a.cps, inPps: a.inPps, outPps: a.outPps, inBps: a.inBps, outBps: a.outBps,
  };
}

export interface StatsDeltas {
  service: DirectorCounters;
  /** By real-server "addr port". */
  realServers: Map<string, DirectorCounters>;
}

export function statsDeltas(service: string, before: DirectorServiceStats[], after: DirectorServiceStats[]): StatsDeltas {
  const b = before.find((s) => s.service === service);
  const a = after.find((s) => s.service === service);
  if (!a) throw new Error(`the director reports no counters for service ${service}`);
  const realServers = new Map<string, DirectorCounters>();
  for (const r of a.realServers) {
    const rb = b?.realServers.find((x) => x.addr === r.addr && x.port === r.port);
    realServers.set(`${r.addr} ${r.port}`, counterDelta(rb?.counters, r.counters));
  }
  return { service: counterDelta(b?.counters, a.counters), realServers };
}

/**
 * Counters over a test with exactly one flow: connections = opening packets at the director, incoming
 * packets = the flow's client packets at the director, outgoing packets = its replies leaving the director
 * (none for DR/TUN), per service and per real server (the flow's real server counts it all, the others
 * nothing of it).
 */
export function statsChecks(lab: LabModel, flow: Flow, d: StatsDeltas, idPrefix = ''): OracleCheck[] {
  const plan = planFlow(lab, flow);
  const svc = lab.services.find((s) => s.name === flow.service)!;
  const at = plan.directorIngress;
  const out: OracleCheck[] = [];
  const add = (what: string, layers: ExpectedLayer[], link: string, n: number, desc: string) => out.push(countCheck(`${idPrefix}stats.${what}@${link}`, link, layers, n, 'FWD-COM-008', desc));
  add('service.conns', c2sAtDirector(plan, firstPacket(plan)), at, d.service.conns, `service ${svc.name} counted ${d.service.conns} new connection(s)`);
  add('service.inpkts', c2sAtDirector(plan), at, d.service.inPkts, `service ${svc.name} counted ${d.service.inPkts} incoming packet(s)`);
  add('service.outpkts', s2cFromDirector(plan), at, d.service.outPkts, `service ${svc.name} counted ${d.service.outPkts} outgoing packet(s)`);
  for (const r of svc.realServers) {
    const delta = d.realServers.get(`${r.addr} ${r.port}`);
    if (!delta) continue;
    if (r.node === flow.realServer) {
      add(`${r.node}.inpkts`, c2sAtDirector(plan), at, delta.inPkts, `real server ${r.node} counted ${delta.inPkts} incoming packet(s)`);
      add(`${r.node}.outpkts`, s2cFromDirector(plan), at, delta.outPkts, `real server ${r.node} counted ${delta.outPkts} outgoing packet(s)`);
    } else {
      // Whatever another real server counted must be this flow's packets reaching it.
      const other = planFlow(lab, { ...flow, realServer: r.node });
      const hop = other.c2s.filter((h) => h.stage === 'from-director' && h.end === 'rx').pop()!;
      const layers: ExpectedLayer[] = [{ type: 'eth' }];
      if (hop.outer) {
        layers.push({ type: ipType(hop.outer.family) });
        if (hop.outer.encap === 'gue') layers.push({ type: 'udp' }, { type: 'gue' });
        if (hop.outer.encap === 'gre') layers.push({ type: 'gre' });
      }
      layers.push({ type: ipType(hop.ip.family), src: hop.ip.src, dst: hop.ip.dst }, { type: l4Type(plan), sport: hop.l4.sport, dport: hop.l4.dport });
      const c = countCheck(`${idPrefix}stats.${r.node}.inpkts@${hop.link}`, hop.link, layers, delta.inPkts, 'FWD-COM-008', `real server ${r.node} counted ${delta.inPkts} incoming packet(s) of a flow served by ${flow.realServer}`);
      c.roles = layers.map((l, k) => (k === 0 ? 'eth' : 'other'));
      out.push(c);
    }
  }
  return out;
}
