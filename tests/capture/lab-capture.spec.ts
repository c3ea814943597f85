// Integration with the backends on this host's kernel (netns, docker): capture every link end of a real lab
// (topologies/nat.yaml), through the LabNode interface only, and merge into one pcapng whose interfaces
// are the lab's node:iface names.
import { test, expect } from '@playwright/test';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { upLab } from '../../src/backend';
import type { RunningLab } from '../../src/backend/types';
import { CaptureSet, labLinkEnds } from '../../src/capture/tcpdump';
import { decodeCaptureWithInterfaces } from '../../src/packet/capturefile';
import { loadTopologyFile } from '../../src/topology/load';

test.describe.configure({ timeout: 180_000 });

for (const backend of ['netns', 'docker'] as const) test(`every link end of a ${backend} lab is captured without loss and merged as node:iface`, async () => {
  const model = loadTopologyFile(path.join(__dirname, '..', '..', 'topologies', 'nat.yaml'));
  const lab: RunningLab = await upLab(model, { backend, ephemeral: true, name: `vslabpk-cap-${backend}-${process.pid}` });
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'vslabpk-labcap-'));
  try {
    const ends = labLinkEnds(lab);
    expect(ends.map((e) => `${e.node.name}:${e.iface}`)).toEqual(['client1:eth0', 'director:eth0', 'director:eth1', 'rs1:eth0', 'rs2:eth0', 'rs3:eth0']);
    const set = await CaptureSet.start(ends, { snapLen: 256 });
    let stopped;
    try {
      const client = lab.node('client1');
      const director = lab.node('director');
      for (const [node, dst] of [[client, '198.18.0.2'], [director, '198.18.1.3']] as const) {
        const r = await node.exec(['busybox', 'ping', '-c', '3', '-i', '0.2', dst], { timeoutMs: 30000 });
        expect(r.code, r.stderr).toBe(0);
      }
    } finally {
      stopped = await set.stop();
    }
    expect(stopped.every((s) => s.counts.droppedByKernel === 0)).toBe(true);
    const merged = path.join(scratch, 'capture.pcapng');
    const res = await set.merge(merged, scratch);
    expect(res.interfaces).toEqual(['client1:eth0', 'director:eth0', 'director:eth1', 'rs1:eth0', 'rs2:eth0', 'rs3:eth0']);
    const { packets, interfaces } = decodeCaptureWithInterfaces(merged);
    expect(packets.length).toBe(stopped.reduce((n, s) => n + s.counts.captured, 0));
    const echo = (link: string, src: string, dst: string, type: number) => packets.filter((p) => p.link === link && p.layers.some((l) => l.type === 'ipv4' && l.src === src && l.dst === dst) && p.layers.some((l) => l.type === 'icmp' && l.icmpType === type)).length;
    expect(echo('client1:eth0', '198.18.0.1', '198.18.0.2', 8)).toBe(3);
    expect(echo('director:eth0', '198.18.0.1', '198.18.0.2', 8)).toBe(3);
    expect(echo('director:eth0', '198.18.0.2', '198.18.0.1', 0)).toBe(3);
    expect(echo('director:eth1', '198.18.1.1', '198.18.1.3', 8)).toBe(3);
    expect(echo('rs2:eth0', '198.18.1.1', '198.18.1.3', 8)).toBe(3);
    expect(echo('rs2:eth0', '198.18.1.3', '198.18.1.1', 0)).toBe(3);
    // rs1 and rs3 share the back segment: they see the broadcast ARP, not the unicast echoes.
    expect(echo('rs1:eth0', '198.18.1.1', '198.18.1.3', 8)).toBe(0);
    expect(interfaces).toEqual(res.interfaces);
  } finally {
    await lab.down();
    fs.rmSync(scratch, { recursive: true, force: true });
  }
});
