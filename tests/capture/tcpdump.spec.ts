// System tests: real tcpdump in real namespaces, through the LabNode interface.
import { test, expect } from '@playwright/test';
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { readAllPackets } from '../../src/capture/open';
import { CaptureSet, CaptureStartError, TcpdumpCapture, parseTcpdumpCounts } from '../../src/capture/tcpdump';
import { decodeCapture } from '../../src/packet/capturefile';
import { pairLab, udpBlastScript, type TestLab } from './netns-lab';

test.describe.configure({ timeout: 180_000 });

test('parses tcpdump counters, including the optional interface drops', () => {
  expect(parseTcpdumpCounts('tcpdump: listening on eth0\n5 packets captured\n7 packets received by filter\n1 packet dropped by kernel\n')).toEqual({ captured: 5, receivedByFilter: 7, droppedByKernel: 1 });
  expect(parseTcpdumpCounts('1 packet captured\n1 packet received by filter\n0 packets dropped by kernel\n3 packets dropped by interface\n')).toEqual({ captured: 1, receivedByFilter: 1, droppedByKernel: 0, droppedByInterface: 3 });
  expect(parseTcpdumpCounts('tcpdump: eth9: No such device exists')).toBeUndefined();
});

test.describe('on a veth pair', () => {
  let lab: TestLab;
  test.beforeAll(() => {
    lab = pairLab('cap');
  });
  test.afterAll(() => lab?.cleanup());

  test('2000 UDP datagrams sent at full speed are all captured on the receiver', async () => {
    const b = lab.node('b');
    const cap = await TcpdumpCapture.start(b, { iface: 'eth0', filter: 'udp and dst port 9999', snapLen: 256, fileName: 'blast.pcap' });
    let counts;
    try {
      await lab.node('a').must([process.execPath, '-e', udpBlastScript('198.18.0.2', 9999, 2000)], { timeoutMs: 60000 });
    } finally {
      counts = await cap.stop();
    }
    expect(counts.droppedByKernel).toBe(0);
    expect(counts.captured).toBe(2000);
    const { packets } = readAllPackets(cap.file);
    expect(packets.length).toBe(2000);
    // Every datagram exactly once, in order of its sequence number.
    const seqs = packets.map((p) => p.data.readUInt32BE(14 + 20 + 8));
    expect(new Set(seqs).size).toBe(2000);
    expect(Math.min(...seqs)).toBe(0);
    expect(Math.max(...seqs)).toBe(1999);
    // Snap length 256 with 64-byte payloads: nothing cut.
    expect(packets.every((p) => p.data.length === p.origLen && p.origLen === 14 + 20 + 8 + 64)).toBe(true);
  });

  test('a link that never falls quiet (a datagram every 20 ms through the stop) stops at tcpdump\'s stop point, every packet before it in the file', async () => {
    const b = lab.node('b');
    const cap = await TcpdumpCapture.start(b, { iface: 'eth0', filter: 'udp and dst port 9998', snapLen: 256, fileName: 'busy.pcap' });
    const sender = lab.node('a').spawn([process.execPath, '-e',
      "const s=require('dgram').createSocket('udp4');let i=0;setInterval(()=>{const b=Buffer.alloc(16);b.writeUInt32BE(i++,0);s.send(b,9998,'198.18.0.2')},20)"]);
    let counts;
    try {
      await new Promise((r) => setTimeout(r, 1000));
      counts = await cap.stop({ settleMs: 300 });
    } finally {
      sender.kill('SIGKILL');
      await sender.wait();
    }
    // The file never settled: the stop point comes from tcpdump's own count (SIGUSR1).
    expect(counts.completeAt, 'tcpdump reported a point where it had written all it received').toBeDefined();
    expect(counts.captured).toBeGreaterThanOrEqual(counts.completeAt!.captured);
    expect(counts.captured + (counts.arrivedWhileStopping ?? 0)).toBe(counts.receivedByFilter);
    const { packets } = readAllPackets(cap.file);
    expect(packets.length).toBe(counts.captured);
    // No hole: datagrams 0..n-1, each once, in order.
    const seqs = packets.map((p) => p.data.readUInt32BE(14 + 20 + 8));
    expect(seqs).toEqual(seqs.map((_, k) => k + seqs[0]));
    expect(seqs.length).toBeGreaterThan(30);
  });

  test('a capture that cannot start reports tcpdump\'s own message', async () => {
    const err = await TcpdumpCapture.start(lab.node('a'), { iface: 'nosuchif0', readyTimeoutMs: 20000 }).catch((e) => e);
    expect(err).toBeInstanceOf(CaptureStartError);
    expect(String(err.message)).toMatch(/nosuchif0/);
    expect(String(err.message)).toMatch(/exited before listening/);
  });

  test('captures of both link ends merge into one pcapng with node:iface names that Wireshark reads', async () => {
    const set = await CaptureSet.start([{ node: lab.node('a'), iface: 'eth0' }, { node: lab.node('b'), iface: 'eth0' }], { fileName: 'merge.pcap' });
    try {
      await lab.node('a').must(['busybox', 'ping', '-c', '3', '-i', '0.2', '198.18.0.2'], { timeoutMs: 30000 });
    } catch (e) {
      await set.stop({ allowLoss: true });
      throw e;
    }
    const stopped = await set.stop();
    expect(stopped.map((s) => s.link)).toEqual(['a:eth0', 'b:eth0']);
    const out = path.join(lab.root, 'merged.pcapng');
    const res = await set.merge(out, path.join(lab.root, 'scratch'));
    const total = stopped.reduce((n, s) => n + s.counts.captured, 0);
    expect(res.packets).toBe(total);
    const pkts = decodeCapture(out);
    expect(pkts.length).toBe(total);
    // Ordered by timestamp.
    const ts = pkts.map((p) => p.ts!);
    const sorted = [...ts].sort((x, y) => (BigInt(x.replace('.', '')) < BigInt(y.replace('.', '')) ? -1 : 1));
    expect(ts).toEqual(sorted);
    // Each echo request is seen on a:eth0 (sent) and b:eth0 (received).
    const req = pkts.filter((p) => p.layers.some((l) => l.type === 'icmp' && l.icmpType === 8));
    expect(req.filter((p) => p.link === 'a:eth0').length).toBe(3);
    expect(req.filter((p) => p.link === 'b:eth0').length).toBe(3);
    // tshark agrees on the interface names and the packet count.
    const names = execFileSync('tshark', ['-n', '-r', out, '-T', 'fields', '-e', 'frame.interface_name'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim().split('\n');
    expect(names.length).toBe(total);
    expect(new Set(names)).toEqual(new Set(['a:eth0', 'b:eth0']));
    expect(fs.existsSync(out)).toBe(true);
  });
});
