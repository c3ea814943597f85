// Crafted packets (built with src/packet/build.ts) for every decoder: fields, checksum verdicts, tunnels,
// ICMP quoted datagrams, link types, truncation and malformed headers; and build(decode(x)) == x.
import { test, expect } from '@playwright/test';
import { buildPacket, linkTypeOf, type LayerSpec } from '../../src/packet/build';
import { decodeFrame } from '../../src/packet/decode';
import type { Layer } from '../../src/packet/layers';
import { FrameScan, L_IPV4, L_TCP, scanFrame } from '../../src/packet/scan';

const decode = (specs: LayerSpec[], opts = {}) => decodeFrame(buildPacket(specs), linkTypeOf(specs), opts);
const layer = <T extends Layer['type']>(ls: Layer[], type: T, nth = 0) => ls.filter((l) => l.type === type)[nth] as Layer & { type: T; checksumOk?: boolean | null };

const CASES: Record<string, LayerSpec[]> = {
  'tcp syn with options': [{ type: 'eth', src: '02:00:00:00:01:01', dst: '02:00:00:00:02:02' }, { type: 'ipv4', src: '198.18.0.1', dst: '198.18.1.100', ttl: 63, id: 4242, df: true, tos: 0x10 },
    { type: 'tcp', sport: 40000, dport: 80, seq: 0xfffffff0, flags: 'S', window: 64240, options: [{ kind: 2, name: 'mss', value: 1460 }, { kind: 4, name: 'sackOK' }, { kind: 8, name: 'timestamp', tsval: 1, tsecr: 0 }, { kind: 1, name: 'nop' }, { kind: 3, name: 'wscale', value: 7 }] }],
  'tcp with TOA v4, sack, md5, unknown option': [{ type: 'eth' }, { type: 'ipv4' }, { type: 'tcp', flags: 'PA', seq: 1, ack: 2, options: [{ kind: 254, name: 'toa', port: 40000, addr: '198.18.0.1' }, { kind: 5, name: 'sack', blocks: [[10, 20]] }, { kind: 19, name: 'md5', data: '00112233445566778899aabbccddeeff' }] }, { type: 'payload', text: 'GET / HTTP/1.0\r\n\r\n' }],
  'tcp over ipv6 with TOA v6 (254 and 253)': [{ type: 'eth' }, { type: 'ipv6', tc: 0x28, flow: 0x12345, hlim: 7 }, { type: 'tcp', flags: 'A', options: [{ kind: 254, name: 'toa', port: 1, addr: '2001:db8::c' }, { kind: 253, name: 'toa', port: 2, addr: '2001:db8::d' }] }],
  'tcp experimental option with ExID': [{ type: 'eth' }, { type: 'ipv4' }, { type: 'tcp', options: [{ kind: 254, name: 'exp', exid: 0xf989, data: 'aabbccddeeff' }] }],
  'tcp all flags': [{ type: 'eth' }, { type: 'ipv4' }, { type: 'tcp', flags: 'FSRPAUECN', urgent: 5 }],
  'udp over vlan-in-vlan': [{ type: 'eth' }, { type: 'vlan', id: 100, pcp: 5, ethertype: 0x8100 }, { type: 'vlan', id: 200, dei: 1 }, { type: 'ipv4' }, { type: 'udp', sport: 5353, dport: 53 }, { type: 'payload', data: 'deadbeef' }],
  'ipv4 options (RR, RA, UOA)': [{ type: 'eth' }, { type: 'ipv4', options: [{ type: 7, name: 'rr', len: 7, data: '0400000000' }, { type: 148, name: 'ra', len: 4, data: '0000' }, { type: 31, name: 'uoa', len: 8, port: 5000, addr: '198.18.0.9' }] }, { type: 'udp' }],
  'ipv6 extension headers': [{ type: 'eth' }, { type: 'ipv6', ext: [{ type: 'hbh', len: 8 }, { type: 'dest', len: 16 }, { type: 'routing', len: 8, routingType: 4, segmentsLeft: 0 }, { type: 'frag', len: 8, fragOffset: 0, mf: false, fragId: 77 }] }, { type: 'udp' }],
  'ipv6 with AH': [{ type: 'eth' }, { type: 'ipv6', ext: [{ type: 'ah', len: 16 }] }, { type: 'tcp' }],
  '4in4 (IPIP)': [{ type: 'eth' }, { type: 'ipv4', src: '198.18.2.254', dst: '198.18.2.11' }, { type: 'ipv4', src: '198.18.0.1', dst: '198.18.3.100', ttl: 63 }, { type: 'tcp', sport: 40000, dport: 80 }],
  '6in6': [{ type: 'eth' }, { type: 'ipv6', src: '2001:db8:2::fe', dst: '2001:db8:2::b' }, { type: 'ipv6', src: '2001:db8::1', dst: '2001:db8:3::64' }, { type: 'udp' }],
  '4in6': [{ type: 'eth' }, { type: 'ipv6' }, { type: 'ipv4' }, { type: 'icmp', icmpType: 8, id: 1, seq: 1 }],
  '6in4': [{ type: 'eth' }, { type: 'ipv4' }, { type: 'ipv6' }, { type: 'icmpv6', icmpType: 128, id: 9, seq: 3 }, { type: 'payload', len: 16 }],
  'gre with checksum, key and sequence': [{ type: 'eth' }, { type: 'ipv4' }, { type: 'gre', csum: true, key: 0xabcdef, seq: 7 }, { type: 'ipv4' }, { type: 'udp' }],
  'gre carrying ipv6': [{ type: 'eth' }, { type: 'ipv4' }, { type: 'gre' }, { type: 'ipv6' }, { type: 'tcp' }],
  'gre transparent ethernet bridging': [{ type: 'eth' }, { type: 'ipv4' }, { type: 'gre' }, { type: 'eth' }, { type: 'arp', op: 2 }],
  'gue v0 carrying ipv4 with options': [{ type: 'eth' }, { type: 'ipv4' }, { type: 'udp', sport: 45000, dport: 6080 }, { type: 'gue', options: '0000000100000002' }, { type: 'ipv4' }, { type: 'tcp' }],
  'gue v0 carrying ipv6 over ipv6': [{ type: 'eth' }, { type: 'ipv6' }, { type: 'udp', sport: 45000, dport: 6080 }, { type: 'gue' }, { type: 'ipv6' }, { type: 'udp' }],
  'vxlan': [{ type: 'eth' }, { type: 'ipv4' }, { type: 'udp', dport: 4789 }, { type: 'vxlan', vni: 4242 }, { type: 'eth' }, { type: 'ipv4' }, { type: 'icmp', id: 5, seq: 6 }],
  'arp request': [{ type: 'eth', dst: 'ff:ff:ff:ff:ff:ff' }, { type: 'arp', op: 1, hwsrc: '02:00:00:00:00:aa', psrc: '198.18.0.1', pdst: '198.18.0.2' }],
  'icmp frag needed quoting tcp': [{ type: 'eth' }, { type: 'ipv4', src: '198.18.9.1' }, { type: 'icmp', icmpType: 3, code: 4, mtu: 1400 }, { type: 'ipv4', df: true }, { type: 'tcp', sport: 40000, dport: 80, seq: 1234 }],
  'icmp redirect': [{ type: 'eth' }, { type: 'ipv4' }, { type: 'icmp', icmpType: 5, code: 1, gateway: '198.18.0.254' }, { type: 'ipv4' }, { type: 'udp' }],
  'icmpv6 packet too big quoting udp': [{ type: 'eth' }, { type: 'ipv6' }, { type: 'icmpv6', icmpType: 2, mtu: 1280 }, { type: 'ipv6' }, { type: 'udp' }, { type: 'payload', len: 32, quoted: true }],
  'icmpv6 neighbour solicitation': [{ type: 'eth' }, { type: 'ipv6', hlim: 255 }, { type: 'icmpv6', icmpType: 135, target: '2001:db8::99' }, { type: 'payload', data: '0101020000000001' }],
  'linux cooked v1': [{ type: 'sll', pktType: 4, hatype: 1, addr: '02:00:00:00:00:05' }, { type: 'ipv4' }, { type: 'udp' }],
  'linux cooked v2': [{ type: 'sll2', pktType: 0, hatype: 1, ifindex: 7, addr: '02:00:00:00:00:05' }, { type: 'ipv6' }, { type: 'tcp' }],
  'bsd loopback': [{ type: 'null', family: 2 }, { type: 'ipv4' }, { type: 'udp' }],
  'raw ipv6': [{ type: 'ipv6' }, { type: 'icmpv6', icmpType: 129, id: 1, seq: 2 }],
};

for (const [name, specs] of Object.entries(CASES)) {
  test(`crafted ${name}: decodes to the built fields, all checksums verify, and rebuilds to the same bytes`, () => {
    const bytes = buildPacket(specs);
    const d = decodeFrame(bytes, linkTypeOf(specs), { payload: true });
    expect(d.error).toBeUndefined();
    expect(d.layers.map((l) => l.type)).toEqual(specs.map((s) => s.type));
    // Every field the spec gave is decoded back to the same value.
    specs.forEach((s, i) => {
      for (const [k, v] of Object.entries(s)) {
        if (['csum', 'quoteLen', 'text', 'pad'].includes(k)) continue;
        if (k === 'data' && s.type === 'payload') expect((d.layers[i] as { data: string }).data).toBe(v);
        else if (k === 'ext') expect((d.layers[i] as { ext: unknown[] }).ext.map((e) => ({ ...(e as object) }))).toEqual((v as Record<string, unknown>[]).map((e) => expect.objectContaining(e)));
        else if (k === 'options' && s.type === 'ipv4') expect((d.layers[i] as { options: { name: string }[] }).options.filter((o) => o.name !== 'eol')).toEqual((v as Record<string, unknown>[]).map((o) => expect.objectContaining(o)));
        else if (k === 'options' && s.type === 'tcp') expect((d.layers[i] as { options: { name: string }[] }).options.filter((o) => o.name !== 'eol')).toEqual((v as Record<string, unknown>[]).map((o) => expect.objectContaining(o)));
        else expect((d.layers[i] as unknown as Record<string, unknown>)[k]).toEqual(v);
      }
    });
    for (const l of d.layers) if ('checksumOk' in l && l.checksumOk !== undefined) expect({ type: l.type, ok: l.checksumOk }).toEqual({ type: l.type, ok: true });
    // The decoded JSON is a valid builder input that gives the identical frame.
    expect(buildPacket(d.layers as unknown as LayerSpec[]).equals(bytes)).toBe(true);
    expect(JSON.parse(JSON.stringify(d))).toEqual(d);
  });
}

test('a corrupted checksum is reported as invalid on the layer that carries it, and only there', () => {
  const at = (specs: LayerSpec[], layerIndex: number, fieldOffset: number) => {
    const b = buildPacket(specs);
    const d0 = decodeFrame(b, 1);
    const s = new FrameScan();
    scanFrame(s, b, 0, b.length, 1);
    b[s.off[layerIndex] + fieldOffset] ^= 0x5a;
    const d = decodeFrame(b, 1);
    return d.layers.map((l, i) => ('checksumOk' in l ? [l.type, l.checksumOk, (d0.layers[i] as { checksumOk?: boolean }).checksumOk] : [l.type]));
  };
  expect(at([{ type: 'eth' }, { type: 'ipv4' }, { type: 'tcp' }], 1, 10)).toEqual([['eth'], ['ipv4', false, true], ['tcp', true, true]]);
  expect(at([{ type: 'eth' }, { type: 'ipv4' }, { type: 'tcp' }, { type: 'payload', len: 9 }], 2, 16)).toEqual([['eth'], ['ipv4', true, true], ['tcp', false, true]]);
  expect(at([{ type: 'eth' }, { type: 'ipv6' }, { type: 'udp' }, { type: 'payload', len: 3 }], 2, 6)).toEqual([['eth'], ['ipv6'], ['udp', false, true]]);
  expect(at([{ type: 'eth' }, { type: 'ipv4' }, { type: 'icmp' }], 2, 2)).toEqual([['eth'], ['ipv4', true, true], ['icmp', false, true]]);
  expect(at([{ type: 'eth' }, { type: 'ipv6' }, { type: 'icmpv6' }], 2, 2)).toEqual([['eth'], ['ipv6'], ['icmpv6', false, true]]);
  expect(at([{ type: 'eth' }, { type: 'ipv4' }, { type: 'gre', csum: true }, { type: 'ipv4' }, { type: 'udp' }], 2, 4)).toEqual([['eth'], ['ipv4', true, true], ['gre', false, true], ['ipv4', true, true], ['udp', true, true]]);
  // A changed payload byte breaks the transport checksum (pseudo-header and payload are covered).
  expect(at([{ type: 'eth' }, { type: 'ipv4' }, { type: 'udp' }, { type: 'payload', len: 8 }], 2, 9)).toEqual([['eth'], ['ipv4', true, true], ['udp', false, true]]);
  expect(at([{ type: 'eth' }, { type: 'ipv4' }, { type: 'tcp' }], 1, 15)).toEqual([['eth'], ['ipv4', false, true], ['tcp', false, true]]);
});

test('UDP zero checksum: none over IPv4, invalid over IPv6 except on tunnel ports', () => {
  const ok = (specs: LayerSpec[], opts = {}) => layer(decode(specs, opts).layers, 'udp').checksumOk;
  expect(ok([{ type: 'eth' }, { type: 'ipv4' }, { type: 'udp', checksum: 0 }])).toBe(true);
  expect(ok([{ type: 'eth' }, { type: 'ipv6' }, { type: 'udp', checksum: 0 }])).toBe(false);
  expect(ok([{ type: 'eth' }, { type: 'ipv6' }, { type: 'udp', dport: 6080, checksum: 0 }, { type: 'gue' }, { type: 'ipv4' }, { type: 'udp' }])).toBe(true);
  expect(ok([{ type: 'eth' }, { type: 'ipv6' }, { type: 'udp', dport: 7777, checksum: 0 }, { type: 'gue' }, { type: 'ipv4' }, { type: 'udp' }], { guePort: 7777 })).toBe(true);
});

test('GUE on a configured port, GUE version 1 and control messages', () => {
  const specs: LayerSpec[] = [{ type: 'eth' }, { type: 'ipv4' }, { type: 'udp', dport: 7777 }, { type: 'gue' }, { type: 'ipv4', dst: '198.18.3.1' }, { type: 'tcp' }];
  expect(decode(specs).layers.map((l) => l.type)).toEqual(['eth', 'ipv4', 'udp']);
  expect(decode(specs, { guePort: 7777 }).layers.map((l) => l.type)).toEqual(['eth', 'ipv4', 'udp', 'gue', 'ipv4', 'tcp']);
  const v1 = decode([{ type: 'eth' }, { type: 'ipv4' }, { type: 'udp', dport: 6080 }, { type: 'gue', version: 1 }, { type: 'ipv6' }, { type: 'tcp' }]);
  expect(v1.layers.map((l) => l.type)).toEqual(['eth', 'ipv4', 'udp', 'gue', 'ipv6', 'tcp']);
  expect(layer(v1.layers, 'gue')).toMatchObject({ version: 1, proto: 41, hlen: 0 });
  const ctl = decode([{ type: 'eth' }, { type: 'ipv4' }, { type: 'udp', dport: 6080 }, { type: 'gue', control: true, proto: 0 }, { type: 'payload', len: 8 }]);
  expect(ctl.layers.map((l) => l.type)).toEqual(['eth', 'ipv4', 'udp', 'gue']);
  expect(layer(ctl.layers, 'gue').control).toBe(true);
  const bad = buildPacket([{ type: 'eth' }, { type: 'ipv4' }, { type: 'udp', dport: 6080 }, { type: 'payload', data: 'c0000000' }]);
  expect(decodeFrame(bad).error).toBe('gue header at byte 42 has version 3 (only 0 and 1 exist)');
});

test('the fast scan reports the innermost flow of tunnelled packets and the outer flow of ICMP errors', () => {
  const s = new FrameScan();
  const gue = buildPacket([{ type: 'eth' }, { type: 'ipv4', src: '198.18.2.254', dst: '198.18.2.11' }, { type: 'udp', sport: 45000, dport: 6080 }, { type: 'gue' }, { type: 'ipv4', src: '198.18.0.1', dst: '198.18.3.100' }, { type: 'tcp', sport: 40000, dport: 80 }]);
  scanFrame(s, gue, 0, gue.length, 1);
  expect([s.n, s.proto, s.sport, s.dport, s.type[s.ip], s.type[s.l4]]).toEqual([6, 6, 40000, 80, L_IPV4, L_TCP]);
  expect(Array.from(gue.subarray(s.off[s.ip] + 12, s.off[s.ip] + 16))).toEqual([198, 18, 0, 1]);
  const icmp = buildPacket([{ type: 'eth' }, { type: 'ipv4', src: '198.18.9.1', dst: '198.18.0.1' }, { type: 'icmp', icmpType: 3, code: 3 }, { type: 'ipv4' }, { type: 'udp', sport: 1, dport: 2 }]);
  scanFrame(s, icmp, 0, icmp.length, 1);
  expect([s.proto, s.ip, s.quotedFrom, s.sport, s.dport]).toEqual([1, 1, 3, 0, 0]);
});

test('a quoted datagram cut after 8 bytes of TCP still yields its ports and sequence number', () => {
  const d = decode([{ type: 'eth' }, { type: 'ipv4' }, { type: 'icmp', icmpType: 11, quoteLen: 28 }, { type: 'ipv4', src: '198.18.0.1', dst: '198.18.3.100', len: 60 }, { type: 'tcp', sport: 40000, dport: 80, seq: 99, flags: 'S' }]);
  expect(d.error).toBeUndefined();
  expect(d.layers.map((l) => [l.type, !!l.quoted, !!l.partial])).toEqual([['eth', false, false], ['ipv4', false, false], ['icmp', false, false], ['ipv4', true, false], ['tcp', true, true]]);
  expect(d.layers[4]).toEqual({ type: 'tcp', sport: 40000, dport: 80, seq: 99, quoted: true, partial: true });
  expect(layer(d.layers, 'icmp', 0).checksumOk).toBe(true);
  expect(layer(d.layers, 'ipv4', 1).checksumOk).toBe(true);
});

test('fragments: the first carries a transport header whose checksum cannot be checked, later ones carry none', () => {
  const first = decode([{ type: 'eth' }, { type: 'ipv4', mf: true, id: 5 }, { type: 'udp', len: 3008 }, { type: 'payload', len: 1000 }]);
  expect(first.error).toBeUndefined();
  expect(layer(first.layers, 'udp').checksumOk).toBeNull();
  const later = decode([{ type: 'eth' }, { type: 'ipv4', fragOffset: 1480, proto: 17, id: 5 }, { type: 'payload', len: 100 }]);
  expect(later.layers.map((l) => l.type)).toEqual(['eth', 'ipv4']);
  expect(layer(later.layers, 'ipv4').fragOffset).toBe(1480);
  const v6 = decode([{ type: 'eth' }, { type: 'ipv6', ext: [{ type: 'frag', fragOffset: 1448, mf: true, fragId: 3 }], proto: 6 }, { type: 'payload', len: 100 }]);
  expect(v6.layers.map((l) => l.type)).toEqual(['eth', 'ipv6']);
  expect(layer(v6.layers, 'ipv6').ext[0]).toEqual({ type: 'frag', nh: 6, len: 8, fragOffset: 1448, mf: true, fragId: 3 });
});

test('ethernet padding is not mistaken for payload', () => {
  const d = decodeFrame(buildPacket([{ type: 'eth', pad: true }, { type: 'ipv4' }, { type: 'tcp', flags: 'A' }]), 1, { payload: true });
  expect(d.len).toBe(60);
  expect(layer(d.layers, 'tcp')).toMatchObject({ payloadLen: 0, checksumOk: true });
  expect(d.layers.some((l) => l.type === 'payload')).toBe(false);
});

test('a capture cut by the snap length keeps the headers present, marks the cut one partial and leaves checksums unknown', () => {
  const full = buildPacket([{ type: 'eth' }, { type: 'ipv6' }, { type: 'tcp', flags: 'S', seq: 7, options: [{ kind: 2, name: 'mss', value: 1440 }, { kind: 4, name: 'sackOK' }, { kind: 8, name: 'timestamp', tsval: 1, tsecr: 2 }, { kind: 1, name: 'nop' }, { kind: 3, name: 'wscale', value: 7 }] }]);
  const d = decodeFrame(full.subarray(0, 80), 1, {}, full.length);
  expect(d.truncated).toBe(true);
  expect(d.error).toBe('tcp header at byte 54 is cut short by the capture (snap length): it needs 40 bytes, the capture has 26');
  const tcp = layer(d.layers, 'tcp');
  expect(tcp).toMatchObject({ partial: true, seq: 7, flags: 'S', hlen: 40, checksumOk: null });
  expect(tcp.options[0]).toEqual({ kind: 2, name: 'mss', len: 4, value: 1440 });
  // The same bytes as a whole (short) frame are malformed, not truncated: the IPv6 length exceeds the frame.
  const m = decodeFrame(full.subarray(0, 80), 1);
  expect(m.truncated).toBeUndefined();
  expect(m.error).toMatch(/^ipv6 header at byte 14 runs past the end of the frame/);
});

test('malformed headers stop decoding with the offset and the reason, never an exception', () => {
  const withByte = (specs: LayerSpec[], at: number, v: number) => {
    const b = buildPacket(specs);
    b[at] = v;
    return decodeFrame(b, linkTypeOf(specs));
  };
  const et: LayerSpec[] = [{ type: 'eth' }, { type: 'ipv4' }, { type: 'udp' }, { type: 'payload', len: 4 }];
  expect(withByte(et, 14, 0x43).error).toBe('ipv4 header at byte 14 has a header length of 12 bytes (minimum 20)');
  expect(withByte(et, 14, 0x55).error).toBe('ipv4 header at byte 14 has IP version 5');
  expect(withByte(et, 16, 0x10).error).toMatch(/^ipv4 header at byte 14 runs past the end/);
  expect(withByte(et, 39, 4).error).toBe('udp header at byte 34 has length 4 (minimum 8)');
  expect(withByte([{ type: 'eth' }, { type: 'ipv4' }, { type: 'tcp' }], 46, 0x30).error).toBe('tcp header at byte 34 has a data offset of 12 bytes (minimum 20)');
  expect(withByte([{ type: 'eth' }, { type: 'ipv4' }, { type: 'gre' }, { type: 'ipv4' }], 35, 2).error).toBe('gre header at byte 34 has version 2 (only 0 and 1 exist)');
  expect(decodeFrame(Buffer.alloc(10), 1).error).toMatch(/^eth header at byte 0 runs past the end/);
  expect(decodeFrame(Buffer.alloc(60), 147).error).toBe('link type 147 is not supported');
  // 30 nested IPIP headers: refused as too deep rather than recursing forever.
  const deep: LayerSpec[] = [{ type: 'eth' }, ...Array.from({ length: 30 }, () => ({ type: 'ipv4' as const }))];
  expect(decode(deep).error).toMatch(/^more than 24 layers/);
  // Bad TCP option lengths are reported in the option list.
  const opt = buildPacket([{ type: 'eth' }, { type: 'ipv4' }, { type: 'tcp', options: [{ kind: 2, name: 'malformed', len: 40 }] }]);
  expect(layer(decodeFrame(opt).layers, 'tcp').options[0]).toMatchObject({ kind: 2, name: 'malformed', error: 'length 40 runs past the end of the header' });
});
