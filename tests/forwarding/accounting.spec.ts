// Packet accounting, pure: every packet of a capture is expected (once), background, a consequence of an
// earlier unexpected packet, or unexpected — then it fails the statement it breaks, reported with its link
// and frame number. Captures are built with the packets layer's builder on the NAT lab's plan; no lab runs.
import { test, expect } from '@playwright/test';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { accountPackets, EXTRA_STATEMENT, OFF_PATH_STATEMENT, type BackgroundClass } from '../../src/oracle/accounting';
import { readAccountingFile, replayAccounting, writeAccountingFile } from '../../src/runner/accounting-file';
import { backgroundClasses, BUILTIN_BACKGROUND } from '../../src/oracle/background';
import { originPackets, seededChecks } from '../../src/oracle/expect';
import { flowExplainers, flowFromWire } from '../../src/oracle/explainers';
import { planFlow } from '../../src/oracle/flow-checks';
import { TestRecord } from '../../src/runner/suite-api';
import type { Flow, FlowPlan, HopHeaders } from '../../src/oracle/types';
import { buildPacket, type LayerSpec } from '../../src/packet/build';
import type { ExpectedLayer } from '../../src/packet/expect';
import { decodeFrame } from '../../src/packet/decode';
import type { DecodedPacket } from '../../src/packet/layers';
import { loadTopologyFile } from '../../src/topology/load';
import type { LabModel } from '../../src/topology/model';

const nat: LabModel = loadTopologyFile(path.join(__dirname, '..', '..', 'suites', 'forwarding', 'topologies', 'nat.yaml'));
const links = nat.nodes.flatMap((n) => n.interfaces.map((i) => `${n.name}:${i.name}`));
const flow: Flow = { service: 'tcp4', client: 'client1', clientAddr: '198.18.0.1', clientPort: 20000, realServer: 'rs1' };
const plan: FlowPlan = planFlow(nat, flow);

interface Tcp { flags: string; seq: number; ack: number; data?: string; sack?: Array<[number, number]> }

/** A capture built frame by frame, in time order. */
class Wire {
  readonly packets: DecodedPacket[] = [];
  private t = 0;

  add(specs: LayerSpec[], link: string): DecodedPacket {
    const p = decodeFrame(buildPacket(specs), 1, { payload: true });
    const d = { ...p, index: this.packets.length, link, ts: `100.${String(++this.t * 1000).padStart(9, '0')}` };
    this.packets.push(d);
    return d;
  }

  /** One segment on each hop of a direction (the originator's link first), as the method prescribes. */
  segment(dir: 'c2s' | 's2c', t: Tcp, only?: (h: HopHeaders) => boolean): void {
    for (const hop of plan[dir]) if (!only || only(hop)) this.add(tcpOn(hop, t), hop.link);
  }
}

function tcpOn(hop: HopHeaders, t: Tcp): LayerSpec[] {
  const options = [{ kind: 1, name: 'nop' }, { kind: 1, name: 'nop' }, { kind: 8, name: 'timestamp', tsval: 7, tsecr: 9 }];
  if (t.sack) options.push({ kind: 1, name: 'nop' }, { kind: 1, name: 'nop' }, { kind: 5, name: 'sack', blocks: t.sack } as never);
  return [
    { type: 'eth', src: hop.eth.src, dst: hop.eth.dst },
    { type: 'ipv4', src: hop.ip.src, dst: hop.ip.dst, ttl: hop.ip.ttl, id: 1, df: true },
    { type: 'tcp', sport: hop.l4.sport, dport: hop.l4.dport, flags: t.flags, seq: t.seq, ack: t.ack, window: 501, options },
    ...(t.data ? [{ type: 'payload' as const, data: t.data }] : []),
  ];
}

const arp = (w: Wire, link: string) => w.add([{ type: 'eth', src: '02:00:00:00:00:01', dst: 'ff:ff:ff:ff:ff:ff' }, { type: 'arp', op: 1, psrc: '198.18.1.1', pdst: '198.18.1.11' }], link);

/** A clean exchange: request from the client, answer from the real server, both on every hop. */
function exchange(w: Wire): void {
  w.segment('c2s', { flags: 'PA', seq: 1000, ack: 5000, data: '474554' });
  w.segment('s2c', { flags: 'PA', seq: 5000, ack: 1003, data: '4f4b' });
}

function account(w: Wire, background: BackgroundClass[] = BUILTIN_BACKGROUND) {
  return accountPackets({ packets: w.packets, links, explainers: flowExplainers(nat, [flow], w.packets), background });
}

test('a clean exchange with address resolution: every packet expected or background, counted per class', () => {
  const w = new Wire();
  arp(w, 'director:eth1');
  exchange(w);
  const a = account(w);
  expect(a.ok).toBe(true);
  expect(a.counts).toEqual({ expected: w.packets.length - 1, consequence: 0, unexpected: 0, background: { arp: 1 } });
});

test('without its background class, an ARP frame is unexpected', () => {
  const w = new Wire();
  exchange(w);
  arp(w, 'director:eth1');
  const a = account(w, []);
  expect(a.ok).toBe(false);
  expect(a.causes.map((c) => [c.index, c.link, c.kind, c.statement])).toEqual([[w.packets.length - 1, 'director:eth1', 'unprescribed', EXTRA_STATEMENT]]);
});

// Two frames captured on a docker lab's first test, 40 ms before its SYN (2026-12-03): the segment bridge's
// IGMPv3 join of 224.0.0.106 (source 0.0.0.0, the bridge's own MAC) and rs1's MLDv2 report of its
// solicited-node groups after its addresses were added.
const IGMP_REPORT = '01005e000016a284cb7cb963080046c000280000400001020 3fa00000000e0000016940400002200f99300000001040000 00e000006a';
const MLD_REPORT = '333300000016025602000201 86dd6000000000380001fe80000000000000005602fffe000201ff020000000000000000000000000016'
  + '3a000502000001008f006995000000020400 0000ff0200000000000000000001ff0002010400 0000ff0200000000000000000001ff000002';
const frame = (w: Wire, hex: string, link: string) => {
  const p = decodeFrame(Buffer.from(hex.replace(/ /g, ''), 'hex'), 1, { payload: true });
  w.packets.push({ ...p, index: w.packets.length, link, ts: `99.${String(w.packets.length).padStart(9, '0')}` });
};

test('membership reports of the lab\'s stacks (IGMPv3, MLDv2, hop limit 1) are background; other traffic to their groups is not', () => {
  const w = new Wire();
  frame(w, IGMP_REPORT, 'director:eth0');
  frame(w, MLD_REPORT, 'rs1:eth0');
  exchange(w);
  const a = account(w);
  expect(a.ok).toBe(true);
  expect(a.counts.background).toEqual({ 'mcast-report': 2 });
  // A datagram to the reports' group is no report: unexpected.
  w.add([{ type: 'eth', src: '02:56:02:00:01:01', dst: '01:00:5e:00:00:16' }, { type: 'ipv4', src: '198.18.1.1', dst: '224.0.0.22', ttl: 1, id: 1 }, { type: 'udp', sport: 5000, dport: 5000 }], 'director:eth1');
  const b = account(w);
  expect(b.ok).toBe(false);
  expect(b.causes.map((c) => [c.index, c.link, c.statement])).toEqual([[w.packets.length - 1, 'director:eth1', EXTRA_STATEMENT]]);
});

test('explainers are compared with the packets they can match only: a masked address, port or sequence number still matches', () => {
  const w = new Wire();
  exchange(w);
  const first = w.packets[0];
  const ip = first.layers.find((l) => l.type === 'ipv4') as unknown as Record<string, unknown>;
  const tcp = first.layers.find((l) => l.type === 'tcp') as unknown as Record<string, unknown>;
  const pick = (l: Record<string, unknown>, keys: string[]) => Object.fromEntries(keys.map((k) => [k, l[k]]));
  const exp = (id: string, ipv4: Record<string, unknown>, t: Record<string, unknown>, ignore?: string[]) => ({
    once: true, expectation: { id, link: first.link!, layers: [{ type: 'eth' }, { type: 'ipv4', ...ipv4 }, { type: 'tcp', ...t }] as ExpectedLayer[], ...(ignore ? { ignore } : {}) } });
  const exact = pick(ip, ['src', 'dst']);
  const ports = pick(tcp, ['sport', 'dport', 'seq', 'ack']);
  for (const [name, e] of [
    ['source masked', exp('a', { ...exact, src: '198.18.9.9' }, ports, ['ipv4.src'])],
    ['first ipv4 layer masked', exp('b', { ...exact, dst: '198.18.9.9' }, ports, ['ipv4[0]'])],
    ['sequence number masked on every layer', exp('c', exact, { ...ports, seq: 1 }, ['*.seq'])],
    ['transport layer masked', exp('d', exact, { ...ports, sport: 1 }, ['tcp'])],
  ] as const) {
    const a = accountPackets({ packets: [first], links, explainers: [e], background: [] });
    expect(a.counts.expected, name).toBe(1);
  }
  // Unmasked, the same differences leave the packet unexplained.
  const a = accountPackets({ packets: [first], links, explainers: [exp('e', { ...exact, src: '198.18.9.9' }, ports)], background: [] });
  expect(a.counts.unexpected).toBe(1);
});

test('a segment the director sends twice to the real server: the copy at its egress is the cause; the other end, the D-SACK and its forwarding are consequences', () => {
  const w = new Wire();
  const toRs = (h: HopHeaders) => h.stage === 'from-director';
  w.segment('c2s', { flags: 'PA', seq: 1000, ack: 5000, data: '474554' });
  const before = w.packets.length;
  w.segment('c2s', { flags: 'PA', seq: 1000, ack: 5000, data: '474554' }, toRs); // the duplicate, both ends of the wire
  w.segment('s2c', { flags: 'PA', seq: 5000, ack: 1003, data: '4f4b' });
  // The real server's duplicate ACK reporting the duplicate (D-SACK), forwarded to the client like any reply.
  w.segment('s2c', { flags: 'A', seq: 5002, ack: 1003, sack: [[1000, 1003]] });
  const a = account(w);
  expect(a.ok).toBe(false);
  expect(a.causes).toHaveLength(1);
  const cause = a.causes[0];
  expect([cause.index, cause.link, cause.kind, cause.statement]).toEqual([before, plan.c2s.find((h) => toRs(h) && h.end === 'tx')!.link, 'duplicate', EXTRA_STATEMENT]);
  expect(cause.duplicateOf).toBeLessThan(before);
  const dsack = plan.s2c.length;
  expect(a.consequences).toHaveLength(1 + dsack);
  expect(a.consequences.every((c) => c.cause === cause.index)).toBe(true);
  expect(a.consequences[0].how).toMatch(/same frame/);
  expect(a.consequences[1].how).toMatch(/rs1's answer/);
  expect(a.consequences.slice(2).every((c) => /forwarded onto/.test(c.how!))).toBe(true);
});

test('a copy of the client\'s packet to a second real server fails at the director\'s egress; where nothing of the test goes, it is off the path', () => {
  const w = new Wire();
  exchange(w);
  const other = planFlow(nat, { ...flow, realServer: 'rs2' });
  for (const hop of other.c2s.filter((h) => h.stage === 'from-director')) w.add(tcpOn(hop, { flags: 'PA', seq: 1000, ack: 5000, data: '474554' }), hop.link);
  const a = account(w);
  expect(a.causes.map((c) => [c.link, c.kind, c.statement])).toEqual([['director:eth1', 'unprescribed', EXTRA_STATEMENT]]);
  expect(a.consequences.map((c) => c.link)).toEqual(['rs2:eth0']);
  // The same frame seen only where no flow of the test passes.
  const lone = new Wire();
  exchange(lone);
  const hop = other.c2s.find((h) => h.stage === 'from-director' && h.end === 'rx')!;
  lone.add(tcpOn(hop, { flags: 'PA', seq: 1000, ack: 5000, data: '474554' }), hop.link);
  expect(account(lone).causes.map((c) => [c.link, c.kind, c.statement])).toEqual([['rs2:eth0', 'off-path', OFF_PATH_STATEMENT]]);
});

test('a UDP request copied to a second real server: the copy at the director\'s egress is the one cause; the leaked reply and the client\'s port unreachable are consequences', () => {
  // As captured under copy-to-second-real-server on NAT udp4: rs2 answers the copy, the director has no
  // connection for it and routes it to the client unrewritten, the client's stack answers that with an ICMP
  // port unreachable, which the director routes back to rs2.
  const uflow: Flow = { service: 'udp4', client: 'client1', clientAddr: '198.18.0.1', clientPort: 20001, realServer: 'rs1' };
  const uplan = planFlow(nat, uflow);
  const other = planFlow(nat, { ...uflow, realServer: 'rs2' });
  const w = new Wire();
  const udp = (h: HopHeaders, data: string, over: Partial<{ src: string; sport: number }> = {}): LayerSpec[] => [
    { type: 'eth', src: h.eth.src, dst: h.eth.dst },
    { type: 'ipv4', src: over.src ?? h.ip.src, dst: h.ip.dst, ttl: h.ip.ttl, id: 7 },
    { type: 'udp', sport: over.sport ?? h.l4.sport, dport: h.l4.dport },
    { type: 'payload', data },
  ];
  for (const h of uplan.c2s) w.add(udp(h, '71'), h.link);
  const copy = w.packets.length;
  for (const h of other.c2s.filter((x) => x.stage === 'from-director')) w.add(udp(h, '71'), h.link);
  for (const h of uplan.s2c) w.add(udp(h, '6131'), h.link);
  // rs2's answer, not rewritten by the director (it has no connection for it).
  const rip2 = other.s2c[0].ip.src;
  const rport = other.s2c[0].l4.sport;
  const leaked = other.s2c.map((h) => ({ h, spec: udp(h, '6132', { src: rip2, sport: rport }) }));
  for (const { h, spec } of leaked) w.add(spec, h.link);
  // The client's port unreachable about it, routed back to rs2 (same addresses on every hop).
  const quote = leaked[leaked.length - 1].spec.slice(1).map((l) => ({ ...l, quoted: true as const }));
  for (const h of other.c2s) {
    w.add([{ type: 'eth', src: h.eth.src, dst: h.eth.dst }, { type: 'ipv4', src: uflow.clientAddr, dst: rip2, ttl: h.wire === 0 ? 64 : 63 }, { type: 'icmp', icmpType: 3, code: 3 }, ...quote] as LayerSpec[], h.link);
  }
  const a = accountPackets({ packets: w.packets, links, explainers: flowExplainers(nat, [uflow], w.packets), background: BUILTIN_BACKGROUND });
  expect(a.ok).toBe(false);
  expect(a.causes.map((c) => [c.index, c.link, c.kind, c.statement])).toEqual([[copy, 'director:eth1', 'unprescribed', EXTRA_STATEMENT]]);
  // The copy's other end, rs2's answer on its 4 link ends, and the ICMP on its 4.
  expect(a.consequences).toHaveLength(1 + 4 + 4);
  expect(a.consequences.every((c) => c.cause === copy)).toBe(true);
  const icmp = a.consequences.filter((c) => /icmp/.test(c.summary));
  expect(icmp.map((c) => c.link)).toEqual(other.c2s.map((h) => h.link));
  expect(icmp[0].how).toMatch(/client1's answer/);
  expect(icmp.slice(1).every((c) => /forwarded onto|same frame/.test(c.how!))).toBe(true);
});

test('a stray packet from the director to the client after the close: the client\'s reset is its consequence', () => {
  const w = new Wire();
  exchange(w);
  const toClient = plan.s2c.filter((h) => h.stage === 'from-director');
  const stray = w.packets.length;
  for (const hop of toClient) w.add(tcpOn(hop, { flags: 'FA', seq: 0x53545259, ack: 1003 }), hop.link);
  w.segment('c2s', { flags: 'R', seq: 1003, ack: 0 }, (h) => h.wire === 0 && h.end === 'tx');
  const a = account(w);
  expect(a.causes.map((c) => [c.index, c.link, c.statement])).toEqual([[stray, toClient.find((h) => h.end === 'tx')!.link, EXTRA_STATEMENT]]);
  expect(a.consequences.map((c) => c.how)).toEqual([expect.stringMatching(/same frame/), expect.stringMatching(/client1's answer/)]);
});

test('a connection the client gave up on, that nothing named a real server for, is placed by the wire: its packets are explained, not unexpected', () => {
  // Seen on a loaded machine (DR tcp6, three connections): the answer came after the client's 3 s timeout and
  // the director's table was not read in time, so the run had no flow for it and all its packets were "unexpected".
  const gaveUp = { service: 'tcp4', client: 'client1', clientAddr: '198.18.0.1', clientPort: 20002 };
  const p2 = planFlow(nat, { ...gaveUp, realServer: 'rs2' });
  const w = new Wire();
  for (const h of p2.c2s) w.add(tcpOn(h, { flags: 'S', seq: 1, ack: 0 }), h.link);
  for (const h of p2.s2c) w.add(tcpOn(h, { flags: 'SA', seq: 9, ack: 2 }), h.link);
  expect(accountPackets({ packets: w.packets, links, explainers: [], background: BUILTIN_BACKGROUND }).ok).toBe(false);
  const f = flowFromWire(nat, gaveUp, w.packets);
  expect(f).toEqual({ ...gaveUp, realServer: 'rs2' });
  const a = accountPackets({ packets: w.packets, links, explainers: flowExplainers(nat, [f!], w.packets), background: BUILTIN_BACKGROUND });
  expect([a.ok, a.counts.expected]).toEqual([true, w.packets.length]);
  // Nothing reached a real server (only the client's link): no flow is made up.
  const lone = new Wire();
  lone.add(tcpOn(p2.c2s[0], { flags: 'S', seq: 1, ack: 0 }), p2.c2s[0].link);
  expect(flowFromWire(nat, gaveUp, lone.packets)).toBeUndefined();
  expect(flowFromWire(nat, { ...gaveUp, service: 'nonexistent' }, w.packets)).toBeUndefined();
});

test('stray-after-close\'s copy of the answer (sent before it, outside the window): the copy is the cause, the client\'s duplicate ACK and its way to the real server are consequences', () => {
  // As captured on the NAT lab (nftables director in namespaces) under the fault: the copy leaves first.
  const w = new Wire();
  w.segment('c2s', { flags: 'PA', seq: 1000, ack: 5000, data: '474554' });
  const toClient = plan.s2c.filter((h) => h.stage === 'from-director');
  const stray = w.packets.length + plan.s2c.filter((h) => h.stage !== 'from-director').length;
  w.segment('s2c', { flags: 'PA', seq: 0x53545259, ack: 1003, data: '4f4b' }, () => false);
  for (const h of plan.s2c.filter((x) => x.stage !== 'from-director')) w.add(tcpOn(h, { flags: 'PA', seq: 5000, ack: 1003, data: '4f4b' }), h.link);
  for (const h of toClient) w.add(tcpOn(h, { flags: 'PA', seq: 0x53545259, ack: 1003, data: '4f4b' }), h.link);
  for (const h of toClient) w.add(tcpOn(h, { flags: 'PA', seq: 5000, ack: 1003, data: '4f4b' }), h.link);
  // The client's duplicate ACK about the out-of-window copy (a repeat of its last ACK), forwarded to rs1.
  w.segment('c2s', { flags: 'A', seq: 1003, ack: 5000 }, (h) => h.wire > 0 || h.end === 'tx');
  w.segment('c2s', { flags: 'A', seq: 1003, ack: 5000 });
  const a = account(w);
  expect(a.causes.map((c) => [c.index, c.link, c.kind, c.statement])).toEqual([[stray, toClient.find((h) => h.end === 'tx')!.link, 'unprescribed', EXTRA_STATEMENT]]);
  expect(a.consequences[0].how).toMatch(/same frame/);
  expect(a.consequences.every((c) => c.cause === stray)).toBe(true);
});

test('a class the driver declares is counted, never silently ignored; two classes of one name are refused', () => {
  const probe: BackgroundClass = { name: 'probe', why: 'health checks to the real servers', declaredBy: 'driver test', patterns: [[{ type: 'eth' }, { type: 'ipv4', dst: '198.18.1.11' }, { type: 'icmp', icmpType: 8 }]] };
  const w = new Wire();
  exchange(w);
  w.add([{ type: 'eth', src: '02:00:00:00:00:01', dst: '02:00:00:00:00:02' }, { type: 'ipv4', src: '198.18.1.1', dst: '198.18.1.11', ttl: 64 }, { type: 'icmp', icmpType: 8, code: 0, id: 1, seq: 1 }], 'director:eth1');
  expect(account(w).ok).toBe(false);
  const a = account(w, backgroundClasses([probe]));
  expect(a.ok).toBe(true);
  expect(a.counts.background).toEqual({ probe: 1 });
  expect(() => backgroundClasses([{ ...probe, name: 'arp' }])).toThrow(/background class "arp" declared by driver test is already declared/);
});

test('the record replays to the same verdict; a run saved before accounting has no record', () => {
  const w = new Wire();
  exchange(w);
  w.segment('c2s', { flags: 'PA', seq: 1000, ack: 5000, data: '474554' }, (h) => h.stage === 'from-director');
  const explainers = flowExplainers(nat, [flow], w.packets);
  const live = accountPackets({ packets: w.packets, links, explainers, background: BUILTIN_BACKGROUND });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vslab-acct-'));
  try {
    expect(readAccountingFile(dir)).toBeUndefined();
    writeAccountingFile(dir, { version: 1, testId: 't', capture: 'capture.pcapng', background: BUILTIN_BACKGROUND, explainers, verdict: { ok: live.ok, causes: live.causes.map((c) => c.index), counts: live.counts } });
    const f = readAccountingFile(dir)!;
    const r = replayAccounting(dir, f, { packets: w.packets, links });
    expect(r.disagrees).toBe(false);
    expect(r.accounting.ok).toBe(false);
    fs.writeFileSync(path.join(dir, 'accounting.json'), JSON.stringify({ ...f, verdict: undefined }));
    expect(() => readAccountingFile(dir)).toThrow(/accounting.json: \$.verdict: needs ok and causes/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('a test record fails on unexpected packets, names FWD-COM-009, and does not blame a check carried from a consequence', () => {
  const w = new Wire();
  w.segment('c2s', { flags: 'PA', seq: 1000, ack: 5000, data: '474554' });
  w.segment('c2s', { flags: 'PA', seq: 1000, ack: 5000, data: '474554' }, (h) => h.stage === 'from-director');
  w.segment('s2c', { flags: 'PA', seq: 5000, ack: 1003, data: '4f4b' });
  // The real server's D-SACK, which the director (say) does not forward: its seeded checks fail, as consequences.
  w.segment('s2c', { flags: 'A', seq: 5002, ack: 1003, sack: [[1000, 1003]] }, (h) => h.wire === 0 && h.end === 'tx');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vslab-acct-'));
  try {
    const declared = ['FWD-COM-001', 'FWD-COM-002', 'FWD-COM-003', 'FWD-COM-004', 'FWD-COM-005', 'FWD-COM-006', 'FWD-COM-009', 'FWD-NAT-001', 'FWD-NAT-002', 'FWD-NAT-003', 'FWD-NAT-004'];
    const record = new TestRecord('t', dir, 'title', 'nat.spec.ts', declared);
    const captured = { file: path.join(dir, 'capture.pcapng'), packets: w.packets, links, notes: [] };
    const checks = seededChecks(plan, 's2c', originPackets(plan, 's2c', w.packets));
    expect(() => record.evaluate(checks, captured, { explainers: flowExplainers(nat, [flow], w.packets), background: BUILTIN_BACKGROUND })).toThrow(/packets unaccounted for; statements broken: FWD-COM-009\n[\s\S]*UNEXPECTED #\d+ on director:eth1/);
    const f = JSON.parse(fs.readFileSync(path.join(dir, 'checks.json'), 'utf8'));
    const acct = f.checks.find((c: { id: string }) => c.id === 'accounting');
    expect([acct.ok, acct.broken]).toEqual([false, ['FWD-COM-009']]);
    const unblamed = f.checks.filter((c: { ok: boolean }) => !c.ok && c !== acct);
    expect(unblamed.length).toBeGreaterThan(0);
    expect(unblamed.every((c: { broken: string[]; reason: string }) => c.broken.length === 0 && /^consequence of an unexpected packet/.test(c.reason))).toBe(true);
    expect(f.statements['FWD-NAT-003']).toBe('passed');
    expect(readAccountingFile(dir)!.verdict.ok).toBe(false);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
