// A node connection that goes away under a long-running tool (a VM the worker detaches from after a
// failed test) rejects the tool's wait(): every handle must turn that into its own errors, never into
// an unhandled rejection (Playwright reports those as errors of the whole run).
import { test, expect } from '@playwright/test';
import { PassThrough } from 'stream';
import type { LabNode, NodeProcess } from '../../src/backend/types';
import { TcpdumpCapture } from '../../src/capture/tcpdump';
import { startResponder } from '../../src/traffic/index';

function lostNode(afterMs: number): { node: LabNode; spawned: () => number } {
  let n = 0;
  const node = {
    name: 'lost',
    workDir: '/nonexistent',
    spawn(): NodeProcess {
      n++;
      const stdout = new PassThrough();
      const stderr = new PassThrough();
      const gone = new Promise<never>((_, reject) => setTimeout(() => {
        stdout.end();
        stderr.end();
        reject(new Error('detached from VM test-0'));
      }, afterMs));
      return { pid: 1, stdout, stderr, stdin: new PassThrough(), kill: () => undefined, wait: () => gone } as unknown as NodeProcess;
    },
  } as unknown as LabNode;
  return { node, spawned: () => n };
}

test('a responder and a capture whose node connection is lost leave no unhandled rejection', async () => {
  const unhandled: unknown[] = [];
  const onUnhandled = (e: unknown): void => { unhandled.push(e); };
  process.on('unhandledRejection', onUnhandled);
  try {
    const { node, spawned } = lostNode(20);
    const responder = startResponder(node, { name: 'r', tcp: [80], udp: [], readyTimeoutMs: 5000 });
    const capture = TcpdumpCapture.start(node, { iface: 'eth0', readyTimeoutMs: 5000 });
    expect(spawned()).toBe(2);
    await expect(responder.ready).rejects.toThrow(/lost before it was ready: detached from VM/);
    await expect(capture).rejects.toThrow();
    await expect(responder.stop()).rejects.toThrow(/detached from VM/);
    await new Promise((r) => setTimeout(r, 100));
    expect(unhandled).toEqual([]);
  } finally {
    process.off('unhandledRejection', onUnhandled);
  }
});
