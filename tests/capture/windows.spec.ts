// Captures kept for a lab's life and cut into per-test windows (src/capture/windows.ts): the record log cuts
// exactly the records asked for from a file read in arbitrary pieces, and on a real netns lab each window
// holds its own traffic and nothing of the window before; a tcpdump that dies fails its window and is started
// afresh for the next one.
import { test, expect } from '@playwright/test';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { upLab } from '../../src/backend';
import type { RunningLab } from '../../src/backend/types';
import { readAllPackets } from '../../src/capture/open';
import { PcapWriter } from '../../src/capture/pcap';
import { MemorySink } from '../../src/capture/sink';
import { labLinkEnds } from '../../src/capture/tcpdump';
import { LabCaptures, PcapRecordLog } from '../../src/capture/windows';
import { decodeCaptureWithInterfaces } from '../../src/packet/capturefile';
import { loadTopologyFile } from '../../src/topology/load';

function pcapOf(n: number, opts: { bigEndian?: boolean } = {}): Buffer {
  const sink = new MemorySink();
  const w = new PcapWriter(sink, { nanosecond: true, ...opts });
  // Records of different sizes, each tagged with its index in its first byte.
  for (let i = 0; i < n; i++) w.writePacket(1000 + i, i, Buffer.alloc(14 + ((i * 37) % 200), i));
  w.close();
  return sink.toBuffer();
}

const firstBytes = (b: Buffer) => readAllPackets(b).packets.map((p) => p.data[0]);

test('the record log cuts exactly the asked records from a file read in odd pieces, and lets go of what is before', () => {
  for (const bigEndian of [false, true]) {
    const file = pcapOf(30, { bigEndian });
    const log = new PcapRecordLog();
    // Pieces that split the header and records anywhere.
    for (let at = 0; at < 900; at += 7) log.append(file.subarray(at, Math.min(at + 7, 900)));
    const partial = log.records;
    expect(partial).toBeGreaterThan(0);
    expect(partial).toBeLessThan(30);
    expect(log.fileBytes).toBe(900);
    expect(firstBytes(log.take(2, 5))).toEqual([2, 3, 4]);
    expect(() => log.take(3, 6)).toThrow(/already let go/);
    expect(() => log.take(5, 31)).toThrow(/only \d+ records read/);
    log.append(file.subarray(900));
    expect(log.records).toBe(30);
    // A gap (a window dropped in between) is skipped; an empty window is a header alone.
    expect(firstBytes(log.take(9, 12))).toEqual([9, 10, 11]);
    const empty = log.take(12, 12);
    expect(empty.length).toBe(24);
    expect(readAllPackets(empty).packets).toEqual([]);
    expect(firstBytes(log.take(12, 30))).toEqual(Array.from({ length: 18 }, (_, k) => 12 + k));
  }
});

test('a link silent so far (tcpdump -U has not flushed its file header) gives an empty window the fallback header', () => {
  const hdr = pcapOf(0);
  expect(new PcapRecordLog(hdr).take(0, 0)).toEqual(hdr);
  expect(() => new PcapRecordLog().take(0, 0)).toThrow(/no pcap header/);
  expect(() => new PcapRecordLog(hdr).take(0, 1)).toThrow(/no pcap header/);
});

test('the record log refuses what is not a classic pcap and a record that claims an absurd length', () => {
  const log = new PcapRecordLog();
  expect(() => log.append(Buffer.from('0a0d0d0a' + '00'.repeat(40), 'hex'))).toThrow(/not a pcap file/);
  const bad = pcapOf(1);
  bad.writeUInt32LE(0x7fffffff, 24 + 8);
  expect(() => new PcapRecordLog().append(bad)).toThrow(/claims \d+ bytes/);
});

test.describe('on a netns lab', () => {
  test.describe.configure({ timeout: 180_000 });
  let lab: RunningLab;
  let scratch: string;
  test.beforeAll(async () => {
    lab = await upLab(loadTopologyFile(path.join(__dirname, '..', '..', 'topologies', 'nat.yaml')), { backend: 'netns', ephemeral: true, name: `vslabpk-win-${process.pid}` });
    scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'vslabpk-win-'));
  });
  test.afterAll(async () => {
    await lab?.down();
    if (scratch) fs.rmSync(scratch, { recursive: true, force: true });
  });

  const pings = async (node: string, dst: string, n: number) => {
    const r = await lab.node(node).exec(['busybox', 'ping', '-c', String(n), '-i', '0.2', dst], { timeoutMs: 30000 });
    expect(r.code, r.stderr).toBe(0);
  };
  const echoes = (files: { path: string; link: string }[], link: string, src: string, dst: string, type: number) => {
    const { packets } = decodeCaptureWithInterfaces(files.find((x) => x.link === link)!.path);
    return packets.filter((p) => p.layers.some((l) => l.type === 'ipv4' && l.src === src && l.dst === dst) && p.layers.some((l) => l.type === 'icmp' && l.icmpType === type)).length;
  };

  test('each window holds its own traffic only; a dead tcpdump fails its window and the next one starts afresh', async () => {
    const caps = new LabCaptures(labLinkEnds(lab), { snapLen: 256 });
    // Another lab's captures in the same node directories (labs in one VM guest share /vslab/work/<node>):
    // their own files, so neither sees the other's bytes.
    const other = new LabCaptures(labLinkEnds(lab), { snapLen: 256 }, 'other-lab');
    expect(() => new LabCaptures([], {}, '../x')).toThrow(/letters, digits/);
    try {
      const w1 = await caps.begin();
      const o1 = await other.begin();
      await pings('client1', '198.18.0.2', 3);
      const r1 = await caps.end(w1, path.join(scratch, 'w1'), 150);
      const ro = await other.end(o1, path.join(scratch, 'o1'), 150);
      expect(echoes(ro.files, 'client1:eth0', '198.18.0.1', '198.18.0.2', 8)).toBe(3);
      expect(new Set([...caps.captures, ...other.captures].map((c) => c.file)).size).toBe(12);
      await other.close();
      expect(caps.linkNames).toEqual(['client1:eth0', 'director:eth0', 'director:eth1', 'rs1:eth0', 'rs2:eth0', 'rs3:eth0']);
      expect(r1.files.map((f) => f.link)).toEqual(caps.linkNames);
      expect(echoes(r1.files, 'client1:eth0', '198.18.0.1', '198.18.0.2', 8)).toBe(3);
      expect(echoes(r1.files, 'director:eth0', '198.18.0.2', '198.18.0.1', 0)).toBe(3);
      await expect(caps.end(w1, path.join(scratch, 'w1b'), 150)).rejects.toThrow(/already ended/);

      // Traffic between two windows belongs to neither.
      await pings('client1', '198.18.0.2', 2);
      const w2 = await caps.begin();
      await pings('director', '198.18.1.3', 2);
      const r2 = await caps.end(w2, path.join(scratch, 'w2'), 150);
      expect(echoes(r2.files, 'client1:eth0', '198.18.0.1', '198.18.0.2', 8)).toBe(0);
      expect(echoes(r2.files, 'director:eth1', '198.18.1.1', '198.18.1.3', 8)).toBe(2);
      expect(echoes(r2.files, 'rs2:eth0', '198.18.1.3', '198.18.1.1', 0)).toBe(2);
      expect(r2.files.find((f) => f.link === 'client1:eth0')!.packets).toBe(0);

      // A window dropped by a failed test: the next one starts at its own mark.
      const w3 = await caps.begin();
      await pings('client1', '198.18.0.2', 1);
      caps.forget(w3);
      const w4 = await caps.begin();
      await pings('director', '198.18.1.2', 1);
      const r4 = await caps.end(w4, path.join(scratch, 'w4'), 150);
      expect(echoes(r4.files, 'client1:eth0', '198.18.0.1', '198.18.0.2', 8)).toBe(0);
      expect(echoes(r4.files, 'rs1:eth0', '198.18.1.1', '198.18.1.2', 8)).toBe(1);

      // tcpdump on rs2 dies during a window: that window fails, loudly.
      const w5 = await caps.begin();
      await caps.captures[4].abort();
      await expect(caps.end(w5, path.join(scratch, 'w5'), 150)).rejects.toThrow(/tcpdump on rs2:eth0 exited during the test/);
      // The next window has every capture running again.
      const w6 = await caps.begin();
      expect(caps.captures.every((c) => c.running)).toBe(true);
      await pings('director', '198.18.1.3', 2);
      const r6 = await caps.end(w6, path.join(scratch, 'w6'), 150);
      expect(echoes(r6.files, 'rs2:eth0', '198.18.1.1', '198.18.1.3', 8)).toBe(2);
    } finally {
      await caps.close();
      await other.close();
    }
    expect(caps.captures).toEqual([]);
    await expect(caps.begin()).rejects.toThrow(/closed/);
  });
});
