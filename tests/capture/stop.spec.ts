// How a capture's stop judges tcpdump's counts, with a scripted tcpdump (no lab): packets the kernel
// queued while tcpdump was being stopped, after a quiet settle time, are reported, not called a loss;
// a link still busy at the stop and kernel drops are losses.
import { test, expect } from '@playwright/test';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { PassThrough } from 'stream';
import type { LabNode, NodeProcess } from '../../src/backend/types';
import { CaptureLossError, TcpdumpCapture } from '../../src/capture/tcpdump';

let dir = '';
test.beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vslab-capstop-'));
});
test.afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/** A node whose "tcpdump" says it listens, optionally keeps its file growing, and prints `counts` on SIGTERM. */
function scriptedNode(counts: { captured: number; received: number; dropped: number }, growEveryMs = 0): LabNode {
  return {
    name: 'n',
    workDir: dir,
    spawn(argv: string[]): NodeProcess {
      const file = argv[argv.indexOf('-w') + 1];
      fs.writeFileSync(file, Buffer.alloc(24));
      const stdout = new PassThrough();
      const stderr = new PassThrough();
      const grow = growEveryMs ? setInterval(() => fs.appendFileSync(file, Buffer.alloc(64)), growEveryMs) : undefined;
      let done!: (st: { code: number | null; signal: string | null }) => void;
      const exited = new Promise<{ code: number | null; signal: string | null }>((r) => { done = r; });
      setTimeout(() => stderr.write('tcpdump: listening on eth0, link-type EN10MB (Ethernet), snapshot length 262144 bytes\n'), 5);
      return {
        pid: 1, stdout, stderr, stdin: new PassThrough(),
        kill: () => {
          if (grow) clearInterval(grow);
          stderr.write(`${counts.captured} packets captured\n${counts.received} packets received by filter\n${counts.dropped} packets dropped by kernel\n`);
          setTimeout(() => { stdout.end(); stderr.end(); done({ code: 0, signal: null }); }, 5);
        },
        wait: () => exited,
      } as unknown as NodeProcess;
    },
  } as unknown as LabNode;
}

test('packets queued while tcpdump was stopped, after a quiet settle time, are counted apart, not called a loss', async () => {
  const cap = await TcpdumpCapture.start(scriptedNode({ captured: 2, received: 4, dropped: 0 }), { iface: 'eth0', fileName: 'quiet.pcap' });
  const counts = await cap.stop({ settleMs: 100 });
  expect(counts).toMatchObject({ captured: 2, receivedByFilter: 4, droppedByKernel: 0, arrivedWhileStopping: 2 });
});

test('nothing unwritten: no extra figure', async () => {
  const cap = await TcpdumpCapture.start(scriptedNode({ captured: 4, received: 4, dropped: 0 }), { iface: 'eth0', fileName: 'all.pcap' });
  expect((await cap.stop({ settleMs: 50 })).arrivedWhileStopping).toBeUndefined();
});

test('kernel drops are a loss', async () => {
  const cap = await TcpdumpCapture.start(scriptedNode({ captured: 4, received: 5, dropped: 1 }), { iface: 'eth0', fileName: 'drop.pcap' });
  await expect(cap.stop({ settleMs: 50 })).rejects.toThrow(CaptureLossError);
});

test('unwritten packets on a link still busy when the capture had to stop are a loss', async () => {
  test.setTimeout(20_000);
  const cap = await TcpdumpCapture.start(scriptedNode({ captured: 2, received: 4, dropped: 0 }, 20), { iface: 'eth0', fileName: 'busy.pcap' });
  await expect(cap.stop({ settleMs: 100 })).rejects.toThrow(/2 received by the filter but not written \(the file was still growing/);
});
