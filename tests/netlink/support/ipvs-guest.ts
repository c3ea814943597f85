// Real-kernel fixtures: IPVS exists only in a qemu guest here (the host kernel has no ip_vs), so these
// tests boot one guest per worker through the VM backend and give each test a fresh network namespace
// in it (IPVS state is per namespace), reached by netlink through the guest agent's relay.
//
// Environment: VSLAB_TEST_KERNEL selects the guest kernel ("bookworm" = 6.1, the default, or
// "backports" = 6.12). VSLAB_SKIP_VM=1 skips these tests explicitly (reported as skipped, never passed).
import { test as base } from '@playwright/test';
import { VmGuest } from '../../../src/backend/vm/guest';
import { parseKernelOption } from '../../../src/backend/vm/kernel';
import type { DirectorHost } from '../../../src/director/host';
import { IpvsClient } from '../../../src/netlink/ipvs';
import type { NetlinkTransport } from '../../../src/netlink/transport';

export interface GuestNs {
  /** Namespace name inside the guest. */
  name: string;
  guest: VmGuest;
  /** Shell command in the namespace; its stdout, or an error with its output when it exits non-zero. */
  sh(cmd: string): Promise<string>;
  /** Shell command in the namespace; returns code, stdout and stderr. */
  run(cmd: string): Promise<{ code: number; stdout: string; stderr: string }>;
  transport(protocol?: number): NetlinkTransport;
  client(): Promise<IpvsClient>;
  host(): DirectorHost;
}

let counter = 0;

export const test = base.extend<{ ns: GuestNs }, { guest: VmGuest }>({
  guest: [
    async ({}, use, workerInfo) => {
      if (process.env.VSLAB_SKIP_VM === '1') {
        base.skip(true, 'VSLAB_SKIP_VM=1: real-kernel IPVS tests skipped on request');
        return;
      }
      const g = await VmGuest.boot({
        namePrefix: 'vslabnl-',
        name: `t${process.pid}-${workerInfo.workerIndex}`,
        kernel: parseKernelOption(process.env.VSLAB_TEST_KERNEL),
        initramfs: { node: 'none' },
      });
      try {
        await use(g);
      } finally {
        await g.shutdown();
      }
    },
    { scope: 'worker', timeout: 600_000 },
  ],
  ns: async ({ guest }, use) => {
    const name = `vslabnl-${++counter}`;
    const run = async (cmd: string) => {
      const r = await guest.exec(name, ['sh', '-c', cmd], { timeoutMs: 120_000 });
      return { code: r.code, stdout: r.stdout, stderr: r.stderr };
    };
    const setup = await guest.exec(null, ['sh', '-c', `ip netns add ${name} && ip -n ${name} link set lo up`]);
    if (setup.code !== 0) throw new Error(`cannot create namespace ${name} in the guest: ${setup.stderr}`);
    const transport = (protocol = 16): NetlinkTransport => ({ transact: (req) => guest.netlinkTransact(name, protocol, req, 20_000) });
    const readFile = async (path: string) => {
      const r = await guest.exec(name, ['cat', path], { timeoutMs: 60_000 });
      if (r.code !== 0) throw new Error(`cat ${path}: ${r.stderr}`);
      return r.stdout;
    };
    const ns: GuestNs = {
      name,
      guest,
      run,
      async sh(cmd) {
        const r = await run(cmd);
        if (r.code !== 0) throw new Error(`\`${cmd}\` in ${name} exited ${r.code}:\n${r.stdout}${r.stderr}`);
        return r.stdout;
      },
      transport,
      client: () => IpvsClient.open(transport(), { readFile }),
      host: () => ({ name: 'director', netlink: transport, readFile, close() {} }),
    };
    try {
      await use(ns);
    } finally {
      await guest.exec(null, ['ip', 'netns', 'del', name]);
    }
  },
});

export { expect } from '@playwright/test';
