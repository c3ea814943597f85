// How a capture's stop judges tcpdump's counts, with a scripted tcpdump (no lab): packets the kernel
// queued while tcpdump was being stopped, after a quiet settle time, are reported, not called a loss;
// a link still busy at the stop and kernel drops are losses.
import { test, expect } from '@playwright/test';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { PassThrough } from 'stream';
import type { LabNode, NodeProcess } from '../../src/backend/types';
import { CaptureLossError, TcpdumpCapture, parseTcpdumpInfo } from '../../src/capture/tcpdump';

let dir = '';
test.beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vslab-capstop-'));
});
test.afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

interface Script {
  /** Counts printed at exit (SIGTERM). */
  final: { captured: number; received: number; dropped: number };
  /** Keep the file growing every this many ms (a busy link). */
  growEveryMs?: number;
  /** Answers to SIGUSR1, in turn (the last repeats); none: SIGUSR1 is ignored (no stop point). */
  info?: Array<{ captured: number; received: number; dropped?: number }>;
}

/** A node whose "tcpdump" says it listens, optionally keeps its file growing, answers SIGUSR1 as scripted and prints `final` on SIGTERM. */
function scriptedNode(script: Script): LabNode {
  return {
    name: 'n',
    workDir: dir,
    spawn(argv: string[]): NodeProcess {
      const file = argv[argv.indexOf('-w') + 1];
      fs.writeFileSync(file, Buffer.alloc(24));
      const stdout = new PassThrough();
      const stderr = new PassThrough();
      const grow = script.growEveryMs ? setInterval(() => fs.appendFileSync(file, Buffer.alloc(64)), script.growEveryMs) : undefined;
      let done!: (st: { code: number | null; signal: string | null }) => void;
      const exited = new Promise<{ code: number | null; signal: string | null }>((r) => { done = r; });
      setTimeout(() => stderr.write('tcpdump: listening on eth0, link-type EN10MB (Ethernet), snapshot length 262144 bytes\n'), 5);
      let asked = 0;
      return {
        pid: 1, stdout, stderr, stdin: new PassThrough(),
        kill: (signal?: string) => {
          if (signal === 'SIGUSR1') {
            if (!script.info?.length) return;
            const i = script.info[Math.min(asked++, script.info.length - 1)];
            setTimeout(() => stderr.write(`tcpdump: ${i.captured} packets captured, ${i.received} packets received by filter, ${i.dropped ?? 0} packets dropped by kernel\n`), 5);
            return;
          }
          if (grow) clearInterval(grow);
          const c = script.final;
          stderr.write(`${c.captured} packets captured\n${c.received} packets received by filter\n${c.dropped} packets dropped by kernel\n`);
          setTimeout(() => { stdout.end(); stderr.end(); done({ code: 0, signal: null }); }, 5);
        },
        wait: () => exited,
      } as unknown as NodeProcess;
    },
  } as unknown as LabNode;
}

test('parses the statistics line tcpdump prints on SIGUSR1 (the last one)', () => {
  expect(parseTcpdumpInfo('tcpdump: listening on eth0\ntcpdump: 5 packets captured, 7 packets received by filter, 0 packets dropped by kernel\ntcpdump: 1 packet captured, 1 packet received by filter, 2 packets dropped by kernel\n'))
    .toEqual({ captured: 1, receivedByFilter: 1, droppedByKernel: 2 });
  expect(parseTcpdumpInfo('5 packets captured\n7 packets received by filter\n0 packets dropped by kernel\n')).toBeUndefined();
});

test('packets queued while tcpdump was stopped, after a quiet settle time, are counted apart, not called a loss', async () => {
  const cap = await TcpdumpCapture.start(scriptedNode({ final: { captured: 2, received: 4, dropped: 0 } }), { iface: 'eth0', fileName: 'quiet.pcap' });
  const counts = await cap.stop({ settleMs: 100 });
  expect(counts).toMatchObject({ captured: 2, receivedByFilter: 4, droppedByKernel: 0, arrivedWhileStopping: 2 });
});

test('nothing unwritten: no extra figure', async () => {
  const cap = await TcpdumpCapture.start(scriptedNode({ final: { captured: 4, received: 4, dropped: 0 } }), { iface: 'eth0', fileName: 'all.pcap' });
  expect((await cap.stop({ settleMs: 50 })).arrivedWhileStopping).toBeUndefined();
});

test('kernel drops are a loss', async () => {
  const cap = await TcpdumpCapture.start(scriptedNode({ final: { captured: 4, received: 5, dropped: 1 } }), { iface: 'eth0', fileName: 'drop.pcap' });
  await expect(cap.stop({ settleMs: 50 })).rejects.toThrow(CaptureLossError);
});

test('unwritten packets on a link still busy when the capture had to stop, with no stop point, are a loss', async () => {
  test.setTimeout(20_000);
  const cap = await TcpdumpCapture.start(scriptedNode({ final: { captured: 2, received: 4, dropped: 0 }, growEveryMs: 20 }), { iface: 'eth0', fileName: 'busy.pcap' });
  await expect(cap.stop({ settleMs: 100 })).rejects.toThrow(/2 received by the filter but not written \(the file was still growing/);
});

test('a link that never falls quiet stops at the point where tcpdump had written all it received; later packets are counted apart', async () => {
  test.setTimeout(30_000);
  const cap = await TcpdumpCapture.start(scriptedNode({
    final: { captured: 40, received: 42, dropped: 0 }, growEveryMs: 20,
    info: [{ captured: 30, received: 31 }, { captured: 31, received: 33 }, { captured: 35, received: 35 }],
  }), { iface: 'eth0', fileName: 'busy-caught-up.pcap' });
  const counts = await cap.stop({ settleMs: 100 });
  expect(counts).toMatchObject({ captured: 40, receivedByFilter: 42, arrivedWhileStopping: 2, completeAt: { captured: 35, receivedByFilter: 35 } });
});

test('a tcpdump that never catches up with what it received before the stop lost packets, quiet file or not', async () => {
  test.setTimeout(30_000);
  for (const growEveryMs of [0, 20]) {
    const cap = await TcpdumpCapture.start(scriptedNode({ final: { captured: 30, received: 33, dropped: 0 }, growEveryMs, info: [{ captured: 30, received: 33 }] }), { iface: 'eth0', fileName: `behind-${growEveryMs}.pcap` });
    await expect(cap.stop({ settleMs: 100 })).rejects.toThrow(/3 received by the filter but not written \(tcpdump had not written all it received, 30 of 33/);
  }
});

test('a stop point with nothing unwritten at the exit: no loss, the point is reported', async () => {
  const cap = await TcpdumpCapture.start(scriptedNode({ final: { captured: 9, received: 9, dropped: 0 }, info: [{ captured: 7, received: 7 }] }), { iface: 'eth0', fileName: 'point.pcap' });
  const counts = await cap.stop({ settleMs: 50 });
  expect(counts.arrivedWhileStopping).toBeUndefined();
  expect(counts.completeAt).toEqual({ captured: 7, receivedByFilter: 7 });
});
