// Seeded random-mutation fuzzing of the capture readers and the packet decoders: every mutated input must
// give either a valid result or a clean CaptureFormatError naming an offset inside the file — never another
// exception, a hang, or a partial read that is not reported. Streaming (tiny chunks) must agree with reading
// the whole buffer.
import { test, expect } from '@playwright/test';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { CaptureFormatError } from '../../src/capture/errors';
import { openCaptureBuffer, openCaptureFile } from '../../src/capture/open';
import { PcapWriter } from '../../src/capture/pcap';
import { PcapngWriter } from '../../src/capture/pcapng';
import { MemorySink } from '../../src/capture/sink';
import type { CaptureReader } from '../../src/capture/reader';
import { buildPacket, type LayerSpec } from '../../src/packet/build';
import { PacketDecoder } from '../../src/packet/decode';
import { captureStats } from '../../src/packet/stats';

const SEED = 0x5eed1234;

function prng(seed: number) {
  let x = seed >>> 0 || 1;
  const next = () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x;
  };
  return { next, int: (n: number) => next() % n, pick: <T>(a: T[]) => a[next() % a.length] };
}

const SPECS: LayerSpec[][] = [
  [{ type: 'eth' }, { type: 'ipv4', df: true }, { type: 'tcp', flags: 'S', options: [{ name: 'mss', value: 1460 }, { name: 'sackOK' }, { name: 'timestamp', tsval: 1, tsecr: 0 }, { name: 'nop' }, { name: 'wscale', value: 7 }] }],
  [{ type: 'eth' }, { type: 'ipv4' }, { type: 'tcp', flags: 'PA', options: [{ name: 'toa', port: 1, addr: '198.18.0.1' }] }, { type: 'payload', len: 100 }],
  [{ type: 'eth' }, { type: 'vlan', id: 5 }, { type: 'ipv6', ext: [{ type: 'hbh' }, { type: 'frag', fragId: 1 }] }, { type: 'udp' }, { type: 'payload', len: 30 }],
  [{ type: 'eth' }, { type: 'ipv4' }, { type: 'udp', dport: 6080 }, { type: 'gue' }, { type: 'ipv6' }, { type: 'tcp' }],
  [{ type: 'eth' }, { type: 'ipv4' }, { type: 'gre', csum: true, key: 1 }, { type: 'ipv4' }, { type: 'icmp', id: 1, seq: 1 }],
  [{ type: 'eth' }, { type: 'ipv4' }, { type: 'icmp', icmpType: 3, code: 4, mtu: 1400 }, { type: 'ipv4' }, { type: 'udp' }, { type: 'payload', len: 20 }],
  [{ type: 'eth' }, { type: 'ipv6' }, { type: 'icmpv6', icmpType: 1, code: 4 }, { type: 'ipv6' }, { type: 'tcp' }],
  [{ type: 'eth' }, { type: 'ipv6' }, { type: 'ipv4', options: [{ type: 148, data: '0000' }] }, { type: 'udp' }],
  [{ type: 'eth' }, { type: 'arp' }],
  [{ type: 'eth' }, { type: 'ipv4' }, { type: 'udp', dport: 4789 }, { type: 'vxlan', vni: 1 }, { type: 'eth' }, { type: 'ipv4' }, { type: 'tcp' }],
  [{ type: 'eth' }, { type: 'ipv6' }, { type: 'icmpv6', icmpType: 135, target: '2001:db8::1' }],
  [{ type: 'sll2' }, { type: 'ipv4' }, { type: 'udp' }],
];
const FRAMES = SPECS.map((s) => buildPacket(s));

function corpus(): Buffer[] {
  const files: Buffer[] = [];
  for (const [ns, be] of [[false, false], [true, true]]) {
    const m = new MemorySink();
    const w = new PcapWriter(m, { nanosecond: ns, bigEndian: be });
    FRAMES.forEach((f, i) => w.writePacket(1764000000 + i, i * 1000, f));
    files.push(m.toBuffer());
  }
  for (const be of [false, true]) {
    const m = new MemorySink();
    const w = new PcapngWriter(m, { bigEndian: be });
    w.addInterface({ name: 'a:eth0' });
    w.addInterface({ name: 'b:eth0', linkType: 276 });
    FRAMES.forEach((f, i) => (i === 11 ? w.writePacket(1, 1764000000, i, f) : i % 5 === 4 ? w.writeSimplePacket(f) : w.writePacket(0, 1764000000 + i, i, f)));
    files.push(m.toBuffer());
  }
  return files;
}

function mutate(src: Buffer, r: ReturnType<typeof prng>): Buffer {
  let b = Buffer.from(src);
  const rounds = 1 + r.int(3);
  for (let k = 0; k < rounds; k++) {
    switch (r.int(6)) {
      case 0: for (let j = 1 + r.int(8); j > 0; j--) b[r.int(b.length)] = r.int(256); break;
      case 1: b = b.subarray(0, r.int(b.length)); break;
      case 2: {
        if (b.length < 4) break;
        const at = r.int(b.length - 3) & ~3;
        b.writeUInt32LE(r.pick([0xffffffff, 0x7fffffff, 0, 12, 13, r.next()]) >>> 0, at);
        break;
      }
      case 3: {
        const at = r.int(b.length + 1);
        b = Buffer.concat([b.subarray(0, at), b.subarray(Math.min(b.length, at + 1 + r.int(64)))]);
        break;
      }
      case 4: {
        const at = r.int(b.length + 1);
        const len = r.int(64);
        b = Buffer.concat([b.subarray(0, at), b.subarray(at, at + len), b.subarray(at)]);
        break;
      }
      default: b[r.int(Math.max(1, Math.min(b.length, 64)))] ^= 1 << r.int(8);
    }
    if (b.length === 0) break;
  }
  return b;
}

interface Outcome {
  packets: number;
  layers: number;
  error?: string;
}

function consume(reader: () => CaptureReader, dec: PacketDecoder, size: number): Outcome {
  let packets = 0;
  let layers = 0;
  let r: CaptureReader | undefined;
  try {
    r = reader();
    while (r.next()) {
      packets++;
      const d = dec.decode(r.data, r.dataOff, r.capLen, r.linkType, r.origLen);
      layers += d.layers.length;
      JSON.stringify(d);
    }
    return { packets, layers };
  } catch (e) {
    if (!(e instanceof CaptureFormatError)) throw new Error(`not a clean error: ${(e as Error).stack}`);
    if (!(e.offset >= 0 && e.offset <= size)) throw new Error(`error offset ${e.offset} outside the file of ${size} bytes: ${e.message}`);
    return { packets, layers, error: e.message.replace(/^[^:]*: /, '') };
  } finally {
    r?.close();
  }
}

test('mutated pcap and pcapng files give valid packets or a clean error with an offset, streamed or not', () => {
  const r = prng(SEED);
  const files = corpus();
  const dec = new PacketDecoder({ payload: true });
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vslabpk-fuzz-'));
  let errors = 0;
  let clean = 0;
  try {
    for (let i = 0; i < 3000; i++) {
      const m = mutate(r.pick(files), r);
      const whole = consume(() => openCaptureBuffer(m, 'fuzz'), dec, m.length);
      if (whole.error) errors++;
      else clean++;
      if (i % 15 === 0) {
        const f = path.join(tmp, `case-${i}.cap`);
        fs.writeFileSync(f, m);
        const streamed = consume(() => openCaptureFile(f, 16 + r.int(200)), dec, m.length);
        expect({ i, ...streamed, error: streamed.error?.replace(/^.*?byte/, 'byte') }).toEqual({ i, ...whole, error: whole.error?.replace(/^.*?byte/, 'byte') });
        // The stats path (fast scan only) reaches the same end or the same error.
        try {
          const rd = openCaptureFile(f, 64);
          try {
            expect(captureStats(rd).packets).toBe(whole.packets);
          } finally {
            rd.close();
          }
          expect(whole.error).toBeUndefined();
        } catch (e) {
          if (!(e instanceof CaptureFormatError)) throw e;
          expect(e.message.replace(/^.*?byte/, 'byte')).toBe(whole.error?.replace(/^.*?byte/, 'byte'));
        }
      }
    }
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
  // Both outcomes occur: the mutations are neither all harmless nor all fatal.
  expect(errors).toBeGreaterThan(300);
  expect(clean).toBeGreaterThan(300);
});

test('mutated frames on every supported link type decode without throwing, with consistent layer maps', () => {
  const r = prng(SEED ^ 0xabcdef);
  const dec = new PacketDecoder({ payload: true, guePort: 6080 });
  const linkTypes = [1, 1, 1, 101, 113, 276, 0, 228, 229];
  let withError = 0;
  const problems: string[] = [];
  for (let i = 0; i < 20000; i++) {
    const src = r.pick(FRAMES);
    const m = mutate(src, r);
    const capLen = m.length;
    const origLen = r.int(4) === 0 ? capLen + r.int(3000) : capLen;
    const d = dec.decode(m, 0, capLen, r.pick(linkTypes), origLen);
    if (d.error) withError++;
    const s = dec.scan;
    for (let k = 0; k < s.n; k++) {
      if (!(s.off[k] >= 0 && s.off[k] + s.hlen[k] <= capLen) || (k > 0 && s.off[k] < s.off[k - 1])) {
        problems.push(`case ${i}: layer ${k} at ${s.off[k]}+${s.hlen[k]} outside ${capLen} bytes or out of order: ${m.toString('hex')}`);
      }
    }
    JSON.stringify(d);
  }
  // (Collected rather than asserted per case: 150k separate expect() calls are slow in Playwright.)
  expect(problems.slice(0, 3)).toEqual([]);
  expect(withError).toBeGreaterThan(1000);
});
