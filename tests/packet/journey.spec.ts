// Flow journeys on synthetic captures of each forwarding method: DR (same tuple, MAC rewrite), TUN with
// IPIP/GUE/GRE (inner packet matched), NAT, Full-NAT with a new ISN and a TOA option, ICMP errors.
import { test, expect } from '@playwright/test';
import { buildPacket, type LayerSpec } from '../../src/packet/build';
import { decodeFrame } from '../../src/packet/decode';
import { traceFlow, type FlowTuple } from '../../src/packet/journey';
import type { DecodedPacket } from '../../src/packet/layers';

const CIP = '198.18.0.1';
const VIP = '198.18.3.100';
const RIP = '198.18.2.11';
const FLOW: FlowTuple = { proto: 6, src: CIP, sport: 40000, dst: VIP, dport: 80 };

class Capture {
  packets: DecodedPacket[] = [];
  private ns = 0;
  add(link: string, specs: LayerSpec[]): void {
    this.ns += 1000;
    this.packets.push({ ...decodeFrame(buildPacket(specs), 1, { payload: true }), link, index: this.packets.length, ts: `1764000000.${String(this.ns).padStart(9, '0')}` });
  }
}

const eth: LayerSpec = { type: 'eth' };
const tcp = (sport: number, dport: number, flags: string, seq: number, ack: number, extra: Partial<LayerSpec> = {}): LayerSpec => ({ type: 'tcp', sport, dport, flags, seq, ack, ...extra } as LayerSpec);
const ip = (src: string, dst: string, ttl = 64, id = 0): LayerSpec => ({ type: 'ipv4', src, dst, ttl, id });
const data = (text: string): LayerSpec => ({ type: 'payload', text });

test('DR: one tuple on every link, the MAC rewrite is reported, replies go straight back', () => {
  const c = new Capture();
  const syn = (mac: string, ttl: number): LayerSpec[] => [{ type: 'eth', dst: mac }, ip(CIP, VIP, ttl), tcp(40000, 80, 'S', 1000, 0)];
  c.add('client:eth0', syn('02:00:00:00:00:d1', 64));
  c.add('dir:eth0', syn('02:00:00:00:00:d1', 64));
  c.add('dir:eth0', syn('02:00:00:00:00:b1', 63)); // sent back out of the same segment to the RS
  c.add('rs1:eth0', syn('02:00:00:00:00:b1', 63));
  c.add('rs1:eth0', [eth, ip(VIP, CIP), tcp(80, 40000, 'SA', 7000, 1001)]);
  c.add('client:eth0', [eth, ip(VIP, CIP), tcp(80, 40000, 'SA', 7000, 1001)]);
  c.add('client:eth0', [eth, ip(CIP, '198.18.3.101'), tcp(40000, 80, 'S', 31337, 0)]); // another service: not this flow
  const j = traceFlow(c.packets, FLOW);
  expect(j.views.length).toBe(1);
  // One-armed director: the SYN crosses dir:eth0 twice (in, then forwarded out with TTL - 1).
  expect(j.transmissions.map((t) => [t.direction, t.hops.map((h) => h.link)])).toEqual([
    ['c2s', ['client:eth0', 'dir:eth0', 'dir:eth0', 'rs1:eth0']],
    ['s2c', ['rs1:eth0', 'client:eth0']],
  ]);
  expect(j.transmissions[0].hops[2].changed).toEqual(['eth.dst 02:00:00:00:00:d1 -> 02:00:00:00:00:b1', 'ttl 64 -> 63']);
  expect(j.transmissions[0].hops[3].changed).toEqual([]);
});

for (const [name, encap, expectedEncap] of [
  ['IPIP', [ip('198.18.2.254', RIP, 63)], ['ipv4']],
  ['GUE', [ip('198.18.2.254', RIP, 63), { type: 'udp', sport: 45123, dport: 6080 }, { type: 'gue' }], ['ipv4', 'udp', 'gue']],
  ['GRE', [ip('198.18.2.254', RIP, 63), { type: 'gre' }], ['ipv4', 'gre']],
] as Array<[string, LayerSpec[], string[]]>) {
  test(`TUN over ${name}: the inner packet is matched and the encapsulation reported`, () => {
    const c = new Capture();
    c.add('client:eth0', [eth, ip(CIP, VIP, 64), tcp(40000, 80, 'S', 1000, 0)]);
    c.add('dir:eth0', [eth, ip(CIP, VIP, 64), tcp(40000, 80, 'S', 1000, 0)]);
    c.add('dir:eth1', [eth, ...encap, ip(CIP, VIP, 63), tcp(40000, 80, 'S', 1000, 0)]);
    c.add('rs1:eth0', [eth, ...encap, ip(CIP, VIP, 63), tcp(40000, 80, 'S', 1000, 0)]);
    c.add('rs1:eth0', [eth, ip(VIP, CIP), tcp(80, 40000, 'SA', 7000, 1001)]);
    const j = traceFlow(c.packets, FLOW);
    expect(j.views.length).toBe(1);
    const [syn, synAck] = j.transmissions;
    expect(syn.hops.map((h) => [h.link, h.encap.join('/')])).toEqual([['client:eth0', ''], ['dir:eth0', ''], ['dir:eth1', expectedEncap.join('/')], ['rs1:eth0', expectedEncap.join('/')]]);
    expect(syn.hops[2].changed).toEqual(expect.arrayContaining(['ttl 64 -> 63', `encap none -> ${expectedEncap.join('/')}`]));
    expect(synAck.direction).toBe('s2c');
  });
}

test('Full-NAT: new ISN and a TOA option on the RS side; the view is learnt from the TOA and the payload', () => {
  const c = new Capture();
  const LIP = '198.18.2.250';
  const delta = 123456789;
  c.add('client:eth0', [eth, ip(CIP, VIP), tcp(40000, 80, 'S', 1000, 0, { options: [{ name: 'mss', value: 1460 }, { name: 'timestamp', tsval: 5, tsecr: 0 }] })]);
  c.add('dir:eth1', [eth, ip(LIP, RIP), tcp(5001, 8080, 'S', 1000 + delta, 0, { options: [{ name: 'mss', value: 1460 }, { name: 'toa', port: 40000, addr: CIP }] })]);
  c.add('dir:eth1', [eth, ip(RIP, LIP), tcp(8080, 5001, 'SA', 9000, 1001 + delta)]);
  c.add('client:eth0', [eth, ip(VIP, CIP), tcp(80, 40000, 'SA', 9000, 1001, { options: [{ name: 'mss', value: 1452 }] })]);
  c.add('client:eth0', [eth, ip(CIP, VIP), tcp(40000, 80, 'PA', 1001, 9001), data('GET /token-fnat-1 HTTP/1.0\r\n\r\n')]);
  c.add('dir:eth1', [eth, ip(LIP, RIP), tcp(5001, 8080, 'PA', 1001 + delta, 9001), data('GET /token-fnat-1 HTTP/1.0\r\n\r\n')]);
  c.add('dir:eth1', [eth, ip(RIP, LIP), tcp(8080, 5001, 'PA', 9001, 1031 + delta), data('HTTP/1.0 200 OK\r\n\r\n')]);
  c.add('client:eth0', [eth, ip(VIP, CIP), tcp(80, 40000, 'PA', 9001, 1031), data('HTTP/1.0 200 OK\r\n\r\n')]);
  // Another client's connection to the same RS through the same LIP: must stay out.
  c.add('dir:eth1', [eth, ip(LIP, RIP), tcp(5002, 8080, 'S', 77777, 0, { options: [{ name: 'toa', port: 40001, addr: '198.18.0.2' }] })]);
  const j = traceFlow(c.packets, FLOW);
  expect(j.warnings).toEqual([]);
  expect(j.views.map((v) => [`${v.tuple.src}:${v.tuple.sport}>${v.tuple.dst}:${v.tuple.dport}`, v.evidence])).toEqual([
    [`${CIP}:40000>${VIP}:80`, 'client tuple'],
    [`${LIP}:5001>${RIP}:8080`, `TOA option carries the client ${CIP}.40000`],
  ]);
  expect(j.transmissions.map((t) => [t.direction, t.hops.map((h) => `${h.link}#${h.index}`).join(' ')])).toEqual([
    ['c2s', 'client:eth0#0 dir:eth1#1'],
    ['s2c', 'dir:eth1#2 client:eth0#3'],
    ['c2s', 'client:eth0#4 dir:eth1#5'],
    ['s2c', 'dir:eth1#6 client:eth0#7'],
  ]);
  expect(j.transmissions[0].hops[1].changed).toEqual(expect.arrayContaining([`ip.src ${CIP} -> ${LIP}`, `ip.dst ${VIP} -> ${RIP}`, 'sport 40000 -> 5001', 'dport 80 -> 8080', `tcp.seq 1000 -> ${1000 + delta}`, `tcp.options +toa ${CIP}.40000`]));
});

test('Full-NAT without TOA: the view is learnt from payload plus the unchanged ack; the ISN shift is learnt for pure ACKs', () => {
  const c = new Capture();
  const LIP = '198.18.2.250';
  c.add('client:eth0', [eth, ip(CIP, VIP), tcp(40000, 80, 'PA', 1001, 9001), data('token-42')]);
  c.add('dir:eth1', [eth, ip(LIP, RIP), tcp(6000, 8080, 'PA', 55, 9001), data('token-42')]);
  c.add('dir:eth1', [eth, ip(RIP, LIP), tcp(8080, 6000, 'A', 9001, 63)]);
  c.add('client:eth0', [eth, ip(VIP, CIP), tcp(80, 40000, 'A', 9001, 1009)]);
  const j = traceFlow(c.packets, FLOW);
  expect(j.views[1].evidence).toBe('same flags, payload and seq/ack as packet #0 on client:eth0');
  expect(j.hops.length).toBe(4);
  // The reply ACK differs only by the learnt shift of the client's sequence space: one transmission.
  expect(j.transmissions.map((t) => t.hops.length)).toEqual([2, 2]);
});

test('an ICMP error quoting the flow joins it as an error hop in the reverse direction', () => {
  const c = new Capture();
  c.add('client:eth0', [eth, ip(CIP, VIP), tcp(40000, 80, 'PA', 1, 1), data('x'.repeat(1400))]);
  c.add('client:eth0', [eth, ip('198.18.0.254', CIP), { type: 'icmp', icmpType: 3, code: 4, mtu: 1300, quoteLen: 28 }, ip(CIP, VIP), tcp(40000, 80, 'PA', 1, 1), data('x'.repeat(1400))]);
  c.add('client:eth0', [eth, ip('198.18.0.254', CIP), { type: 'icmp', icmpType: 3, code: 4, mtu: 1300, quoteLen: 28 }, ip(CIP, VIP), tcp(40001, 80, 'PA', 1, 1)]);
  const j = traceFlow(c.packets, FLOW);
  expect(j.hops.map((h) => [h.index, h.direction, !!h.icmpError])).toEqual([[0, 'c2s', false], [1, 's2c', true]]);
});

test('a payload shared by two rewritten tuples on one link is reported as ambiguous', () => {
  const c = new Capture();
  c.add('client:eth0', [eth, ip(CIP, VIP), { type: 'udp', sport: 40000, dport: 53 }, data('same')]);
  c.add('dir:eth1', [eth, ip(CIP, RIP), { type: 'udp', sport: 40000, dport: 5353 }, data('same')]);
  c.add('dir:eth1', [eth, ip('198.18.0.2', RIP), { type: 'udp', sport: 41000, dport: 5353 }, data('same')]);
  const j = traceFlow(c.packets, { proto: 17, src: CIP, sport: 40000, dst: VIP, dport: 53 });
  expect(j.warnings).toEqual([`packet #0 on client:eth0 matches 2 different tuples on dir:eth1 (17|${CIP}|40000|${RIP}|5353, 17|198.18.0.2|41000|${RIP}|5353): the evidence does not identify the flow; use payloads unique per flow`]);
  // With distinct payloads the other client's datagram stays out and nothing is ambiguous.
  const d = new Capture();
  d.add('client:eth0', [eth, ip(CIP, VIP), { type: 'udp', sport: 40000, dport: 53 }, data('flow-1')]);
  d.add('dir:eth1', [eth, ip(CIP, RIP), { type: 'udp', sport: 40000, dport: 5353 }, data('flow-1')]);
  d.add('dir:eth1', [eth, ip('198.18.0.2', RIP), { type: 'udp', sport: 41000, dport: 5353 }, data('flow-2')]);
  const k = traceFlow(d.packets, { proto: 17, src: CIP, sport: 40000, dst: VIP, dport: 53 });
  expect(k.warnings).toEqual([]);
  expect(k.hops.map((h) => h.index)).toEqual([0, 1]);
});
