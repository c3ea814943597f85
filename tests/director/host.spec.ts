// directorHost() on a real netns lab: its netlink socket lives in the director's namespace (it sees
// the director's interfaces, not the host's), files are read inside the node, and on a kernel without
// IPVS the ipvs driver says so instead of failing obscurely.
import { test, expect } from '@playwright/test';
import * as path from 'path';
import { upNetnsLab } from '../../src/backend/netns';
import { directorHost } from '../../src/director/host';
import { IpvsDirector } from '../../src/director/ipvs';
import { decodeAttrs } from '../../src/netlink/attr';
import { decodeMessages, encodeMessage } from '../../src/netlink/message';
import { NETLINK_ROUTE } from '../../src/netlink/transport';
import { loadTopologyFile } from '../../src/topology/load';

test.describe.configure({ mode: 'serial', timeout: 120_000 });

const RTM_GETLINK = 18;
const RTM_NEWLINK = 16;
const IFLA_IFNAME = 3;

test('the director host of a netns lab: netlink and files are the director namespace', async () => {
  const lab = await upNetnsLab(loadTopologyFile(path.join(__dirname, '..', '..', 'topologies', 'nat.yaml')), {
    name: `vslabnl-${process.pid}`,
    ephemeral: true,
  });
  const host = directorHost(lab.node('director'));
  try {
    const req = encodeMessage({ type: RTM_GETLINK, flags: 0x1 | 0x300, seq: 1 }, Buffer.alloc(16));
    const replies = decodeMessages(await host.netlink(NETLINK_ROUTE).transact(req)).filter((m) => m.header.type === RTM_NEWLINK);
    const names = replies
      .map((m) => decodeAttrs(m.payload.subarray(16)).find((a) => a.type === IFLA_IFNAME)!.data)
      .map((d) => d.subarray(0, d.indexOf(0)).toString())
      .sort();
    const director = lab.model.nodes.find((n) => n.name === 'director')!;
    expect(names).toEqual(['lo', ...director.interfaces.map((i) => i.name)].sort());
    const dev = await host.readFile('/proc/net/dev');
    for (const i of director.interfaces) expect(dev).toContain(`${i.name}:`);
    await expect(host.readFile('/proc/net/vslabnl-no-such-file')).rejects.toThrow(/cat \/proc\/net\/vslabnl-no-such-file in director exited with 1/);

    const opened = await IpvsDirector.open(host).then(
      async (d) => {
        await d.close();
        return 'opened';
      },
      (e: Error) => e.message,
    );
    // Either this kernel has IPVS (the driver opens) or the error says it has not.
    expect(['opened', 'generic netlink family "IPVS" lookup failed with ENOENT (No such file or directory): the kernel has no "IPVS" family registered (module not loaded or not built)']).toContain(opened);
  } finally {
    host.close();
    await lab.down();
  }
});
