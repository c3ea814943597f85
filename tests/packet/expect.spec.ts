// Expectations: masks on any field path, layer structure, presence/absence/counts, time windows, JSON
// round trips, readable diffs and the run-directory file checks.
import { test, expect } from '@playwright/test';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { buildPacket, type LayerSpec } from '../../src/packet/build';
import { decodeFrame } from '../../src/packet/decode';
import { diffPacket, evaluateExpectation, expectationFromPacket, parseMask, renderResult, type PacketExpectation } from '../../src/packet/expect';
import type { DecodedPacket } from '../../src/packet/layers';
import { readExpectationFile, validateExpectationFile, writeExpectationFile } from '../../src/packet/rundir';

const SYN: LayerSpec[] = [
  { type: 'eth', src: '02:00:00:00:00:01', dst: '02:00:00:00:00:0b' },
  { type: 'ipv4', src: '198.18.0.1', dst: '198.18.2.11', ttl: 63, id: 100, df: true },
  { type: 'tcp', sport: 40000, dport: 80, seq: 5000, flags: 'S', options: [{ name: 'mss', value: 1460 }, { name: 'timestamp', tsval: 77, tsecr: 0 }] },
];

function seen(specs: LayerSpec[], link: string, index: number, ts = `1764000000.${String(index).padStart(9, '0')}`): DecodedPacket {
  return { ...decodeFrame(buildPacket(specs), 1, { payload: true }), link, index, ts };
}

const change = (specs: LayerSpec[], type: string, fields: Record<string, unknown>) => specs.map((l) => (l.type === type ? { ...l, ...fields } : l)) as LayerSpec[];

test('a full expectation matches the identical packet and names each differing field of the closest one', () => {
  const exp = expectationFromPacket({ id: 'syn', link: 'dir:eth1', packet: buildPacket(SYN) });
  const packets = [
    seen(change(SYN, 'ipv4', { dst: '198.18.2.12' }), 'dir:eth1', 0),
    seen(change(change(SYN, 'ipv4', { ttl: 64, id: 7 }), 'eth', { dst: '02:00:00:00:00:0c' }), 'dir:eth1', 1),
    seen(SYN, 'client:eth0', 2),
  ];
  const r = evaluateExpectation(exp, packets);
  expect(r.ok).toBe(false);
  expect(r.candidates).toBe(2);
  // Closest: packet 0 (dst and both checksums differ) vs packet 1 (mac, ttl, id, ip checksum).
  expect(r.closest?.packet.index).toBe(0);
  const bad = r.closest!.diff.layers.flatMap((l) => l.fields.filter((f) => f.status === 'mismatch').map((f) => `${l.expectedType}.${f.field}`));
  expect(bad).toEqual(['ipv4.dst', 'ipv4.checksum', 'tcp.checksum']);
  const text = renderResult(r);
  expect(text).toContain('FAIL syn [present on dir:eth1]: no matching packet among 2 on dir:eth1; closest #0 differs in 3 field(s)');
  expect(text).toMatch(/✗ ipv4\s+dst\s+198\.18\.2\.11\s+198\.18\.2\.12/);
  // Masking the varying fields makes the other packet match.
  const masked = { ...exp, ignore: ['eth.dst', 'ipv4.ttl', 'ipv4.id', 'ipv4.checksum'] };
  const r2 = evaluateExpectation(masked, packets);
  expect(r2.ok).toBe(true);
  expect(r2.matched).toEqual([{ index: 1, ts: '1764000000.000000001' }]);
});

test('masks: whole layers, any layer, the nth layer of a type, one TCP option or one field of it', () => {
  const tunnel: LayerSpec[] = [{ type: 'eth' }, { type: 'ipv4', src: '198.18.2.254', dst: '198.18.2.11', ttl: 64 }, { type: 'ipv4', src: '198.18.0.1', dst: '198.18.3.100', ttl: 63 }, { type: 'tcp', flags: 'S', options: [{ name: 'mss', value: 1460 }, { name: 'timestamp', tsval: 1, tsecr: 0 }] }];
  const expected = decodeFrame(buildPacket(tunnel), 1).layers as never[];
  const other = decodeFrame(buildPacket([{ type: 'eth', src: '02:00:00:00:00:99' }, { type: 'ipv4', src: '198.18.2.254', dst: '198.18.2.11', ttl: 64, id: 5 }, { type: 'ipv4', src: '198.18.0.1', dst: '198.18.3.100', ttl: 62 }, { type: 'tcp', flags: 'S', options: [{ name: 'mss', value: 1460 }, { name: 'timestamp', tsval: 999, tsecr: 0 }] }]), 1);
  const mism = (ignore: string[]) => diffPacket(expected, other, ignore).layers.flatMap((l) => l.fields.filter((f) => f.status === 'mismatch').map((f) => `${l.index}.${f.field}`));
  expect(mism([])).toEqual(['0.src', '1.id', '1.checksum', '2.ttl', '2.checksum', '3.options', '3.checksum']);
  expect(mism(['eth', '*.checksum', 'ipv4[0].id', 'ipv4[1].ttl', 'tcp.options.timestamp'])).toEqual([]);
  expect(mism(['eth', '*.checksum', 'ipv4.id', 'ipv4.ttl', 'tcp.options.timestamp.tsval'])).toEqual([]);
  // Masking the wrong occurrence leaves the difference visible.
  expect(mism(['eth', '*.checksum', 'ipv4[0].id', 'ipv4[0].ttl', 'tcp.options'])).toEqual(['2.ttl']);
  expect(() => parseMask('ipv4..id')).toThrow(/is not of the form/);
});

test('layer structure must match: a missing tunnel header or an extra one is a mismatch', () => {
  const plain = seen(SYN, 'l', 0);
  const r = diffPacket([{ type: 'eth' }, { type: 'ipv4' }, { type: 'ipv4' }, { type: 'tcp' }], plain);
  expect(r.mismatches).toBe(2);
  expect(r.layers[2].fields[0]).toEqual({ field: 'type', expected: 'ipv4', seen: 'tcp', status: 'mismatch' });
  expect(r.layers[3].fields[0]).toEqual({ field: 'type', expected: 'tcp', seen: '(no layer)', status: 'mismatch' });
  // A payload layer of the seen packet is ignored unless the expectation includes one.
  expect(diffPacket([{ type: 'eth' }, { type: 'ipv4' }, { type: 'tcp' }], seen([...SYN, { type: 'payload', text: 'x' }], 'l', 0)).mismatches).toBe(0);
  expect(diffPacket([{ type: 'eth' }, { type: 'ipv4' }, { type: 'tcp' }, { type: 'payload', data: '79' }], seen([...SYN, { type: 'payload', text: 'x' }], 'l', 0)).mismatches).toBe(1);
});

test('absence, counts, time windows and uncaptured links', () => {
  const packets = [0, 1, 2].map((i) => seen(SYN, 'rs:eth0', i));
  const base: PacketExpectation = { id: 'e', link: 'rs:eth0', layers: [{ type: 'eth' }, { type: 'ipv4', dst: '198.18.2.11' }, { type: 'tcp', flags: 'S' }] };
  expect(evaluateExpectation(base, packets).ok).toBe(true);
  expect(evaluateExpectation({ ...base, count: { min: 3, max: 3 } }, packets).ok).toBe(true);
  const tooMany = evaluateExpectation({ ...base, count: { max: 1 } }, packets);
  expect(tooMany.ok).toBe(false);
  expect(tooMany.reason).toBe('3 matching packet(s) on rs:eth0, expected 1..1');
  const absent = evaluateExpectation({ ...base, mode: 'absent' }, packets);
  expect(absent.ok).toBe(false);
  expect(absent.reason).toBe('3 matching packet(s) on rs:eth0, expected none (first #0)');
  expect(renderResult(absent)).toContain('offending packet #0');
  expect(evaluateExpectation({ ...base, mode: 'absent', layers: [{ type: 'eth' }, { type: 'ipv4', dst: '198.18.3.100' }, { type: 'tcp' }] }, packets).ok).toBe(true);
  const windowed = evaluateExpectation({ ...base, after: '1764000000.000000001', before: '1764000000.000000001' }, packets);
  expect(windowed.matched.map((m) => m.index)).toEqual([1]);
  const nolink = evaluateExpectation({ ...base, link: 'rs:eth9', mode: 'absent' }, packets, ['rs:eth0']);
  expect(nolink).toMatchObject({ ok: false, reason: 'no capture of link rs:eth9 (captured: rs:eth0)' });
  expect(evaluateExpectation(base, [], ['rs:eth0']).reason).toBe('no packet at all on rs:eth0');
});

test('expectations survive a JSON round trip with the same verdicts', () => {
  const packets = [seen(SYN, 'dir:eth1', 0), seen(change(SYN, 'tcp', { dport: 81 }), 'dir:eth1', 1)];
  const exps: PacketExpectation[] = [
    expectationFromPacket({ id: 'full', link: 'dir:eth1', packet: buildPacket(SYN), ignore: ['ipv4.id'] }),
    expectationFromPacket({ id: 'wrong-port', link: 'dir:eth1', packet: buildPacket(change(SYN, 'tcp', { dport: 82 })) }),
    { id: 'absent', link: 'dir:eth1', mode: 'absent', layers: [{ type: 'eth' }, { type: 'ipv4' }, { type: 'udp' }] },
  ];
  const again = JSON.parse(JSON.stringify(exps)) as PacketExpectation[];
  const a = exps.map((e) => evaluateExpectation(e, packets));
  const b = again.map((e) => evaluateExpectation(e, JSON.parse(JSON.stringify(packets))));
  expect(b).toEqual(a);
  expect(a.map((r) => r.ok)).toEqual([true, false, true]);
});

test('expectation files are checked and errors name the JSON path', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vslabpk-exp-'));
  try {
    const file = { version: 1 as const, testId: 't1', expectations: [{ id: 'a', link: 'x:eth0', layers: [{ type: 'eth' as const }] }], verdicts: { a: 'pass' as const } };
    writeExpectationFile(dir, file);
    expect(readExpectationFile(dir)).toEqual(file);
    expect(() => validateExpectationFile({ ...file, version: 2 })).toThrow('expectations.json: $.version: must be 1 (found 2)');
    expect(() => validateExpectationFile({ ...file, expectations: [{ id: 'a', link: 'x', layers: [{ type: 'ip' }] }] })).toThrow(/\$\.expectations\[0\]\.layers\[0\]\.type: must be one of eth/);
    expect(() => validateExpectationFile({ ...file, expectations: [file.expectations[0], file.expectations[0]] })).toThrow(/\$\.expectations\[1\]\.id: "a" is used twice/);
    expect(() => validateExpectationFile({ ...file, expectations: [{ ...file.expectations[0], ignore: ['tcp..x'] }] })).toThrow(/\$\.expectations\[0\]\.ignore\[0\]: mask "tcp\.\.x"/);
    expect(() => validateExpectationFile({ ...file, verdicts: { a: 'ok' } })).toThrow(/\$\.verdicts\.a: must be "pass" or "fail"/);
    fs.writeFileSync(path.join(dir, 'expectations.json'), '{ broken');
    expect(() => readExpectationFile(dir)).toThrow(/expectations\.json: .*JSON/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('checksums: 0x0000 and 0xffff are the same ones\' complement zero for TCP, ICMP and IPv4, not for UDP (0 = no checksum)', () => {
  // Found by the distribution suite: a proxy's segment whose sum folds to zero went out as 0xffff; the oracle's
  // rebuilt copy says 0x0000. Both verify.
  const seenWith = (type: string, checksum: number) => ({ layers: [{ type, checksum }] } as unknown as DecodedPacket);
  for (const type of ['tcp', 'icmp', 'ipv4']) {
    expect(diffPacket([{ type, checksum: 0 } as never], seenWith(type, 0xffff)).mismatches, type).toBe(0);
    expect(diffPacket([{ type, checksum: 0xffff } as never], seenWith(type, 0)).mismatches, type).toBe(0);
    expect(diffPacket([{ type, checksum: 0 } as never], seenWith(type, 0xfffe)).mismatches, type).toBe(1);
  }
  expect(diffPacket([{ type: 'udp', checksum: 0 } as never], seenWith('udp', 0xffff)).mismatches).toBe(1);
});
