// A whole lab inside one guest: the NAT topology built from the plan, kernel IPVS programmed with
// ipvsadm, traffic from the client to three real servers (socat responders, then the project's own
// Node traffic tools over the 9p share), a capture fetched back to the host.
import { test, expect } from '@playwright/test';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { readLabState } from '../../src/backend/registry';
import { upVmLab, type VmLab } from '../../src/backend/vm';
import { loadTopologyFile } from '../../src/topology/load';
import { runClient, startResponder } from '../../src/traffic';
import { ourQemus, pidAlive, TEST_PREFIX, VM_TEST_TIMEOUT } from './vm-helpers';

test.describe.configure({ timeout: VM_TEST_TIMEOUT });

const model = loadTopologyFile(path.join(__dirname, '..', '..', 'topologies', 'nat.yaml'));
const web4 = model.services.find((s) => s.name === 'web4')!;
const VIP = web4.vip!;
let lab: VmLab;

/** Count IPv4 TCP SYNs (without ACK) per destination address in a pcap (Ethernet link type). */
function synsByDestination(pcap: Buffer): Map<string, number> {
  expect(pcap.readUInt32LE(0)).toBe(0xa1b2c3d4);
  const out = new Map<string, number>();
  for (let off = 24; off + 16 <= pcap.length;) {
    const incl = pcap.readUInt32LE(off + 8);
    const frame = pcap.subarray(off + 16, off + 16 + incl);
    off += 16 + incl;
    if (frame.length < 34 || frame.readUInt16BE(12) !== 0x0800 || frame[23] !== 6) continue;
    const ihl = (frame[14] & 15) * 4;
    const flags = frame[14 + ihl + 13];
    if ((flags & 0x12) !== 0x02) continue;
    const dst = [...frame.subarray(30, 34)].join('.');
    out.set(dst, (out.get(dst) ?? 0) + 1);
  }
  return out;
}

test.describe('NAT lab in a VM', () => {
  test.beforeAll(async () => {
    test.setTimeout(VM_TEST_TIMEOUT);
    lab = await upVmLab(model, { name: `${TEST_PREFIX}nat-${process.pid}`, ephemeral: true, boot: { namePrefix: TEST_PREFIX, bootTimeoutMs: 150_000 } });
    const d = lab.node('director');
    const add = await d.exec(['sh', '-c', [
      `ipvsadm -A -t ${VIP}:80 -s rr`,
      ...web4.realServers.map((rs) => `ipvsadm -a -t ${VIP}:80 -r ${rs.addr}:${rs.port} -m`),
    ].join(' && ')]);
    expect(add, add.stderr).toMatchObject({ code: 0 });
  });

  test.afterAll(async () => {
    const pid = lab?.guest.qemuPid;
    await lab?.down();
    if (pid) expect(pidAlive(pid)).toBe(false);
    expect(readLabState(lab.name)).toBeUndefined();
  });

  test('every node is a guest namespace with its addresses and lo up; the guest has no host link', async () => {
    for (const n of model.nodes) {
      const r = await lab.node(n.name).exec(['ip', '-br', 'addr']);
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(/^lo\s+UNKNOWN/m);
      for (const i of n.interfaces) expect(r.stdout).toContain(`${i.ipv4!.addr}/${i.ipv4!.prefixLen}`);
    }
    const root = await lab.guest.exec(null, ['ls', '/sys/class/net']);
    expect(root.stdout.trim()).toBe('lo');
    const d = await lab.node('director').exec(['cat', '/proc/sys/net/ipv4/ip_forward']);
    expect(d.stdout.trim()).toBe('1');
  });

  test('ipvsadm carries connections round-robin to three real servers, NAT rewrites them to the RIPs', async () => {
    const responders = web4.realServers.map((rs) =>
      lab.node(rs.node).spawnInGuest(['socat', `TCP-LISTEN:${rs.port},fork,reuseaddr`, `SYSTEM:echo ${rs.node}`]));
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vslabvm-pcap-'));
    const d = lab.node('director');
    const capture = d.spawnInGuest(['tcpdump', '-i', 'eth1', '-U', '--immediate-mode', '-Z', 'root', '-w', `${d.workDir}/back.pcap`, 'tcp port 8080']);
    try {
      await Promise.all(responders.map((p) => p.waitStarted()));
      for (const rs of web4.realServers) {
        await expect.poll(async () => (await lab.node(rs.node).exec(['ss', '-ltnH', `sport = :${rs.port}`])).stdout, { timeout: 30_000 }).toContain(`:${rs.port}`);
      }
      await capture.waitStarted();
      await expect.poll(async () => (await d.exec(['ls', `${d.workDir}/back.pcap`])).code, { timeout: 30_000 }).toBe(0);

      const answers: string[] = [];
      for (let i = 0; i < 6; i++) {
        const r = await lab.node('client1').exec(['socat', '-T5', '-', `TCP:${VIP}:80`], { timeoutMs: 30_000 });
        expect(r, r.stderr).toMatchObject({ code: 0 });
        answers.push(r.stdout.trim());
      }
      const count = (n: string) => answers.filter((a) => a === n).length;
      for (const rs of web4.realServers) expect(count(rs.node), answers.join(',')).toBe(2);

      const conns = await d.exec(['ipvsadm', '-Lnc']);
      expect(conns.stdout.split('\n').filter((l) => l.includes(`${VIP}:80`)).length).toBe(6);

      capture.kill('SIGTERM');
      await capture.wait();
      await d.fetchFile('back.pcap', path.join(dir, 'back.pcap'));
      const syns = synsByDestination(fs.readFileSync(path.join(dir, 'back.pcap')));
      expect(Object.fromEntries(syns)).toEqual(Object.fromEntries(web4.realServers.map((rs) => [rs.addr, 2])));
    } finally {
      for (const p of [...responders, capture]) p.kill('SIGKILL');
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test("the project's Node traffic tools run in the guest (node and dist/ shared over 9p)", async () => {
    const responders = web4.realServers.map((rs) => startResponder(lab.node(rs.node), { name: rs.node, tcp: [rs.port] }));
    try {
      await Promise.all(responders.map((r) => r.ready));
      const report = await runClient(lab.node('client1'), { target: { address: VIP, port: 80 }, count: 6 });
      const per = new Map<string, number>();
      for (const s of report.servers) per.set(String(s), (per.get(String(s)) ?? 0) + 1);
      expect(Object.fromEntries(per)).toEqual(Object.fromEntries(web4.realServers.map((rs) => [rs.node, 2])));
    } finally {
      await Promise.all(responders.map((r) => r.stop().catch(() => undefined)));
    }
  });
});

test('no qemu started by these tests is left running', () => {
  expect(ourQemus()).toEqual([]);
});
