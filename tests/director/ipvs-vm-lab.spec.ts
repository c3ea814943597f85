// The ipvs driver on a lab run by the VM backend: directorHost() reaches the director node through
// the guest agent's netlink relay, the driver programs nat.yaml, and a client's connections to the
// VIP really reach the real servers (round robin), which the driver then sees as connections and counters.
import { test, expect } from '@playwright/test';
import * as path from 'path';
import { upVmLab } from '../../src/backend/vm';
import type { NodeProcess } from '../../src/backend/types';
import { directorHost } from '../../src/director/host';
import { IpvsDirector } from '../../src/director/ipvs';
import { formatIpvsadmSave } from '../../src/director/ipvsadm-save';
import { servicesOf } from '../../src/director/types';
import { loadTopologyFile } from '../../src/topology/load';

test.describe.configure({ timeout: 600_000 });

test('nat.yaml in a VM lab: programmed through the relay, traffic reaches every real server', async () => {
  test.skip(process.env.VSLAB_SKIP_VM === '1', 'VSLAB_SKIP_VM=1: real-kernel IPVS tests skipped on request');
  const model = loadTopologyFile(path.join(__dirname, '..', '..', 'topologies', 'nat.yaml'));
  const lab = await upVmLab(model, { ephemeral: true, name: `vslabnl-${process.pid}`, boot: { namePrefix: 'vslabnl-' } });
  const servers: NodeProcess[] = [];
  try {
    const director = lab.node('director');
    const d = await IpvsDirector.open(directorHost(director));
    const services = servicesOf(model.services, 'director');
    const r = await d.apply(services);
    expect(r.differences).toEqual([]);
    const back = await d.client.snapshot();
    expect((await director.exec(['ipvsadm', '-Sn'])).stdout).toBe(formatIpvsadmSave(back, { flavour: 'ipvsadm' }));

    const web4 = services.find((s) => s.name === 'web4')!;
    for (const rs of web4.realServers) {
      const p = lab.node(rs.node).spawn(['socat', `TCP-LISTEN:${rs.port},fork,reuseaddr`, `SYSTEM:echo ${rs.node}`]);
      servers.push(p);
    }
    const client = lab.node('client1');
    const answers: string[] = [];
    for (let i = 0; i < 3; i++) {
      let out = '';
      for (let attempt = 0; attempt < 20 && !out; attempt++) {
        // the listeners may still be starting: retry until one answers
        const res = await client.exec(['socat', '-T2', '-', `TCP:${web4.vip}:${web4.port},connect-timeout=2`], { timeoutMs: 10_000 });
        out = res.stdout.trim();
        if (!out) await new Promise((ok) => setTimeout(ok, 250));
      }
      answers.push(out);
    }
    expect(answers.sort()).toEqual(web4.realServers.map((x) => x.node).sort());

    const conns = (await d.connections()).filter((c) => c.virtual.port === 80 && c.protocol === 'TCP');
    expect(conns.length).toBeGreaterThanOrEqual(3);
    let stats = await d.stats(services);
    for (let i = 0; i < 10 && (stats.find((s) => s.service === 'web4')?.counters.conns ?? 0) < 3; i++) {
      await new Promise((ok) => setTimeout(ok, 1000));
      stats = await d.stats(services);
    }
    const w = stats.find((s) => s.service === 'web4')!;
    expect(w.counters.conns).toBeGreaterThanOrEqual(3);
    expect(w.counters.outPkts).toBeGreaterThan(0); // NAT: the director sees the replies
    await d.close();
  } finally {
    for (const p of servers) p.kill();
    await lab.down();
  }
});
