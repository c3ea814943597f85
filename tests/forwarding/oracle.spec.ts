// The forwarding oracle, pure: routing in the Lab model, the headers each method prescribes on every hop,
// and that its checks pass on packets built exactly as prescribed and fail — naming the right statement —
// when one field is wrong. Packets are built with the packets layer's builder, no lab is involved.
import { test, expect } from '@playwright/test';
import * as path from 'path';
import { buildPacket, type LayerSpec } from '../../src/packet/build';
import { decodeFrame } from '../../src/packet/decode';
import { evaluateExpectation } from '../../src/packet/expect';
import type { DecodedPacket } from '../../src/packet/layers';
import { loadTopologyFile } from '../../src/topology/load';
import type { LabModel } from '../../src/topology/model';
import { absentChecks, attribute, carryOnto, KINDS, originPackets, seededChecks, skeletonCheck, type OracleCheck } from '../../src/oracle/expect';
import { exchangeChecks, planFlow } from '../../src/oracle/flow-checks';
import { routedPath, routeLookup } from '../../src/oracle/route';
import { encapOverhead, quoteLimit, tooBigChecks, tunnelPath } from '../../src/oracle/icmp';
import { connectionTableChecks, statsChecks } from '../../src/oracle/director-checks';
import type { Flow, FlowPlan, HopHeaders } from '../../src/oracle/types';

const TOPO = path.join(__dirname, '..', '..', 'suites', 'forwarding', 'topologies');
const labs: Record<string, LabModel> = {};
const lab = (name: string) => (labs[name] ??= loadTopologyFile(path.join(TOPO, `${name}.yaml`)));

const flow4 = (service: string, realServer: string, clientPort = 20000): Flow => ({ service, client: 'client1', clientAddr: '198.18.0.1', clientPort, realServer });
const flow6 = (service: string, realServer: string, clientPort = 20000): Flow => ({ service, client: 'client1', clientAddr: '2001:db8:0:1::1', clientPort, realServer });

/** A packet as the hop says it looks: TCP with the given flags (or UDP), some payload. */
function wirePacket(hop: HopHeaders, flags = 'PA', payload = '68656c6c6f'): LayerSpec[] {
  const specs: LayerSpec[] = [{ type: 'eth', src: hop.eth.src, dst: hop.eth.dst }];
  if (hop.outer) {
    const o = hop.outer;
    specs.push(o.family === 4 ? { type: 'ipv4', src: o.src, dst: o.dst, ttl: o.ttl, df: true } : { type: 'ipv6', src: o.src, dst: o.dst, hlim: o.ttl });
    if (o.encap === 'gue') specs.push({ type: 'udp', sport: 40000, dport: o.guePort, checksum: 0 }, { type: 'gue' });
    if (o.encap === 'gre') specs.push({ type: 'gre' });
  }
  specs.push(hop.ip.family === 4 ? { type: 'ipv4', src: hop.ip.src, dst: hop.ip.dst, ttl: hop.ip.ttl, id: 4242, df: true } : { type: 'ipv6', src: hop.ip.src, dst: hop.ip.dst, hlim: hop.ip.ttl, flow: 0x12345 });
  specs.push(hop.l4.proto === 'udp'
    ? { type: 'udp', sport: hop.l4.sport, dport: hop.l4.dport }
    : { type: 'tcp', sport: hop.l4.sport, dport: hop.l4.dport, flags, seq: 1000, ack: flags === 'S' ? 0 : 2000, window: 501, options: [{ kind: 1, name: 'nop' }, { kind: 1, name: 'nop' }, { kind: 8, name: 'timestamp', tsval: 7, tsecr: 9 }] });
  specs.push({ type: 'payload', data: payload });
  return specs;
}

let index = 0;
function decoded(specs: LayerSpec[], link: string, ts = '100.000000000'): DecodedPacket {
  const p = decodeFrame(buildPacket(specs), 1, { payload: true });
  return { ...p, index: index++, link, ts };
}

/** Every hop of a plan's direction carrying one packet built as prescribed. */
function capture(plan: FlowPlan, dirs: Array<'c2s' | 's2c'>, flags: Record<'c2s' | 's2c', string> = { c2s: 'PA', s2c: 'PA' }, mutate?: (hop: HopHeaders, specs: LayerSpec[]) => void): DecodedPacket[] {
  const out: DecodedPacket[] = [];
  for (const d of dirs) for (const hop of plan[d]) {
    const specs = wirePacket(hop, flags[d]);
    mutate?.(hop, specs);
    out.push(decoded(specs, hop.link));
  }
  return out;
}

function verdicts(checks: OracleCheck[], packets: DecodedPacket[], links: string[]) {
  return checks.map((c) => {
    const r = evaluateExpectation(c.expectation, packets, links);
    return { id: c.expectation.id, ok: r.ok, broken: attribute(c, r) };
  });
}

function linksOf(l: LabModel): string[] {
  return l.nodes.flatMap((n) => n.interfaces.map((i) => `${n.name}:${i.name}`));
}

test.describe('routing in the Lab model', () => {
  test('the client reaches the NAT director in one wire, the DR director through the router', () => {
    const nat = routedPath(lab('nat'), 'client1', '198.19.0.100', (n) => n.name === 'director');
    expect(nat.wires.map((w) => `${w.from.node}:${w.from.iface}>${w.to.node}:${w.to.iface}`)).toEqual(['client1:eth0>director:eth0']);
    const dr = routedPath(lab('dr'), 'client1', '198.19.0.100', (n) => n.name === 'director');
    expect(dr.wires.map((w) => `${w.from.node}>${w.to.node}`)).toEqual(['client1>router', 'router>director']);
    expect(dr.forwarders).toEqual(['router']);
  });
  test('a NAT real server routes replies through the director, a TUN real server through the router', () => {
    const rs = lab('nat').nodes.find((n) => n.name === 'rs1')!;
    const r = routeLookup(rs, '198.18.0.1');
    expect(r.kind === 'forward' && r.gateway).toBe('198.18.1.1');
    const back = routedPath(lab('tun'), 'rs1', '198.18.0.1');
    expect(back.forwarders).toEqual(['router']);
  });
});

test.describe('per-method plans', () => {
  test('NAT: destination and port rewritten towards the real server, source back to the VIP; TTL down by one at the director', () => {
    const plan = planFlow(lab('nat'), flow4('tcp4', 'rs2'));
    const toRs = plan.c2s.filter((h) => h.stage === 'from-director');
    expect(toRs.map((h) => h.link)).toEqual(['director:eth1', 'rs2:eth0']);
    expect(toRs[0]).toMatchObject({ ip: { src: '198.18.0.1', dst: '198.18.1.3', ttl: 63 }, l4: { sport: 20000, dport: 8080 } });
    const director = lab('nat').nodes.find((n) => n.name === 'director')!;
    expect(toRs[0].eth.src).toBe(director.interfaces[1].mac);
    const toClient = plan.s2c.filter((h) => h.stage === 'from-director');
    expect(toClient[0]).toMatchObject({ link: 'director:eth0', ip: { src: '198.19.0.100', dst: '198.18.0.1', ttl: 63 }, l4: { sport: 80, dport: 20000 } });
    expect(plan.absent.filter((a) => a.statement === 'FWD-NAT-004')).toHaveLength(3);
  });
  test('DR: only the destination MAC changes; replies must not touch the director', () => {
    const plan = planFlow(lab('dr'), flow6('tcp6', 'rs3'));
    const arrive = plan.c2s.find((h) => h.link === 'director:eth0' && h.end === 'rx')!;
    const leave = plan.c2s.find((h) => h.link === 'director:eth0' && h.end === 'tx')!;
    expect(leave.ip).toEqual({ ...arrive.ip, ttl: arrive.ip.ttl - 1 });
    expect(leave.l4).toEqual(arrive.l4);
    expect(leave.eth.dst).toBe(lab('dr').nodes.find((n) => n.name === 'rs3')!.interfaces[0].mac);
    expect(plan.s2c.some((h) => h.link.startsWith('director:'))).toBe(false);
    expect(plan.absent.filter((a) => a.statement === 'FWD-DR-002').map((a) => a.link)).toEqual(['director:eth0']);
  });
  test('TUN: outer header from the director\'s route source to the RIP, TTL of the inner packet, decremented by routers only outside', () => {
    const plan = planFlow(lab('tun'), flow4('gue-udp4', 'rs4'));
    const out = plan.c2s.filter((h) => h.stage === 'from-director');
    expect(out.map((h) => h.link)).toEqual(['director:eth0', 'router:eth1', 'router:eth2', 'rs4:eth0']);
    expect(out[0].outer).toMatchObject({ encap: 'gue', src: '198.18.1.2', dst: '198.18.2.5', ttl: 62, guePort: 6080, csum: false });
    expect(out[0].ip.ttl).toBe(62);
    expect(out[3].outer!.ttl).toBe(61);
    expect(out[3].ip.ttl).toBe(62);
  });
  test('Full-NAT: the real server sees the director\'s local address and the client\'s port', () => {
    const plan = planFlow(lab('fullnat'), flow4('udp4', 'rs1'));
    expect(plan.local).toEqual({ addr: '198.18.1.254', port: 20000 });
    const toRs = plan.c2s.find((h) => h.link === 'rs1:eth0')!;
    expect(toRs).toMatchObject({ ip: { src: '198.18.1.254', dst: '198.18.1.2' }, l4: { sport: 20000, dport: 5353 } });
    expect(plan.s2c[0]).toMatchObject({ ip: { src: '198.18.1.2', dst: '198.18.1.254' } });
  });
  test('an unknown real server or a wrong family is refused with what was wrong', () => {
    expect(() => planFlow(lab('nat'), flow4('tcp4', 'router'))).toThrow(/no real server on router/);
    expect(() => planFlow(lab('nat'), flow6('tcp4', 'rs1'))).toThrow(/does not match service tcp4/);
  });
});

test.describe('checks pass on the prescribed packets and fail on a wrong field, naming the statement', () => {
  const cases: Array<{ name: string; lab: string; flow: Flow; field: (hop: HopHeaders, s: LayerSpec[]) => void; statement: string }> = [
    { name: 'NAT TTL not decremented', lab: 'nat', flow: flow4('tcp4', 'rs1'), statement: 'FWD-COM-002', field: (h, s) => { if (h.stage === 'from-director' && h.direction === 'c2s') (s[1] as { ttl?: number }).ttl = 64; } },
    { name: 'NAT wrong source MAC', lab: 'nat', flow: flow4('udp4', 'rs1'), statement: 'FWD-COM-004', field: (h, s) => { if (h.stage === 'from-director' && h.direction === 'c2s') (s[0] as { src?: string }).src = '02:00:5e:10:00:01'; } },
    { name: 'NAT wrong port mapping', lab: 'nat', flow: flow4('tcp4', 'rs1'), statement: 'FWD-NAT-002', field: (h, s) => { if (h.stage === 'from-director' && h.direction === 'c2s') (s[2] as { dport?: number }).dport = 8081; } },
    { name: 'NAT reply from the RIP', lab: 'nat', flow: flow6('udp6', 'rs2'), statement: 'FWD-NAT-003', field: (h, s) => { if (h.stage === 'from-director' && h.direction === 's2c') (s[1] as { src?: string }).src = '2001:db8:0:2::3'; } },
    { name: 'NAT broken checksum', lab: 'nat', flow: flow4('tcp4', 'rs3'), statement: 'FWD-COM-003', field: (h, s) => { if (h.stage === 'from-director' && h.direction === 'c2s') (s[1] as { checksum?: number }).checksum = 0x0bad; } },
    { name: 'DR rewrites the destination IP', lab: 'dr', flow: flow4('tcp4', 'rs1'), statement: 'FWD-DR-001', field: (h, s) => { if (h.stage === 'from-director') (s[1] as { dst?: string }).dst = '198.18.1.3'; } },
    { name: 'TUN outer TTL reset', lab: 'tun', flow: flow4('ipip-tcp4', 'rs1'), statement: 'FWD-TUN-002', field: (h, s) => { if (h.stage === 'from-director') (s[1] as { ttl?: number }).ttl = 64; } },
    { name: 'TUN tunnel to the wrong host', lab: 'tun', flow: flow6('gre-udp6', 'rs3'), statement: 'FWD-TUN-001', field: (h, s) => { if (h.stage === 'from-director') (s[1] as { dst?: string }).dst = '2001:db8:0:3::fa'; } },
    { name: 'Full-NAT keeps the client address', lab: 'fullnat', flow: flow4('tcp4', 'rs2'), statement: 'FWD-FNAT-001', field: (h, s) => { if (h.stage === 'from-director' && h.direction === 'c2s') (s[1] as { src?: string }).src = '198.18.0.1'; } },
  ];
  for (const c of cases) {
    test(c.name, () => {
      const plan = planFlow(lab(c.lab), c.flow);
      const checks = [...plan.c2s.map((h) => skeletonCheck(plan, h, plan.protocol === 'tcp' ? KINDS.data : KINDS.udp)), ...plan.s2c.map((h) => skeletonCheck(plan, h, plan.protocol === 'tcp' ? KINDS.data : KINDS.udp))];
      const good = verdicts(checks, capture(plan, ['c2s', 's2c']), linksOf(lab(c.lab)));
      expect(good.filter((v) => !v.ok)).toEqual([]);
      const bad = verdicts(checks, capture(plan, ['c2s', 's2c'], undefined, c.field), linksOf(lab(c.lab)));
      const broken = [...new Set(bad.flatMap((v) => v.broken))];
      expect(broken).toContain(c.statement);
    });
  }

  test('seeded checks carry the client\'s own packet: a changed window breaks "nothing else changes", nothing else', () => {
    const plan = planFlow(lab('nat'), flow4('tcp4', 'rs1'));
    const good = capture(plan, ['c2s']);
    const origins = originPackets(plan, 'c2s', good);
    expect(origins).toHaveLength(1);
    const checks = seededChecks(plan, 'c2s', origins);
    expect(verdicts(checks, good, linksOf(lab('nat'))).filter((v) => !v.ok)).toEqual([]);
    const bad = capture(plan, ['c2s'], undefined, (h, s) => { if (h.stage === 'from-director') (s[2] as { window?: number }).window = 1024; });
    const broken = [...new Set(verdicts(seededChecks(plan, 'c2s', originPackets(plan, 'c2s', bad)), bad, linksOf(lab('nat'))).flatMap((v) => v.broken))];
    expect(broken).toEqual(['FWD-COM-005']);
  });

  test('carrying a packet into a tunnel masks only what the kernel chooses (outer IP ID, GUE source port)', () => {
    const plan = planFlow(lab('tun'), flow4('gue-tcp4', 'rs2'));
    const hop = plan.c2s.find((h) => h.stage === 'from-director' && h.end === 'tx')!;
    const origin = decoded(wirePacket(plan.c2s[0]), plan.c2s[0].link);
    const { specs, ignore } = carryOnto(origin, hop);
    expect(specs.map((s) => s.type)).toEqual(['eth', 'ipv4', 'udp', 'gue', 'ipv4', 'tcp', 'payload']);
    expect(ignore).toEqual(['ipv4[0].id', 'ipv4[0].checksum', 'udp[0].sport']);
  });

  test('absent rules fail when a reply shows up on the director (DR)', () => {
    const plan = planFlow(lab('dr'), flow4('udp4', 'rs2'));
    const checks = absentChecks(plan);
    const clean = capture(plan, ['c2s', 's2c']);
    expect(verdicts(checks, clean, linksOf(lab('dr'))).filter((v) => !v.ok)).toEqual([]);
    const detour = plan.s2c[0];
    const leak = decoded(wirePacket({ ...detour, link: 'director:eth0' }), 'director:eth0');
    const broken = verdicts(checks, [...clean, leak], linksOf(lab('dr'))).filter((v) => !v.ok);
    expect(broken.map((b) => b.broken).flat()).toEqual(['FWD-DR-002']);
  });

  test('a whole exchange on every hop: passes when prescribed, and a missing reply fails FWD-COM-001 and the method', () => {
    const plan = planFlow(lab('fullnat'), flow6('udp6', 'rs3'));
    const packets = capture(plan, ['c2s', 's2c'], { c2s: '', s2c: '' });
    const links = linksOf(lab('fullnat'));
    const checks = exchangeChecks(lab('fullnat'), plan.flow, packets);
    expect(verdicts(checks, packets, links).filter((v) => !v.ok)).toEqual([]);
    const noReply = packets.filter((p) => !plan.s2c.some((h) => h.link === p.link && p.layers.some((l) => l.type === 'ipv6' && l.src === h.ip.src)));
    const broken = new Set(verdicts(exchangeChecks(lab('fullnat'), plan.flow, noReply), noReply, links).flatMap((v) => v.broken));
    expect([...broken].sort()).toEqual(['FWD-COM-001', 'FWD-FNAT-002']);
  });
});

test.describe('path MTU and director state', () => {
  test('encapsulation overheads and ICMP quote limits', () => {
    expect([encapOverhead('ipip', 4), encapOverhead('gue', 4), encapOverhead('gre', 4), encapOverhead('gre', 4, true)]).toEqual([20, 32, 24, 28]);
    expect([encapOverhead('ipip', 6), encapOverhead('gue', 6), encapOverhead('gre', 6)]).toEqual([40, 52, 44]);
    expect([quoteLimit(4), quoteLimit(6)]).toEqual([548, 1232]);
    expect(tunnelPath(lab('tun'), planFlow(lab('tun'), flow6('gue-tcp6', 'rs1'))).innerMtu).toBe(1448);
  });

  test('a too-big packet needs "fragmentation needed" with the tunnel MTU; a wrong MTU fails FWD-TUN-004', () => {
    const plan = planFlow(lab('tun'), flow4('gre-tcp4', 'rs3'));
    const big = decoded([...wirePacket(plan.c2s[0]).slice(0, -1), { type: 'payload', len: 1448 }], 'client1:eth0');
    const answer = (mtu: number): DecodedPacket[] => {
      const back = routedPath(lab('tun'), 'director', '198.18.0.1');
      return back.wires.flatMap((w, k) => ['tx', 'rx'].map((end) => decoded([
        { type: 'eth', src: w.from.mac, dst: w.to.mac },
        { type: 'ipv4', src: '198.19.0.102', dst: '198.18.0.1', ttl: 64 - k, tos: 0xc0 },
        { type: 'icmp', icmpType: 3, code: 4, mtu, quoteLen: 548 },
        ...big.layers.slice(1).map((l) => ({ ...(l.type === 'payload' ? { type: 'payload' as const, data: l.data } : l), quoted: true as const }) as LayerSpec),
      ], `${end === 'tx' ? w.from.node : w.to.node}:${end === 'tx' ? w.from.iface : w.to.iface}`)));
    };
    const links = linksOf(lab('tun'));
    const ok = verdicts(tooBigChecks(lab('tun'), plan.flow, [big, ...answer(1476)]), [big, ...answer(1476)], links);
    expect(ok.filter((v) => !v.ok)).toEqual([]);
    const wrong = verdicts(tooBigChecks(lab('tun'), plan.flow, [big, ...answer(1300)]), [big, ...answer(1300)], links);
    expect([...new Set(wrong.flatMap((v) => v.broken))]).toEqual(['FWD-TUN-004']);
  });

  test('the connection table must name the real server that gets the packets', () => {
    const plan = planFlow(lab('dr'), flow4('tcp4', 'rs1'));
    const packets = capture(plan, ['c2s'], { c2s: 'S', s2c: 'SA' });
    const entry = (addr: string) => ({ protocol: 'TCP', family: 4 as const, client: { addr: '198.18.0.1', port: 20000 }, virtual: { addr: '198.19.0.100', port: 80 }, realServer: { addr, port: 80, family: 4 as const }, state: 'SYN_RECV', expires: 50, template: false });
    const links = linksOf(lab('dr'));
    expect(verdicts(connectionTableChecks(lab('dr'), [plan.flow], [entry('198.18.1.3')]), packets, links).filter((v) => !v.ok)).toEqual([]);
    const swapped = verdicts(connectionTableChecks(lab('dr'), [plan.flow], [entry('198.18.1.4')]), packets, links);
    expect(swapped.filter((v) => !v.ok).flatMap((v) => v.broken)).toEqual(['FWD-COM-007']);
    const none = verdicts(connectionTableChecks(lab('dr'), [plan.flow], []), packets, links);
    expect(none.filter((v) => !v.ok).flatMap((v) => v.broken)).toEqual(['FWD-COM-007']);
  });

  test('counter deltas must be the packets on the wire', () => {
    const plan = planFlow(lab('nat'), flow4('udp4', 'rs2'));
    const packets = capture(plan, ['c2s', 's2c'], { c2s: '', s2c: '' });
    const links = linksOf(lab('nat'));
    const c = (conns: number, inPkts: number, outPkts: number) => ({ conns, inPkts, outPkts, inBytes: 0, outBytes: 0, cps: 0, inPps: 0, outPps: 0, inBps: 0, outBps: 0 });
    const deltas = (inPkts: number) => ({ service: c(1, inPkts, 1), realServers: new Map([['198.18.1.3 5353', c(1, inPkts, 1)], ['198.18.1.2 5353', c(0, 0, 0)], ['198.18.1.4 5353', c(0, 0, 0)]]) });
    expect(verdicts(statsChecks(lab('nat'), plan.flow, deltas(1)), packets, links).filter((v) => !v.ok)).toEqual([]);
    const off = verdicts(statsChecks(lab('nat'), plan.flow, deltas(2)), packets, links).filter((v) => !v.ok);
    expect(off.map((v) => v.id).sort()).toEqual(['stats.rs2.inpkts@director:eth0', 'stats.service.inpkts@director:eth0']);
    expect([...new Set(off.flatMap((v) => v.broken))]).toEqual(['FWD-COM-008']);
  });
});
