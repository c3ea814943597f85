// pcap and pcapng reading/writing: byte orders, timestamp resolutions, several interfaces, block types,
// streaming with tiny chunks, merging, and precise errors for truncated or corrupt files.
import { test, expect } from '@playwright/test';
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { CaptureFormatError } from '../../src/capture/errors';
import { mergeCaptures } from '../../src/capture/merge';
import { openCaptureBuffer, openCaptureFile, readAllPackets } from '../../src/capture/open';
import { PcapWriter } from '../../src/capture/pcap';
import { PcapngWriter } from '../../src/capture/pcapng';
import { FileSink, MemorySink } from '../../src/capture/sink';
import { buildPacket } from '../../src/packet/build';

let tmp = '';
// Created per worker (spec files are also loaded by the runner's main process, which runs no test).
test.beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vslabpk-formats-'));
});
test.afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

function frames(n: number): Buffer[] {
  return Array.from({ length: n }, (_, i) => buildPacket([
    { type: 'eth' }, { type: 'ipv4', id: i, src: `198.18.0.${1 + (i % 200)}` },
    { type: 'udp', sport: 1000 + i, dport: 53 }, { type: 'payload', len: (i * 37) % 1400 },
  ]));
}

const TS = (i: number): [number, number] => [1764000000 + Math.floor(i / 3), (i * 123456789) % 1e9];

function pcapBytes(opts: { nanosecond?: boolean; bigEndian?: boolean }, data: Buffer[]): Buffer {
  const sink = new MemorySink();
  const w = new PcapWriter(sink, opts);
  data.forEach((d, i) => w.writePacket(...TS(i), d));
  w.close();
  return sink.toBuffer();
}

for (const bigEndian of [false, true]) {
  for (const nanosecond of [false, true]) {
    test(`pcap ${bigEndian ? 'big' : 'little'}-endian ${nanosecond ? 'nanosecond' : 'microsecond'}: write and read back`, () => {
      const data = frames(50);
      const { reader, packets } = readAllPackets(pcapBytes({ bigEndian, nanosecond }, data));
      expect(reader.format).toBe('pcap');
      expect(packets.length).toBe(50);
      packets.forEach((p, i) => {
        expect(p.data.equals(data[i])).toBe(true);
        expect(p.origLen).toBe(data[i].length);
        expect(p.linkType).toBe(1);
        const [s, ns] = TS(i);
        expect(p.tsSec).toBe(s);
        expect(p.tsNsec).toBe(nanosecond ? ns : Math.floor(ns / 1000) * 1000);
        expect(p.index).toBe(i);
      });
    });
  }
}

test('tcpdump reads our big-endian nanosecond pcap with the same timestamps and lengths', () => {
  const data = frames(10);
  const file = path.join(tmp, 'be-ns.pcap');
  fs.writeFileSync(file, pcapBytes({ bigEndian: true, nanosecond: true }, data));
  const out = execFileSync('tcpdump', ['-nn', '-tt', '--time-stamp-precision=nano', '-r', file], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim().split('\n');
  expect(out.length).toBe(10);
  out.forEach((line, i) => {
    const [s, ns] = TS(i);
    expect(line.startsWith(`${s}.${String(ns).padStart(9, '0')} IP 198.18.0.${1 + i}.${1000 + i} > 198.18.0.2.53:`)).toBe(true);
  });
});

test('pcapng with several named interfaces, enhanced and simple packet blocks, both byte orders; tshark agrees', () => {
  for (const bigEndian of [false, true]) {
    const sink = new MemorySink();
    const w = new PcapngWriter(sink, { bigEndian });
    const ifs = ['client:eth0', 'director:eth0', 'rs1:eth0'].map((name) => w.addInterface({ name, linkType: 1 }));
    const data = frames(30);
    data.forEach((d, i) => w.writePacket(ifs[i % 3], ...TS(i), d, d.length + (i % 2)));
    w.writeSimplePacket(data[0]);
    w.close();
    const buf = sink.toBuffer();
    const { reader, packets } = readAllPackets(buf);
    expect(reader.format).toBe('pcapng');
    expect(reader.interfaces.map((i) => i.name)).toEqual(['client:eth0', 'director:eth0', 'rs1:eth0']);
    expect(packets.length).toBe(31);
    packets.slice(0, 30).forEach((p, i) => {
      expect(p.ifIndex).toBe(i % 3);
      expect([p.tsSec, p.tsNsec]).toEqual(TS(i));
      expect(p.data.equals(data[i])).toBe(true);
      expect(p.origLen).toBe(data[i].length + (i % 2));
    });
    expect(packets[30].data.equals(data[0])).toBe(true);
    expect(packets[30].ifIndex).toBe(0);
    const file = path.join(tmp, `multi-${bigEndian}.pcapng`);
    fs.writeFileSync(file, buf);
    const names = execFileSync('tshark', ['-n', '-r', file, '-T', 'fields', '-e', 'frame.interface_name', '-e', 'frame.time_epoch'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim().split('\n');
    expect(names.length).toBe(31);
    expect(names[4].split('\t')[0]).toBe('director:eth0');
    expect(names[4].split('\t')[1]).toBe(`${TS(4)[0]}.${String(TS(4)[1]).padStart(9, '0')}`);
  }
});

/** A hand-assembled pcapng for layouts our writer does not produce. */
class Png {
  parts: Buffer[] = [];
  constructor(private le = true) {}
  private u16(v: number) { const b = Buffer.alloc(2); this.le ? b.writeUInt16LE(v) : b.writeUInt16BE(v); return b; }
  private u32(v: number) { const b = Buffer.alloc(4); this.le ? b.writeUInt32LE(v >>> 0) : b.writeUInt32BE(v >>> 0); return b; }
  opt(code: number, val: Buffer) { return Buffer.concat([this.u16(code), this.u16(val.length), val, Buffer.alloc((4 - (val.length % 4)) % 4)]); }
  block(type: number, body: Buffer) { const len = 12 + body.length; this.parts.push(Buffer.concat([this.u32(type), this.u32(len), body, this.u32(len)])); return this; }
  shb(le = this.le) { this.le = le; return this.block(0x0a0d0d0a, Buffer.concat([this.u32(0x1a2b3c4d), this.u16(1), this.u16(0), Buffer.alloc(8, 0xff)])); }
  idb(opts: Buffer[] = [], linkType = 1, snap = 0) { return this.block(1, Buffer.concat([this.u16(linkType), this.u16(0), this.u32(snap), ...opts, ...(opts.length ? [Buffer.alloc(4)] : [])])); }
  epb(ifId: number, hi: number, lo: number, data: Buffer) { return this.block(6, Buffer.concat([this.u32(ifId), this.u32(hi), this.u32(lo), this.u32(data.length), this.u32(data.length), data, Buffer.alloc((4 - (data.length % 4)) % 4)])); }
  pb(ifId: number, hi: number, lo: number, data: Buffer) { return this.block(2, Buffer.concat([this.u16(ifId), this.u16(0), this.u32(hi), this.u32(lo), this.u32(data.length), this.u32(data.length), data, Buffer.alloc((4 - (data.length % 4)) % 4)])); }
  bytes() { return Buffer.concat(this.parts); }
}

test('pcapng timestamp resolutions (default µs, ms, ns, 2^-10, ps), if_tsoffset, obsolete PB, skipped blocks, sections with other byte order', () => {
  const d = frames(1)[0];
  const g = new Png();
  const v64 = (v: bigint): [number, number] => [Number(v >> 32n), Number(v & 0xffffffffn)];
  g.shb();
  g.idb(); // 0: default 10^-6
  g.idb([g.opt(9, Buffer.from([3]))]); // 1: ms
  g.idb([g.opt(9, Buffer.from([9])), g.opt(2, Buffer.from('ns-if'))]); // 2: ns, named
  g.idb([g.opt(9, Buffer.from([0x8a]))]); // 3: 2^-10
  g.idb([g.opt(9, Buffer.from([12])), g.opt(14, Buffer.from([0x00, 0x81, 0x24, 0x69, 0, 0, 0, 0]))]); // 4: ps since 1764000000 (if_tsoffset)
  g.idb([g.opt(14, Buffer.from([100, 0, 0, 0, 0, 0, 0, 0]))]); // 5: µs with +100 s offset
  g.block(4, Buffer.alloc(8)); // name resolution block: skipped
  g.epb(0, ...v64(1764000000123456n), d);
  g.epb(1, ...v64(1764000000123n), d);
  g.epb(2, ...v64(1764000000123456789n), d);
  g.epb(3, ...v64((1764000000n << 10n) + 512n), d);
  g.epb(4, ...v64(123456789012n), d);
  g.epb(5, ...v64(1764000000000001n), d);
  g.block(5, Buffer.alloc(12)); // interface statistics: skipped
  g.pb(2, ...v64(1764000001000000007n), d);
  g.shb(false); // a second section, big-endian: interfaces start again
  g.idb([g.opt(2, Buffer.from('be-if'))]);
  g.epb(0, ...v64(1764000002000001n), d);
  const { reader, packets } = readAllPackets(g.bytes());
  expect(packets.map((p) => [p.tsSec, p.tsNsec])).toEqual([
    [1764000000, 123456000], [1764000000, 123000000], [1764000000, 123456789], [1764000000, 500000000],
    [1764000000, 123456789], [1764000100, 1000], [1764000001, 7], [1764000002, 1000],
  ]);
  expect(packets.map((p) => p.ifIndex)).toEqual([0, 1, 2, 3, 4, 5, 2, 6]);
  expect(reader.interfaceName(2)).toBe('ns-if');
  expect(reader.interfaceName(6)).toBe('be-if');
  expect(reader.interfaceName(0)).toBe('if0');
  expect(packets.every((p) => p.data.equals(d))).toBe(true);
});

test('streaming a file in chunks smaller than one packet gives exactly what reading it whole gives', () => {
  const data = frames(300);
  const file = path.join(tmp, 'stream.pcapng');
  const w = new PcapngWriter(new FileSink(file));
  w.addInterface({ name: 'a:eth0' });
  w.addInterface({ name: 'b:eth0' });
  data.forEach((d, i) => w.writePacket(i % 2, ...TS(i), d));
  w.close();
  const whole = readAllPackets(fs.readFileSync(file)).packets;
  for (const chunk of [64, 1000, 4096]) {
    const r = openCaptureFile(file, chunk);
    const got = [];
    while (r.next()) got.push(r.packet());
    r.close();
    expect(got.length).toBe(whole.length);
    got.forEach((p, i) => {
      expect(p.data.equals(whole[i].data)).toBe(true);
      expect(p.fileOffset).toBe(whole[i].fileOffset);
      expect([p.tsSec, p.tsNsec, p.ifIndex]).toEqual([whole[i].tsSec, whole[i].tsNsec, whole[i].ifIndex]);
    });
  }
});

test('merge orders by timestamp, keeps input order on ties and names interfaces node:iface', () => {
  const f1 = path.join(tmp, 'm1.pcap');
  const f2 = path.join(tmp, 'm2.pcap');
  const d = frames(6);
  const w1 = new PcapWriter(new FileSink(f1), { nanosecond: true });
  w1.writePacket(10, 5, d[0]);
  w1.writePacket(10, 20, d[1]);
  w1.writePacket(12, 0, d[2]);
  w1.close();
  const w2 = new PcapWriter(new FileSink(f2), { nanosecond: true, bigEndian: true });
  w2.writePacket(10, 5, d[3]);
  w2.writePacket(11, 0, d[4]);
  w2.close();
  const out = path.join(tmp, 'merged.pcapng');
  const res = mergeCaptures([{ path: f1, name: 'client:eth0' }, { path: f2, name: 'rs1:eth0' }], out);
  expect(res).toEqual({ packets: 5, interfaces: ['client:eth0', 'rs1:eth0'] });
  const { reader, packets } = readAllPackets(out);
  expect(packets.map((p) => `${reader.interfaceName(p.ifIndex)} ${p.tsSec}.${p.tsNsec}`)).toEqual([
    'client:eth0 10.5', 'rs1:eth0 10.5', 'client:eth0 10.20', 'rs1:eth0 11.0', 'client:eth0 12.0',
  ]);
  expect(packets[1].data.equals(d[3])).toBe(true);
  // An input without packets still contributes its interface: the link was captured and stayed silent.
  const empty = path.join(tmp, 'empty.pcap');
  new PcapWriter(new FileSink(empty)).close();
  const out2 = path.join(tmp, 'merged2.pcapng');
  expect(mergeCaptures([{ path: f1, name: 'client:eth0' }, { path: empty, name: 'rs2:eth0' }], out2)).toEqual({ packets: 3, interfaces: ['client:eth0', 'rs2:eth0'] });
  expect(readAllPackets(out2).reader.interfaces.map((i) => i.name)).toEqual(['client:eth0', 'rs2:eth0']);
});

function readError(buf: Buffer): CaptureFormatError {
  try {
    const r = openCaptureBuffer(buf, 'x.cap');
    while (r.next()) { /* read all */ }
  } catch (e) {
    expect(e).toBeInstanceOf(CaptureFormatError);
    return e as CaptureFormatError;
  }
  throw new Error('expected a CaptureFormatError');
}

test('corrupt and truncated pcap files are reported with the byte offset and the problem', () => {
  const good = pcapBytes({}, frames(3));
  const rec2 = 24 + 16 + frames(3)[0].length; // offset of the second record
  expect(readError(Buffer.alloc(0)).message).toMatch(/^x\.cap: byte 0: file too short/);
  expect(readError(Buffer.from('hello world, not a capture at all')).message).toMatch(/byte 0: not a pcap file: magic 0x68656c6c/);
  let e = readError(good.subarray(0, rec2 + 7));
  expect(e.offset).toBe(rec2);
  expect(e.message).toMatch(/truncated record header: file ends 7 bytes into the 16-byte header of packet 2/);
  e = readError(good.subarray(0, rec2 + 16 + 10));
  expect(e.offset).toBe(rec2);
  expect(e.message).toMatch(/truncated packet 2: its record says \d+ captured bytes but the file ends after 10/);
  const huge = Buffer.from(good);
  huge.writeUInt32LE(0x7fffffff, rec2 + 8);
  expect(readError(huge).message).toMatch(new RegExp(`byte ${rec2}: packet 2 claims 2147483647 captured bytes`));
  const frac = Buffer.from(good);
  frac.writeUInt32LE(1500000, rec2 + 4);
  expect(readError(frac).message).toMatch(new RegExp(`byte ${rec2 + 4}: packet 2 has a timestamp fraction of 1500000`));
  const ver = Buffer.from(good);
  ver.writeUInt16LE(3, 4);
  expect(readError(ver).message).toMatch(/byte 4: unsupported pcap version 3\.4/);
});

test('corrupt and truncated pcapng files are reported with the byte offset and the problem', () => {
  const d = frames(1)[0];
  const base = () => new Png().shb().idb();
  const shbLen = 28;
  const idbLen = 20;
  const epbAt = shbLen + idbLen;
  const good = base().epb(0, 0, 1, d).bytes();
  let e = readError(good.subarray(0, epbAt + 40));
  expect(e.offset).toBe(epbAt);
  expect(e.message).toMatch(/truncated enhanced packet block: it claims \d+ bytes but the file ends after 40/);
  const bom = Buffer.from(good);
  bom.writeUInt32LE(0x12345678, 8);
  expect(readError(bom).message).toMatch(/byte 8: section header byte-order magic 0x12345678/);
  const odd = Buffer.from(good);
  odd.writeUInt32LE(odd.readUInt32LE(epbAt + 4) + 1, epbAt + 4);
  expect(readError(odd).message).toMatch(new RegExp(`byte ${epbAt}: enhanced packet block length \\d+ is not a multiple of 4`));
  const trail = Buffer.from(good);
  trail.writeUInt32LE(999, good.length - 4);
  expect(readError(trail).message).toMatch(new RegExp(`byte ${good.length - 4}: enhanced packet block's trailing length 999 differs`));
  const cap = Buffer.from(good);
  cap.writeUInt32LE(100000, epbAt + 20);
  expect(readError(cap).message).toMatch(new RegExp(`byte ${epbAt + 20}: enhanced packet block's captured length 100000 exceeds`));
  expect(readError(base().epb(3, 0, 1, d).bytes()).message).toMatch(new RegExp(`byte ${epbAt + 8}: enhanced packet block refers to interface 3, but the section defines only 1`));
  expect(readError(new Png().shb().block(3, Buffer.alloc(8)).bytes()).message).toMatch(/byte 28: simple packet block before any interface/);
  const big = Buffer.from(good);
  big.writeUInt32LE(0x7ffffff0, epbAt + 4);
  expect(readError(big).message).toMatch(/exceeds the 67108864-byte limit/);
  expect(readError(Buffer.concat([good, Buffer.from([1, 2, 3])])).message).toMatch(new RegExp(`byte ${good.length}: truncated block header: file ends 3 bytes into`));
  const opt = new Png().shb();
  opt.block(1, Buffer.concat([Buffer.from([1, 0, 0, 0, 0, 0, 0, 0]), Buffer.from([2, 0, 200, 0])]));
  expect(readError(opt.bytes()).message).toMatch(/byte 44: option 2 with length 200 runs past the end of its block/);
});
