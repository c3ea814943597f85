// Checks of the HA statements (spec/ha.yaml) on a test's capture, and the figures every HA test records.
// Packet checks are ordinary oracle checks (recorded in expectations.json, re-decided by `vslab replay`);
// timestamps are the lab machine's wall clock, like the captures'.
import type { OracleCheck } from '../oracle/expect';
import type { DecodedPacket, TcpLayer } from '../packet/layers';
import type { LabModel, NodeModel, ServiceModel } from '../topology/model';
import type { StreamFlowReport, StreamReportEvent } from './stream';

export interface HaFigures {
  /** Kill of the master to the new master's first announcement of the VIP on the client segment (ms). */
  failoverMs: number | null;
  flowsKept: number;
  flowsTotal: number;
  maxGapMs: number;
  /** Client data segments sent more than once (retransmissions seen on the client's link). */
  packetsLost: number;
}

/** "seconds.nanoseconds" of a wall-clock time in ms, the form expectations take. */
export function tsOf(ms: number): string {
  return `${Math.floor(ms / 1000)}.${String(Math.round(ms) % 1000).padStart(3, '0')}000000`;
}

function msOf(ts: string | undefined): number {
  if (!ts) return NaN;
  const [s, ns] = ts.split('.');
  return Number(s) * 1000 + Number((ns ?? '0').padEnd(9, '0').slice(0, 3));
}

function nodeOf(model: LabModel, name: string): NodeModel {
  const n = model.nodes.find((x) => x.name === name);
  if (!n) throw new Error(`lab ${model.name} has no node ${name}`);
  return n;
}

/** The link ("node:iface") of a node on the ha segment. */
export function haLink(model: LabModel, node: string): string {
  const seg = model.ha!.segment;
  const i = nodeOf(model, node).interfaces.find((x) => x.segment === seg);
  if (!i) throw new Error(`node ${node} is not on the ha segment ${seg}`);
  return `${node}:${i.name}`;
}

function macOn(model: LabModel, node: string): string {
  const seg = model.ha!.segment;
  return nodeOf(model, node).interfaces.find((x) => x.segment === seg)!.mac;
}

const S = (id: string) => ({ missing: id, fields: {}, other: id });

function garpPackets(model: LabModel, packets: DecodedPacket[], link: string, from: string, vip: string): DecodedPacket[] {
  const mac = macOn(model, from);
  return packets.filter((p) => p.link === link && p.layers.some((l) => l.type === 'arp' && l.psrc === vip && l.pdst === vip && l.hwsrc === mac));
}

/** HA-001: the new master announces the VIP on every client's link within the deadline after the kill. */
export function takeoverChecks(model: LabModel, client: string, newMaster: string, killAt: number, deadlineMs: number): OracleCheck[] {
  return model.ha!.vips.filter((v) => !v.includes(':')).map((cidr, k) => {
    const vip = cidr.split('/')[0];
    return {
      expectation: {
        id: `garp${k}.${newMaster}@${haLink(model, client)}`,
        description: `gratuitous ARP for ${vip} from ${newMaster} (${macOn(model, newMaster)}) on the client's link within ${deadlineMs} ms of the master's failure`,
        link: haLink(model, client),
        layers: [{ type: 'eth', src: macOn(model, newMaster) }, { type: 'arp', hwsrc: macOn(model, newMaster), psrc: vip, pdst: vip }],
        after: tsOf(killAt), before: tsOf(killAt + deadlineMs),
      },
      roles: ['eth', 'arp'],
      statements: S('HA-001'),
    };
  });
}

function rsOfServer(service: ServiceModel, server: string | null) {
  return service.realServers.find((r) => r.node === server);
}

/**
 * HA-002 / HA-006 and the like: after `after`, each flow's client data still reaches its own real server
 * (forwarded by `via`), no other real server, and no RST appears on the client's link for it.
 */
export function flowKeptChecks(model: LabModel, service: ServiceModel, client: string, via: string, flows: Array<{ k: number; sport: number; server: string | null }>, after: number, statement: string, tag: string): OracleCheck[] {
  const out: OracleCheck[] = [];
  const clink = haLink(model, client);
  for (const f of flows) {
    const rs = rsOfServer(service, f.server);
    if (!rs) continue; // a flow that never got its identity: counted as not kept by the figures
    out.push({
      expectation: {
        id: `${tag}.f${f.k}.kept@${haLink(model, rs.node)}`,
        description: `flow ${f.k} (client port ${f.sport}): data from the client still reaches ${rs.node}, forwarded by ${via}`,
        link: haLink(model, rs.node),
        layers: [{ type: 'eth', src: macOn(model, via) }, { type: 'ipv4', dst: service.vip }, { type: 'tcp', sport: f.sport, dport: service.port, flags: 'PA' }],
        after: tsOf(after),
      },
      roles: ['eth', 'ip', 'l4'],
      statements: S(statement),
    });
    for (const other of service.realServers.filter((r) => r.node !== rs.node)) {
      out.push({
        expectation: {
          id: `${tag}.f${f.k}.not@${haLink(model, other.node)}`,
          description: `flow ${f.k} (client port ${f.sport}) must not move to ${other.node}`,
          link: haLink(model, other.node),
          layers: [{ type: 'eth' }, { type: 'ipv4', dst: service.vip }, { type: 'tcp', sport: f.sport, dport: service.port }],
          mode: 'absent', after: tsOf(after),
        },
        roles: ['eth', 'ip', 'l4'],
        statements: S(statement),
      });
    }
    for (const flags of ['R', 'RA']) {
      out.push({
        expectation: {
          id: `${tag}.f${f.k}.no-${flags}@${clink}`,
          description: `no reset of flow ${f.k} (client port ${f.sport}) on the client's link`,
          link: clink,
          layers: [{ type: 'eth' }, { type: 'ipv4' }, { type: 'tcp', dport: f.sport, sport: service.port, flags }],
          mode: 'absent', after: tsOf(after),
        },
        roles: ['eth', 'ip', 'l4'],
        statements: S(statement),
      });
    }
  }
  return out;
}

/** New connections (each answered by `server`): the SYN reaches that server forwarded by `via`, and only allowed servers get any. */
export function newConnectionChecks(model: LabModel, service: ServiceModel, via: string, conns: Array<{ clientPort: number; realServer: string }>, allowed: string[], after: number, statement: string, tag: string): OracleCheck[] {
  const out: OracleCheck[] = [];
  for (const c of conns) {
    const rs = service.realServers.find((r) => r.node === c.realServer);
    if (rs) {
      out.push({
        expectation: {
          id: `${tag}.p${c.clientPort}.syn@${haLink(model, rs.node)}`,
          description: `new connection from client port ${c.clientPort}: its SYN forwarded by ${via} to ${rs.node}, which answered it`,
          link: haLink(model, rs.node),
          layers: [{ type: 'eth', src: macOn(model, via) }, { type: 'ipv4', dst: service.vip }, { type: 'tcp', sport: c.clientPort, dport: service.port, flags: 'S' }],
          after: tsOf(after),
        },
        roles: ['eth', 'ip', 'l4'],
        statements: S(statement),
      });
    }
    for (const other of service.realServers.filter((r) => !allowed.includes(r.node))) {
      out.push({
        expectation: {
          id: `${tag}.p${c.clientPort}.not@${haLink(model, other.node)}`,
          description: `new connection from client port ${c.clientPort} must not be sent to ${other.node}`,
          link: haLink(model, other.node),
          layers: [{ type: 'eth' }, { type: 'ipv4', dst: service.vip }, { type: 'tcp', sport: c.clientPort, dport: service.port, flags: 'S' }],
          mode: 'absent', after: tsOf(after),
        },
        roles: ['eth', 'ip', 'l4'],
        statements: S(statement),
      });
    }
  }
  return out;
}

/** Client data segments seen more than once on the client's link (same port, sequence number and length). */
export function retransmissions(model: LabModel, packets: DecodedPacket[], client: string, sports: number[]): number {
  const clink = haLink(model, client);
  const ports = new Set(sports);
  const seen = new Set<string>();
  let n = 0;
  for (const p of packets) {
    if (p.link !== clink) continue;
    const t = p.layers.find((l) => l.type === 'tcp') as TcpLayer | undefined;
    const pl = p.layers.find((l) => l.type === 'payload') as { len?: number } | undefined;
    if (!t || !ports.has(t.sport) || !pl?.len) continue;
    const key = `${t.sport} ${t.seq} ${pl.len}`;
    if (seen.has(key)) n++;
    else seen.add(key);
  }
  return n;
}

export function flowKept(f: StreamFlowReport): boolean {
  return f.intact && f.server !== null;
}

export function figuresOf(model: LabModel, packets: DecodedPacket[], client: string, report: StreamReportEvent, takeover?: { newMaster: string; killAt: number }): HaFigures {
  let failoverMs: number | null = null;
  if (takeover) {
    const vip = model.ha!.vips[0].split('/')[0];
    const g = garpPackets(model, packets, haLink(model, client), takeover.newMaster, vip).map((p) => msOf(p.ts)).filter((t) => t >= takeover.killAt);
    if (g.length) failoverMs = Math.min(...g) - takeover.killAt;
  }
  return {
    failoverMs,
    flowsKept: report.flows.filter(flowKept).length,
    flowsTotal: report.flows.length,
    maxGapMs: Math.max(0, ...report.flows.map((f) => f.maxGapMs)),
    packetsLost: retransmissions(model, packets, client, report.flows.map((f) => f.sport)),
  };
}
