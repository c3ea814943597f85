// Decode throughput: generate a 1,000,000-packet pcap with a realistic protocol mix in /tmp, decode every
// packet on the fast path (layer map + innermost 5-tuple, no per-field objects), then with full JSON
// objects, and compare with tshark extracting the 5-tuple from the same file.
// Run: node bench/run.js decode [--packets N] [--keep] [--no-tshark]
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import { openCaptureFile } from '../src/capture/open';
import { PcapWriter } from '../src/capture/pcap';
import { FileSink } from '../src/capture/sink';
import { buildPacket, type LayerSpec } from '../src/packet/build';
import { PacketDecoder } from '../src/packet/decode';
import { FrameScan, L_IPV4, scanFrame } from '../src/packet/scan';

const args = process.argv.slice(2);
const argVal = (k: string, d: string) => {
  const i = args.indexOf(k);
  return i >= 0 ? args[i + 1] : d;
};
const PACKETS = Number(argVal('--packets', '1000000'));
const FILE = argVal('--file', '/tmp/vslabpk-bench-decode.pcap');
const TARGET_MBPS = 1000;
const TARGET_RATIO = 10;

// Deterministic PRNG so every run decodes the same file.
let seed = 0x2545f491;
const rnd = () => {
  seed ^= seed << 13;
  seed ^= seed >>> 17;
  seed ^= seed << 5;
  return (seed >>> 0) / 4294967296;
};
const ri = (lo: number, hi: number) => lo + Math.floor(rnd() * (hi - lo + 1));

/** IMIX-like payload sizes: many small, some medium, many full-size. */
function tcpPayload(maxSeg: number): number {
  const r = rnd();
  return r < 0.45 ? 0 : r < 0.6 ? ri(1, 200) : r < 0.7 ? ri(200, 600) : maxSeg;
}

function template(): LayerSpec[] {
  const v4 = () => `198.18.${ri(0, 255)}.${ri(1, 254)}`;
  const v6 = () => `2001:db8:${ri(0, 0xffff).toString(16)}::${ri(1, 0xffff).toString(16)}`;
  const eth: LayerSpec = { type: 'eth', src: '02:00:00:00:00:01', dst: '02:00:00:00:00:02' };
  const tcp = (mss: number): LayerSpec[] => [
    { type: 'tcp', sport: ri(1024, 65535), dport: [80, 443, 8080][ri(0, 2)], seq: ri(0, 2 ** 31), ack: ri(0, 2 ** 31), flags: rnd() < 0.1 ? 'S' : 'PA', options: [{ kind: 1, name: 'nop' }, { kind: 1, name: 'nop' }, { kind: 8, name: 'timestamp', tsval: ri(0, 1e9), tsecr: ri(0, 1e9) }] },
    { type: 'payload', len: tcpPayload(mss) },
  ];
  const udp = (): LayerSpec[] => [{ type: 'udp', sport: ri(1024, 65535), dport: [53, 443, 123][ri(0, 2)] }, { type: 'payload', len: rnd() < 0.6 ? ri(20, 200) : ri(1000, 1350) }];
  const r = rnd();
  if (r < 0.45) return [eth, { type: 'ipv4', src: v4(), dst: v4(), id: ri(0, 65535), df: true }, ...tcp(1448)];
  if (r < 0.6) return [eth, { type: 'ipv6', src: v6(), dst: v6() }, ...tcp(1428)];
  if (r < 0.72) return [eth, { type: 'ipv4', src: v4(), dst: v4(), id: ri(0, 65535) }, ...udp()];
  if (r < 0.77) return [eth, { type: 'ipv6', src: v6(), dst: v6() }, ...udp()];
  if (r < 0.82) return [eth, { type: 'ipv4', src: v4(), dst: v4() }, { type: 'ipv4', src: v4(), dst: v4() }, ...tcp(1428)];
  if (r < 0.85) return [eth, { type: 'ipv4', src: v4(), dst: v4() }, { type: 'udp', sport: ri(32768, 60999) }, { type: 'gue' }, { type: 'ipv4', src: v4(), dst: v4() }, ...tcp(1416)];
  if (r < 0.87) return [eth, { type: 'ipv4', src: v4(), dst: v4() }, { type: 'gre' }, { type: 'ipv4', src: v4(), dst: v4() }, ...tcp(1424)];
  if (r < 0.9) return [eth, { type: 'vlan', id: ri(1, 4094) }, { type: 'ipv4', src: v4(), dst: v4() }, ...tcp(1444)];
  if (r < 0.93) return [eth, { type: 'ipv4', src: v4(), dst: v4() }, { type: 'icmp', id: ri(0, 65535), seq: ri(0, 65535) }, { type: 'payload', len: 56 }];
  if (r < 0.94) return [eth, { type: 'ipv4', src: v4(), dst: v4() }, { type: 'icmp', icmpType: 3, code: 3 }, { type: 'ipv4', src: v4(), dst: v4() }, { type: 'udp' }, { type: 'payload', len: 40 }];
  if (r < 0.97) return [eth, { type: 'ipv6', src: v6(), dst: v6(), hlim: 255 }, { type: 'icmpv6', icmpType: 135, target: v6() }];
  return [eth, { type: 'arp', op: ri(1, 2), psrc: v4(), pdst: v4() }];
}

function generate(): { bytes: number } {
  const templates = Array.from({ length: 20000 }, () => buildPacket(template()));
  const w = new PcapWriter(new FileSink(FILE, 4 << 20));
  let sec = 1764000000;
  let nsec = 0;
  for (let i = 0; i < PACKETS; i++) {
    nsec += ri(1000, 20000);
    if (nsec >= 1e9) {
      sec++;
      nsec -= 1e9;
    }
    w.writePacket(sec, nsec, templates[ri(0, templates.length - 1)]);
  }
  w.close();
  return { bytes: fs.statSync(FILE).size };
}

function timeIt<T>(f: () => T): { ms: number; value: T } {
  const t0 = process.hrtime.bigint();
  const value = f();
  return { ms: Number(process.hrtime.bigint() - t0) / 1e6, value };
}

/** Fast path: layer map + innermost 5-tuple of every packet; returns a digest so nothing is optimised away. */
function fastPass(): { packets: number; digest: number } {
  const r = openCaptureFile(FILE, 16 << 20);
  const s = new FrameScan();
  let packets = 0;
  let digest = 0;
  while (r.next()) {
    scanFrame(s, r.data, r.dataOff, r.capLen, r.linkType, r.origLen);
    packets++;
    if (s.ip >= 0) {
      const o = s.off[s.ip];
      const d = r.data;
      const a = s.type[s.ip] === L_IPV4 ? (d[o + 12] << 24) ^ (d[o + 19] << 8) : (d[o + 23] << 24) ^ d[o + 39];
      digest = (digest + (a ^ (s.sport << 16) ^ s.dport ^ s.proto ^ s.n)) | 0;
    }
  }
  r.close();
  return { packets, digest };
}

/** Full decode into JSON layer objects with checksum verification. */
function fullPass(): { packets: number; layers: number } {
  const r = openCaptureFile(FILE, 16 << 20);
  const dec = new PacketDecoder();
  let packets = 0;
  let layers = 0;
  while (r.next()) {
    const p = dec.decode(r.data, r.dataOff, r.capLen, r.linkType, r.origLen);
    layers += p.layers.length;
    packets++;
  }
  r.close();
  return { packets, layers };
}

function tshark(): { ms: number; lines: number } | { error: string } {
  const t0 = process.hrtime.bigint();
  const res = spawnSync('tshark', ['-n', '-r', FILE, '-T', 'fields', '-e', 'ip.src', '-e', 'ip.dst', '-e', 'tcp.srcport', '-e', 'tcp.dstport', '-e', 'udp.srcport', '-e', 'udp.dstport'], { maxBuffer: 1 << 30, encoding: 'buffer' });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (res.error) return { error: res.error.message };
  if (res.status !== 0) return { error: `tshark exited ${res.status}: ${res.stderr.toString().slice(0, 300)}` };
  let lines = 0;
  for (const c of res.stdout) if (c === 10) lines++;
  return { ms, lines };
}

function main(): void {
  console.log(`generating ${PACKETS} packets into ${FILE} ...`);
  const g = timeIt(generate);
  const mb = g.value.bytes / 1e6;
  console.log(`  ${mb.toFixed(1)} MB, average ${(g.value.bytes / PACKETS - 16).toFixed(0)} bytes per packet, written in ${(g.ms / 1000).toFixed(1)} s`);
  fastPass(); // warm the page cache and the JIT
  const runs = [timeIt(fastPass), timeIt(fastPass), timeIt(fastPass)];
  const fast = runs.reduce((a, b) => (a.ms < b.ms ? a : b));
  if (fast.value.packets !== PACKETS) throw new Error(`fast path saw ${fast.value.packets} packets, expected ${PACKETS}`);
  const fastMBps = mb / (fast.ms / 1000);
  const full = timeIt(fullPass);
  const fullMBps = mb / (full.ms / 1000);
  console.log(`fast path (layer offsets + 5-tuple): ${fast.ms.toFixed(0)} ms  ${fastMBps.toFixed(0)} MB/s  ${(PACKETS / fast.ms / 1000).toFixed(2)} Mpps   target >= ${TARGET_MBPS} MB/s: ${fastMBps >= TARGET_MBPS ? 'MET' : 'NOT MET'}`);
  console.log(`full decode (JSON objects, checksums):  ${full.ms.toFixed(0)} ms  ${fullMBps.toFixed(0)} MB/s  ${(PACKETS / full.ms / 1000).toFixed(2)} Mpps  (${full.value.layers} layers)`);
  if (!args.includes('--no-tshark')) {
    const t = tshark();
    if ('error' in t) console.log(`tshark: ${t.error}`);
    else {
      const ratio = t.ms / fast.ms;
      console.log(`tshark -T fields (5-tuple):           ${t.ms.toFixed(0)} ms  ${(mb / (t.ms / 1000)).toFixed(0)} MB/s  (${t.lines} lines)`);
      console.log(`ratio fast path vs tshark: ${ratio.toFixed(1)}x   target >= ${TARGET_RATIO}x: ${ratio >= TARGET_RATIO ? 'MET' : 'NOT MET'}`);
      console.log(`ratio full decode vs tshark: ${(t.ms / full.ms).toFixed(1)}x`);
    }
  }
  if (!args.includes('--keep')) fs.rmSync(FILE, { force: true });
}

main();
